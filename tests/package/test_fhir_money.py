"""Scenarios for insurance over FHIR, as the FHIR server uses them: a policy as a ``Coverage``,
a ``Claim`` resource submitted (paid at once under the automatic rule, or left for review),
its ``ClaimResponse`` and, once paid, its ``ExplanationOfBenefit``; bad Claims refused before
anything is written; a retried POST.

The roles and the policy are test_claims.py's fixtures (imported): the clinic (dev:4) treats
the patient (dev:5) under a care relationship, Acme (dev:10) insures them with an 80 % policy
(deductible 50, automatic settlement up to 500). Every resource built is checked with the
package's validator (``fhir.resources`` R4B models).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import test_claims

from medledger import claims, consent, providers, records
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.demo import claims as demo_claims
from medledger.errors import ConfigurationError, FhirStructureError, PreconditionFailed
from medledger.fhir._validate import problems_of

DAY = 24 * 3600
advance = test_claims.advance
# test_claims.py's fixtures, used here as they are
insurer = test_claims.insurer
provider = test_claims.provider
store = test_claims.store
policy = test_claims.policy
terms = test_claims.terms
payment_consent = test_claims.payment_consent
visit = test_claims.visit
claim_body = test_claims.claim_body


def valid(resource: dict) -> dict:
    """The resource, after the package's validator found no problem in it."""
    assert problems_of(resource, resource["resourceType"], None) == []
    return resource


