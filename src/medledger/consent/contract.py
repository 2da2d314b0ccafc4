"""The deployed ConsentManager, as every module of the package reaches it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger.chain import deployments

if TYPE_CHECKING:
    from medledger.chain import Chain
    from medledger.chain.contracts import Contract

CONTRACT = "ConsentManager"
ZERO = bytes(32)


def consent_contract(chain: Chain) -> Contract:
    """The deployed ConsentManager."""
    return deployments.contract(chain, CONTRACT)
