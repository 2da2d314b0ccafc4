"""The chain: the JSON-RPC client, the one transaction sender, deployments, artifacts, the
devnet.

:class:`Chain` (:mod:`~medledger.chain.client`) is what every client module holds; the
submodules :mod:`~medledger.chain.events` (the one log reader),
:mod:`~medledger.chain.pipeline` (the one sender and its ``Receipt``),
:mod:`~medledger.chain.deployments`, :mod:`~medledger.chain.artifacts` and
:mod:`~medledger.chain.devnet` are imported by name where they are used.
"""

from medledger.chain.client import Chain

__all__ = ["Chain"]
