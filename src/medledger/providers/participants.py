"""Who is who in the ProviderRegistry: roles, institution kinds and statuses, and reading one
account's entry.

Every participant's published encryption key is the compressed public key of its own
account, so any Ethereum account can read what is wrapped for it without extra key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medledger import documents
from medledger.addresses import parse_address
from medledger.chain import deployments
from medledger.errors import InstitutionNotFound, PatientNotFound, PreconditionFailed
from medledger.labels import Labelled

if TYPE_CHECKING:
    from medledger.chain import Chain
    from medledger.chain.contracts import Contract

CARE_KINDS = frozenset({1, 2, 3, 6})  # hospital, clinic, laboratory, emergency service


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
    number: int
    encryption_key: bytes | None

    @property
    def is_care_provider(self) -> bool:
        """True for hospitals, clinics, laboratories and emergency services."""
        return self.kind is not None and int(self.kind) in CARE_KINDS

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (:func:`medledger.documents.to_data`; no number is None)."""
        data: dict[str, object] = documents.to_data(self)
        data["number"] = self.number or None
        return data


def registry(chain: Chain) -> Contract:
    """The deployed ProviderRegistry (for the package's modules)."""
    return deployments.contract(chain, "ProviderRegistry")


def participant(chain: Chain, address: str) -> Participant:
    """Read an account's entry (role ``NONE`` for an unknown account)."""
    contract = registry(chain)
    account = parse_address(address)
    role, kind, status, _prefix, _round, employer, number = chain.call(
        "reading the registry", contract.functions.participant(account)
    )
    key = bytes(chain.call("reading the registry", contract.functions.encryptionKey(account)))
    threshold = chain.call("reading the registry", contract.functions.approvalThreshold())
    approvals = (
        chain.call("reading the registry", contract.functions.approvalsOf(account))
        if role == Role.INSTITUTION
        else 0
    )
    zero = "0x" + "00" * 20
    return Participant(
        address=account,
        role=Role(role),
        kind=InstitutionKind(kind) if kind else None,
        status=Status(status),
        approvals=int(approvals),
        threshold=int(threshold),
        employer=to_checksum_address(employer) if employer.lower() != zero else None,
        number=int(number),
        encryption_key=key or None,
    )


def verified_institution_of(chain: Chain, account: str) -> str | None:
    """The verified institution ``account`` acts for (itself, or its employer), or None."""
    found = chain.call(
        "reading the registry", registry(chain).functions.verifiedInstitutionOf(account)
    )
    return None if int(found, 16) == 0 else to_checksum_address(found)


def encryption_key(chain: Chain, address: str) -> bytes:
    """Return an account's published encryption key, or raise ``PatientNotFound`` (for a
    registered patient: ``PreconditionFailed``, its key was cleared by a recovery)."""
    entry = participant(chain, address)
    if entry.encryption_key is None:
        if entry.role is Role.PATIENT:  # registration takes a key: only a recovery clears it
            raise PreconditionFailed(
                f"patient {entry.address} was recovered to a new key that has not published "
                "its encryption key yet: the new key runs `medledger publish-key` first"
            )
        raise PatientNotFound(entry.address)
    return entry.encryption_key


def chain_time(chain: Chain) -> int:
    """The latest block's timestamp in seconds (what the contracts compare times with)."""
    return int(chain.now().timestamp())


def require_no_role(chain: Chain, address: str) -> None:
    """Raise unless ``address`` holds no role yet (for the package's modules)."""
    entry = participant(chain, address)
    if entry.role is not Role.NONE:
        raise PreconditionFailed(
            f"{entry.address} is already registered as {entry.role.name.lower()}"
        )


def require_institution(chain: Chain, address: str) -> Participant:
    """The entry of an institution, or ``InstitutionNotFound`` (for the package's modules)."""
    entry = participant(chain, address)
    if entry.role is not Role.INSTITUTION:
        raise InstitutionNotFound(entry.address)
    return entry
