"""Scenarios for insurance: policies and pools, claims settled automatically (and paid at once)
or reviewed, duplicates refused, escalations, disputes, pull payments, pool reclaim, FHIR in and
out, and the CLI verbs.

Every scenario starts from the session's freshly deployed Anvil devnet plus its own world steps
(see ``conftest.py`` and ``chain_worlds.py``), restored from a snapshot before it touches the
chain. Amounts are in the devnet dollar (6 decimals). The clinic
(dev:4) writes the patient's records under a care relationship the patient opened with
``providers.authorize_care``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from erc20 import balance, deploy_token, mint
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit

from medledger import claims, consent, providers, records
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.chain import deployments
from medledger.demo import claims as demo_claims
from medledger.errors import (
    AccessRefused,
    ClaimNotFound,
    ConfigurationError,
    DuplicateClaim,
    FhirStructureError,
    PolicyNotFound,
    PreconditionFailed,
    TransactionReverted,
)
from medledger.ipfs.stores import open_store

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-samples"
CPT = demo_claims.CPT
CODES = [claims.Code(CPT, c) for c in demo_claims.COVERED]
DAY = 24 * 3600


def advance(chain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


def one_line_error(outcome, message: str) -> None:
    assert outcome.exit_code != 0, outcome.stdout
    assert message in outcome.stderr, outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr


# ---------------------------------------------------------------------------- roles and factories


@pytest.fixture
def insurer(chain, verified_institution):
    return verified_institution(dev_account(10), providers.InstitutionKind.INSURER, "Acme")


@pytest.fixture
def resolver(chain):
    account = dev_account(12)
    claims.add_resolver(chain, dev_account(0), account.address)
    return account


@pytest.fixture
def provider(chain, verified_institution, care, clinic, registered_patient):
    """The verified clinic, in a care relationship with the patient (opened by the patient)."""
    care(
        registered_patient,
        verified_institution(clinic, providers.InstitutionKind.CLINIC, "Riverside"),
    )
    return clinic


@pytest.fixture
def other_provider(chain, verified_institution, care, hospital, registered_patient):
    """A second care provider (the hospital), also in care of the patient."""
    care(
        registered_patient,
        verified_institution(hospital, providers.InstitutionKind.HOSPITAL, "St Mary"),
    )
    return hospital


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
def terms(chain, store, registered_patient, policy):
    """The policy's terms, as the patient hands them to the clinic."""
    return claims.read_terms(chain, store, registered_patient, policy)


@pytest.fixture
def payment_consent(chain, store, registered_patient, insurer):
    """The patient lets the insurer read financial and encounter records for payment."""
    for cat in (Category.FINANCIAL, Category.ENCOUNTER):
        consent.grant(
            chain, store, registered_patient, registered_patient.address, insurer.address,
            consent.Scope(consent.ScopeKind.CATEGORY, category=cat), consent.Purpose.PAYMENT,
            timedelta(days=30),
        )  # fmt: skip


@pytest.fixture
def visit(chain, store, provider, registered_patient):
    """The encounter the clinic anchored for the patient."""
    body = demo_claims.encounter("Patient/p1", chain.now())
    (record,) = records.anchor(
        chain,
        store,
        provider,
        registered_patient.address,
        [records.Draft(body, Category.ENCOUNTER)],
        readers=consent.readers_for(chain),
    )
    return record


@pytest.fixture
def claim_body(chain):
    """Factory: a FHIR Claim of (code, amount) lines for care given in an hour of its own (so
    two calls never bill the same care), with a fresh identifier unless one is given."""
    hours = itertools.count(1)
    base = chain.now()

    def make(*lines: tuple[str, int], identifier: str | None = None, when=None) -> bytes:
        at = when or base - timedelta(hours=next(hours))
        return demo_claims.claim(
            "Patient/p1", "e1", [(c, Decimal(a)) for c, a in lines], at, identifier
        )

    return make


@pytest.fixture
def submit(chain, store, provider, policy, payment_consent, visit, terms, claim_body):
    """Factory: the clinic submits a Claim of (code, amount) lines against the policy (or the
    ``body`` given, or the anchored claim ``record`` given)."""

    def make(*lines, evidence=None, submitter=None, body=None, record=None, identifier=None,
             **kwargs):  # fmt: skip
        if body is None and record is None:
            body = claim_body(*lines, identifier=identifier)
        return claims.submit_claim(
            chain, store, submitter or provider, policy.id, body, record=record,
            evidence=[visit.id] if evidence is None else evidence, terms=terms, **kwargs,
        )  # fmt: skip

    return make


def anchor_claim(chain, store, writer, patient, body: bytes) -> records.Record:
    (record,) = records.anchor(
        chain, store, writer, patient.address, [records.Draft(body, Category.FINANCIAL)],
        readers=consent.readers_for(chain),
    )  # fmt: skip
    return record


# ---------------------------------------------------------------------------- policies


