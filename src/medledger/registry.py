"""Institutions, practitioners and patients in the ProviderRegistry.

Each function checks its preconditions (role held, status allows it) before sending, so the
user gets a clear error instead of a revert. Every participant's published encryption key is
the compressed public key of its own account, so any Ethereum account can read what is wrapped
for it without extra key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.logs import DISCARD

from medledger import crypto, deployments
from medledger.errors import (
    ConfigurationError,
    InstitutionNotFound,
    PatientNotFound,
    PreconditionFailed,
)
from medledger.labels import Labelled

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.types import TxReceipt

    from medledger.chain import Chain

REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")


class InstitutionKind(Labelled):
    """Kinds of institution (the contract's ``InstitutionKind``)."""

    HOSPITAL = 1
    CLINIC = 2
    LABORATORY = 3
    INSURER = 4
    RESEARCH_SPONSOR = 5
    EMERGENCY_SERVICE = 6

    @classmethod
    def parse(cls, text: str) -> InstitutionKind:
        """Parse a command-line name."""
        return cls.lookup(text, "--kind", "kind")


class Status(IntEnum):
    """An institution's status (the contract's ``InstitutionStatus``)."""

    NONE = 0
    PENDING = 1
    VERIFIED = 2
    SUSPENDED = 3


class Role(IntEnum):
    """An account's role (the contract's ``Role``)."""

    NONE = 0
    PATIENT = 1
    INSTITUTION = 2
    PRACTITIONER = 3


@dataclass(frozen=True)
class Participant:
    """What the registry holds about one account."""

    address: str
    role: Role
    kind: InstitutionKind | None
    status: Status
    approvals: int
    threshold: int
    employer: str | None
    active: bool
    encryption_key: bytes | None

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-friendly view."""
        return {
            "address": self.address,
            "role": self.role.name.lower(),
            "kind": self.kind.label if self.kind else None,
            "status": self.status.name.lower(),
            "approvals": self.approvals,
            "threshold": self.threshold,
            "employer": self.employer,
            "active": self.active,
            "encryption_key": "0x" + self.encryption_key.hex() if self.encryption_key else None,
        }


def _registry(chain: Chain) -> Contract:
    return deployments.contract(chain, "ProviderRegistry")


def participant(chain: Chain, address: str) -> Participant:
    """Read an account's entry (role ``NONE`` for an unknown account)."""
    registry = _registry(chain)
    account = to_checksum_address(address)
    role, kind, status, approvals, _round, employer, active, _prefix = chain.call(
        "reading the registry", registry.functions.participant(account)
    )
    key = bytes(chain.call("reading the registry", registry.functions.encryptionKey(account)))
    threshold = chain.call("reading the registry", registry.functions.approvalThreshold())
    zero = "0x" + "00" * 20
    return Participant(
        address=account,
        role=Role(role),
        kind=InstitutionKind(kind) if kind else None,
        status=Status(status),
        approvals=int(approvals),
        threshold=int(threshold),
        employer=to_checksum_address(employer) if employer.lower() != zero else None,
        active=bool(active),
        encryption_key=key or None,
    )


def verified_institution_of(chain: Chain, account: str) -> str | None:
    """The verified institution ``account`` acts for (itself, or its employer), or None."""
    found = chain.call(
        "reading the registry", _registry(chain).functions.verifiedInstitutionOf(account)
    )
    return None if int(found, 16) == 0 else to_checksum_address(found)


def encryption_key(chain: Chain, address: str) -> bytes:
    """Return an account's published encryption key, or raise ``PatientNotFound``."""
    entry = participant(chain, address)
    if entry.encryption_key is None:
        raise PatientNotFound(entry.address)
    return entry.encryption_key


def apply_institution(
    chain: Chain, account: LocalAccount, kind: InstitutionKind, name: str
) -> TxReceipt:
    """Apply as an institution, publishing the account's own encryption key."""
    _require_no_role(chain, account.address)
    if not name.strip():
        raise ConfigurationError("--name", "an institution needs a name")
    key = crypto.public_key(account.key)
    return chain.transact(
        "applying as an institution",
        account,
        _registry(chain).functions.applyAsInstitution(int(kind), name, key),
    )


def approve_institution(chain: Chain, registrar: LocalAccount, institution: str) -> bool:
    """Cast a registrar's approval; return True when it verified (or reinstated) the institution."""
    entry = _require_institution(chain, institution)
    _require_registrar(chain, registrar.address)
    if entry.status not in (Status.PENDING, Status.SUSPENDED):
        raise PreconditionFailed(
            f"{entry.address} is {entry.status.name.lower()}: only pending or suspended "
            "institutions can be approved"
        )
    registry = _registry(chain)
    receipt = chain.transact(
        "approving the institution", registrar, registry.functions.approveInstitution(entry.address)
    )
    verified = registry.events.InstitutionVerified().process_receipt(receipt, errors=DISCARD)
    reinstated = registry.events.InstitutionReinstated().process_receipt(receipt, errors=DISCARD)
    return bool(verified or reinstated)


def suspend_institution(
    chain: Chain, registrar: LocalAccount, institution: str, reason: str
) -> TxReceipt:
    """Suspend a verified institution at once."""
    entry = _require_institution(chain, institution)
    _require_registrar(chain, registrar.address)
    if entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{entry.address} is {entry.status.name.lower()}, not verified")
    code = reason.encode()
    if len(code) > 32:
        raise ConfigurationError("--reason", "a reason code is at most 32 bytes")
    return chain.transact(
        "suspending the institution",
        registrar,
        _registry(chain).functions.suspendInstitution(entry.address, code.ljust(32, b"\0")),
    )


def add_practitioner(chain: Chain, institution: LocalAccount, practitioner: str) -> TxReceipt:
    """Add a practitioner to the caller's (verified) institution."""
    entry = _require_institution(chain, institution.address)
    if entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{entry.address} must be verified to add practitioners")
    _require_no_role(chain, practitioner)
    return chain.transact(
        "adding the practitioner",
        institution,
        _registry(chain).functions.addPractitioner(to_checksum_address(practitioner)),
    )


def remove_practitioner(chain: Chain, institution: LocalAccount, practitioner: str) -> TxReceipt:
    """Remove one of the caller's practitioners."""
    entry = participant(chain, practitioner)
    if (
        entry.role is not Role.PRACTITIONER
        or entry.employer != institution.address
        or not entry.active
    ):
        raise PreconditionFailed(f"{entry.address} is not an active practitioner of yours")
    return chain.transact(
        "removing the practitioner",
        institution,
        _registry(chain).functions.removePractitioner(entry.address),
    )


def publish_key(chain: Chain, account: LocalAccount) -> TxReceipt:
    """Publish (or rotate to) the account's own encryption key."""
    if participant(chain, account.address).role is Role.NONE:
        raise PreconditionFailed(f"{account.address} has no role in the registry")
    return chain.transact(
        "publishing the encryption key",
        account,
        _registry(chain).functions.publishEncryptionKey(crypto.public_key(account.key)),
    )


def register_patient(chain: Chain, account: LocalAccount) -> TxReceipt:
    """Register the account as a patient with its own encryption key."""
    _require_no_role(chain, account.address)
    return chain.transact(
        "registering the patient",
        account,
        _registry(chain).functions.registerPatient(crypto.public_key(account.key)),
    )


def _require_no_role(chain: Chain, address: str) -> None:
    entry = participant(chain, address)
    if entry.role is not Role.NONE:
        raise PreconditionFailed(
            f"{entry.address} is already registered as {entry.role.name.lower()}"
        )


def _require_institution(chain: Chain, address: str) -> Participant:
    entry = participant(chain, address)
    if entry.role is not Role.INSTITUTION:
        raise InstitutionNotFound(entry.address)
    return entry


def _require_registrar(chain: Chain, address: str) -> None:
    registry = _registry(chain)
    holds = chain.call(
        "reading roles", registry.functions.hasRole(REGISTRAR_ROLE, to_checksum_address(address))
    )
    if not holds:
        raise PreconditionFailed(f"{address} is not a registrar")
