"""An identity attestation as the package reads it (the IdentityRegistry's slot, with the
times and the commitment its events carry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from medledger import documents
from medledger.chain import deployments

if TYPE_CHECKING:
    from datetime import datetime

    from medledger.chain import Chain
    from medledger.chain.contracts import Contract

CONTRACT = "IdentityRegistry"


@dataclass(frozen=True)
class Attestation:
    """One institution's attestation of one patient."""

    patient: str
    institution: str
    #: The institution's directory number (the writer number its records carry).
    number: int
    #: Who signed the attestation: the institution itself or one of its practitioners.
    attester: str
    attested_at: datetime
    expires_at: datetime
    revoked: bool
    #: True when it holds now: not revoked, not expired, the institution not suspended since.
    holds: bool
    #: The salted commitment emitted with it (the institution keeps the opening), or None.
    commitment: bytes | None = None
    revoked_at: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        data: dict[str, object] = documents.to_data(self)
        return data


def registry(chain: Chain) -> Contract:
    """The deployed IdentityRegistry."""
    return deployments.contract(chain, CONTRACT)
