"""Client of the IdentityRegistry: a verified care institution attests that a patient address
belongs to a person it identified (with an expiry, revocable by the institution), and anyone
reads who attested whom and when.

Modules: :mod:`~medledger.identity.model` (the attestation as read),
:mod:`~medledger.identity.attesting` (attest, revoke, the salted commitment) and
:mod:`~medledger.identity.reading` (one institution's attestation, a patient's attestations).
"""

from medledger.identity.attesting import MAX_TERM, Opening, attest, commit, revoke
from medledger.identity.model import CONTRACT, Attestation
from medledger.identity.reading import attestation, attestations_of, is_attested

__all__ = [
    "CONTRACT",
    "MAX_TERM",
    "Attestation",
    "Opening",
    "attest",
    "attestation",
    "attestations_of",
    "commit",
    "is_attested",
    "revoke",
]
