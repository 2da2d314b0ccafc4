"""Attesting a trial participant's pseudonymous study account, and proving on demand why.

The site that identified a person (it attests their patient address: :func:`attest`) attests
the study account that their identity link (:func:`~medledger.identity.links.link_proof`) ties
to that address. On chain the study account stays unrelated to the patient address: the
attestation carries only a salted commitment to the link, whose opening the site keeps and
shows when asked (:func:`check_study_link`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from medledger import providers
from medledger.addresses import parse_address
from medledger.chain import deployments
from medledger.errors import IntegrityError, PreconditionFailed
from medledger.identity.attesting import check_term, commit
from medledger.identity.links import TRIAL_REGISTRY, canonical_link, verify_link
from medledger.identity.model import registry
from medledger.identity.reading import (
    attestation,
    attestations_of,
    institution_acting_for,
    is_attested,
)
from medledger.keccak import keccak

if TYPE_CHECKING:
    from collections.abc import Mapping

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.identity.attesting import Opening
    from medledger.identity.model import Attestation


def attest_study_account(
    chain: Chain,
    attester: Signer,
    link: Mapping[str, Any],
    expires_in: timedelta = timedelta(days=365),
) -> tuple[Attestation, Opening]:
    """Attest, for the care institution ``attester`` is or works for, the study account that
    ``link`` ties to a patient address the institution attests now. Returns the attestation and
    the opening of its commitment to the link (the institution keeps it)."""
    check_term(expires_in)
    account, record = _checked_link(chain, link, PreconditionFailed)
    institution = institution_acting_for(chain, attester.address)
    if not is_attested(chain, record, institution.number):
        raise PreconditionFailed(
            f"{institution.address} does not attest {record}, the link's record address, now: "
            f"identify the person and attest it first (medledger patient attest --patient {record})"
        )
    entry = providers.participant(chain, account)
    if entry.role is not providers.Role.NONE or providers.patient_of(chain, account) is not None:
        raise PreconditionFailed(
            f"{account} is not a pseudonymous study account: it has a role in the directory or "
            "controls a patient (a participant uses a fresh account for each study)"
        )
    opening = commit(canonical_link(link))
    until = int((chain.now() + expires_in).timestamp())
    chain.transact(
        "attesting the study account",
        attester,
        registry(chain).functions.attestPseudonym(account, until, opening.commitment),
    )
    made = attestation(chain, account, institution.address)
    assert made is not None  # the transaction above emitted it
    return made, opening


def check_study_link(chain: Chain, link: Mapping[str, Any], opening: Opening) -> Attestation:
    """Prove why a study account is attested: ``opening`` opens the commitment of the latest
    attestation of the link's study account by some institution, and that institution attests
    (or once attested) the link's record address. Returns that attestation (which may have been
    revoked or expired since: see its ``holds``); ``IntegrityError`` naming what failed."""
    account, record = _checked_link(chain, link, IntegrityError)
    if keccak(canonical_link(link)) != opening.document_digest:
        raise IntegrityError("the opening is not of this link (its document digest differs)")
    found = attestations_of(chain, account)
    if not found:
        raise IntegrityError(f"no institution has attested the study account {account}")
    matching = [a for a in found if a.commitment is not None and opening.opens(a.commitment)]
    if not matching:
        raise IntegrityError(
            f"the opening opens no institution's latest attestation of {account} (a wrong or "
            "altered opening, or the account was attested again since)"
        )
    made = matching[-1]
    if attestation(chain, record, made.institution) is None:
        raise IntegrityError(
            f"{made.institution} attests {account} but never attested {record}, the link's "
            "record address"
        )
    return made


def _checked_link(
    chain: Chain, link: Mapping[str, Any], error: type[PreconditionFailed | IntegrityError]
) -> tuple[str, str]:
    """The study account and record address of a link that verifies and is for this chain's
    TrialRegistry; ``error`` otherwise."""
    if not verify_link(link):
        raise error("not a valid identity link: a signature or its statement does not verify")
    here = deployments.contract(chain, TRIAL_REGISTRY).address
    named = parse_address(str(link["trial_registry"]))
    if int(link["chain_id"]) != chain.chain_id or named != here:
        raise error(
            f"the identity link is for TrialRegistry {named} on chain "
            f"{link['chain_id']}, not this deployment's ({here} on chain {chain.chain_id})"
        )
    return parse_address(str(link["participant"])), parse_address(str(link["record_address"]))