def test_issued_policy_holds_terms_only_insurer_and_patient_can_read(
    chain, store, policy, insurer, registered_patient, stranger
):
    assert policy.coverage == Decimal("0.8")
    assert (policy.deductible, policy.annual_limit, policy.funded) == (50, 2_000, 5_000)
    assert policy.pool == 5_000 and policy.open_claims == 0
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
    with pytest.raises(ConfigurationError, match="--deductible: 11 is more than the annual limit"):
        claims.issue_policy(chain, store, insurer, registered_patient.address,
                            coverage=Decimal("0.5"), codes=CODES, deductible=Decimal(11),
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
    with pytest.raises(ClaimNotFound, match=f"claim 0x{'0' * 62}2a is not submitted"):
        claims.get_claim(chain, 42)


def test_claim_ids_are_read_as_hex_decimal_or_record_uri():
    record_id = "0x" + "ab" * 32
    number = int(record_id, 16)
    assert claims.parse_claim_id(record_id) == number
    assert claims.parse_claim_id(str(number)) == number
    assert claims.parse_claim_id(f"medledger://eip155:31337/0x{'11' * 20}/{record_id}") == number
    assert claims.parse_claim_id("0x2a") == 42 and claims.claim_hex(42) == "0x" + "0" * 62 + "2a"
    for bad in ("seven", "0x", "0", "0x" + "1" * 65, str(2**256), "-1"):
        with pytest.raises(ConfigurationError, match="is not a claim id"):
            claims.parse_claim_id(bad)


# ---------------------------------------------------------------------------- claims


def test_small_covered_claim_settles_automatically_and_is_paid_at_once(
    chain, submit, provider, policy
):
    before = claims.balance_of(chain, provider.address)
    claim = submit(("99213", 180))
    # deductible 50 first, then 80 % of the other 130, sent to the clinic in the same transaction
    assert claim.state is claims.ClaimState.APPROVED and claim.automatic
    assert (claim.billed, claim.deductible_applied, claim.paid) == (180, 50, Decimal("104"))
    assert claims.balance_of(chain, provider.address) - before == 104
    assert claims.credit_of(chain, provider.address) == 0
    after = claims.get_policy(chain, policy.id)
    assert (after.paid, after.deductible_met, after.pool, after.open_claims) == (
        104, 50, Decimal(4_896), 0,
    )  # fmt: skip
    with pytest.raises(PreconditionFailed, match="nothing is credited"):
        claims.withdraw(chain, provider)
    steps = claims.claim_history(chain, claim.id)
    assert [s.event for s in steps] == ["submitted", "approved"]
    assert f"paid to {provider.address} at once" in steps[1].detail


def test_a_clinics_later_automatic_settlements_cost_under_250k_gas_paid_in_one_transaction(
    submit, chain
):
    # One transaction settles and pays (no withdrawal step any more). It also stores the two
    # duplicate keys (care and identifier): about 238,000 gas, 215,000 for a claim without an
    # identifier. The clinic's first claim also pays for its first token balance slot.
    submit(("99213", 180))
    claim = submit(("99213", 180))
    (submitted, approved) = claims.claim_history(chain, claim.id)
    assert submitted.transaction_hash == approved.transaction_hash
    assert submitted.gas_used is not None and submitted.gas_used <= 250_000


@pytest.mark.parametrize(
    ("lines", "review"),
    [
        ([("99214", 250), ("71046", 1_000)], claims.ReviewReason.ABOVE_AUTO_SETTLE_LIMIT),
        ([("99999", 100)], claims.ReviewReason.CODE_NOT_PROVEN),
    ],
    ids=["above-the-automatic-limit", "code-not-covered"],
)
def test_claims_the_contract_cannot_settle_wait_for_review(chain, submit, policy, lines, review):
    claim = submit(*lines)
    assert claim.state is claims.ClaimState.SUBMITTED
    assert (claim.review, claim.paid, claim.automatic) == (review, 0, False)
    assert claims.get_policy(chain, policy.id).open_claims == 1


def test_code_hashes_go_on_chain_distinct_and_ascending_with_their_proofs(
    chain, submit, terms, policy
):
    claim = submit(("99214", 100), ("93000", 100), ("99214", 50), ("71046", 100))
    hashes = sorted({claims.Code(CPT, c).hashed(terms.salt) for c in ("99214", "93000", "71046")})
    assert list(claim.code_hashes) == hashes
    # every code is covered and proven, so only the amount keeps it from automatic settlement
    assert claim.review is claims.ReviewReason.NONE and claim.automatic


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
    assert claims.credit_of(chain, provider.address) == 1_000  # a person's decision is credited

    disputed = claims.dispute(
        chain, registered_patient, claim.id, claims.ReasonCode.AMOUNT_DISPUTED
    )
    assert disputed.state is claims.ClaimState.DISPUTED
    assert claims.allowed_amount(chain, claim.id)[0] == 120
    with pytest.raises(PreconditionFailed, match="more than the 120"):
        claims.resolve(chain, resolver, claim.id, Decimal(121))
    with pytest.raises(PreconditionFailed, match="approved in part, so it is covered"):
        claims.resolve(chain, resolver, claim.id, Decimal(0), covered=False)
    resolved = claims.resolve(chain, resolver, claim.id, Decimal(120))
    assert resolved.state is claims.ClaimState.RESOLVED and resolved.paid == 1_120
    assert claims.credit_of(chain, provider.address) == 1_120
    events = [h.event for h in claims.get_claim(chain, claim.id, with_history=True).history]
    assert events == ["submitted", "approved", "disputed", "dispute resolved"]
    amount, _ = claims.withdraw(chain, provider)
    assert amount == 1_120


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
    assert asked.state is claims.ClaimState.INFO_REQUESTED and asked.info_requests == 1
    note = demo_claims.encounter("Patient/p1", chain.now())
    (more,) = records.anchor(
        chain,
        store,
        provider,
        registered_patient.address,
        [records.Draft(note, Category.ENCOUNTER)],
        readers=consent.readers_for(chain),
    )
    answered = claims.provide_info(chain, store, provider, claim.id, [more.id])
    assert answered.state is claims.ClaimState.SUBMITTED
    assert answered.evidence == (visit.id, more.id)
    approved = claims.approve(chain, insurer, claim.id)
    assert approved.state is claims.ClaimState.APPROVED and approved.paid == Decimal(680)


def test_the_insurer_asks_for_information_at_most_three_times(
    chain, store, submit, insurer, provider, visit
):
    claim = submit(("99214", 900))
    for _ in range(claims.MAX_INFO_REQUESTS):
        claims.request_info(chain, insurer, claim.id, claims.ReasonCode.DOCUMENTATION_MISSING)
        claims.provide_info(chain, store, provider, claim.id, [visit.id])
    assert claims.get_claim(chain, claim.id).info_requests == 3
    with pytest.raises(PreconditionFailed, match="asked for 3 times, the most allowed"):
        claims.request_info(chain, insurer, claim.id, claims.ReasonCode.DOCUMENTATION_MISSING)
    contract = claims.manager(chain)
    with pytest.raises(TransactionReverted) as reverted:  # the contract holds the same line
        chain.transact("asking", insurer, contract.functions.requestInfo(claim.id, 4))
    assert (reverted.value.error, reverted.value.error_args) == (
        "ClaimTooManyInfoRequests", {"claimId": claim.id},
    )  # fmt: skip
    assert claims.approve(chain, insurer, claim.id).state is claims.ClaimState.APPROVED


def test_decisions_are_refused_to_anyone_but_the_policys_insurer(chain, submit, provider, stranger):
    claim = submit(("99214", 900))
    for actor in (provider, stranger):
        with pytest.raises(PreconditionFailed, match="does not act for"):
            claims.approve(chain, actor, claim.id)
    settled = submit(("99213", 100))
    with pytest.raises(PreconditionFailed, match="only a partial approval or a denial"):
        claims.dispute(chain, provider, settled.id, claims.ReasonCode.OTHER)


def test_submission_without_the_patients_consent_is_refused_and_writes_nothing(
    chain, store, provider, policy, visit, registered_patient, terms, claim_body
):
    before = len(records.for_patient(chain, registered_patient.address))
    with pytest.raises(PreconditionFailed, match="not consented"):
        claims.submit_claim(
            chain, store, provider, policy.id, claim_body(("99213", 100)), evidence=[visit.id],
            terms=terms,
        )  # fmt: skip
    assert len(records.for_patient(chain, registered_patient.address)) == before
    assert claims.claims(chain, policy_id=policy.id) == []


def test_a_claim_without_evidence_is_refused_and_writes_nothing(
    chain, submit, policy, registered_patient
):
    before = len(records.for_patient(chain, registered_patient.address))
    with pytest.raises(PreconditionFailed, match="a claim needs evidence"):
        submit(("99213", 100), evidence=[])
    assert len(records.for_patient(chain, registered_patient.address)) == before
    assert claims.claims(chain, policy_id=policy.id) == []


def test_a_clinic_without_a_care_relationship_cannot_anchor_a_claim(
    chain, store, provider, policy, payment_consent, registered_patient, terms, claim_body
):
    providers.revoke_care(chain, registered_patient, registered_patient.address, provider.address)
    before = len(records.for_patient(chain, registered_patient.address))
    with pytest.raises(PreconditionFailed, match="no live care relationship"):
        claims.submit_claim(
            chain, store, provider, policy.id, claim_body(("99213", 100)), terms=terms
        )
    assert len(records.for_patient(chain, registered_patient.address)) == before


def test_the_patient_submits_a_claim_record_their_provider_wrote_and_it_is_always_reviewed(
    chain, store, provider, policy, registered_patient, insurer, claim_body, visit
):
    record = anchor_claim(chain, store, provider, registered_patient, claim_body(("80053", 300)))
    claim = claims.submit_claim(
        chain, store, registered_patient, policy.id, record=record.id, pay_patient=True,
        evidence=[visit.id],
    )  # fmt: skip
    # covered, under the automatic limit, pool and limit fine: still left for the insurer
    assert claim.claim_record == record.id  # under an id of its own, not the record's
    assert claim.id == claims.patient_claim_id(record.id) != int.from_bytes(record.id, "big")
    assert claim.state is claims.ClaimState.SUBMITTED and not claim.automatic
    assert claim.review is claims.ReviewReason.SUBMITTED_BY_PATIENT
    assert claim.submitter == registered_patient.address and claim.pay_patient
    made = consent.grants(chain, registered_patient.address, insurer.address)
    assert {g.scope.record for g in made} == {record.id, visit.id}  # the claim and its evidence
    assert all(g.purpose is consent.Purpose.PAYMENT for g in made)
    approved = claims.approve(chain, insurer, claim.id)
    assert approved.paid == 200  # (300 - 50) * 0.8
    assert claims.credit_of(chain, registered_patient.address) == Decimal(200)


def test_the_provider_that_wrote_a_patients_claim_record_disputes_its_denial(
    chain, store, provider, policy, registered_patient, insurer, claim_body, visit
):
    record = anchor_claim(chain, store, provider, registered_patient, claim_body(("80053", 300)))
    claim = claims.submit_claim(
        chain, store, registered_patient, policy.id, record=record.id, pay_patient=True,
        evidence=[visit.id],
    )  # fmt: skip
    claims.deny(chain, insurer, claim.id, claims.ReasonCode.NOT_MEDICALLY_NECESSARY)
    disputed = claims.dispute(chain, provider, claim.id, claims.ReasonCode.DECISION_DISPUTED)
    assert disputed.state is claims.ClaimState.DISPUTED
    assert disputed.submitter == registered_patient.address  # still the patient's claim


def test_a_patient_cannot_claim_on_a_record_no_provider_wrote(
    chain, store, provider, policy, registered_patient, claim_body
):
    with pytest.raises(PreconditionFailed, match="written by the care provider, not the patient"):
        claims.submit_claim(chain, store, registered_patient, policy.id, claim_body(("80053", 9)))
    body = claim_body(("80053", 9))
    own = anchor_claim(chain, store, registered_patient, registered_patient, body)
    with pytest.raises(PreconditionFailed, match="was written by the patient"):
        claims.submit_claim(chain, store, registered_patient, policy.id, record=own.id)
    assert claims.claims(chain) == []


def test_a_clinic_claims_only_for_financial_records_its_own_institution_wrote(
    chain, store, submit, provider, other_provider, registered_patient, policy, terms, visit,
    claim_body,
):  # fmt: skip
    body = claim_body(("99213", 100))
    theirs = anchor_claim(chain, store, other_provider, registered_patient, body)
    with pytest.raises(PreconditionFailed, match="written by another provider"):
        submit(record=theirs.id)
    with pytest.raises(PreconditionFailed, match="in category encounter: a claim record is a fin"):
        submit(record=visit.id)
    keys = claims.claim_keys(claims.claim_facts(body), terms)
    args = (policy.id, 100 * 10**6, False, theirs.id, [], list(keys.code_hashes),
            [list(p) for p in keys.proofs], keys.service_key, keys.identifier_key)  # fmt: skip
    with pytest.raises(TransactionReverted) as reverted:  # the contract refuses it as well
        chain.transact("submitting", provider, claims.manager(chain).functions.submitClaim(args))
    assert reverted.value.error == "ClaimNotRecordWriter"
    assert reverted.value.error_args == {"caller": provider.address, "record": theirs.id}
    assert claims.claims(chain) == []


# ---------------------------------------------------------------------------- duplicates


def test_the_same_claim_file_submitted_twice_is_one_claim_and_nothing_is_written_again(
    chain, submit, claim_body, registered_patient
):
    # A re-run of the same submission (an interrupted command run again) reports the claim it
    # made; the same care in another body is a duplicate (below).
    body = claim_body(("99214", 900))
    first = submit(body=body)
    anchored = len(records.for_patient(chain, registered_patient.address))
    head = chain.w3.eth.block_number
    again = submit(body=body)
    assert (again.id, again.state) == (first.id, first.state)
    assert chain.w3.eth.block_number == head
    assert len(records.for_patient(chain, registered_patient.address)) == anchored
    assert [c.id for c in claims.claims(chain)] == [first.id]


def test_the_same_care_billed_again_at_another_amount_is_a_duplicate(chain, submit, claim_body):
    """A "corrected invoice": the same service period and codes, a new amount and identifier."""
    when = chain.now() - timedelta(days=2)
    first = submit(body=claim_body(("99214", 900), when=when))
    with pytest.raises(DuplicateClaim, match=r"the same care .* whatever the amount") as caught:
        submit(body=claim_body(("99214", 950), when=when))
    assert caught.value.earlier == first.id
    assert [c.id for c in claims.claims(chain)] == [first.id]


def test_a_claim_re_anchored_as_a_new_record_is_refused_by_the_client_and_the_contract(
    chain, store, submit, claim_body, provider, registered_patient, policy, terms, visit
):
    body = claim_body(("99214", 900))
    first = submit(body=body)
    same = anchor_claim(chain, store, provider, registered_patient, body)
    assert same.id == first.claim_record  # the same body is anchored once
    resealed = json.loads(body)
    resealed["meta"] = {"versionId": "2"}  # the same care in a body that differs
    again = anchor_claim(chain, store, provider, registered_patient, json.dumps(resealed).encode())
    assert again.id != first.claim_record
    with pytest.raises(DuplicateClaim) as caught:
        submit(record=again.id)
    assert caught.value.earlier == first.id
    keys = claims.claim_keys(claims.claim_facts(body), terms)
    args = (policy.id, 900 * 10**6, False, again.id, [visit.id], list(keys.code_hashes),
            [list(p) for p in keys.proofs], keys.service_key, keys.identifier_key)  # fmt: skip
    with pytest.raises(TransactionReverted) as reverted:
        chain.transact("submitting", provider, claims.manager(chain).functions.submitClaim(args))
    assert (reverted.value.error, reverted.value.error_args) == (
        "ClaimDuplicate", {"claimId": first.id},
    )  # fmt: skip


def test_the_same_identifier_or_the_same_claim_record_cannot_back_a_second_claim(chain, submit):
    first = submit(("99214", 900), identifier="RC-1")
    with pytest.raises(DuplicateClaim, match=r"claim identifier https://riverside-clinic\S+\|RC-1"):
        submit(("93000", 200), identifier="RC-1")  # other care, same identifier
    with pytest.raises(DuplicateClaim, match=f"record {first.hex_id} was already claimed"):
        submit(record=first.claim_record)
    assert submit(("93000", 200), identifier="").state is claims.ClaimState.APPROVED


def test_the_insurer_recomputes_a_claims_keys_from_the_decrypted_claim(
    chain, store, submit, insurer, provider, registered_patient
):
    first = submit(("99214", 900), identifier="RC-7")
    _, opened = claims.review(chain, store, insurer, first.id)
    body = opened[0].body  # the claim record comes first
    terms = claims.read_terms(chain, store, insurer, claims.get_policy(chain, first.policy_id))
    facts = claims.claim_facts(body)
    start, end = facts.service
    assert start.endswith("Z") and start < end and facts.identifier == (
        demo_claims.CLAIM_SYSTEM, "RC-7",
    )  # fmt: skip
    # the documented encodings, written out here independently of the package
    strings = ["bytes32", "string", "string", "string"]
    service = keccak(abi_encode(strings, [terms.salt, "medledger/claim-service/v1", start, end]))
    identifier = keccak(
        abi_encode(
            strings, [terms.salt, "medledger/claim-identifier/v1", demo_claims.CLAIM_SYSTEM, "RC-7"]
        )
    )
    number = providers.participant(chain, provider.address).number
    care = keccak(abi_encode(
        ["string", "address", "uint32", "bytes32", "bytes32[]"],
        ["care", registered_patient.address, number, service, list(first.code_hashes)],
    ))  # fmt: skip
    by_identifier = keccak(abi_encode(["string", "uint32", "bytes32"],
                                      ["identifier", number, identifier]))  # fmt: skip
    contract = claims.manager(chain)
    assert contract.functions.claimOfKey(care).call() == first.id
    assert contract.functions.claimOfKey(by_identifier).call() == first.id


def test_service_periods_are_canonical_so_a_reformatted_claim_keeps_its_keys(terms):
    resource = json.loads(demo_claims.claim(
        "Patient/p1", "e1", [("99213", Decimal(100))],
        datetime(2024, 3, 5, 10, 0, tzinfo=UTC), "RC-9",
    ))  # fmt: skip
    facts = claims.claim_facts(json.dumps(resource).encode())
    assert facts.service == ("2024-03-05T10:00:00Z", "2024-03-05T10:30:00Z")
    resource["billablePeriod"] = {"start": "2024-03-05T12:00:00.250+02:00",
                                  "end": "2024-03-05T10:30:00Z"}  # fmt: skip
    same = claims.claim_facts(json.dumps(resource, indent=4).encode())
    assert claims.claim_keys(same, terms) == claims.claim_keys(facts, terms)
    del resource["billablePeriod"]
    second = dict(resource["item"][0], sequence=2, servicedPeriod={"end": "2024-03-07"})
    resource["item"][0]["servicedDate"] = "2024-03-05"
    resource["item"].append(second)
    resource["total"] = {"value": 200, "currency": "USD"}  # the items' nets add up to it
    by_items = claims.claim_facts(json.dumps(resource).encode())
    assert by_items.service == ("2024-03-05", "2024-03-07")
    by_items_key = claims.claim_keys(by_items, terms).service_key
    assert by_items_key != claims.claim_keys(facts, terms).service_key
    resource["identifier"] = []
    assert claims.claim_keys(claims.claim_facts(json.dumps(resource).encode()), terms
                             ).identifier_key == bytes(32)  # fmt: skip


# ---------------------------------------------------------------------------- deductible, limits


def test_a_claim_within_the_deductible_is_approved_for_zero_and_counts_toward_it(
    chain, store, submit, insurer, provider, policy
):
    before = claims.balance_of(chain, provider.address)
    settled = submit(("99213", 30))  # covered and small: settled by the contract for zero
    assert settled.state is claims.ClaimState.APPROVED and settled.automatic
    assert (settled.paid, settled.deductible_applied) == (0, 30)
    assert "within the deductible" in claims.claim_history(chain, settled.id)[1].detail
    reviewed = submit(("99999", 15))  # not covered: left for the insurer
    assert claims.allowed_amount(chain, reviewed.id) == (0, 15)
    approved = claims.approve(chain, insurer, reviewed.id, Decimal(0))
    assert approved.state is claims.ClaimState.APPROVED
    assert (approved.paid, approved.deductible_applied) == (0, 15)
    after = claims.get_policy(chain, policy.id)
    assert (after.deductible_met, after.paid, after.open_claims) == (45, 0, 0)
    assert claims.balance_of(chain, provider.address) == before
    over = submit(("99999", 105))  # 5 of deductible left: (105 - 5) * 0.8 = 80 allowed
    with pytest.raises(PreconditionFailed, match="approving 0 is only for a claim wholly within"):
        claims.approve(chain, insurer, over.id, Decimal(0))
    documents = claims.fhir_documents(chain, store, provider, approved.id)
    assert set(documents) == {"ClaimResponse"}  # nothing paid: no EOB
    assert ClaimResponse.model_validate_json(documents["ClaimResponse"]).outcome == "complete"


def test_revoked_consent_stops_the_insurers_review(
    chain, store, submit, insurer, registered_patient
):
    claim = submit(("99214", 900))
    financial = consent.Scope(consent.ScopeKind.CATEGORY, category=Category.FINANCIAL)
    consent.revoke(
        chain, registered_patient, registered_patient.address, insurer.address, financial
    )
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
    with pytest.raises(PreconditionFailed, match="only for a claim wholly within the deductible"):
        claims.approve(chain, insurer, third.id, Decimal(0))


# ---------------------------------------------------------------------------- escalation


def test_a_claim_left_undecided_is_escalated_after_30_days_and_resolved(
    chain, submit, provider, insurer, resolver
):
    claim = submit(("99214", 900))
    until = claim.submitted_at + claims.DECISION_PERIOD
    with pytest.raises(PreconditionFailed, match=f"escalated from {until:%F %H:%M:%S}Z"):
        claims.escalate(chain, provider, claim.id)
    advance(chain, 30 * DAY)
    escalated = claims.escalate(chain, provider, claim.id)
    assert escalated.state is claims.ClaimState.DISPUTED
    with pytest.raises(PreconditionFailed, match="cannot be decided now"):
        claims.approve(chain, insurer, claim.id)
    with pytest.raises(PreconditionFailed, match="only a claim awaiting the insurer"):
        claims.escalate(chain, provider, claim.id)
    assert claims.allowed_amount(chain, claim.id) == (680, 50)
    resolved = claims.resolve(chain, resolver, claim.id, Decimal(680))
    assert resolved.state is claims.ClaimState.RESOLVED
    assert (resolved.paid, resolved.deductible_applied) == (680, 50)
    assert claims.credit_of(chain, provider.address) == 680
    events = [h.event for h in claims.get_claim(chain, claim.id, with_history=True).history]
    assert events == ["submitted", "escalated", "dispute resolved"]


def test_a_suspended_insurer_settles_nothing_and_its_claims_escalate_at_once(
    chain, submit, registered_patient, insurer, resolver, registrars, policy, stranger
):
    waiting = submit(("99214", 900))
    providers.suspend_institution(chain, registrars[0], insurer.address, "audit")
    small = submit(("99213", 100))
    assert small.review is claims.ReviewReason.INSURER_NOT_VERIFIED and not small.automatic
    with pytest.raises(PreconditionFailed, match="neither the submitter"):
        claims.escalate(chain, stranger, waiting.id)
    escalated = claims.escalate(chain, registered_patient, waiting.id)
    assert escalated.state is claims.ClaimState.DISPUTED
    with pytest.raises(PreconditionFailed, match="an uncovered claim gets no award"):
        claims.resolve(chain, resolver, waiting.id, Decimal(1), covered=False)
    resolved = claims.resolve(chain, resolver, waiting.id, Decimal(0), covered=False)
    assert resolved.state is claims.ClaimState.RESOLVED
    assert (resolved.paid, resolved.deductible_applied) == (0, 0)
    assert claims.get_policy(chain, policy.id).deductible_met == 0


# ---------------------------------------------------------------------------- pool reclaim


def test_the_insurer_takes_back_an_ended_policys_pool_once_everything_is_settled(
    chain, store, submit, insurer, provider, policy, registered_patient
):
    def renew_consent():  # the fixture's grants last 30 days
        for cat in (Category.FINANCIAL, Category.ENCOUNTER):
            consent.grant(
                chain, store, registered_patient, registered_patient.address, insurer.address,
                consent.Scope(consent.ScopeKind.CATEGORY, category=cat), consent.Purpose.PAYMENT,
                timedelta(days=30),
            )  # fmt: skip

    first = submit(("99214", 900))
    with pytest.raises(PreconditionFailed, match="has 1 open claim"):
        claims.reclaim_pool(chain, insurer, policy.id)
    claims.deny(chain, insurer, first.id, claims.ReasonCode.NOT_COVERED)
    term_end = policy.valid_until + timedelta(seconds=1)
    with pytest.raises(PreconditionFailed, match=f"taken back from {term_end:%F %H:%M:%S}Z"):
        claims.reclaim_pool(chain, insurer, policy.id)
    with pytest.raises(PreconditionFailed, match="only the insurer's own account"):
        claims.reclaim_pool(chain, provider, policy.id)

    advance(chain, 364 * DAY)  # a last claim, decided just before the term ends
    renew_consent()
    last = claims.deny(chain, insurer, submit(("99214", 800)).id, claims.ReasonCode.NOT_COVERED)
    assert last.decided_at is not None
    advance(chain, 2 * DAY)  # the term is over, the last decision's dispute window is not
    window_end = last.decided_at + timedelta(seconds=claims.dispute_window(chain))
    with pytest.raises(PreconditionFailed, match=f"taken back from {window_end:%F %H:%M:%S}Z"):
        claims.reclaim_pool(chain, insurer, policy.id)
    contract = claims.manager(chain)
    with pytest.raises(TransactionReverted) as reverted:  # the contract says the same
        chain.transact("reclaiming", insurer, contract.functions.reclaimPool(policy.id))
    assert reverted.value.error == "ClaimPolicyNotSettled"
    assert reverted.value.error_args == {
        "policyId": policy.id, "until": int(window_end.timestamp()),
    }  # fmt: skip

    advance(chain, 6 * DAY)
    before = claims.balance_of(chain, insurer.address)
    amount, _ = claims.reclaim_pool(chain, insurer, policy.id)
    assert amount == 5_000
    assert claims.balance_of(chain, insurer.address) - before == 5_000
    assert claims.get_policy(chain, policy.id).pool == 0
    with pytest.raises(PreconditionFailed, match="is empty"):
        claims.reclaim_pool(chain, insurer, policy.id)


# ---------------------------------------------------------------------------- FHIR


def test_claim_response_and_explanation_of_benefit_are_valid_fhir(chain, store, submit, provider):
    claim = submit(("99213", 180))
    documents = claims.fhir_documents(chain, store, provider, claim.id)
    response = ClaimResponse.model_validate_json(documents["ClaimResponse"])
    assert response.outcome == "complete"
    assert float(response.payment.amount.value) == 104.0
    assert response.identifier[0].value.endswith("/" + claim.hex_id)
    eob = ExplanationOfBenefit.model_validate_json(documents["ExplanationOfBenefit"])
    assert eob.outcome == "complete"
    categories = {t.category.coding[0].code: float(t.amount.value) for t in eob.total}
    assert categories == {"submitted": 180.0, "deductible": 50.0, "benefit": 104.0}


def test_a_claim_under_review_has_a_queued_response_and_no_eob(chain, store, submit, provider):
    claim = submit(("99214", 900))
    documents = claims.fhir_documents(chain, store, provider, claim.id)
    assert set(documents) == {"ClaimResponse"}
    assert ClaimResponse.model_validate_json(documents["ClaimResponse"]).outcome == "queued"


def test_an_escalated_claim_has_a_queued_response(chain, store, submit, provider):
    claim = submit(("99214", 900))
    advance(chain, 30 * DAY)
    claims.escalate(chain, provider, claim.id)
    documents = claims.fhir_documents(chain, store, provider, claim.id)
    response = ClaimResponse.model_validate_json(documents["ClaimResponse"])
    assert response.outcome == "queued" and "resolver" in response.disposition


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/fhir-samples is not beside the checkout")
def test_public_claims_are_read_with_exact_amounts():
    hl7 = claims.claim_facts((SAMPLES / "Claim-100150.json").read_bytes())
    assert (hl7.total, hl7.currency, hl7.codes) == (Decimal("135.57"), "USD",
                                                     (claims.Code("", "1200"),))  # fmt: skip
    assert hl7.service == ("2014-08-16", "2014-08-16")
    assert hl7.identifier == ("http://happyvalley.com/claim", "12345")
    bundle = json.loads(
        (SAMPLES / "Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json").read_text()
    )
    synthea = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim"]
    facts = [claims.claim_facts(json.dumps(c).encode()) for c in synthea]
    assert all(f.total == f.total.quantize(Decimal("0.01")) and f.codes for f in facts)
    assert any(c.system == "http://snomed.info/sct" for f in facts for c in f.codes)
    assert all(f.service[0].endswith("Z") and f.service[0] <= f.service[1] for f in facts)


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
        (
            {
                "resourceType": "Claim",
                "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "1"}]}}],
                "total": {"value": 1, "currency": "USD"},
            },
            "no service period",
        ),
        (
            {
                "resourceType": "Claim",
                "billablePeriod": {"start": "last Tuesday"},
                "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "1"}]}}],
                "total": {"value": 1, "currency": "USD"},
            },
            "billablePeriod.start 'last Tuesday' is not a FHIR date or dateTime",
        ),
    ],
    ids=["not-a-claim", "no-codes", "no-amount", "two-currencies", "no-service", "bad-date"],
)
def test_unusable_claims_are_refused_with_a_reason(resource, message):
    with pytest.raises(FhirStructureError, match=message) as caught:
        claims.claim_facts(json.dumps(resource).encode())
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------- CLI


