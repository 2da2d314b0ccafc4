"""Scenarios for insurance: policies and pools, claims settled automatically or reviewed, disputes,
pull payments, FHIR in and out, and the CLI verbs.

Every scenario runs on the session's Anvil devnet between an ``evm_snapshot`` and an
``evm_revert`` (see ``conftest.py``). Amounts are in the devnet dollar (6 decimals).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit

from medledger import access, claims, demo_claims, records, registry
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.errors import (
    AccessRefused,
    ClaimNotFound,
    ConfigurationError,
    FhirStructureError,
    PolicyNotFound,
    PreconditionFailed,
)
from medledger.stores import open_store

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-samples"
CPT = demo_claims.CPT
CODES = [claims.Code(CPT, c) for c in demo_claims.COVERED]
DAY = 24 * 3600


def advance(chain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


# ---------------------------------------------------------------------------- roles and factories


@pytest.fixture
def insurer(chain, verified_institution):
    return verified_institution(dev_account(10), registry.InstitutionKind.INSURER, "Acme")


@pytest.fixture
def resolver(chain):
    account = dev_account(12)
    claims.add_resolver(chain, dev_account(0), account.address)
    return account


@pytest.fixture
def provider(chain, verified_institution, clinic):
    return verified_institution(clinic, registry.InstitutionKind.CLINIC, "Riverside")


@pytest.fixture
def store(settings):
    return open_store(settings)


@pytest.fixture
def policy(chain, store, insurer, registered_patient):
    """An 80 % policy, deductible 50, limit 2,000, automatic settlement up to 500, funded 5,000."""
    issued = claims.issue_policy(
        chain, store, insurer, registered_patient.address, coverage=Decimal("0.8"),
        deductible=Decimal(50), annual_limit=Decimal(2_000), auto_settle_limit=Decimal(500),
        codes=CODES,
    )  # fmt: skip
    return claims.fund_policy(chain, insurer, issued.id, Decimal(5_000))


@pytest.fixture
def consent(chain, store, registered_patient, insurer):
    """The patient lets the insurer read financial and encounter records for payment."""
    for cat in (Category.FINANCIAL, Category.ENCOUNTER):
        access.grant(
            chain, store, registered_patient, registered_patient.address, insurer.address,
            access.Scope(access.ScopeKind.CATEGORY, category=cat), access.Purpose.PAYMENT,
            timedelta(days=30),
        )  # fmt: skip


@pytest.fixture
def visit(chain, store, provider, registered_patient):
    """The encounter the clinic anchored for the patient."""
    body = demo_claims.encounter("Patient/p1", access.chain_now(chain))
    (record,) = records.anchor(
        chain,
        store,
        provider,
        registered_patient.address,
        [records.Draft(body, Category.ENCOUNTER)],
    )
    return record


@pytest.fixture
def submit(chain, store, provider, policy, consent, visit, registered_patient):
    """Factory: the clinic submits a Claim of (code, amount) lines against the policy."""
    terms = claims.read_terms(chain, store, registered_patient, policy)

    def make(*lines: tuple[str, int], evidence=None, submitter=None, **kwargs):
        body = demo_claims.claim(
            "Patient/p1", "e1", [(c, Decimal(a)) for c, a in lines], access.chain_now(chain)
        )
        return claims.submit_claim(
            chain, store, submitter or provider, policy.id, body,
            evidence=[visit.id] if evidence is None else evidence, terms=terms, **kwargs,
        )  # fmt: skip

    return make


# ---------------------------------------------------------------------------- policies


def test_issued_policy_holds_terms_only_insurer_and_patient_can_read(
    chain, store, policy, insurer, registered_patient, stranger
):
    assert policy.coverage == Decimal("0.8")
    assert (policy.deductible, policy.annual_limit, policy.funded) == (50, 2_000, 5_000)
    assert policy.pool == 5_000
    for reader in (insurer, registered_patient):
        terms = claims.read_terms(chain, store, reader, policy)
        assert set(terms.codes) == set(CODES)
        assert terms.tree().root == policy.codes_root
    with pytest.raises(PreconditionFailed, match="cannot read the terms"):
        claims.read_terms(chain, store, stranger, policy)


def test_code_hashes_are_salted_so_the_root_differs_between_policies(
    chain, store, insurer, registered_patient
):
    make = lambda: claims.issue_policy(  # noqa: E731
        chain, store, insurer, registered_patient.address, coverage=Decimal(1),
        deductible=Decimal(0), annual_limit=Decimal(10), auto_settle_limit=Decimal(0), codes=CODES,
    )  # fmt: skip
    assert make().codes_root != make().codes_root


def test_only_a_verified_insurer_issues_policies(chain, store, provider, registered_patient):
    with pytest.raises(PreconditionFailed, match="not a verified insurer"):
        claims.issue_policy(
            chain, store, provider, registered_patient.address, coverage=Decimal("0.5"),
            deductible=Decimal(0), annual_limit=Decimal(10), auto_settle_limit=Decimal(0),
            codes=CODES,
        )  # fmt: skip


def test_policy_terms_are_checked_before_sending(chain, store, insurer, registered_patient):
    kwargs = dict(deductible=Decimal(0), annual_limit=Decimal(10), auto_settle_limit=Decimal(0))
    with pytest.raises(ConfigurationError, match="coverage"):
        claims.issue_policy(chain, store, insurer, registered_patient.address,
                            coverage=Decimal("1.5"), codes=CODES, **kwargs)  # fmt: skip
    with pytest.raises(ConfigurationError, match="366 days"):
        claims.issue_policy(chain, store, insurer, registered_patient.address,
                            coverage=Decimal("0.5"), codes=CODES, term=timedelta(days=400),
                            **kwargs)  # fmt: skip
    with pytest.raises(ConfigurationError, match="decimals"):
        claims.issue_policy(chain, store, insurer, registered_patient.address,
                            coverage=Decimal("0.5"), codes=CODES, deductible=Decimal("0.0000001"),
                            annual_limit=Decimal(10), auto_settle_limit=Decimal(0))  # fmt: skip
    assert claims.policies(chain, patient=registered_patient.address) == []


def test_funding_credits_the_pool_exactly_and_moves_tokens(chain, policy, insurer):
    before = claims.balance_of(chain, claims.manager(chain).address)
    funded = claims.fund_policy(chain, insurer, policy.id, Decimal("12.345678"))
    assert funded.funded == Decimal("5012.345678")
    assert claims.balance_of(chain, claims.manager(chain).address) - before == Decimal("12.345678")


def test_unknown_policy_and_claim_are_clear_errors(chain, insurer):
    with pytest.raises(PolicyNotFound):
        claims.get_policy(chain, 99)
    with pytest.raises(PolicyNotFound):
        claims.fund_policy(chain, insurer, 99, Decimal(1))
    with pytest.raises(ClaimNotFound):
        claims.get_claim(chain, 42)


# ---------------------------------------------------------------------------- claims


def test_small_covered_claim_settles_automatically_and_the_clinic_withdraws(
    chain, submit, provider, policy
):
    claim = submit(("99213", 180))
    # deductible 50 first, then 80 % of the other 130
    assert claim.state is claims.ClaimState.APPROVED and claim.automatic
    assert (claim.billed, claim.deductible_applied, claim.paid) == (180, 50, Decimal("104"))
    assert claims.credit_of(chain, provider.address) == Decimal(104)
    before = claims.balance_of(chain, provider.address)
    amount, _ = claims.withdraw(chain, provider)
    assert amount == 104 and claims.balance_of(chain, provider.address) - before == 104
    after = claims.get_policy(chain, policy.id)
    assert (after.paid, after.deductible_met, after.pool) == (104, 50, Decimal(4_896))
    with pytest.raises(PreconditionFailed, match="nothing is credited"):
        claims.withdraw(chain, provider)


def test_a_clinics_later_automatic_settlements_cost_under_250k_gas_with_withdrawal(
    chain, submit, provider
):
    # The clinic's first claim also pays for its first token balance and credit slots: about
    # 252,700 gas with category consent (bench/claims_bench.py), 247,400 with record consent
    # (tests/contracts/claims/test_claims_gas.py). From then on the path is well under 250,000.
    submit(("99213", 180))
    claims.withdraw(chain, provider)
    claim = submit(("99213", 180))
    submitted = claims.claim_history(chain, claim.id)[0].gas_used
    _, receipt = claims.withdraw(chain, provider)
    assert submitted is not None
    assert submitted + int(receipt["gasUsed"]) <= 250_000


@pytest.mark.parametrize(
    ("lines", "review"),
    [
        ([("99214", 250), ("71046", 1_000)], claims.ReviewReason.ABOVE_AUTO_SETTLE_LIMIT),
        ([("99999", 100)], claims.ReviewReason.CODE_NOT_PROVEN),
    ],
    ids=["above-the-automatic-limit", "code-not-covered"],
)
def test_claims_the_contract_cannot_settle_wait_for_review(submit, lines, review):
    claim = submit(*lines)
    assert claim.state is claims.ClaimState.SUBMITTED
    assert (claim.review, claim.paid, claim.automatic) == (review, 0, False)


def test_insurer_reviews_the_evidence_and_approves_in_part_then_resolver_awards_more(
    chain, store, submit, insurer, provider, resolver, registered_patient
):
    claim = submit(("99214", 250), ("93000", 200), ("71046", 1_000))
    allowed, deductible = claims.allowed_amount(chain, claim.id)
    assert (allowed, deductible) == (Decimal(1_120), 50)  # (1450 - 50) * 0.8
    _, evidence = claims.review(chain, store, insurer, claim.id)
    kinds = sorted(json.loads(e.body)["resourceType"] for e in evidence)
    assert kinds == ["Claim", "Encounter"]
    claims.approve(chain, insurer, claim.id, Decimal(1_000))
    decided = claims.get_claim(chain, claim.id)
    assert decided.state is claims.ClaimState.PARTIALLY_APPROVED and decided.paid == 1_000

    disputed = claims.dispute(
        chain, registered_patient, claim.id, claims.ReasonCode.AMOUNT_DISPUTED
    )
    assert disputed.state is claims.ClaimState.DISPUTED
    assert claims.allowed_amount(chain, claim.id)[0] == 120
    with pytest.raises(PreconditionFailed, match="more than the 120"):
        claims.resolve(chain, resolver, claim.id, Decimal(121))
    resolved = claims.resolve(chain, resolver, claim.id, Decimal(120))
    assert resolved.state is claims.ClaimState.RESOLVED and resolved.paid == 1_120
    assert claims.credit_of(chain, provider.address) == 1_120
    events = [h.event for h in claims.get_claim(chain, claim.id, with_history=True).history]
    assert events == ["submitted", "approved", "disputed", "dispute resolved"]


def test_insurer_denies_and_the_dispute_window_closes(chain, submit, insurer, provider):
    claim = submit(("99214", 900))
    denied = claims.deny(chain, insurer, claim.id, claims.ReasonCode.NOT_MEDICALLY_NECESSARY)
    assert denied.state is claims.ClaimState.DENIED and denied.paid == 0
    advance(chain, 8 * DAY)
    with pytest.raises(PreconditionFailed, match="dispute window"):
        claims.dispute(chain, provider, claim.id, claims.ReasonCode.DECISION_DISPUTED)


def test_request_for_information_is_answered_with_more_consented_evidence(
    chain, store, submit, insurer, provider, registered_patient, visit
):
    claim = submit(("99214", 900))
    asked = claims.request_info(chain, insurer, claim.id, claims.ReasonCode.DOCUMENTATION_MISSING)
    assert asked.state is claims.ClaimState.INFO_REQUESTED
    note = demo_claims.encounter("Patient/p1", access.chain_now(chain))
    (more,) = records.anchor(
        chain,
        store,
        provider,
        registered_patient.address,
        [records.Draft(note, Category.ENCOUNTER)],
    )
    answered = claims.provide_info(chain, store, provider, claim.id, [more.id])
    assert answered.state is claims.ClaimState.SUBMITTED
    assert answered.evidence == (visit.id, more.id)
    approved = claims.approve(chain, insurer, claim.id)
    assert approved.state is claims.ClaimState.APPROVED and approved.paid == Decimal(680)


def test_decisions_are_refused_to_anyone_but_the_policys_insurer(chain, submit, provider, stranger):
    claim = submit(("99214", 900))
    for actor in (provider, stranger):
        with pytest.raises(PreconditionFailed, match="does not act for"):
            claims.approve(chain, actor, claim.id)
    settled = submit(("99213", 100))
    with pytest.raises(PreconditionFailed, match="only a partial approval or a denial"):
        claims.dispute(chain, provider, settled.id, claims.ReasonCode.OTHER)


def test_submission_without_the_patients_consent_is_refused_and_writes_nothing(
    chain, store, provider, policy, visit, registered_patient
):
    terms = claims.read_terms(chain, store, registered_patient, policy)
    before = len(records.for_patient(chain, registered_patient.address))
    body = demo_claims.claim("Patient/p1", "e1", [("99213", Decimal(100))], access.chain_now(chain))
    with pytest.raises(PreconditionFailed, match="not consented"):
        claims.submit_claim(
            chain, store, provider, policy.id, body, evidence=[visit.id], terms=terms
        )
    assert len(records.for_patient(chain, registered_patient.address)) == before
    assert claims.claims(chain, policy_id=policy.id) == []


def test_patient_submits_their_own_claim_and_consents_record_by_record(
    chain, store, policy, registered_patient, insurer
):
    body = demo_claims.claim("Patient/p1", "e1", [("80053", Decimal(300))], access.chain_now(chain))
    claim = claims.submit_claim(chain, store, registered_patient, policy.id, body, pay_patient=True)
    assert claim.state is claims.ClaimState.APPROVED and claim.pay_patient
    assert claims.credit_of(chain, registered_patient.address) == Decimal(200)  # (300-50)*0.8
    (grant,) = access.grants(chain, registered_patient.address, insurer.address)
    assert grant.scope.kind is access.ScopeKind.RECORD and grant.purpose is access.Purpose.PAYMENT


def test_revoked_consent_stops_the_insurers_review(
    chain, store, submit, insurer, registered_patient
):
    claim = submit(("99214", 900))
    access.revoke(chain, registered_patient, registered_patient.address, insurer.address,
                  access.Scope(access.ScopeKind.CATEGORY, category=Category.FINANCIAL))  # fmt: skip
    with pytest.raises(AccessRefused):
        claims.review(chain, store, insurer, claim.id)


def test_a_claim_against_an_expired_policy_is_refused_before_anything_is_written(chain, submit):
    advance(chain, 366 * DAY)
    with pytest.raises(PreconditionFailed, match="covers"):
        submit(("99213", 100))


def test_the_annual_limit_caps_payment_and_then_routes_claims_to_review(chain, submit, insurer):
    first = submit(("71046", 1_000), ("99214", 1_500))
    claims.approve(chain, insurer, first.id)  # (2500 - 50) * 0.8 = 1960 of the 2000 limit
    assert claims.get_claim(chain, first.id).paid == 1_960
    second = submit(("99213", 400))
    assert second.state is claims.ClaimState.APPROVED and second.paid == 40  # what was left
    third = submit(("99213", 100))
    assert third.review is claims.ReviewReason.LIMIT_REACHED


# ---------------------------------------------------------------------------- FHIR


def test_claim_response_and_explanation_of_benefit_are_valid_fhir(chain, store, submit, provider):
    claim = submit(("99213", 180))
    documents = claims.fhir_documents(chain, store, provider, claim.id)
    response = ClaimResponse.model_validate_json(documents["ClaimResponse"])
    assert response.outcome == "complete"
    assert float(response.payment.amount.value) == 104.0
    eob = ExplanationOfBenefit.model_validate_json(documents["ExplanationOfBenefit"])
    assert eob.outcome == "complete"
    categories = {t.category.coding[0].code: float(t.amount.value) for t in eob.total}
    assert categories == {"submitted": 180.0, "deductible": 50.0, "benefit": 104.0}


def test_a_claim_under_review_has_a_queued_response_and_no_eob(chain, store, submit, provider):
    claim = submit(("99214", 900))
    documents = claims.fhir_documents(chain, store, provider, claim.id)
    assert set(documents) == {"ClaimResponse"}
    assert ClaimResponse.model_validate_json(documents["ClaimResponse"]).outcome == "queued"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/fhir-samples is not beside the checkout")
def test_public_claims_are_read_with_exact_amounts():
    hl7 = claims.claim_facts((SAMPLES / "Claim-100150.json").read_bytes())
    assert (hl7.total, hl7.currency, hl7.codes) == (Decimal("135.57"), "USD",
                                                     (claims.Code("", "1200"),))  # fmt: skip
    bundle = json.loads(
        (SAMPLES / "Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json").read_text()
    )
    synthea = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim"]
    facts = [claims.claim_facts(json.dumps(c).encode()) for c in synthea]
    assert all(f.total == f.total.quantize(Decimal("0.01")) and f.codes for f in facts)
    assert any(c.system == "http://snomed.info/sct" for f in facts for c in f.codes)


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ({"resourceType": "Observation", "status": "final", "code": {}}, "not a FHIR Claim"),
        (
            {"resourceType": "Claim", "item": [{"sequence": 1}], "total": {"value": 5}},
            "productOrService",
        ),
        (
            {
                "resourceType": "Claim",
                "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "1"}]}}],
            },
            "no total",
        ),
        (
            {
                "resourceType": "Claim",
                "item": [
                    {
                        "sequence": 1,
                        "productOrService": {"coding": [{"code": "1"}]},
                        "net": {"value": 1, "currency": "EUR"},
                    }
                ],
                "total": {"value": 1, "currency": "USD"},
            },
            "mixes currencies",
        ),
    ],
    ids=["not-a-claim", "no-codes", "no-amount", "two-currencies"],
)
def test_unusable_claims_are_refused_with_a_reason(resource, message):
    with pytest.raises(FhirStructureError, match=message):
        claims.claim_facts(json.dumps(resource).encode())


# ---------------------------------------------------------------------------- CLI


def test_cli_walks_a_claim_from_policy_to_payment(
    chain, medledger, tmp_path, insurer, provider, consent, visit, registered_patient
):
    issued = medledger(
        "policy", "issue", "--patient", registered_patient.address, "--coverage", "80%",
        "--deductible", "50", "--limit", "2000", "--auto-settle-limit", "500",
        "--code", f"{CPT}|99213", "--code", f"{CPT}|99214", "--account", "dev:10", "--json",
    )  # fmt: skip
    assert issued.exit_code == 0, issued.stderr
    policy_id = issued.json()["id"]
    assert medledger("policy", "fund", str(policy_id), "3000", "--account", "dev:10").exit_code == 0
    terms = tmp_path / "terms.json"
    out = medledger("policy", "show", str(policy_id), "--terms", "--out", str(terms),
                    "--account", "dev:5")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    claim_file = tmp_path / "claim.json"
    claim_file.write_bytes(
        demo_claims.claim("Patient/p1", "e1", [("99214", Decimal(900))], access.chain_now(chain))
    )
    submitted = medledger("claim", "submit", str(claim_file), "--policy", str(policy_id),
                          "--evidence", visit.hex_id, "--terms", str(terms), "--account", "dev:4",
                          "--json")  # fmt: skip
    assert submitted.exit_code == 0, submitted.stderr
    claim_id = str(submitted.json()["id"])
    assert submitted.json()["state"] == "submitted"
    reviewed = medledger("claim", "review", claim_id, "--account", "dev:10")
    assert reviewed.exit_code == 0 and "Encounter" in reviewed.stdout
    approved = medledger(
        "claim", "approve", claim_id, "--amount", "500", "--account", "dev:10", "--json"
    )
    assert approved.json()["state"] == "partially-approved"
    listed = medledger("claim", "list", "--state", "partially-approved", "--json")
    assert [c["id"] for c in listed.json()] == [int(claim_id)]
    shown = medledger("claim", "show", claim_id, "--fhir", "--account", "dev:4")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["resourceType"] == "Bundle"
    paid = medledger("claim", "withdraw-payment", "--account", "dev:4", "--json")
    assert paid.exit_code == 0 and paid.json()["withdrawn"] == "500.000000"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["claim", "show", "7"], "claim 7 is not submitted"),
        (["policy", "show", "3"], "policy 3 is not issued"),
        (["claim", "deny", "1", "--reason", "because"], "unknown reason code"),
        (["claim", "list", "--state", "paid"], "unknown state"),
        (["claim", "withdraw-payment", "--account", "dev:4"], "nothing is credited"),
    ],
    ids=["unknown-claim", "unknown-policy", "bad-reason", "bad-state", "nothing-to-withdraw"],
)
def test_cli_errors_are_one_line_with_a_non_zero_exit(medledger, provider, args, message):
    outcome = medledger(*args)
    assert outcome.exit_code != 0
    assert message in outcome.stderr and len(outcome.stderr.strip().splitlines()) == 1
