"""A claim's decision in FHIR: the chain state as a :class:`medledger.fhir.Decision`, and the
``ClaimResponse`` (and ``ExplanationOfBenefit`` once paid) built from it by
:mod:`medledger.fhir` with the references of the decrypted claim record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger import consent, fhir
from medledger.claims.contract import manager
from medledger.claims.facts import claim_facts
from medledger.claims.history import Claim, claim_history, get_claim

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

_REASONED = ("denied", "information requested", "disputed", "escalated")


def decision_of(chain: Chain, claim: Claim, currency: str = "USD") -> fhir.Decision:
    """The claim's chain state as a :class:`medledger.fhir.Decision`."""
    reason = None
    for step in claim_history(chain, claim.id):
        if step.event in _REASONED:
            reason = step.detail
    return fhir.Decision(
        identifier=f"eip155:{chain.chain_id}/{manager(chain).address}/{claim.hex_id}",
        state=claim.state.label,
        billed=claim.billed,
        paid=claim.paid,
        deductible=claim.deductible_applied,
        submitted_at=claim.submitted_at,
        decided_at=claim.decided_at,
        currency=currency,
        reason=reason,
        automatic=claim.automatic,
    )


def fhir_documents(
    chain: Chain, store: BlockStore, reader: Signer, claim_id: int
) -> dict[str, bytes]:
    """The FHIR ``ClaimResponse`` (and ``ExplanationOfBenefit`` once paid) of a claim.

    The reader must be able to open the claim record (submitter, patient, or the consented
    insurer): the responses copy its patient, provider and insurer references.
    """
    claim = get_claim(chain, claim_id)
    body = consent.read(chain, store, reader, claim.claim_record, log=False)
    return documents_of(chain, claim, body)


def documents_of(chain: Chain, claim: Claim, body: bytes) -> dict[str, bytes]:
    """:func:`fhir_documents` of a claim whose claim record ``body`` is open."""
    facts = claim_facts(body, f"claim {claim.hex_id}")
    decision = decision_of(chain, claim, facts.currency)
    documents = {"ClaimResponse": fhir.claim_response(body, decision)}
    if claim.paid > 0:
        documents["ExplanationOfBenefit"] = fhir.explanation_of_benefit(body, decision)
    return documents
