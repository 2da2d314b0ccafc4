"""Client of the IdentityRegistry: a verified care institution attests that a patient address
belongs to a person it identified (with an expiry, revocable by the institution), and anyone
reads who attested whom and when. A trial site attests a participant's pseudonymous study
account the same way, committing to the identity link that ties it to an attested patient.

Modules: :mod:`~medledger.identity.model` (the attestation as read),
:mod:`~medledger.identity.attesting` (attest, revoke, the salted commitment),
:mod:`~medledger.identity.reading` (one institution's attestation, a patient's attestations),
:mod:`~medledger.identity.links` (a participant's identity link: study and record address are
one person's) and :mod:`~medledger.identity.pseudonyms` (attesting a study account, proving why).
"""

from medledger.identity.attesting import MAX_TERM, Opening, attest, commit, revoke
from medledger.identity.links import LINK_KIND, link_proof, verify_link
from medledger.identity.model import CONTRACT, Attestation
from medledger.identity.pseudonyms import attest_study_account, check_study_link
from medledger.identity.reading import attestation, attestations_of, is_attested

__all__ = [
    "CONTRACT",
    "LINK_KIND",
    "MAX_TERM",
    "Attestation",
    "Opening",
    "attest",
    "attest_study_account",
    "attestation",
    "attestations_of",
    "check_study_link",
    "commit",
    "is_attested",
    "link_proof",
    "revoke",
    "verify_link",
]
