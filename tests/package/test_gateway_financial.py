"""Insurance and research through the gateway: ``POST /Claim`` answered with a paid
``ClaimResponse``, the Claim then read as a record, ``Coverage``, ``ClaimResponse`` and
``ExplanationOfBenefit`` read and searched, studies listed; every body validated.

The roles and the policy are test_claims.py's (the clinic dev:4 treats the patient dev:5,
Acme dev:10 insures them, automatic settlement up to 500); the gateway is the clinic's, the
real console script on a loopback port.
"""

from __future__ import annotations

import base64
import json

import gateway_harness
import pytest
import test_claims
import test_fhir_money
from test_gateway_server import assert_valid, ok, refused

from medledger.accounts import dev_account

insurer = test_claims.insurer
provider = test_claims.provider
store = test_claims.store
policy = test_claims.policy
terms = test_claims.terms
payment_consent = test_claims.payment_consent
visit = test_claims.visit
claim_body = test_claims.claim_body
fhir_claim = test_fhir_money.fhir_claim


@pytest.fixture
def clinic_gateway(env, provider):
    running = gateway_harness.start(env, "dev:4")
    yield running
    running.stop()


def with_terms(resource: dict, terms) -> dict:
    """The Claim carrying the policy terms the patient gave the clinic."""
    data = base64.b64encode(json.dumps(terms.to_json()).encode()).decode()
    category = {"coding": [{"system": "urn:medledger:claim-info", "code": "policy-terms"}]}
    info = {"sequence": 1, "category": category,
            "valueAttachment": {"contentType": "application/json", "data": data}}  # fmt: skip
    return {**resource, "supportingInfo": [info]}


def test_a_claim_posted_is_paid_and_served_in_every_form(
    clinic_gateway, fhir_claim, terms, payment_consent, policy, registered_patient
):
    token = clinic_gateway.sign_in(dev_account(4), "user/*.cruds")
    with clinic_gateway.client(token) as http:
        sent = with_terms(fhir_claim(("99213", 180)), terms)
        answer = http.post("Claim", json=sent)
        response = ok(answer, 201)
        assert response["resourceType"] == "ClaimResponse" and response["outcome"] == "complete"
        claim = ok(http.get(answer.headers["location"]))  # the Claim is a record now
        assert claim["resourceType"] == "Claim" and "supportingInfo" not in claim
        assert ok(http.get(f"ClaimResponse/{response['id']}")) == response
        eob = ok(http.get(f"ExplanationOfBenefit/{response['id']}"))
        assert eob["claimResponse"]["reference"] == f"ClaimResponse/{response['id']}"
        coverage = ok(http.get(f"Coverage/{policy.id}"))
        assert coverage["beneficiary"] == {"reference": f"Patient/{registered_patient.address}"}
        for kind in ("Coverage", "ClaimResponse", "ExplanationOfBenefit"):
            found = ok(http.get(kind, params={"patient": registered_patient.address}))
            assert found["total"] == 1, kind
        again = http.post("Claim", json=sent)  # a retry: the same claim, nothing paid twice
        assert again.json()["id"] == response["id"]
        assert (
            ok(http.get("ExplanationOfBenefit", params={"patient": registered_patient.address}))[
                "total"
            ]
            == 1
        )


def test_a_bad_claim_is_refused_in_one_line_and_sends_nothing(
    clinic_gateway, fhir_claim, terms, chain
):
    token = clinic_gateway.sign_in(dev_account(4), "user/*.cruds")
    block = chain.w3.eth.block_number
    with clinic_gateway.client(token) as http:
        no_terms = fhir_claim(("99213", 180))
        refused(http.post("Claim", json=no_terms), 422, "terms")
        broken = with_terms(fhir_claim(("99213", 180)), terms)
        broken["supportingInfo"][0]["valueAttachment"]["data"] = "not base64!"
        refused(http.post("Claim", json=broken), 400, "base64")
        refused(http.post("Claim", json={"resourceType": "Patient"}), 400, "takes a Claim")
        refused(http.get("ClaimResponse/12"), 404)
        refused(http.get("Coverage", params={"insurer": "x"}), 400, "not supported")
    assert chain.w3.eth.block_number == block


def test_studies_are_listed_to_a_signed_in_caller(clinic_gateway):
    token = clinic_gateway.sign_in(dev_account(4), "user/*.rs")
    with clinic_gateway.client(token) as http:
        studies = ok(http.get("ResearchStudy"))
        assert studies["type"] == "searchset"
        assert_valid(studies)