def numbers(value: object) -> list[float]:
    """Every number in a JSON value."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


@pytest.fixture
def fhir_claim(claim_body, policy, registered_patient, visit):
    """Factory: a FHIR Claim of (code, amount) lines as an EHR posts it to the server: the
    patient, the policy's Coverage and the visit as the server serves them."""

    def make(*lines: tuple[str, int]) -> dict:
        resource = json.loads(claim_body(*lines))
        resource["patient"] = {"reference": f"Patient/{registered_patient.address}"}
        resource["insurance"] = [
            {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{policy.id}"}}
        ]
        for item in resource["item"]:
            item["encounter"] = [{"reference": f"Encounter/{visit.id.hex()}"}]
        return resource

    return make


@pytest.fixture
def post(chain, store, provider, terms, payment_consent):
    """Factory: the clinic posts a FHIR Claim (with the terms the patient gave it)."""
    return lambda resource: claims.submit_fhir_claim(chain, store, provider, resource, terms)


@pytest.fixture
def other_patients_record(chain, store, care, provider):
    """A record the clinic anchored for another patient (dev:7) in its care."""
    other = dev_account(7)
    providers.register_patient(chain, other)
    care(other, provider)
    body = demo_claims.encounter("Patient/p2", chain.now())
    (record,) = records.anchor(
        chain, store, provider, other.address, [records.Draft(body, Category.ENCOUNTER)],
        readers=consent.readers_for(chain),
    )  # fmt: skip
    return record


# ---------------------------------------------------------------------------- Coverage


def test_a_policy_is_a_valid_coverage_with_its_terms_and_nothing_of_its_use(
    chain, policy, insurer, registered_patient, post, fhir_claim
):
    post(fhir_claim(("99213", 180)))  # paid: the policy's use must not show
    coverage = valid(claims.coverage_resource(chain, claims.get_policy(chain, policy.id)))
    assert coverage["id"] == str(policy.id) and coverage["status"] == "active"
    (identifier,) = coverage["identifier"]
    assert identifier == {
        "system": "urn:medledger:policy",
        "value": f"eip155:{chain.chain_id}/{claims.manager(chain).address}/{policy.id}",
    }
    assert coverage["beneficiary"] == {"reference": f"Patient/{registered_patient.address}"}
    assert coverage["payor"] == [
        {
            "type": "Organization",
            "identifier": {"system": "urn:medledger:institution", "value": insurer.address},
        }
    ]
    assert coverage["period"] == {
        "start": policy.valid_from.isoformat(), "end": policy.valid_until.isoformat(),
    }  # fmt: skip
    costs = {c["type"]["coding"][0]["code"]: c for c in coverage["costToBeneficiary"]}
    assert costs["deductible"]["valueMoney"] == {"value": 50.0}
    assert costs["copaypct"]["valueQuantity"]["value"] == 20.0  # 80 % covered
    limits = {e["url"]: e["valueMoney"]["value"] for e in coverage["extension"]}
    assert limits == {
        "urn:medledger:fhir:annual-limit": 2_000.0, "urn:medledger:fhir:auto-settle-limit": 500.0,
    }  # fmt: skip
    assert not {104.0, 4_896.0, 5_000.0} & set(numbers(coverage))  # paid, pool, funded: no


def test_coverages_are_found_by_patient_and_insurer(
    chain, policy, insurer, registered_patient, stranger
):
    (mine,) = claims.coverages(chain, patient=registered_patient.address)
    assert mine["id"] == str(policy.id)
    assert [c["id"] for c in claims.coverages(chain, insurer=insurer.address)] == [str(policy.id)]
    assert claims.coverages(chain, patient=stranger.address) == []
    assert [c["id"] for c in claims.coverages(chain)] == [str(policy.id)]


def test_a_policy_whose_pool_was_taken_back_is_cancelled(chain, policy, insurer):
    advance(chain, 367 * DAY)  # the term is over: still an active resource, its period past
    assert claims.coverage_resource(chain, policy)["status"] == "active"
    claims.reclaim_pool(chain, insurer, policy.id)
    assert valid(claims.coverage_resource(chain, policy))["status"] == "cancelled"


@pytest.mark.parametrize(
    "coverage",
    [
        {"reference": "Coverage/{id}"},
        {"reference": "http://127.0.0.1:8080/fhir/Coverage/{id}"},
        {"identifier": {"system": "urn:medledger:policy", "value": "{value}"}},
        {"identifier": {"system": "urn:medledger:policy", "value": "{id}"}},
    ],
    ids=["relative", "absolute", "identifier", "identifier-number"],
)
def test_a_coverage_reference_names_its_policy(chain, policy, coverage):
    value = claims.coverage_resource(chain, policy)["identifier"][0]["value"]
    text = json.dumps(coverage).replace("{id}", str(policy.id)).replace("{value}", value)
    named = json.loads(text)
    assert claims.policy_of(chain, named, "insurance[0].coverage") == policy


# ---------------------------------------------------------------------------- Claim


def test_a_fhir_claim_under_the_automatic_limit_is_paid_at_once_with_its_eob(
    chain, store, post, fhir_claim, provider, policy, registered_patient, insurer, visit
):
    claim, response = post(fhir_claim(("99213", 180)))
    assert claim.state is claims.ClaimState.APPROVED and claim.paid == Decimal(104)
    assert claim.evidence == (visit.id,)
    valid(response)
    assert response["id"] == claim.claim_record.hex() == claims.fhir_claim_id(claim.id)
    assert response["outcome"] == "complete" and response["payment"]["amount"]["value"] == 104.0
    assert response["request"] == {"reference": f"Claim/{claim.claim_record.hex()}"}
    assert response["patient"] == {"reference": f"Patient/{registered_patient.address}"}
    assert response["insurer"]["identifier"]["value"] == insurer.address
    assert response["insurance"][0]["coverage"] == {"reference": f"Coverage/{policy.id}"}
    again, eob = claims.claim_views(chain, store, provider, claim.id)
    assert again == response
    assert eob is not None
    valid(eob)
    assert eob["id"] == response["id"]
    assert eob["claimResponse"] == {"reference": f"ClaimResponse/{response['id']}"}
    totals = {t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in eob["total"]}
    assert totals == {"submitted": 180.0, "deductible": 50.0, "benefit": 104.0}
    # The anchored Claim is the clinic's Financial record of the patient, without the client id.
    record = records.get(chain, claim.claim_record)
    assert (record.patient, record.category) == (registered_patient.address, Category.FINANCIAL)
    body = json.loads(consent.read(chain, store, provider, claim.claim_record, log=False))
    assert "id" not in body and body["insurance"][0]["coverage"]["reference"] == "Coverage/1"


def test_a_fhir_claim_above_the_automatic_limit_waits_for_review_and_has_an_eob_once_paid(
    chain, store, post, fhir_claim, provider, insurer
):
    claim, response = post(fhir_claim(("99214", 250), ("71046", 1_000)))
    assert claim.state is claims.ClaimState.SUBMITTED
    assert valid(response)["outcome"] == "queued" and "payment" not in response
    assert claims.claim_views(chain, store, provider, claim.id)[1] is None  # nothing paid yet
    claims.approve(chain, insurer, claim.id)
    response, eob = claims.claim_views(chain, store, insurer, claim.id)
    assert valid(response)["outcome"] == "complete"
    assert eob is not None and valid(eob)["payment"]["amount"]["value"] == 960.0  # (1250-50)*.8


def test_a_retried_post_answers_the_first_claim_and_writes_nothing(
    chain, post, fhir_claim, provider, registered_patient
):
    resource = fhir_claim(("99214", 900))
    first, response = post(resource)
    head = chain.w3.eth.block_number
    anchored = len(records.for_patient(chain, registered_patient.address))
    # the same Claim again, its keys in another order and with a client id the server ignores
    retried = {**dict(reversed(resource.items())), "id": "client-side-id"}
    again, answer = post(retried)
    assert (again.id, answer) == (first.id, response)
    assert chain.w3.eth.block_number == head
    assert len(records.for_patient(chain, registered_patient.address)) == anchored
    assert [c.id for c in claims.claims(chain)] == [first.id]


def _without(field: str):
    return lambda claim, ctx: claim.pop(field)


def _set(path: str, value):
    def change(claim, ctx):
        *parents, last = path.split(".")
        target = claim
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = json.loads(json.dumps(value).replace("{other}", ctx["other"]))

    return change


BAD_CLAIMS = [
    (_without("insurance"), FhirStructureError, "has no insurance[].coverage naming the policy"),
    (
        _set("insurance.0.coverage", {"display": "Acme gold"}),
        FhirStructureError,
        "insurance[0].coverage does not name a MedLedger policy",
    ),
    (
        _set("insurance.0.coverage", {"reference": "Coverage/99"}),
        FhirStructureError,
        "Coverage/99: policy 99 is not issued on this chain",
    ),
    (
        _set("item.0.encounter", [{"reference": "Encounter/e1"}]),
        FhirStructureError,
        "item[0].encounter[0] 'Encounter/e1' does not name a MedLedger record",
    ),
    (
        _set("item.0.encounter", [{"reference": "Encounter/" + "ab" * 32}]),
        FhirStructureError,
        f"item[0].encounter[0]: record 0x{'ab' * 32} is not anchored on this chain",
    ),
    (
        _set(
            "supportingInfo",
            [
                {
                    "sequence": 1,
                    "category": {"text": "visit"},
                    "valueReference": {"reference": "Encounter/{other}"},
                }
            ],
        ),
        PreconditionFailed,
        "supportingInfo[0].valueReference: record 0x{other} is another patient's",
    ),
    (
        lambda claim, ctx: [item.pop("encounter") for item in claim["item"]],
        FhirStructureError,
        "names no evidence",
    ),
    (
        _set("patient", {"reference": "Patient/" + dev_account(9).address}),
        PreconditionFailed,
        f"patient {dev_account(9).address} is not the insured of policy",
    ),
    (_set("patient", {"reference": "Patient/p1"}), FhirStructureError, "patient must be Patient/"),
    (
        _set("payee", {"type": {"coding": [{"code": "other"}]}}),
        FhirStructureError,
        "payee.type must be subscriber",
    ),
    (
        _set("total.value", 999),
        FhirStructureError,
        "nets add up to 180.00 USD but the total is 999.00",
    ),
]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    BAD_CLAIMS,
    ids=[
        "no-insurance", "coverage-not-a-policy", "unknown-policy", "evidence-not-a-record-form",
        "evidence-not-anchored", "another-patients-evidence", "no-evidence", "another-patient",
        "patient-not-an-address", "payee-other", "total-does-not-add-up",
    ],
)  # fmt: skip
def test_a_bad_claim_is_refused_in_one_line_before_anything_is_written(
    chain, post, fhir_claim, provider, other_patients_record, change, error, message
):
    other = other_patients_record.id.hex()
    resource = fhir_claim(("99213", 180))
    change(resource, {"other": other})
    head, nonce = chain.w3.eth.block_number, chain.w3.eth.get_transaction_count(provider.address)
    with pytest.raises(error) as refused:
        post(resource)
    assert message.replace("{other}", other) in str(refused.value)
    assert "\n" not in str(refused.value)
    assert chain.w3.eth.block_number == head
    assert chain.w3.eth.get_transaction_count(provider.address) == nonce
    assert claims.claims(chain) == []