# ---------------------------------------------------------------------------- a chosen claims token


@pytest.fixture
def token_deployment(chain, tmp_path, monkeypatch):
    """Factory: the session's registries with a ClaimsManager (and what follows it) deployed
    anew to pay in a fresh MockERC20 of ``places`` decimals, recorded in this test's own folder
    (for the package and the CLI). Returns the token's address."""

    def make(places: int) -> str:
        token = deploy_token(chain, dev_account(0).address, "tUSD", places)
        recorded = json.loads(deployments.deployment_file(chain).read_text())
        for name in ("DevStablecoin", "ClaimsManager", "TrialRegistry"):
            del recorded["contracts"][name]
        del recorded["claims_token"]
        (tmp_path / deployments.deployment_file(chain).name).write_text(json.dumps(recorded))
        monkeypatch.setattr(chain, "settings", replace(chain.settings, deployments_dir=tmp_path))
        monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path))
        chain.cache.clear()
        _, fresh = deployments.deploy(chain, dev_account(0), claims_token=token)
        assert fresh == ["ClaimsManager", "TrialRegistry"]
        return token

    yield make
    chain.cache.clear()


@pytest.mark.parametrize("places", [6, 18], ids=["6-decimals", "18-decimals"])
def test_a_deployment_with_a_chosen_token_funds_and_pays_claims_in_its_units(
    chain, store, medledger, token_deployment, insurer, provider, registered_patient,
    payment_consent, visit, claim_body, places,
):  # fmt: skip
    token = token_deployment(places)
    unit = 10**places
    mint(chain, dev_account(0).address, token, insurer.address, 5_000 * unit)
    issued = claims.issue_policy(
        chain, store, insurer, registered_patient.address, coverage=Decimal("0.8"),
        deductible=Decimal(50), annual_limit=Decimal(2_000), auto_settle_limit=Decimal(500),
        codes=CODES,
    )  # fmt: skip
    with pytest.raises(PreconditionFailed, match="less than 5001"):  # not minted: not mUSD
        claims.fund_policy(chain, insurer, issued.id, Decimal(5_001))
    funded = medledger("policy", "fund", str(issued.id), "5000", "--account", "dev:10", "--json")
    assert funded.exit_code == 0, funded.stderr
    assert funded.json()["funded"] == "5000." + "0" * places
    too_fine = "0." + "0" * places + "1"
    refused = medledger("policy", "fund", str(issued.id), too_fine, "--account", "dev:10")
    one_line_error(refused, f"has more than {places} decimals")
    terms = claims.read_terms(chain, store, registered_patient, claims.get_policy(chain, issued.id))
    claim = claims.submit_claim(
        chain, store, provider, issued.id, claim_body(("99213", 180)), evidence=[visit.id],
        terms=terms,
    )  # fmt: skip
    assert claim.automatic and (claim.billed, claim.paid) == (180, 104)
    manager = claims.manager(chain).address
    assert balance(chain, token, provider.address) == 104 * unit
    assert balance(chain, token, manager) == (5_000 - 104) * unit
    assert balance(chain, token, insurer.address) == 0
    assert claims.balance_of(chain, provider.address) == Decimal(104)


