"""The chain: the JSON-RPC client, the one transaction sender, deployments, artifacts, the
devnet."""

from medledger.chain.client import *  # noqa: F403