def test_a_claim_paid_to_the_patient_says_so_in_its_payee(chain, post, fhir_claim):
    resource = fhir_claim(("99213", 180))
    resource["payee"] = {"type": {"coding": [{"code": "subscriber"}]}}
    claim, _ = post(resource)
    assert claim.pay_patient


def test_the_focal_insurance_names_the_policy(chain, post, fhir_claim, policy):
    resource = fhir_claim(("99213", 180))
    resource["insurance"] = [
        {"sequence": 1, "focal": False, "coverage": {"display": "another insurer's plan"}},
        {"sequence": 2, "focal": True, "coverage": {"reference": f"Coverage/{policy.id}"}},
    ]
    claim, _ = post(resource)
    assert claim.policy_id == policy.id


def test_a_patients_claims_are_found_through_their_policies(
    chain, post, fhir_claim, registered_patient, stranger
):
    first, _ = post(fhir_claim(("99213", 180)))
    second, _ = post(fhir_claim(("99214", 900)))
    found = claims.claims_of_patient(chain, registered_patient.address)
    assert [c.id for c in found] == [first.id, second.id]
    assert claims.claims_of_patient(chain, stranger.address) == []


@pytest.mark.parametrize(
    "text", ["0x" + "ab" * 32, "ab" * 31, "xy" * 32, "0" * 64], ids=["0x", "short", "not-hex", "0"]
)
def test_claim_fhir_ids_are_64_hex_digits(text):
    assert claims.parse_fhir_claim_id(claims.fhir_claim_id(2**255 + 7)) == 2**255 + 7
    with pytest.raises(ConfigurationError, match="is not a claim id"):
        claims.parse_fhir_claim_id(text)


def test_a_patients_own_claim_answers_under_its_id_and_requests_the_claim_record(
    chain, store, provider, policy, registered_patient, insurer, claim_body, visit
):
    record = test_claims.anchor_claim(
        chain, store, provider, registered_patient, claim_body(("80053", 300))
    )
    claim = claims.submit_claim(
        chain, store, registered_patient, policy.id, record=record.id, pay_patient=True,
        evidence=[visit.id],
    )  # fmt: skip
    response, eob = claims.claim_views(chain, store, insurer, claim.id)
    assert valid(response)["id"] == claims.fhir_claim_id(claim.id) != record.id.hex()
    assert response["request"] == {"reference": f"Claim/{record.id.hex()}"}
    assert response["outcome"] == "queued" and eob is None