def test_cli_walks_a_claim_from_policy_to_payment(
    chain, medledger, tmp_path, insurer, provider, payment_consent, visit, registered_patient,
    claim_body,
):  # fmt: skip
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
    claim_file.write_bytes(claim_body(("99214", 900)))
    submitted = medledger("claim", "submit", str(claim_file), "--policy", str(policy_id),
                          "--evidence", visit.hex_id, "--terms", str(terms), "--account", "dev:4",
                          "--json")  # fmt: skip
    assert submitted.exit_code == 0, submitted.stderr
    claim_id = submitted.json()["id"]
    assert claim_id.startswith("0x") and len(claim_id) == 66
    assert submitted.json()["state"] == "submitted"
    reviewed = medledger("claim", "review", claim_id, "--account", "dev:10")
    assert reviewed.exit_code == 0 and "Encounter" in reviewed.stdout
    approved = medledger(
        "claim", "approve", str(int(claim_id, 16)), "--amount", "500", "--account", "dev:10",
        "--json",
    )  # fmt: skip
    assert approved.exit_code == 0, approved.stderr
    assert approved.json()["state"] == "partially-approved"
    listed = medledger("claim", "list", "--state", "partially-approved", "--json")
    assert [c["id"] for c in listed.json()] == [claim_id]
    text = medledger("claim", "show", claim_id)
    assert claim_id in text.stdout and "withdraw-payment" in text.stdout
    shown = medledger("claim", "show", claim_id, "--fhir", "--account", "dev:4")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["resourceType"] == "Bundle"
    paid = medledger("claim", "withdraw-payment", "--account", "dev:4", "--json")
    assert paid.exit_code == 0 and paid.json()["withdrawn"] == "500.000000"

    small = tmp_path / "small.json"
    small.write_bytes(claim_body(("99213", 100)))
    settled = medledger("claim", "submit", str(small), "--policy", str(policy_id), "--terms",
                        str(terms), "--evidence", visit.hex_id, "--account", "dev:4")  # fmt: skip
    assert settled.exit_code == 0, settled.stderr
    assert "settled automatically: paid at once, nothing to withdraw" in settled.stdout


