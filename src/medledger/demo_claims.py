"""The demo's insurance part: a policy, an automatically settled claim and a reviewed one.

A clinic treats the patient and anchors the encounter; the patient consents to the insurer
reading the claim's evidence for payment; the clinic submits two FHIR Claims. The small one is
settled by the contract alone (code covered, within limits, deductible applied); the larger one
is reviewed by the insurer, who decrypts the evidence and approves it in part. The clinic
withdraws its payment, and each claim's path is printed from chain events with its gas.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from medledger import access, claims, records, registry
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.errors import MedLedgerError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

INSURER, RESOLVER = 10, 12
CPT = "http://www.ama-assn.org/go/cpt"
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
    patient_ref: str, encounter_id: str, lines: list[tuple[str, Decimal]], when: datetime
) -> bytes:
    """A FHIR R4 professional Claim with one item per (CPT code, amount)."""
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
            "created": when.date().isoformat(),
            "provider": {"display": "Riverside Clinic"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [
                {"sequence": 1, "focal": True, "coverage": {"display": "MedLedger policy"}}
            ],
            "item": items,
            "total": {"value": float(sum(a for _, a in lines)), "currency": "USD"},
        }
    )


def _json(resource: dict[str, Any]) -> bytes:
    return json.dumps(resource, indent=2).encode()


def run(
    chain: Chain,
    store: BlockStore,
    patient: LocalAccount,
    clinic: LocalAccount,
    verify: Any,
) -> None:
    """Print the insurance walk-through (``verify`` is the demo's institution verifier)."""
    say = click.echo
    insurer = dev_account(INSURER)
    kind = registry.InstitutionKind.INSURER
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

    for category in (Category.FINANCIAL, Category.ENCOUNTER):
        access.grant(
            chain,
            store,
            patient,
            patient.address,
            insurer.address,
            access.Scope(access.ScopeKind.CATEGORY, category=category),
            access.Purpose.PAYMENT,
            timedelta(days=90),
        )
    say(
        "  the patient consents: the insurer may read financial and encounter records, "
        "for payment, 90 days"
    )

    now = access.chain_now(chain)
    patient_ref = f"urn:medledger:patient:{patient.address}"
    visit = encounter(patient_ref, now)
    (visit_record,) = records.anchor(
        chain, store, clinic, patient.address, [records.Draft(visit, Category.ENCOUNTER)]
    )
    visit_id = json.loads(visit)["id"]
    say(f"  the clinic treats the patient and anchors the encounter {visit_record.hex_id[:18]}...")

    terms = claims.read_terms(chain, store, patient, policy)  # the patient hands them over
    started = time.perf_counter()
    small = claims.submit_claim(
        chain,
        store,
        clinic,
        policy.id,
        claim(patient_ref, visit_id, [("99213", Decimal(180))], now),
        evidence=[visit_record.id],
        terms=terms,
    )
    say(
        f"  claim {small.id}, billed {small.billed} for 99213: {small.state.label}"
        f"{' automatically' if small.automatic else ''}, {small.paid} credited "
        f"(deductible {small.deductible_applied} applied)"
    )

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
        f"  claim {big.id}, billed {big.billed} for 3 procedures: {big.state.label} "
        f"({big.review.label}); the policy would allow {allowed}"
    )
    _, evidence = claims.review(chain, store, insurer, big.id)
    from medledger import fhir

    say("  the insurer reviews: " + "; ".join(fhir.summary(e.body)[:50] for e in evidence))
    big = claims.approve(chain, insurer, big.id, Decimal(1_000))
    say(f"  the insurer approves claim {big.id} in part: {big.paid} of {allowed}")

    credit = claims.credit_of(chain, clinic.address)
    amount, receipt = claims.withdraw(chain, clinic)
    elapsed = time.perf_counter() - started
    say(
        f"  the clinic withdraws {amount} mUSD (credited {credit}); balance now "
        f"{claims.balance_of(chain, clinic.address)}"
    )
    if amount != small.paid + big.paid:
        raise MedLedgerError(f"the clinic withdrew {amount}, not {small.paid + big.paid}")

    small_steps = claims.claim_history(chain, small.id)
    auto_gas = (small_steps[0].gas_used or 0) + int(receipt["gasUsed"])  # one tx, two events
    say(
        f"  automatic settlement: {auto_gas:,} gas from submission to withdrawal "
        f"(submit {small_steps[0].gas_used:,} + withdraw {int(receipt['gasUsed']):,}; "
        f"the withdrawal also paid claim {big.id}); submission to payment {elapsed:.1f} s "
        "wall time for both claims"
    )
    say("  each claim's path, from chain events:")
    for shown in (small.id, big.id):
        for h in claims.claim_history(chain, shown):
            say(f"    claim {shown}  {h.event:22} {h.detail[:70]}  ({h.gas_used:,} gas)")
    documents = claims.fhir_documents(chain, store, clinic, small.id)
    response = json.loads(documents["ClaimResponse"])
    say(
        f"  FHIR: ClaimResponse outcome {response['outcome']!r}, payment "
        f"{response['payment']['amount']['value']} USD; "
        f"{'ExplanationOfBenefit issued' if 'ExplanationOfBenefit' in documents else 'no EOB'}"
    )
    say(
        f"  try: medledger claim show {big.id}   medledger claim show {small.id} --fhir "
        f"--account dev:4"
    )
