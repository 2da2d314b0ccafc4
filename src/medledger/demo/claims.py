"""The demo's insurance part: a policy, an automatically settled claim and a reviewed one.

A clinic treats the patient (who opened a care relationship with it in step 3) and anchors the
encounter; the patient consents to the insurer reading the claim's evidence for payment; the
clinic submits two FHIR Claims. The small one is settled by the contract alone (code covered,
within limits, deductible applied) and paid to the clinic in the same transaction; submitting
the same Claim again is refused as a duplicate before anything is sent. The larger one is
reviewed by the insurer, who decrypts the evidence and approves it in part: that decision is
credited and the clinic withdraws it. Each claim's path is printed from chain events with its
gas.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from medledger import claims, consent, providers, records
from medledger.accounts import dev_account
from medledger.errors import DuplicateClaim, MedLedgerError

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

INSURER, RESOLVER = 10, 12
CPT = "http://www.ama-assn.org/go/cpt"
CLAIM_SYSTEM = "https://riverside-clinic.example/claims"
"""The system of the demo clinic's claim identifiers (``Claim.identifier``)."""
COVERED = {
    "99213": "Office visit, established patient, low complexity",
    "99214": "Office visit, established patient, moderate complexity",
    "93000": "Electrocardiogram, 12 leads, with interpretation",
    "71046": "Chest X-ray, 2 views",
    "80053": "Comprehensive metabolic panel",
}


def encounter(patient_ref: str, when: datetime) -> bytes:
    """A FHIR R4 ambulatory Encounter."""
    return _json(
        {
            "resourceType": "Encounter",
            "id": str(uuid.uuid4()),
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"coding": [{"system": CPT, "code": "99213", "display": COVERED["99213"]}]}],
            "subject": {"reference": patient_ref},
            "period": {
                "start": when.isoformat(),
                "end": (when + timedelta(minutes=30)).isoformat(),
            },
        }
    )


def claim(
    patient_ref: str,
    encounter_id: str,
    lines: list[tuple[str, Decimal]],
    when: datetime,
    identifier: str | None = None,
    length: timedelta = timedelta(minutes=30),
) -> bytes:
    """A FHIR R4 professional Claim with one item per (CPT code, amount), for care given from
    ``when`` for ``length`` (its ``billablePeriod``), identified by the clinic as
    ``identifier`` (a fresh one when None; ``""`` for none)."""
    if identifier is None:
        identifier = f"RC-{uuid.uuid4().hex[:12]}"
    items = [
        {
            "sequence": i + 1,
            "encounter": [{"reference": f"Encounter/{encounter_id}"}],
            "productOrService": {
                "coding": [{"system": CPT, "code": code, "display": COVERED.get(code, code)}]
            },
            "net": {"value": float(amount), "currency": "USD"},
        }
        for i, (code, amount) in enumerate(lines)
    ]
    return _json(
        {
            "resourceType": "Claim",
            "id": str(uuid.uuid4()),
            "status": "active",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                        "code": "professional",
                    }
                ]
            },
            "use": "claim",
            "patient": {"reference": patient_ref},
            "billablePeriod": {
                "start": when.isoformat(),
                "end": (when + length).isoformat(),
            },
            "created": when.date().isoformat(),
            "provider": {"display": "Riverside Clinic"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [
                {"sequence": 1, "focal": True, "coverage": {"display": "MedLedger policy"}}
            ],
            "item": items,
            "total": {"value": float(sum(a for _, a in lines)), "currency": "USD"},
        }
        | ({"identifier": [{"system": CLAIM_SYSTEM, "value": identifier}]} if identifier else {})
    )


def _json(resource: dict[str, Any]) -> bytes:
    return json.dumps(resource, indent=2).encode()