def test_cli_escalates_resolves_and_reclaims(
    chain, medledger, submit, policy, insurer, resolver, provider
):
    claim = submit(("99214", 900))
    advance(chain, 30 * DAY)
    escalated = medledger("claim", "escalate", claim.hex_id, "--account", "dev:4", "--json")
    assert escalated.exit_code == 0, escalated.stderr
    assert escalated.json()["state"] == "disputed"
    resolved = medledger("claim", "resolve", claim.hex_id, "--uncovered", "--account", "dev:12",
                         "--json")  # fmt: skip
    assert resolved.exit_code == 0, resolved.stderr
    assert (resolved.json()["state"], resolved.json()["deductible_applied"]) == (
        "resolved", "0.000000",
    )  # fmt: skip
    advance(chain, 366 * DAY)
    reclaimed = medledger("policy", "reclaim", str(policy.id), "--account", "dev:10", "--json")
    assert reclaimed.exit_code == 0, reclaimed.stderr
    assert reclaimed.json()["reclaimed"] == "5000.000000"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["claim", "show", "7"], f"claim 0x{'0' * 63}7 is not submitted"),
        (["claim", "show", "seven"], "'seven' is not a claim id"),
        (["policy", "show", "3"], "policy 3 is not issued"),
        (["claim", "deny", "1", "--reason", "because"], "unknown reason code"),
        (["claim", "list", "--state", "paid"], "unknown state"),
        (["claim", "withdraw-payment", "--account", "dev:4"], "nothing is credited"),
        (["claim", "submit", "--policy", "1"], "give a FHIR Claim file or --record ID"),
        (["claim", "submit", "nowhere.json", "--policy", "1"], "nowhere.json: cannot be read"),
        (["claim", "approve", "1", "--amount", "-5"], "is not a non-negative amount"),
    ],
    ids=[
        "unknown-claim",
        "bad-claim-id",
        "unknown-policy",
        "bad-reason",
        "bad-state",
        "nothing-to-withdraw",
        "no-claim",
        "missing-file",
        "negative-amount",
    ],
)
def test_cli_errors_are_one_line_with_a_non_zero_exit(medledger, provider, args, message):
    one_line_error(medledger(*args), message)


