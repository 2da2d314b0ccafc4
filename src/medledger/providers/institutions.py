"""Institutions and their registrars: applying, approval by the registrars' threshold,
suspension, and the registrars' votes on who they are and on the threshold.

Each function checks its preconditions (role held, status allows it) before sending, so the
user gets a clear error instead of a revert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.crypto import keccak

from medledger.addresses import parse_address
from medledger.chain import events
from medledger.errors import ConfigurationError, PreconditionFailed
from medledger.providers.keys import key_proof
from medledger.providers.participants import (
    InstitutionKind,
    Status,
    participant,
    registry,
    require_institution,
    require_no_role,
)

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt

REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")
_CONTRACT = "ProviderRegistry"


def apply_institution(chain: Chain, account: Signer, kind: InstitutionKind, name: str) -> Receipt:
    """Apply as an institution, publishing the account's own encryption key."""
    require_no_role(chain, account.address)
    if not name.strip():
        raise ConfigurationError("--name", "an institution needs a name")
    key, proof = key_proof(chain, account)
    return chain.transact(
        "applying as an institution",
        account,
        registry(chain).functions.applyAsInstitution(int(kind), name, key, proof),
    )


def approve_institution(chain: Chain, registrar: Signer, institution: str) -> bool:
    """Cast a registrar's approval; return True when it verified (or reinstated) the institution."""
    entry = require_institution(chain, institution)
    _require_registrar(chain, registrar.address)
    if entry.status not in (Status.PENDING, Status.SUSPENDED):
        raise PreconditionFailed(
            f"{entry.address} is {entry.status.name.lower()}: only pending or suspended "
            "institutions can be approved"
        )
    if registrar.address in (entry.address, participant(chain, registrar.address).employer):
        raise PreconditionFailed(f"{registrar.address} may not approve its own institution")
    contract = registry(chain)
    receipt = chain.transact(
        "approving the institution", registrar, contract.functions.approveInstitution(entry.address)
    )
    verified = events.from_receipt(receipt, _CONTRACT, "InstitutionVerified", contract.address)
    reinstated = events.from_receipt(receipt, _CONTRACT, "InstitutionReinstated", contract.address)
    return bool(verified or reinstated)


def suspend_institution(chain: Chain, registrar: Signer, institution: str, reason: str) -> Receipt:
    """Suspend a verified institution at once."""
    entry = require_institution(chain, institution)
    _require_registrar(chain, registrar.address)
    if entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{entry.address} is {entry.status.name.lower()}, not verified")
    code = reason.encode()
    if len(code) > 32:
        raise ConfigurationError("--reason", "a reason code is at most 32 bytes")
    return chain.transact(
        "suspending the institution",
        registrar,
        registry(chain).functions.suspendInstitution(entry.address, code.ljust(32, b"\0")),
    )


def vote_registrar(chain: Chain, registrar: Signer, account: str, add: bool) -> bool:
    """Vote to add or remove a registrar; return True when this vote made the change."""
    _require_registrar(chain, registrar.address)
    account = parse_address(account)
    contract = registry(chain)
    holds = chain.call("reading roles", contract.functions.hasRole(REGISTRAR_ROLE, account))
    if holds == add:
        raise PreconditionFailed(f"{account} is {'already' if add else 'not'} a registrar")
    receipt = chain.transact(
        "voting on a registrar", registrar, contract.functions.voteRegistrar(account, add)
    )
    (event,) = events.from_receipt(receipt, _CONTRACT, "RegistrarVoted", contract.address)
    return bool(event["votes"] >= event["threshold"])


def vote_threshold(chain: Chain, registrar: Signer, threshold: int) -> bool:
    """Vote for a new approval threshold; return True when this vote changed it."""
    _require_registrar(chain, registrar.address)
    contract = registry(chain)
    receipt = chain.transact(
        "voting on the threshold", registrar, contract.functions.voteThreshold(threshold)
    )
    (event,) = events.from_receipt(receipt, _CONTRACT, "ThresholdVoted", contract.address)
    return bool(event["votes"] >= event["needed"])


def _require_registrar(chain: Chain, address: str) -> None:
    holds = chain.call(
        "reading roles",
        registry(chain).functions.hasRole(REGISTRAR_ROLE, parse_address(address)),
    )
    if not holds:
        raise PreconditionFailed(f"{address} is not a registrar")
