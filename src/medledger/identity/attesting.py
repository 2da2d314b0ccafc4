"""Attesting a patient's identity and revoking it, checked before anything is sent.

A commitment binds an attestation to what the institution checked (an identity document, its
own patient record) without putting any of it on chain: ``keccak256(salt || document)`` with a
random 32-byte salt, emitted with the attestation; the institution keeps the salt and the
document (the :class:`Opening`) and shows them on demand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from medledger import documents
from medledger.addresses import parse_address
from medledger.errors import ConfigurationError, PreconditionFailed
from medledger.identity.model import registry
from medledger.identity.reading import attestation, institution_acting_for
from medledger.keccak import keccak
from medledger.providers import require_patient

if TYPE_CHECKING:
    from collections.abc import Mapping

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.identity.model import Attestation

#: The longest an attestation may run (the contract's ``MAX_TERM``).
MAX_TERM = timedelta(days=5 * 365)
_OPENING_FIELDS = ("salt", "document_digest", "commitment")


@dataclass(frozen=True)
class Opening:
    """What opens a commitment: ``commitment == keccak256(salt || document digest)``."""

    salt: bytes
    document_digest: bytes
    commitment: bytes

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (what the institution keeps)."""
        data: dict[str, object] = documents.to_data(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "opening") -> Opening:
        """Read back what :meth:`as_dict` wrote (``where`` names the file in errors)."""
        try:
            fields = [bytes.fromhex(str(data[k]).removeprefix("0x")) for k in _OPENING_FIELDS]
        except (KeyError, ValueError):
            raise ConfigurationError(
                where, "is not a commitment's opening (salt, document_digest, commitment in hex)"
            ) from None
        if any(len(f) != 32 for f in fields):
            raise ConfigurationError(where, "an opening's salt and digests are 32 bytes each")
        return cls(*fields)

    def opens(self, commitment: bytes) -> bool:
        """True when this opening matches ``commitment``."""
        return keccak(self.salt + self.document_digest) == commitment == self.commitment


def commit(document: bytes, salt: bytes | None = None) -> Opening:
    """A salted commitment to ``document`` (a fresh random salt unless one is given)."""
    salt = os.urandom(32) if salt is None else salt
    if len(salt) != 32:
        raise ConfigurationError("salt", "must be 32 bytes")
    digest = keccak(document)
    return Opening(salt, digest, keccak(salt + digest))


def check_term(expires_in: timedelta) -> None:
    """Refuse a term the contract refuses (none, or longer than :data:`MAX_TERM`)."""
    if not timedelta(0) < expires_in <= MAX_TERM:
        raise ConfigurationError("--expires", "must be more than zero and at most 5 years")


def attest(
    chain: Chain,
    attester: Signer,
    patient: str,
    expires_in: timedelta = timedelta(days=365),
    commitment: bytes | None = None,
) -> Attestation:
    """Attest, for the care institution ``attester`` is or works for, that ``patient`` is a
    person it identified, for ``expires_in`` (at most five years)."""
    check_term(expires_in)
    if commitment is not None and len(commitment) != 32:
        raise ConfigurationError("--commitment-of", "a commitment is 32 bytes")
    patient = parse_address(patient)
    institution = institution_acting_for(chain, attester.address)
    require_patient(chain, patient)
    until = int((chain.now() + expires_in).timestamp())
    chain.transact(
        "attesting the patient",
        attester,
        registry(chain).functions.attest(patient, until, commitment or b"\0" * 32),
    )
    made = attestation(chain, patient, institution.address)
    assert made is not None  # the transaction above emitted it
    return made


def revoke(chain: Chain, revoker: Signer, patient: str) -> Attestation:
    """Revoke the attestation of ``patient`` by the institution ``revoker`` is or works for."""
    patient = parse_address(patient)
    institution = institution_acting_for(chain, revoker.address)
    current = attestation(chain, patient, institution.address)
    if current is None or current.revoked:
        raise PreconditionFailed(
            f"{institution.address} holds no attestation of {patient} to revoke"
        )
    chain.transact("revoking the attestation", revoker, registry(chain).functions.revoke(patient))
    revoked = attestation(chain, patient, institution.address)
    assert revoked is not None
    return revoked