def test_cli_refusals_of_the_claim_rules_are_one_line(
    chain, store, medledger, tmp_path, submit, claim_body, policy, insurer, provider, resolver,
    other_provider, registered_patient, visit, terms,
):  # fmt: skip
    terms_file = tmp_path / "terms.json"
    terms_file.write_text(json.dumps(terms.to_json()))
    claim_file = tmp_path / "claim.json"
    claim_file.write_bytes(claim_body(("99214", 900)))
    send = ("claim", "submit", str(claim_file), "--policy", str(policy.id), "--terms",
            str(terms_file), "--evidence", visit.hex_id)  # fmt: skip
    first = medledger(*send, "--account", "dev:4", "--json")
    assert first.exit_code == 0, first.stderr
    first_id = first.json()["id"]
    again = medledger(*send, "--account", "dev:4", "--json")  # a re-run writes nothing again
    assert again.exit_code == 0 and again.json()["id"] == first_id, again.stderr
    assert again.json()["already_submitted"] is True
    one_line_error(medledger(*send, "--account", "dev:5"), "written by the care provider")
    theirs = anchor_claim(chain, store, other_provider, registered_patient,
                          claim_body(("99213", 100)))  # fmt: skip
    record_send = ("claim", "submit", "--record", theirs.hex_id, "--policy", str(policy.id),
                   "--terms", str(terms_file), "--account", "dev:4")  # fmt: skip
    one_line_error(medledger(*record_send), "written by another provider")
    one_line_error(medledger("claim", "escalate", first_id, "--account", "dev:4"),
                   "can be escalated from")  # fmt: skip
    one_line_error(medledger("policy", "reclaim", str(policy.id), "--account", "dev:10"),
                   "has 1 open claim")  # fmt: skip
    one_line_error(medledger("claim", "approve", first_id, "--amount", "0", "--account", "dev:10"),
                   "approving 0 is only for a claim wholly within the deductible")  # fmt: skip
    for _ in range(3):
        claims.request_info(chain, insurer, int(first_id, 16), claims.ReasonCode.OTHER)
        claims.provide_info(chain, store, provider, int(first_id, 16), [visit.id])
    one_line_error(medledger("claim", "request-info", first_id, "--reason", "other",
                             "--account", "dev:10"), "the most allowed (3)")  # fmt: skip
    claims.deny(chain, insurer, int(first_id, 16), claims.ReasonCode.NOT_COVERED)
    claims.dispute(chain, provider, int(first_id, 16), claims.ReasonCode.DECISION_DISPUTED)
    resolve = ("claim", "resolve", first_id, "--award", "5", "--uncovered", "--account", "dev:12")
    one_line_error(medledger(*resolve), "an uncovered claim gets no award")
    one_line_error(
        medledger("policy", "issue", "--patient", registered_patient.address, "--deductible",
                  "500", "--limit", "100", "--code", f"{CPT}|99213", "--account", "dev:10"),
        "more than the annual limit",
    )  # fmt: skip