def run(
    chain: Chain,
    store: BlockStore,
    patient: Signer,
    clinic: Signer,
    verify: Any,
) -> None:
    """Print the insurance walk-through (``verify`` is the demo's institution verifier)."""
    say = click.echo
    insurer = dev_account(INSURER)
    kind = providers.InstitutionKind.INSURER
    say(f"  Acme Health Insurance: {verify(chain, insurer, kind, 'Acme Health Insurance')}")
    manager = claims.manager(chain)
    resolver = dev_account(RESOLVER)
    if not chain.call(
        "reading roles", manager.functions.hasRole(claims.RESOLVER_ROLE, resolver.address)
    ):
        claims.add_resolver(chain, dev_account(0), resolver.address)

    policy = claims.issue_policy(
        chain,
        store,
        insurer,
        patient.address,
        coverage=Decimal("0.8"),
        deductible=Decimal(50),
        annual_limit=Decimal(10_000),
        auto_settle_limit=Decimal(500),
        codes=[claims.Code(CPT, c) for c in COVERED],
        plan="Acme Silver",
    )
    policy = claims.fund_policy(chain, insurer, policy.id, Decimal(20_000))
    say(
        f"  policy {policy.id}: 80 % after a {policy.deductible} deductible, limit "
        f"{policy.annual_limit}, automatic settlement up to {policy.auto_settle_limit}; "
        f"{len(COVERED)} covered codes as a salted Merkle root; pool funded {policy.funded} mUSD"
    )

    for category in (records.Category.FINANCIAL, records.Category.ENCOUNTER):
        consent.grant(
            chain,
            store,
            patient,
            patient.address,
            insurer.address,
            consent.Scope(consent.ScopeKind.CATEGORY, category=category),
            consent.Purpose.PAYMENT,
            timedelta(days=90),
        )
    say(
        "  the patient consents: the insurer may read financial and encounter records, "
        "for payment, 90 days"
    )

    now = chain.now()
    patient_ref = f"urn:medledger:patient:{patient.address}"
    visit = encounter(patient_ref, now)
    (visit_record,) = records.anchor(
        chain, store, clinic, patient.address, [records.Draft(visit, records.Category.ENCOUNTER)],
        readers=consent.readers_for(chain),  # the insurer's grant covers the encounter
    )  # fmt: skip
    visit_id = json.loads(visit)["id"]
    say(f"  the clinic treats the patient and anchors the encounter {visit_record.hex_id[:18]}...")

    terms = claims.read_terms(chain, store, patient, policy)  # the patient hands them over
    before = claims.balance_of(chain, clinic.address)
    started = time.perf_counter()
    small_body = claim(patient_ref, visit_id, [("99213", Decimal(180))], now)
    small = claims.submit_claim(
        chain, store, clinic, policy.id, small_body, evidence=[visit_record.id], terms=terms
    )
    paid_at_once = claims.balance_of(chain, clinic.address) - before
    elapsed = time.perf_counter() - started
    say(
        f"  claim {_short(small)}, billed {small.billed} for 99213: {small.state.label}"
        f"{' automatically' if small.automatic else ''}, {paid_at_once} paid to the clinic at "
        f"once (deductible {small.deductible_applied} applied)"
    )
    if not small.automatic or paid_at_once != small.paid:
        raise MedLedgerError(f"claim {small.hex_id} was not settled and paid at once")
    again = claims.submit_claim(
        chain, store, clinic, policy.id, small_body, evidence=[visit_record.id], terms=terms
    )
    if again.id != small.id:
        raise MedLedgerError("the same Claim made a second claim")
    say(f"  the same Claim submitted again (a re-run): it is {_short(small)}, nothing is written")
    corrected = claim(patient_ref, visit_id, [("99213", Decimal(190))], now)
    try:
        claims.submit_claim(
            chain, store, clinic, policy.id, corrected, evidence=[visit_record.id], terms=terms
        )
    except DuplicateClaim as exc:
        if exc.earlier != small.id:
            raise
        say(f"  a corrected invoice for the same care: refused before sending ({_short(small)} "
            "paid it)")  # fmt: skip
    else:
        raise MedLedgerError("the same care was claimed twice")

    big = claims.submit_claim(
        chain,
        store,
        clinic,
        policy.id,
        claim(
            patient_ref,
            visit_id,
            [("99214", Decimal(250)), ("93000", Decimal(200)), ("71046", Decimal(1_000))],
            now,
        ),
        evidence=[visit_record.id],
        terms=terms,
    )
    allowed, _ = claims.allowed_amount(chain, big.id)
    say(
        f"  claim {_short(big)}, billed {big.billed} for 3 procedures: {big.state.label} "
        f"({big.review.label}); the policy would allow {allowed}"
    )
    _, evidence = claims.review(chain, store, insurer, big.id)
    from medledger import fhir

    say("  the insurer reviews: " + "; ".join(fhir.summary(e.body)[:50] for e in evidence))
    big = claims.approve(chain, insurer, big.id, Decimal(1_000))
    say(f"  the insurer approves claim {_short(big)} in part: {big.paid} of {allowed}, credited")

    credit = claims.credit_of(chain, clinic.address)
    amount, receipt = claims.withdraw(chain, clinic)
    say(
        f"  the clinic withdraws {amount} mUSD (credited {credit}); balance now "
        f"{claims.balance_of(chain, clinic.address)}"
    )
    if amount != credit or credit < big.paid:
        raise MedLedgerError(f"the clinic withdrew {amount} of {credit}, less than {big.paid}")

    small_steps = claims.claim_history(chain, small.id)
    say(
        f"  automatic settlement: {small_steps[0].gas_used:,} gas from submission to payment, "
        f"one transaction ({elapsed:.1f} s wall time); the reviewed claim's withdrawal "
        f"{receipt.gas_used:,} gas"
    )
    say("  each claim's path, from chain events:")
    for shown in (small, big):
        for h in claims.claim_history(chain, shown.id):
            detail = h.detail.replace(clinic.address, "the clinic")
            say(f"    claim {_short(shown)}  {h.event:10} {detail}  ({h.gas_used:,} gas)")
    documents = claims.fhir_documents(chain, store, clinic, small.id)
    response = json.loads(documents["ClaimResponse"])
    say(
        f"  FHIR: ClaimResponse outcome {response['outcome']!r}, payment "
        f"{response['payment']['amount']['value']} USD; "
        f"{'ExplanationOfBenefit issued' if 'ExplanationOfBenefit' in documents else 'no EOB'}"
    )
    say(f"  try: medledger claim show {big.hex_id}")
    say(f"       medledger claim show {small.hex_id} --fhir --account dev:4")


def _short(shown: claims.Claim) -> str:
    return shown.hex_id[:10] + "..."
