"""A claim's records and the insurer's consent to read them: evidence must be the insured
patient's, and the patient must have let the policy's insurer read each record for payment
(checked here before anything is written; the contract checks it again at submission)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from medledger import consent, records
from medledger.categories import Category
from medledger.errors import PreconditionFailed

if TYPE_CHECKING:
    from collections.abc import Iterable

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.claims.policy import Policy
    from medledger.ipfs.blockstore import BlockStore

PATIENT_GRANT = timedelta(days=90)
"""How long the record grants a patient makes for a claim it submits last."""


def require_patients(
    chain: Chain, store: BlockStore, policy: Policy, record_ids: Iterable[bytes]
) -> None:
    """Refuse evidence that is another patient's record."""
    for record_id in record_ids:
        found = records.get(chain, record_id, store)
        if found.patient != policy.patient:
            raise PreconditionFailed(f"evidence {found.hex_id} is another patient's record")


def _payment_allowed(chain: Chain, policy: Policy, record_id: bytes) -> bool:
    allowed = chain.call(
        "reading consent",
        consent.consent_contract(chain).functions.hasAccessFor(
            policy.insurer, record_id, int(consent.Purpose.PAYMENT)
        ),
    )
    return bool(allowed)


def grant_payment(
    chain: Chain, store: BlockStore, patient: Signer, policy: Policy, ids: list[bytes]
) -> None:
    """The patient consents, record by record, to the insurer reading the claim's evidence."""
    for record_id in ids:
        if _payment_allowed(chain, policy, record_id):
            continue
        consent.grant(
            chain,
            store,
            patient,
            policy.patient,
            policy.insurer,
            consent.Scope(consent.ScopeKind.RECORD, record=record_id),
            consent.Purpose.PAYMENT,
            PATIENT_GRANT,
        )


def require_financial_consent(chain: Chain, policy: Policy) -> None:
    """The claim record does not exist yet: only a live ``payment`` grant of the financial
    category (or of all records) can cover it."""
    now = chain.now()
    wide = (
        consent.Scope(consent.ScopeKind.ALL),
        consent.Scope(consent.ScopeKind.CATEGORY, category=Category.FINANCIAL),
    )
    for state in consent.grants(chain, policy.patient, policy.insurer, wide):
        covers = state.scope.kind is consent.ScopeKind.ALL or (
            state.scope.kind is consent.ScopeKind.CATEGORY
            and state.scope.category is Category.FINANCIAL
        )
        if covers and state.purpose is consent.Purpose.PAYMENT and state.live(now):
            return
    raise PreconditionFailed(
        f"the patient has not consented to insurer {policy.insurer} reading claims for payment: "
        f"the patient runs `medledger grant {policy.insurer} --purpose payment --scope "
        "category:financial` (or signs it with --sign-only and gives the file to the provider)"
    )


def require_consent(chain: Chain, policy: Policy, ids: list[bytes]) -> None:
    """Refuse records the insurer may not read for payment."""
    for record_id in ids:
        if not _payment_allowed(chain, policy, record_id):
            raise PreconditionFailed(
                f"the patient has not consented to insurer {policy.insurer} reading record "
                f"0x{record_id.hex()} for payment: the patient runs `medledger grant "
                f"{policy.insurer} --purpose payment --scope category:financial` (and a scope "
                "covering the evidence), or signs one with --sign-only"
            )