def test_a_submission_stopped_after_anchoring_its_record_resumes_with_that_record(
    chain, store, submit, claim_body, provider, registered_patient
):
    body = claim_body(("99214", 900))
    record = anchor_claim(chain, store, provider, registered_patient, body)  # then it stopped
    before = len(records.for_patient(chain, registered_patient.address))
    claim = submit(body=body)
    assert claim.claim_record == record.id
    assert len(records.for_patient(chain, registered_patient.address)) == before


# ---------------------------------------------------------------------------- after a recovery


def test_after_a_stolen_key_is_recovered_the_patients_payments_go_to_the_new_key_only(
    chain, store, submit, provider, policy, registered_patient, insurer, claim_body, visit
):
    """The patient's key is stolen; two guardians move control to a new key. A credit from
    before and an automatic payment after both reach the new key; the old key (the patient's
    id) withdraws nothing, and is told so before anything is sent."""
    old, new_key = registered_patient, dev_account(19)
    guardians = [dev_account(16), dev_account(17)]
    record = anchor_claim(chain, store, provider, old, claim_body(("80053", 300)))
    reviewed = claims.submit_claim(
        chain, store, old, policy.id, record=record.id, pay_patient=True, evidence=[visit.id]
    )
    providers.recovery.set_guardians(
        chain, old, [g.address for g in guardians], 2, timedelta(days=1)
    )
    for guardian in guardians:
        providers.recovery.approve_recovery(chain, guardian, old.address, new_key.address)
    advance(chain, DAY + 1)
    providers.recovery.complete_recovery(chain, guardians[0], old.address)
    providers.publish_key(chain, new_key)  # records written from now on are sealed for it
    assert claims.approve(chain, insurer, reviewed.id).paid == 200  # credited to the patient's id

    old_balance, new_balance = (claims.balance_of(chain, a.address) for a in (old, new_key))
    paid = submit(("99213", 180), pay_patient=True)
    assert paid.automatic and paid.paid == 144  # the deductible was met by the first claim
    assert claims.balance_of(chain, new_key.address) - new_balance == 144
    assert claims.balance_of(chain, old.address) == old_balance

    assert claims.credit_of(chain, old.address) == 200  # kept under the patient's id
    assert claims.withdrawable(chain, old.address) == 0
    nonce = chain.w3.eth.get_transaction_count(old.address)
    with pytest.raises(PreconditionFailed, match="nothing is credited"):
        claims.withdraw(chain, old)
    assert chain.w3.eth.get_transaction_count(old.address) == nonce  # nothing sent
    assert claims.withdrawable(chain, new_key.address) == 200
    amount, _ = claims.withdraw(chain, new_key)
    assert amount == 200 and claims.credit_of(chain, old.address) == 0
    assert claims.balance_of(chain, new_key.address) - new_balance == 344
