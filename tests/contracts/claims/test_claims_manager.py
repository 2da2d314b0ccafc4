"""ClaimsManager: policies, funding, submission (who may claim on which record, duplicates),
automatic settlement, review, information requests, disputes, escalation, resolution,
withdrawal, the return of an ended policy's pool, views; and the devnet stablecoin.

The world is described in this folder's conftest. Unless a test says otherwise, the policy
is the factory default: ``patient`` insured by ``insurer``, 80 % coverage, a 100 mUSD
deductible, a 5,000 mUSD annual limit, automatic settlement up to 500 mUSD, the ``COVERED``
codes; claims are submitted by ``clinic`` on a FINANCIAL claim record the clinic wrote, with
one consented evidence record, code 99213 and fresh service and identifier keys. A claim's id
is its claim record's id.

Times: the two networks differ in when a transaction runs after the head (the same second or
the next, depending on the wall clock on Anvil), so a test of a boundary pins the time of
the transaction with ``next_tx_at`` after advancing past the wall clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..support import ZERO_ADDRESS, Category, Kind, assert_events, digest, reverts
from .conftest import PAYMENT, RECORD_SCOPE, RESOLVER_ROLE, TERMS_DIGEST, Evidence
from .model import (
    COVERED,
    DAY,
    DECISION_PERIOD,
    DISPUTE_WINDOW,
    FINANCIAL,
    MAX_INFO_REQUESTS,
    MAX_TERM,
    UNCOVERED,
    USD,
    ClaimModel,
    ClaimState,
    CodeList,
    ReviewReason,
    allowed_amount,
    allowed_now,
    care_key,
    coverage,
    escalation_until,
    identifier_key,
    may_approve_zero,
    patient_claim_id,
    record_key,
    review_reason,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

    from ..conftest import Anchored
    from .conftest import IssuedPolicy, SubmittedClaim

TREATMENT = 1  # IConsentManager.Purpose.Treatment
UNKNOWN_RECORD = digest("no-such-record")
DEFAULT_ADMIN_ROLE = HexBytes(bytes(32))
MAX_UINT128 = 2**128 - 1


# ============================================================================ helpers


@pytest.fixture
def funded_policy(
    issue_policy: Callable[..., IssuedPolicy], fund: Callable[..., ReceiptAPI]
) -> IssuedPolicy:
    """A default policy with 10,000 mUSD in its pool (the model says so too)."""
    policy = issue_policy()
    fund(policy.id, 10_000 * USD)
    policy.model.funded = 10_000 * USD
    return policy


@pytest.fixture
def manual_policy(
    issue_policy: Callable[..., IssuedPolicy], fund: Callable[..., ReceiptAPI]
) -> IssuedPolicy:
    """A funded policy without automatic settlement: every claim waits for review."""
    policy = issue_policy(autoSettleLimit=0)
    fund(policy.id, 10_000 * USD)
    policy.model.funded = 10_000 * USD
    return policy


def submitted_event(
    manager: Any,
    claim: SubmittedClaim,
    submitter: Any,
    *,
    automatic: bool,
    review: ReviewReason,
) -> Any:
    s = claim.submission
    return manager.ClaimSubmitted(
        claimId=claim.id,
        policyId=s["policyId"],
        submitter=submitter,
        claimRecord=s["claimRecord"],
        billed=s["billed"],
        payPatient=s["payPatient"],
        evidence=s["evidence"],
        codeHashes=s["codeHashes"],
        automatic=automatic,
        review=review,
    )


def model_claim(
    claim: SubmittedClaim, submitter: Any, submitted_at: int, **fields: Any
) -> ClaimModel:
    s = claim.submission
    return ClaimModel(
        submitter=getattr(submitter, "address", submitter),
        policy_id=s["policyId"],
        billed=s["billed"],
        pay_patient=s["payPatient"],
        submitted_at=submitted_at,
        **fields,
    )


# ============================================================================ deployment


def test_constructor_sets_token_dispute_window_admin_constants_and_empty_counts(
    claims_manager: Any, token: Any, admin: AccountAPI, resolver: AccountAPI
) -> None:
    assert claims_manager.TOKEN() == token.address
    assert claims_manager.DISPUTE_WINDOW() == DISPUTE_WINDOW
    assert claims_manager.DECISION_PERIOD() == DECISION_PERIOD
    assert claims_manager.MAX_INFO_REQUESTS() == MAX_INFO_REQUESTS
    assert claims_manager.FINANCIAL_CATEGORY() == FINANCIAL == Category.FINANCIAL
    assert claims_manager.hasRole(DEFAULT_ADMIN_ROLE, admin)
    assert HexBytes(claims_manager.RESOLVER_ROLE()) == RESOLVER_ROLE
    assert claims_manager.hasRole(RESOLVER_ROLE, resolver)
    assert claims_manager.policyCount() == 0


def test_dev_stablecoin_is_six_decimal_musd_minted_by_its_owner_only(
    token: Any, admin: AccountAPI, stranger: AccountAPI
) -> None:
    assert token.name() == "MedLedger Dev Dollar"
    assert token.symbol() == "mUSD"
    assert token.decimals() == 6
    assert token.owner() == admin.address

    tx = token.mint(stranger, 5 * USD, sender=admin)

    assert_events(tx, token.Transfer(**{"from": ZERO_ADDRESS, "to": stranger, "value": 5 * USD}))
    assert token.balanceOf(stranger) == 5 * USD
    with reverts(token.OwnableUnauthorizedAccount, account=stranger):
        token.mint(stranger, 1, sender=stranger)


# ============================================================================ issuePolicy


@pytest.mark.parametrize("caller", ["insurer", "practitioner"])
def test_issue_policy_stores_terms_and_emits_policy_issued_naming_the_institution(
    claims_manager: Any,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    patient: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    policy_of: Callable[[int], dict[str, Any]],
    caller: str,
) -> None:
    sender = insurer if caller == "insurer" else adjuster

    policy = issue_policy(sender=sender)

    t = policy.terms
    assert policy.id == 1
    assert claims_manager.policyCount() == 1
    assert_events(
        policy.receipt,
        claims_manager.PolicyIssued(
            policyId=1,
            insurer=insurer,
            patient=patient,
            validFrom=t["validFrom"],
            validUntil=t["validUntil"],
            coverageBps=t["coverageBps"],
            deductible=t["deductible"],
            annualLimit=t["annualLimit"],
            autoSettleLimit=t["autoSettleLimit"],
            codesRoot=COVERED.root,
            termsDigest=TERMS_DIGEST,
        ),
    )
    assert policy.model.insurer == insurer.address
    assert policy_of(1) == policy.model.as_dict()


def test_policy_ids_count_up_from_one(
    claims_manager: Any, other_patient: AccountAPI, issue_policy: Callable[..., IssuedPolicy]
) -> None:
    assert [issue_policy().id, issue_policy(patient=other_patient).id, issue_policy().id] == [
        1,
        2,
        3,
    ]
    assert claims_manager.policyCount() == 3


@pytest.mark.parametrize(
    "caller",
    [
        "stranger",
        "patient",
        "care-provider",
        "research-sponsor",
        "suspended-insurer",
        "removed-practitioner",
        "pending-insurer",
    ],
)
def test_issue_policy_reverts_when_caller_is_not_a_verified_insurer(
    claims_manager: Any,
    provider_registry: Any,
    accounts: Any,
    admin: AccountAPI,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    stranger: AccountAPI,
    patient: AccountAPI,
    clinic: AccountAPI,
    sponsor: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    suspend: Callable[..., Any],
    apply_institution: Callable[..., Any],
    caller: str,
) -> None:
    account = {
        "stranger": stranger,
        "patient": patient,
        "care-provider": clinic,
        "research-sponsor": sponsor,
        "suspended-insurer": insurer,
        "removed-practitioner": adjuster,
    }.get(caller)
    if caller == "suspended-insurer":
        suspend(insurer)
    elif caller == "removed-practitioner":
        provider_registry.removePractitioner(adjuster, sender=insurer)
    elif caller == "pending-insurer":
        account = accounts.generate_test_account()
        admin.transfer(account, 10**18)
        apply_institution(account, Kind.INSURER)
    with reverts(claims_manager.ClaimNotInsurer, caller=account):
        issue_policy(sender=account)


@pytest.mark.parametrize("insured", ["no-role", "institution", "practitioner", "zero-address"])
def test_issue_policy_reverts_when_insured_is_not_a_registered_patient(
    claims_manager: Any,
    stranger: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    insured: str,
) -> None:
    account = {
        "no-role": stranger.address,
        "institution": clinic.address,
        "practitioner": doctor.address,
        "zero-address": ZERO_ADDRESS,
    }[insured]
    with reverts(claims_manager.ClaimPatientNotRegistered, patient=account):
        issue_policy(patient=account)


@pytest.mark.parametrize(
    "case",
    [
        "starts-when-it-ends",
        "ends-before-it-starts",
        "term-366-days-and-a-second",
        "coverage-zero",
        "coverage-above-100-percent",
        "annual-limit-zero",
        "deductible-above-annual-limit",
        "codes-root-zero",
    ],
)
def test_issue_policy_reverts_for_invalid_terms(
    claims_manager: Any,
    issue_policy: Callable[..., IssuedPolicy],
    now: Callable[[], int],
    case: str,
) -> None:
    start = now()
    overrides = {
        "starts-when-it-ends": {"validFrom": start, "validUntil": start},
        "ends-before-it-starts": {"validFrom": start, "validUntil": start - 1},
        "term-366-days-and-a-second": {"validFrom": start, "validUntil": start + MAX_TERM + 1},
        "coverage-zero": {"coverageBps": 0},
        "coverage-above-100-percent": {"coverageBps": 10_001},
        "annual-limit-zero": {"annualLimit": 0},
        "deductible-above-annual-limit": {"deductible": 500 * USD + 1, "annualLimit": 500 * USD},
        "codes-root-zero": {"codesRoot": bytes(32)},
    }[case]
    with reverts(claims_manager.ClaimInvalidTerms):
        issue_policy(**overrides)


def test_issue_policy_accepts_the_boundaries_of_valid_terms(
    issue_policy: Callable[..., IssuedPolicy],
    policy_of: Callable[[int], dict[str, Any]],
    now: Callable[[], int],
) -> None:
    start = now()
    longest = issue_policy(validFrom=start, validUntil=start + MAX_TERM, coverageBps=1)
    full = issue_policy(coverageBps=10_000, deductible=0, autoSettleLimit=0, annualLimit=1)
    all_deductible = issue_policy(deductible=500 * USD, annualLimit=500 * USD)
    assert policy_of(longest.id) == longest.model.as_dict()
    assert policy_of(full.id) == full.model.as_dict()
    assert policy_of(all_deductible.id) == all_deductible.model.as_dict()


# ============================================================================ fundPolicy


@pytest.mark.parametrize("funder", ["insurer", "anyone"])
def test_fund_policy_pulls_tokens_into_the_pool_and_emits_policy_funded(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    stranger: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    policy_of: Callable[[int], dict[str, Any]],
    funder: str,
) -> None:
    account = insurer if funder == "insurer" else stranger
    policy = issue_policy()

    first = fund(policy.id, 700 * USD, funder=account)
    second = fund(policy.id, 300 * USD, funder=account)

    for tx, amount, total in ((first, 700, 700), (second, 300, 1_000)):
        assert_events(
            tx,
            token.Transfer(**{"from": account, "to": claims_manager, "value": amount * USD}),
            claims_manager.PolicyFunded(
                policyId=policy.id, funder=account, amount=amount * USD, funded=total * USD
            ),
        )
    policy.model.funded = 1_000 * USD
    assert policy_of(policy.id) == policy.model.as_dict()
    assert token.balanceOf(claims_manager) == 1_000 * USD
    assert token.balanceOf(account) == 0


def test_fund_policy_reverts_for_unknown_policy(
    claims_manager: Any, insurer: AccountAPI, issue_policy: Callable[..., IssuedPolicy]
) -> None:
    issue_policy()
    for policy_id in (0, 2):
        with reverts(claims_manager.ClaimUnknownPolicy, policyId=policy_id):
            claims_manager.fundPolicy(policy_id, 1, sender=insurer)


def test_fund_policy_reverts_for_zero_amount(
    claims_manager: Any, insurer: AccountAPI, issue_policy: Callable[..., IssuedPolicy]
) -> None:
    policy = issue_policy()
    with reverts(claims_manager.ClaimInvalidAmount, amount=0):
        claims_manager.fundPolicy(policy.id, 0, sender=insurer)


def test_fund_policy_reverts_without_allowance_and_moves_nothing(
    project: Any,
    claims_manager: Any,
    token: Any,
    admin: AccountAPI,
    insurer: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
) -> None:
    policy = issue_policy()
    token.mint(insurer, 10 * USD, sender=admin)
    token.approve(claims_manager, 4 * USD, sender=insurer)
    # Raised by the token inside the manager's call: the container's error, which names no
    # address, because Ape reports the manager (the transaction's target) as the source.
    with reverts(
        project.DevStablecoin.ERC20InsufficientAllowance,
        spender=claims_manager,
        allowance=4 * USD,
        needed=5 * USD,
    ):
        claims_manager.fundPolicy(policy.id, 5 * USD, sender=insurer)
    assert token.balanceOf(insurer) == 10 * USD
    assert claims_manager.getPolicy(policy.id).funded == 0


def test_fund_policy_reverts_when_the_pool_would_exceed_128_bits(
    claims_manager: Any,
    insurer: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
) -> None:
    policy = issue_policy()
    fund(policy.id, MAX_UINT128)
    with reverts(claims_manager.ClaimInvalidAmount, amount=1):
        fund(policy.id, 1)
    assert claims_manager.getPolicy(policy.id).funded == MAX_UINT128


@pytest.fixture
def fee_token(project: Any, admin: AccountAPI) -> Any:
    """A token that burns 1 % of every transfer."""
    return project.MockFeeOnTransferToken.deploy(100, sender=admin)


def test_fund_policy_with_fee_on_transfer_token_credits_only_what_arrived(
    project: Any,
    fee_token: Any,
    deploy_claims_manager: Callable[..., Any],
    insurer: AccountAPI,
    patient: AccountAPI,
    now: Callable[[], int],
) -> None:
    manager = deploy_claims_manager(fee_token)
    start = now() - DAY
    terms = {
        "patient": patient.address,
        "validFrom": start,
        "validUntil": start + 365 * DAY,
        "coverageBps": 8_000,
        "deductible": 0,
        "annualLimit": 5_000 * USD,
        "autoSettleLimit": 0,
        "codesRoot": COVERED.root,
        "termsDigest": TERMS_DIGEST,
    }
    manager.issuePolicy(terms, sender=insurer)
    fee_token.mint(insurer, 1_000 * USD, sender=insurer)
    fee_token.approve(manager, 1_000 * USD, sender=insurer)

    tx = manager.fundPolicy(1, 1_000 * USD, sender=insurer)

    assert_events(
        tx,
        fee_token.Transfer(**{"from": insurer, "to": ZERO_ADDRESS, "value": 10 * USD}),
        fee_token.Transfer(**{"from": insurer, "to": manager, "value": 990 * USD}),
        manager.PolicyFunded(policyId=1, funder=insurer, amount=990 * USD, funded=990 * USD),
    )
    assert manager.getPolicy(1).funded == 990 * USD
    assert fee_token.balanceOf(manager) == 990 * USD


def test_fund_policy_reverts_when_the_token_delivers_nothing(
    project: Any,
    admin: AccountAPI,
    deploy_claims_manager: Callable[..., Any],
    insurer: AccountAPI,
    patient: AccountAPI,
    now: Callable[[], int],
) -> None:
    all_fee = project.MockFeeOnTransferToken.deploy(10_000, sender=admin)
    manager = deploy_claims_manager(all_fee)
    start = now() - DAY
    manager.issuePolicy(
        (patient, start, start + DAY, 8_000, 0, USD, 0, COVERED.root, TERMS_DIGEST),
        sender=insurer,
    )
    all_fee.mint(insurer, USD, sender=insurer)
    all_fee.approve(manager, USD, sender=insurer)
    with reverts(manager.ClaimInvalidAmount, amount=USD):
        manager.fundPolicy(1, USD, sender=insurer)


# ============================================================================ submitClaim


def record_number(record: bytes) -> int:
    """A record id as a claim id: ``uint256(claimRecord)``."""
    return int.from_bytes(bytes(record), "big")


@pytest.mark.parametrize(
    ("caller", "writer", "stored_as", "review"),
    [
        ("clinic", "clinic", "clinic", ReviewReason.AUTO_SETTLE_DISABLED),
        ("clinic", "doctor", "clinic", ReviewReason.AUTO_SETTLE_DISABLED),
        ("hospital", "hospital", "hospital", ReviewReason.AUTO_SETTLE_DISABLED),
        ("laboratory", "laboratory", "laboratory", ReviewReason.AUTO_SETTLE_DISABLED),
        ("doctor", "clinic", "clinic", ReviewReason.AUTO_SETTLE_DISABLED),
        ("patient", "clinic", "patient", ReviewReason.SUBMITTED_BY_PATIENT),
    ],
    ids=[
        "clinic-on-its-record",
        "clinic-on-its-practitioners-record",
        "hospital-on-its-record",
        "laboratory-on-its-record",
        "practitioner-as-its-clinic",
        "patient-on-the-clinics-record",
    ],
)
def test_submit_claim_stores_the_claim_under_its_id_and_emits_claim_submitted(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    manual_policy: IssuedPolicy,
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    block_time: Callable[[ReceiptAPI], int],
    number_of: Callable[[Any], int],
    caller: str,
    writer: str,
    stored_as: str,
    review: ReviewReason,
) -> None:
    """A provider's claim has its record's id and takes its care and identifier keys at once;
    a patient's claim has its own id (``patientClaimIdOf``) and only checks that its keys are
    free (it takes them, and its record, when approved: see the duplicate tests)."""
    sender = request.getfixturevalue(caller)
    submitter = request.getfixturevalue(stored_as)
    records = claim_evidence(evidence=2, issuer=request.getfixturevalue(writer))
    provider = number_of(request.getfixturevalue("clinic" if writer == "doctor" else writer))
    record = records.claim_record

    claim = submit_claim(manual_policy.id, 250 * USD, sender=sender, records=records)

    by_patient = caller == "patient"
    assert claim.id == (patient_claim_id(record) if by_patient else record_number(record))
    if by_patient:  # the record's own id stays free for the provider's claim
        with reverts(claims_manager.ClaimUnknownClaim, claimId=record_number(record)):
            claims_manager.getClaim(record_number(record))
    assert_events(
        claim.receipt,
        submitted_event(claims_manager, claim, submitter, automatic=False, review=review),
    )
    expected = model_claim(claim, submitter, block_time(claim.receipt))
    assert claim_of(claim.id) == expected.as_dict()
    assert claims_manager.allowedAmount(claim.id) == allowed_now(manual_policy.model, 250 * USD)
    assert claims_manager.creditOf(submitter) == 0
    assert claims_manager.openClaimsOf(manual_policy.id) == 1
    s = claim.submission
    keys = [
        care_key(
            manual_policy.terms["patient"], provider, s["serviceKey"], s["codeHashes"]
        ),
        identifier_key(provider, s["identifierKey"]),
    ]
    holder = 0 if by_patient else claim.id
    assert [claims_manager.claimOfKey(k) for k in keys] == [holder, holder]
    assert claims_manager.claimOfKey(record_key(record)) == 0  # taken by an approval only


def test_submit_claim_needs_no_evidence_beyond_the_claim_record(
    claims_manager: Any,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    claim = submit_claim(manual_policy.id, 250 * USD, evidence=0)
    assert_events(
        claim.receipt,
        submitted_event(
            claims_manager, claim, clinic, automatic=False, review=ReviewReason.AUTO_SETTLE_DISABLED
        ),
    )


def test_claim_ids_are_the_claim_record_ids_across_policies(
    claims_manager: Any,
    other_patient: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    first = issue_policy(autoSettleLimit=0)
    second = issue_policy(autoSettleLimit=0, patient=other_patient)
    mine, theirs, more = claim_evidence(), claim_evidence(patient=other_patient), claim_evidence()
    claims = [
        (submit_claim(first.id, USD, records=mine), first, mine),
        (submit_claim(second.id, USD, records=theirs), second, theirs),
        (submit_claim(first.id, USD, records=more), first, more),
    ]
    for claim, policy, records in claims:
        assert claim.id == record_number(records.claim_record)
        assert claims_manager.getClaim(claim.id).policyId == policy.id
    assert claims_manager.openClaimsOf(first.id) == 2
    assert claims_manager.openClaimsOf(second.id) == 1


def test_submit_claim_reverts_for_unknown_policy(
    claims_manager: Any, submit_claim: Callable[..., SubmittedClaim]
) -> None:
    with reverts(claims_manager.ClaimUnknownPolicy, policyId=7):
        submit_claim(7, USD)


@pytest.mark.parametrize(
    "caller",
    [
        "stranger",
        "other-patient",
        "insurer",
        "research-sponsor",
        "suspended-clinic",
        "removed-practitioner",
    ],
)
def test_submit_claim_reverts_when_caller_is_neither_care_provider_nor_the_patient(
    claims_manager: Any,
    provider_registry: Any,
    manual_policy: IssuedPolicy,
    stranger: AccountAPI,
    other_patient: AccountAPI,
    insurer: AccountAPI,
    sponsor: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    suspend: Callable[..., Any],
    caller: str,
) -> None:
    records = claim_evidence()
    account = {
        "stranger": stranger,
        "other-patient": other_patient,
        "insurer": insurer,
        "research-sponsor": sponsor,
        "suspended-clinic": clinic,
        "removed-practitioner": doctor,
    }[caller]
    if caller == "suspended-clinic":
        suspend(clinic)
    elif caller == "removed-practitioner":
        provider_registry.removePractitioner(doctor, sender=clinic)
    with reverts(
        claims_manager.ClaimNotProviderOrPatient, caller=account, policyId=manual_policy.id
    ):
        submit_claim(manual_policy.id, USD, sender=account, records=records)


@pytest.mark.parametrize("when", ["before-cover", "after-cover"])
def test_submit_claim_reverts_outside_the_period_of_cover(
    claims_manager: Any,
    issue_policy: Callable[..., IssuedPolicy],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    next_tx_at: Callable[[int], int],
    now: Callable[[], int],
    when: str,
) -> None:
    records = claim_evidence()
    start = advance_time(DAY)
    if when == "before-cover":
        policy = issue_policy(validFrom=start + 30 * DAY, validUntil=start + 60 * DAY)
        at = next_tx_at(start + 30 * DAY - 1)  # the second before cover starts
    else:
        policy = issue_policy(validFrom=start - 60 * DAY, validUntil=start + DAY)
        at = next_tx_at(start + DAY + 1)  # the second after cover ends
    with reverts(claims_manager.ClaimPolicyNotActive, policyId=policy.id, at=at):
        submit_claim(policy.id, USD, records=records)


def test_submit_claim_is_accepted_in_the_first_and_last_second_of_cover(
    claims_manager: Any,
    issue_policy: Callable[..., IssuedPolicy],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    records = [claim_evidence(), claim_evidence()]
    first_second = advance_time(DAY) + DAY
    policy = issue_policy(autoSettleLimit=0, validFrom=first_second, validUntil=first_second + DAY)
    next_tx_at(first_second)
    first = submit_claim(policy.id, USD, records=records[0])
    next_tx_at(first_second + DAY)
    last = submit_claim(policy.id, USD, records=records[1])
    assert block_time(first.receipt) == first_second
    assert block_time(last.receipt) == first_second + DAY


def test_submit_claim_reverts_for_zero_billed(
    claims_manager: Any, manual_policy: IssuedPolicy, submit_claim: Callable[..., SubmittedClaim]
) -> None:
    with reverts(claims_manager.ClaimInvalidAmount, amount=0):
        submit_claim(manual_policy.id, 0)


@pytest.mark.parametrize(
    ("codes", "proofs"),
    [(0, 0), (2, 1), (1, 2)],
    ids=["no-code", "fewer-proofs-than-codes", "more-proofs-than-codes"],
)
def test_submit_claim_reverts_without_codes_or_with_unpaired_proofs(
    claims_manager: Any,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    codes: int,
    proofs: int,
) -> None:
    names = ("99213", "80053")[:codes]
    proof_list = [COVERED.proof("99213")] * proofs
    with reverts(claims_manager.ClaimInvalidCodes, codes=codes, proofs=proofs):
        submit_claim(manual_policy.id, USD, codes=names, proofs=proof_list)


@pytest.mark.parametrize(
    ("codes", "ascending", "prove"),
    [
        (("99213", "99213"), True, True),
        (("99213", "99213"), True, False),
        (("99213", "80053"), False, True),
        (("99213", "80053"), False, False),
        (("99213", "80053", "85025"), False, True),
    ],
    ids=[
        "repeated-code",
        "repeated-code-unproven",
        "descending",
        "descending-unproven",
        "last-pair-out-of-order",
    ],
)
def test_submit_claim_reverts_unless_the_codes_are_strictly_ascending(
    claims_manager: Any,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    codes: tuple[str, ...],
    ascending: bool,
    prove: bool,
) -> None:
    """One canonical list per set of codes, so that the same care always has the same key: a
    repeated code, or any pair out of order, is refused (even on a policy that would settle)."""
    hashes = sorted(COVERED.hashes[c] for c in codes)
    if not ascending:
        hashes[-2], hashes[-1] = hashes[-1], hashes[-2]
    proofs = [COVERED.proofs[bytes(h)] for h in hashes] if prove else []
    with reverts(claims_manager.ClaimInvalidCodes, codes=len(codes), proofs=len(proofs)):
        submit_claim(funded_policy.id, 300 * USD, codes=tuple(hashes), proofs=proofs, sort=False)


def test_submit_claim_reverts_without_a_service_key(
    claims_manager: Any, funded_policy: IssuedPolicy, submit_claim: Callable[..., SubmittedClaim]
) -> None:
    with reverts(claims_manager.ClaimServiceRequired):
        submit_claim(funded_policy.id, 300 * USD, overrides={"serviceKey": bytes(32)})


@pytest.mark.parametrize(
    ("caller", "writer"),
    [
        ("hospital", "clinic"),
        ("other_clinic", "clinic"),
        ("other_doctor", "clinic"),
        ("doctor", "hospital"),
        ("clinic", "patient"),
        ("clinic", "unknown"),
    ],
    ids=[
        "hospital-on-the-clinics-record",
        "clinic-that-never-treated-the-patient",
        "practitioner-of-another-clinic",
        "clinics-practitioner-on-the-hospitals-record",
        "clinic-on-a-record-the-patient-wrote",
        "clinic-on-an-unknown-record",
    ],
)
def test_submit_claim_reverts_when_a_provider_claims_on_a_record_it_did_not_write(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    create_record: Callable[..., Anchored],
    consent_payment: Callable[..., ReceiptAPI],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    caller: str,
    writer: str,
) -> None:
    """A provider's claim is on its own institution's record: a verified care provider cannot
    claim for care another provider (or the patient) recorded, however public the record."""
    sender = request.getfixturevalue(caller)
    if writer == "unknown":
        records = Evidence(UNKNOWN_RECORD, [])
    elif writer == "patient":
        own = create_record(patient, patient, category=Category.FINANCIAL).id
        consent_payment(own)
        records = Evidence(own, [])
    else:
        records = claim_evidence(evidence=0, issuer=request.getfixturevalue(writer))
    with reverts(claims_manager.ClaimNotRecordWriter, caller=sender, record=records.claim_record):
        submit_claim(funded_policy.id, 300 * USD, sender=sender, records=records)


@pytest.mark.parametrize(
    ("sender_name", "record"),
    [
        ("patient", "written-by-the-patient"),
        ("clinic", "lab-category"),
        ("clinic", "other-category"),
        ("patient", "lab-category"),
        ("clinic", "another-patients-record"),
        ("patient", "another-patients-record"),
        ("patient", "unknown"),
    ],
    ids=[
        "patient-on-their-own-record",
        "clinic-on-its-lab-record",
        "clinic-on-its-other-record",
        "patient-on-the-clinics-lab-record",
        "clinic-on-another-patients-record",
        "patient-on-another-patients-record",
        "patient-on-an-unknown-record",
    ],
)
def test_submit_claim_reverts_unless_the_record_is_financial_by_a_provider_for_the_patient(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    funded_policy: IssuedPolicy,
    create_record: Callable[..., Anchored],
    consent_payment: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    sender_name: str,
    record: str,
) -> None:
    """Every record is consented to the insurer for payment: only the kind of record refuses."""
    sender = request.getfixturevalue(sender_name)
    if record == "unknown":
        claim_record = UNKNOWN_RECORD
    else:
        issuer, holder, category = {
            "written-by-the-patient": (patient, patient, Category.FINANCIAL),
            "lab-category": (clinic, patient, Category.LAB),
            "other-category": (clinic, patient, Category.OTHER),
            "another-patients-record": (clinic, other_patient, Category.FINANCIAL),
        }[record]
        claim_record = create_record(issuer, holder, category=category).id
        consent_payment(claim_record, patient=holder)
    with reverts(claims_manager.ClaimRecordNotProviders, record=claim_record):
        submit_claim(funded_policy.id, 300 * USD, sender=sender, records=Evidence(claim_record, []))
    assert claims_manager.openClaimsOf(funded_policy.id) == 0


@pytest.mark.parametrize("which", ["other-patients-record", "unknown-record"])
def test_submit_claim_reverts_when_an_evidence_record_is_not_the_patients(
    claims_manager: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    manual_policy: IssuedPolicy,
    create_record: Callable[..., Anchored],
    claim_evidence: Callable[..., Evidence],
    consent_payment: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    which: str,
) -> None:
    own = claim_evidence()
    if which == "other-patients-record":
        bad = create_record(clinic, other_patient, category=Category.LAB).id
        consent_payment(bad, patient=other_patient)
    else:
        bad = UNKNOWN_RECORD
    records = Evidence(own.claim_record, [*own.evidence, bad])
    with reverts(claims_manager.ClaimEvidenceNotPatients, record=bad, patient=patient):
        submit_claim(manual_policy.id, USD, records=records)


@pytest.mark.parametrize(
    "consent",
    ["none", "for-treatment", "to-another-insurer", "revoked", "expired", "erased-record"],
)
@pytest.mark.parametrize("which", ["claim-record", "evidence"])
def test_submit_claim_reverts_without_a_live_payment_grant_to_the_insurer(
    claims_manager: Any,
    consent_manager: Any,
    patient: AccountAPI,
    insurer: AccountAPI,
    other_insurer: AccountAPI,
    manual_policy: IssuedPolicy,
    claim_evidence: Callable[..., Evidence],
    consent_payment: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    now: Callable[[], int],
    consent: str,
    which: str,
) -> None:
    records = claim_evidence(consent=False)
    bad = records.claim_record if which == "claim-record" else records.evidence[0]
    for record_id in records.all:
        if record_id != bad:
            consent_payment(record_id)
    if consent == "for-treatment":
        consent_payment(bad, purpose=TREATMENT)
    elif consent == "to-another-insurer":
        consent_payment(bad, grantee=other_insurer)
    elif consent == "revoked":
        consent_payment(bad)
        consent_manager.revoke(patient, insurer, RECORD_SCOPE, bad, sender=patient)
    elif consent == "expired":
        consent_manager.grant(
            patient, insurer, RECORD_SCOPE, bad, PAYMENT, now() + 60, b"\1" * 32, sender=patient
        )
        advance_time(60)
        for record_id in records.all:  # the others' 90-day grants are still live
            assert consent_manager.hasAccessFor(insurer, record_id, PAYMENT) == (record_id != bad)
    elif consent == "erased-record":
        consent_payment(bad)
        consent_manager.eraseRecord(bad, sender=patient)
    with reverts(claims_manager.ClaimEvidenceNotConsented, record=bad, insurer=insurer):
        submit_claim(manual_policy.id, USD, records=records)


def test_a_category_grant_for_payment_counts_as_consent(
    claims_manager: Any,
    consent_manager: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    insurer: AccountAPI,
    manual_policy: IssuedPolicy,
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    now: Callable[[], int],
) -> None:
    records = claim_evidence(consent=False)
    for category in (Category.FINANCIAL, Category.LAB):
        scope = int(category).to_bytes(32, "big")
        consent_manager.grant(
            patient, insurer, 1, scope, PAYMENT, now() + DAY, b"\1" * 32, sender=patient
        )
    claim = submit_claim(manual_policy.id, USD, records=records)
    assert claims_manager.getClaim(claim.id).state == ClaimState.SUBMITTED


# ============================================================================ duplicates


@pytest.mark.parametrize(
    ("second", "changed"),
    [
        ("clinic", "nothing"),
        ("clinic", "keys-amount-and-payee"),
        ("doctor", "nothing"),
        ("doctor", "keys-amount-and-payee"),
        ("patient", "nothing"),
    ],
)
def test_a_claim_record_backs_one_claim_whoever_submits_it_again(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    token: Any,
    clinic: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    second: str,
    changed: str,
) -> None:
    first = submit_claim(funded_policy.id, 300 * USD)  # settled and paid at once
    paid = token.balanceOf(clinic)
    again = dict(first.submission)
    if changed == "keys-amount-and-payee":
        again |= {
            "billed": 299 * USD,
            "payPatient": True,
            "serviceKey": digest("another-service"),
            "identifierKey": digest("another-identifier"),
        }
    sender = request.getfixturevalue(second)
    with reverts(claims_manager.ClaimDuplicate, claimId=first.id):
        claims_manager.submitClaim(again, sender=sender)
    assert token.balanceOf(clinic) == paid
    assert claims_manager.getPolicy(funded_policy.id).paid == 160 * USD


@pytest.mark.parametrize("outcome", ["approve", "award-after-denial"])
def test_patients_claim_on_a_record_the_provider_claimed_is_reviewed_but_never_paid(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    outcome: str,
) -> None:
    """The clinic's claim on its record settled at once; the patient claims on the same record
    with another service, identifier, amount and payee. The patient's claim has its own id, so
    it is accepted for review; but approving it, or awarding it after a denial, would pay the
    record twice: refused naming the clinic's claim. Denied, or upheld, it pays nothing."""
    first = submit_claim(funded_policy.id, 300 * USD)  # settled and paid at once
    record = first.records.claim_record
    again = dict(first.submission) | {
        "billed": 299 * USD,
        "payPatient": True,
        "serviceKey": digest("another-service"),
        "identifierKey": digest("another-identifier"),
    }

    tx = claims_manager.submitClaim(again, sender=patient)

    own = patient_claim_id(record)
    assert_events(
        tx,
        claims_manager.ClaimSubmitted(
            claimId=own,
            policyId=funded_policy.id,
            submitter=patient,
            claimRecord=record,
            billed=299 * USD,
            payPatient=True,
            evidence=again["evidence"],
            codeHashes=again["codeHashes"],
            automatic=False,
            review=ReviewReason.SUBMITTED_BY_PATIENT,
        ),
    )
    assert claims_manager.getClaim(first.id).state == ClaimState.APPROVED
    if outcome == "approve":
        allowed, _ = claims_manager.allowedAmount(own)
        with reverts(claims_manager.ClaimDuplicate, claimId=first.id):
            claims_manager.approveClaim(own, allowed, sender=insurer)
    claims_manager.denyClaim(own, 1, sender=insurer)
    if outcome == "award-after-denial":
        claims_manager.disputeClaim(own, 1, sender=patient)
        with reverts(claims_manager.ClaimDuplicate, claimId=first.id):
            claims_manager.resolveDispute(own, 100 * USD, True, sender=resolver)
        tx = claims_manager.resolveDispute(own, 0, False, sender=resolver)
        assert_events(
            tx,
            claims_manager.DisputeResolved(claimId=own, payee=patient, award=0, resolver=resolver),
        )
    assert claims_manager.claimOfKey(record_key(record)) == 0
    assert claims_manager.creditOf(patient) == 0
    assert token.balanceOf(clinic) == 160 * USD
    assert claims_manager.getPolicy(funded_policy.id).paid == 160 * USD


@pytest.mark.parametrize("first_outcome", ["settled", "pending", "denied"])
@pytest.mark.parametrize("second", ["clinic", "doctor", "patient"])
def test_the_same_care_in_a_new_claim_record_is_a_duplicate(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    number_of: Callable[[Any], int],
    second: str,
    first_outcome: str,
) -> None:
    """The clinic (or its practitioner, or the patient) re-encrypts the same care into a new
    claim record, with a new identifier: same patient, provider, service key, codes and
    amount. Whatever became of the first claim, the care is claimed once."""
    policy = issue_policy(autoSettleLimit=0 if first_outcome != "settled" else 500 * USD)
    fund(policy.id, 10_000 * USD)
    codes = ("99213", "80053")
    first = submit_claim(policy.id, 300 * USD, codes=codes, service="visit-2025-03-04")
    if first_outcome == "denied":
        claims_manager.denyClaim(first.id, 1, sender=insurer)
    reencrypted = claim_evidence(evidence=0)  # a new FINANCIAL record by the clinic

    with reverts(claims_manager.ClaimDuplicate, claimId=first.id):
        submit_claim(
            policy.id,
            300 * USD,
            codes=codes[::-1],  # sent sorted: the same list
            service="visit-2025-03-04",
            records=reencrypted,
            sender=request.getfixturevalue(second),
        )

    key = care_key(
        patient.address,
        number_of(clinic),
        digest("visit-2025-03-04"),
        first.submission["codeHashes"],
    )
    assert claims_manager.claimOfKey(key) == first.id
    with reverts(claims_manager.ClaimUnknownClaim, claimId=record_number(reencrypted.claim_record)):
        claims_manager.getClaim(record_number(reencrypted.claim_record))


@pytest.mark.parametrize("second", ["clinic", "doctor", "patient"])
def test_the_same_claim_identifier_from_the_same_provider_is_a_duplicate(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    clinic: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    number_of: Callable[[Any], int],
    second: str,
) -> None:
    """A second claim with the clinic's identifier CLM-1 but a different service, codes and
    amount (a resubmission dressed as different care) is refused."""
    first = submit_claim(funded_policy.id, 300 * USD, identifier="CLM-1")
    with reverts(claims_manager.ClaimDuplicate, claimId=first.id):
        submit_claim(
            funded_policy.id,
            320 * USD,
            codes=("85025",),
            service="another-visit",
            identifier="CLM-1",
            sender=request.getfixturevalue(second),
        )
    key = identifier_key(number_of(clinic), digest("CLM-1"))
    assert claims_manager.claimOfKey(key) == first.id


def test_identifier_keys_are_per_provider_a_duplicate_names_the_same_providers_claim(
    claims_manager: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    number_of: Callable[[Any], int],
) -> None:
    """The hospital's CLM-1 and the clinic's CLM-1 are two claims; a second CLM-1 from the
    clinic, after both, is a duplicate of the clinic's, not of the hospital's."""
    at_hospital = submit_claim(
        manual_policy.id,
        300 * USD,
        sender=hospital,
        records=claim_evidence(issuer=hospital),
        service="visit",
        identifier="CLM-1",
    )
    at_clinic = submit_claim(manual_policy.id, 300 * USD, service="visit", identifier="CLM-1")
    with reverts(claims_manager.ClaimDuplicate, claimId=at_clinic.id):
        submit_claim(manual_policy.id, 10 * USD, service="later", identifier="CLM-1")
    with reverts(claims_manager.ClaimDuplicate, claimId=at_hospital.id):
        submit_claim(
            manual_policy.id,
            10 * USD,
            sender=hospital,
            records=claim_evidence(issuer=hospital),
            service="later",
            identifier="CLM-1",
        )
    for provider, claim in ((hospital, at_hospital), (clinic, at_clinic)):
        key = identifier_key(number_of(provider), digest("CLM-1"))
        assert claims_manager.claimOfKey(key) == claim.id


@pytest.mark.parametrize("differs", ["service", "codes", "provider", "patient"])
def test_care_that_differs_in_one_part_of_its_key_is_not_a_duplicate(
    claims_manager: Any,
    hospital: AccountAPI,
    other_patient: AccountAPI,
    manual_policy: IssuedPolicy,
    issue_policy: Callable[..., IssuedPolicy],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    differs: str,
) -> None:
    first = submit_claim(manual_policy.id, 300 * USD, service="visit")
    policy_id, kwargs = manual_policy.id, {"service": "visit"}
    if differs == "service":
        kwargs["service"] = "next-visit"
    elif differs == "codes":
        kwargs["codes"] = ("99213", "80053")
    elif differs == "provider":
        kwargs |= {"sender": hospital, "records": claim_evidence(issuer=hospital)}
    elif differs == "patient":
        policy_id = issue_policy(patient=other_patient, autoSettleLimit=0).id
        kwargs["records"] = claim_evidence(patient=other_patient)

    second = submit_claim(policy_id, 300 * USD, **kwargs)

    assert second.id != first.id
    assert claims_manager.getClaim(second.id).state == ClaimState.SUBMITTED


def test_the_same_care_at_another_amount_is_a_duplicate(
    claims_manager: Any,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    """A corrected invoice of the same care (service, codes, provider, patient) with another
    amount and identifier: the amount is not part of the care key."""
    first = submit_claim(manual_policy.id, 300 * USD, service="visit", identifier="CLM-1")
    with reverts(claims_manager.ClaimDuplicate, claimId=first.id):
        submit_claim(manual_policy.id, 301 * USD, service="visit", identifier="CLM-2")


def test_a_zero_identifier_key_is_no_key(
    claims_manager: Any,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    number_of: Callable[[Any], int],
) -> None:
    """Two claims of different care without an identifier are not duplicates of each other."""
    first = submit_claim(manual_policy.id, 300 * USD, identifier=None)
    second = submit_claim(manual_policy.id, 300 * USD, identifier=None)
    assert {first.id, second.id} == {
        record_number(first.records.claim_record),
        record_number(second.records.claim_record),
    }
    assert claims_manager.claimOfKey(identifier_key(number_of(clinic), bytes(32))) == 0


def test_duplicate_keys_and_claim_ids_are_the_documented_encodings(
    claims_manager: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    number_of: Callable[[Any], int],
) -> None:
    """``claimOfKey`` documents the keys (the contract no longer computes them for callers):
    the care and identifier keys of a provider's claim name it from submission; the record
    key, taken by a patient's approved claim only, is free; ``patientClaimIdOf`` is the
    documented hash of the record."""
    claim = submit_claim(
        funded_policy.id, 300 * USD, codes=("99213", "93000"), service="s", identifier="i"
    )
    s = claim.submission
    record = claim.records.claim_record
    provider = number_of(clinic)
    care = care_key(patient.address, provider, s["serviceKey"], s["codeHashes"])
    ident = identifier_key(provider, s["identifierKey"])
    assert claims_manager.claimOfKey(care) == claim.id
    assert claims_manager.claimOfKey(ident) == claim.id
    assert claims_manager.claimOfKey(record_key(record)) == 0
    assert claims_manager.claimOfKey(digest("nothing")) == 0
    assert claims_manager.patientClaimIdOf(record) == patient_claim_id(record) != claim.id
    assert claims_manager.patientClaimIdOf(UNKNOWN_RECORD) == patient_claim_id(UNKNOWN_RECORD)


# ---------------------------------------------------------------------------- a patient's keys
# A patient's claim only checks that its care and identifier keys are free; it takes them when
# it is approved (any amount) or resolved with an award or as covered, so that a patient's
# claim cannot block the provider's own claim of that care, and the care is still paid once.

SAME_CARE = {"service": "visit-2025-03-04", "identifier": "CLM-7"}
"""The care and the clinic's claim identifier both the patient's and the clinic's claims
carry (code 99213)."""


@pytest.fixture
def keys_of(
    claims_manager: Any, clinic: AccountAPI, number_of: Callable[[Any], int]
) -> Callable[[SubmittedClaim], list[int]]:
    """``keys_of(claim)``: the claims its care key and its identifier key name (0: none), for
    a claim on a record the clinic wrote."""

    def read(claim: SubmittedClaim) -> list[int]:
        s = claim.submission
        provider = number_of(clinic)
        patient = claims_manager.getPolicy(s["policyId"]).patient
        keys = [
            care_key(patient, provider, s["serviceKey"], s["codeHashes"]),
            identifier_key(provider, s["identifierKey"]),
        ]
        return [claims_manager.claimOfKey(k) for k in keys]

    return read


@pytest.mark.parametrize(
    "squat", ["pending", "info-requested", "denied", "disputed", "resolved-as-uncovered"]
)
def test_a_patients_claim_of_the_same_care_leaves_the_providers_claim_payable(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    keys_of: Callable[[SubmittedClaim], list[int]],
    squat: str,
) -> None:
    """The patient claims first, on an older invoice of the clinic, with the care and the
    claim identifier of the clinic's new claim (they can read it: it is their record); the
    insurer reviews it (or has not yet). The clinic's real claim is accepted and paid at once,
    takes the keys, and the patient's claim can no longer be paid."""
    early = submit_claim(funded_policy.id, 300 * USD, sender=patient, pay_patient=True, **SAME_CARE)
    assert keys_of(early) == [0, 0]
    if squat == "info-requested":
        claims_manager.requestInfo(early.id, 1, sender=insurer)
    elif squat != "pending":
        claims_manager.denyClaim(early.id, 1, sender=insurer)
    if squat in ("disputed", "resolved-as-uncovered"):
        claims_manager.disputeClaim(early.id, 1, sender=patient)
    if squat == "resolved-as-uncovered":
        claims_manager.resolveDispute(early.id, 0, False, sender=resolver)
    assert keys_of(early) == [0, 0]

    real = submit_claim(funded_policy.id, 300 * USD, **SAME_CARE)

    assert_events(
        real.receipt,
        submitted_event(claims_manager, real, clinic, automatic=True, review=ReviewReason.NONE),
        claims_manager.ClaimApproved(
            claimId=real.id,
            payee=clinic,
            amount=160 * USD,
            allowed=160 * USD,
            deductibleApplied=100 * USD,
            automatic=True,
            decider=claims_manager.address,
        ),
        token.Transfer(**{"from": claims_manager, "to": clinic, "value": 160 * USD}),
    )
    assert token.balanceOf(clinic) == 160 * USD
    assert keys_of(real) == [real.id, real.id]
    if squat in ("pending", "info-requested"):  # the care is paid: not again to the patient
        with reverts(claims_manager.ClaimDuplicate, claimId=real.id):
            claims_manager.approveClaim(early.id, 240 * USD, sender=insurer)
    elif squat == "disputed":
        with reverts(claims_manager.ClaimDuplicate, claimId=real.id):
            claims_manager.resolveDispute(early.id, 240 * USD, True, sender=resolver)
    assert claims_manager.creditOf(patient) == 0
    assert claims_manager.getPolicy(funded_policy.id).paid == 160 * USD


@pytest.mark.parametrize("collision", ["care", "identifier", "care-and-identifier-of-two-claims"])
@pytest.mark.parametrize("share", ["full", "partial", "zero-within-the-deductible"])
def test_approving_a_patients_claim_after_the_providers_claim_of_the_same_care_reverts_duplicate(
    claims_manager: Any,
    insurer: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    policy_of: Callable[[int], dict[str, Any]],
    keys_of: Callable[[SubmittedClaim], list[int]],
    share: str,
    collision: str,
) -> None:
    """The patient's claim waits for review; meanwhile the clinic claims the same care (the
    same service, codes and amount under another identifier), or other care under the same
    identifier, or both in two claims. Approving the patient's claim, for any amount, would
    pay the care twice: it is refused naming the claim that holds the care key (checked
    first), else the identifier key; nothing changes, and the insurer may still deny it."""
    billed = 80 * USD if share == "zero-within-the-deductible" else 300 * USD
    early = submit_claim(manual_policy.id, billed, sender=patient, **SAME_CARE)
    same_care = {"service": SAME_CARE["service"], "identifier": "CLM-8"}
    same_identifier = {"service": "another-visit", "identifier": SAME_CARE["identifier"]}
    holders = []
    if collision != "identifier":
        holders.append(submit_claim(manual_policy.id, billed, **same_care))
    if collision != "care":
        holders.append(submit_claim(manual_policy.id, billed, **same_identifier))
    expected_keys = {
        "care": [holders[0].id, 0],
        "identifier": [0, holders[0].id],
        "care-and-identifier-of-two-claims": [holders[0].id, holders[-1].id],
    }[collision]
    assert keys_of(early) == expected_keys
    amount = {"full": 160 * USD, "partial": 100 * USD, "zero-within-the-deductible": 0}[share]
    before = claim_of(early.id), policy_of(manual_policy.id)

    with reverts(claims_manager.ClaimDuplicate, claimId=holders[0].id):
        claims_manager.approveClaim(early.id, amount, sender=insurer)

    assert (claim_of(early.id), policy_of(manual_policy.id)) == before
    assert keys_of(early) == expected_keys
    tx = claims_manager.denyClaim(early.id, 1, sender=insurer)
    assert_events(tx, claims_manager.ClaimDenied(claimId=early.id, reasonCode=1, decider=insurer))


@pytest.mark.parametrize(
    "outcome",
    [
        "approved-in-full",
        "approved-partly",
        "approved-partly-then-awarded",
        "approved-for-zero-within-the-deductible",
        "awarded-after-a-denial",
        "awarded-after-an-escalation",
        "resolved-as-covered-for-zero",
        "resolved-as-uncovered",
    ],
)
def test_a_patients_claim_takes_its_keys_when_approved_or_resolved_as_covered(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    keys_of: Callable[[SubmittedClaim], list[int]],
    advance_time: Callable[[int], int],
    outcome: str,
) -> None:
    """Once the insurer approves the patient's claim (for any amount, zero within the
    deductible included) or a resolver awards it or finds it covered, its keys are taken and
    the clinic's claim of the same care is a duplicate of it; a claim resolved as uncovered
    takes nothing, and the clinic may still claim the care."""
    billed = 80 * USD if outcome == "approved-for-zero-within-the-deductible" else 300 * USD
    early = submit_claim(manual_policy.id, billed, sender=patient, **SAME_CARE)
    if outcome.startswith("approved"):
        amount = {"approved-in-full": 160 * USD, "approved-for-zero-within-the-deductible": 0}
        claims_manager.approveClaim(early.id, amount.get(outcome, 100 * USD), sender=insurer)
        assert keys_of(early) == [early.id, early.id]
    if outcome == "approved-partly-then-awarded":  # the keys were taken at the approval
        claims_manager.disputeClaim(early.id, 1, sender=patient)
        claims_manager.resolveDispute(early.id, 60 * USD, True, sender=resolver)
    elif outcome == "awarded-after-an-escalation":
        advance_time(DECISION_PERIOD)
        claims_manager.escalateClaim(early.id, sender=patient)
    elif not outcome.startswith("approved"):
        claims_manager.denyClaim(early.id, 1, sender=insurer)
        claims_manager.disputeClaim(early.id, 1, sender=patient)
    if outcome.startswith("awarded"):
        assert keys_of(early) == [0, 0]
        claims_manager.resolveDispute(early.id, 160 * USD, True, sender=resolver)
    elif outcome.startswith("resolved"):
        covered = outcome == "resolved-as-covered-for-zero"
        claims_manager.resolveDispute(early.id, 0, covered, sender=resolver)

    takes = outcome != "resolved-as-uncovered"
    holder = early.id if takes else 0
    assert keys_of(early) == [holder, holder]
    if takes:
        with reverts(claims_manager.ClaimDuplicate, claimId=early.id):
            submit_claim(manual_policy.id, billed, **SAME_CARE)
    else:
        real = submit_claim(manual_policy.id, billed, **SAME_CARE)
        assert keys_of(real) == [real.id, real.id]


def test_of_two_patients_claims_of_the_same_care_only_the_first_approved_is_paid(
    claims_manager: Any,
    insurer: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    keys_of: Callable[[SubmittedClaim], list[int]],
) -> None:
    """The patient claims the same care twice, on two invoices of the clinic: both wait for
    review (neither holds the keys); the insurer approves the second, and the first can then
    only be denied."""
    first = submit_claim(manual_policy.id, 300 * USD, sender=patient, **SAME_CARE)
    second = submit_claim(manual_policy.id, 300 * USD, sender=patient, **SAME_CARE)
    assert keys_of(first) == keys_of(second) == [0, 0]

    claims_manager.approveClaim(second.id, 160 * USD, sender=insurer)

    assert keys_of(first) == [second.id, second.id]
    with reverts(claims_manager.ClaimDuplicate, claimId=second.id):
        claims_manager.approveClaim(first.id, 240 * USD, sender=insurer)
    claims_manager.denyClaim(first.id, 1, sender=insurer)
    assert claims_manager.creditOf(patient) == 160 * USD  # the second claim's, once
    assert claims_manager.getPolicy(manual_policy.id).paid == 160 * USD


# ------------------------------------------------------------------------- one record, two claims
# A patient's claim on a record has its own id (``patientClaimIdOf``), so the provider that wrote
# the record may still claim on it (under the record's id). The patient's claim takes the record
# (its record key) only when approved or resolved with an award or as covered, and only while
# the provider's claim on the record is absent or settled for nothing (denied, or resolved
# paying nothing and applying no deductible); once it took the record, the provider's claim on
# it is a duplicate of the patient's.

OTHER_CARE = {"service": "visit-2025-03-05", "identifier": "CLM-9"}
"""Care and an identifier of the clinic that no other claim of these tests carries."""


def test_patients_second_claim_on_the_same_record_is_a_duplicate_of_the_first(
    claims_manager: Any,
    insurer: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    """However the second claim differs (care, identifier, amount, payee) and whatever became
    of the first (here denied), a record backs one claim of the patient."""
    first = submit_claim(manual_policy.id, 300 * USD, sender=patient, **SAME_CARE)
    claims_manager.denyClaim(first.id, 1, sender=insurer)
    record = first.records.claim_record
    with reverts(claims_manager.ClaimDuplicate, claimId=patient_claim_id(record)):
        submit_claim(
            manual_policy.id,
            299 * USD,
            sender=patient,
            records=first.records,
            pay_patient=True,
            **OTHER_CARE,
        )
    assert first.id == patient_claim_id(record)


@pytest.mark.parametrize(
    "patients_claim",
    ["pending", "info-requested", "denied", "disputed", "escalated", "resolved-as-uncovered"],
)
def test_provider_claims_a_record_the_patient_claimed_first_and_is_paid_at_once(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    patients_claim: str,
) -> None:
    """The patient claimed first on the clinic's invoice, with other care and another
    identifier than the clinic's (they cannot block it by any content). The clinic's claim on
    the same record is a claim of its own, under the record's id: it settles at once and pays
    the clinic; the patient's claim can then no longer be paid (the clinic's claim was not
    settled for nothing)."""
    own = submit_claim(funded_policy.id, 300 * USD, sender=patient, **SAME_CARE)
    record = own.records.claim_record
    if patients_claim == "info-requested":
        claims_manager.requestInfo(own.id, 1, sender=insurer)
    elif patients_claim == "escalated":
        advance_time(DECISION_PERIOD)
        claims_manager.escalateClaim(own.id, sender=patient)
    elif patients_claim != "pending":
        claims_manager.denyClaim(own.id, 1, sender=insurer)
    if patients_claim in ("disputed", "resolved-as-uncovered"):
        claims_manager.disputeClaim(own.id, 1, sender=patient)
    if patients_claim == "resolved-as-uncovered":
        claims_manager.resolveDispute(own.id, 0, False, sender=resolver)

    real = submit_claim(funded_policy.id, 300 * USD, records=own.records, **OTHER_CARE)

    assert real.id == record_number(record) != own.id
    assert_events(
        real.receipt,
        submitted_event(claims_manager, real, clinic, automatic=True, review=ReviewReason.NONE),
        claims_manager.ClaimApproved(
            claimId=real.id,
            payee=clinic,
            amount=160 * USD,
            allowed=160 * USD,
            deductibleApplied=100 * USD,
            automatic=True,
            decider=claims_manager.address,
        ),
        token.Transfer(**{"from": claims_manager, "to": clinic, "value": 160 * USD}),
    )
    if patients_claim in ("pending", "info-requested"):
        allowed, _ = claims_manager.allowedAmount(own.id)
        with reverts(claims_manager.ClaimDuplicate, claimId=real.id):
            claims_manager.approveClaim(own.id, allowed, sender=insurer)
    elif patients_claim in ("disputed", "escalated"):
        with reverts(claims_manager.ClaimDuplicate, claimId=real.id):
            claims_manager.resolveDispute(own.id, 100 * USD, True, sender=resolver)
        claims_manager.resolveDispute(own.id, 0, False, sender=resolver)  # upheld: the way out
    assert claims_manager.claimOfKey(record_key(record)) == 0
    assert claims_manager.creditOf(patient) == 0
    assert token.balanceOf(clinic) == 160 * USD
    assert claims_manager.getPolicy(funded_policy.id).paid == 160 * USD


@pytest.mark.parametrize(
    "took",
    [
        "approved-in-full",
        "approved-partly",
        "approved-for-zero-within-the-deductible",
        "awarded-after-a-denial",
        "resolved-as-covered-for-zero",
    ],
)
@pytest.mark.parametrize("by", ["clinic", "doctor"])
def test_provider_claim_on_a_record_the_patients_approved_claim_took_is_a_duplicate_of_it(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_evidence: Callable[..., Evidence],
    took: str,
    by: str,
) -> None:
    """The patient's claim on the clinic's invoice was approved (for any amount, zero within
    the deductible included) or resolved with an award or as covered: it took the record. The
    clinic's claim on that record, with any care and identifier, is a duplicate of it; the
    record key is checked before the care key, so the error names the patient's claim even
    when the care is another claim's too."""
    within = took in ("approved-for-zero-within-the-deductible", "resolved-as-covered-for-zero")
    billed = 80 * USD if within else 300 * USD
    own = submit_claim(manual_policy.id, billed, sender=patient, **SAME_CARE)
    record = own.records.claim_record
    if took.startswith("approved"):
        amount = {"approved-in-full": 160 * USD, "approved-partly": 100 * USD}.get(took, 0)
        claims_manager.approveClaim(own.id, amount, sender=insurer)
    else:
        claims_manager.denyClaim(own.id, 1, sender=insurer)
        claims_manager.disputeClaim(own.id, 1, sender=patient)
        award = 160 * USD if took == "awarded-after-a-denial" else 0
        claims_manager.resolveDispute(own.id, award, True, sender=resolver)
    assert claims_manager.claimOfKey(record_key(record)) == own.id
    sender = request.getfixturevalue(by)

    with reverts(claims_manager.ClaimDuplicate, claimId=own.id):
        submit_claim(manual_policy.id, 300 * USD, sender=sender, records=own.records, **OTHER_CARE)

    other = submit_claim(manual_policy.id, 300 * USD, records=claim_evidence(), **OTHER_CARE)
    with reverts(claims_manager.ClaimDuplicate, claimId=own.id):  # not `other`
        submit_claim(manual_policy.id, 300 * USD, sender=sender, records=own.records, **OTHER_CARE)
    assert other.id != own.id
    with reverts(claims_manager.ClaimUnknownClaim, claimId=record_number(record)):
        claims_manager.getClaim(record_number(record))


@pytest.mark.parametrize(
    ("providers_claim", "blocks"),
    [
        ("submitted", True),
        ("info-requested", True),
        ("approved-in-full", True),
        ("approved-partly", True),
        ("approved-for-zero-within-the-deductible", True),
        ("disputed", True),
        ("escalated", True),
        ("awarded-after-a-denial", True),
        ("resolved-as-covered-for-zero", True),
        ("denied", False),
        ("resolved-as-uncovered", False),
        ("escalated-then-resolved-as-uncovered", False),
    ],
)
def test_approving_a_patients_claim_on_a_record_waits_for_the_providers_claim_on_it(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    policy_of: Callable[[int], dict[str, Any]],
    keys_of: Callable[[SubmittedClaim], list[int]],
    advance_time: Callable[[int], int],
    providers_claim: str,
    blocks: bool,
) -> None:
    """The clinic claims on its invoice; the patient claims on the same invoice with other care
    and another identifier (so no care or identifier key is shared). Approving the patient's
    claim is refused, naming the clinic's claim, unless the clinic's claim was settled for
    nothing: denied, or resolved without an award and without applying the deductible. When
    accepted, the patient's claim takes its keys and the record."""
    within = providers_claim in (
        "approved-for-zero-within-the-deductible",
        "resolved-as-covered-for-zero",
    )
    theirs = submit_claim(manual_policy.id, 80 * USD if within else 300 * USD, **OTHER_CARE)
    record = theirs.records.claim_record
    own = submit_claim(
        manual_policy.id, 300 * USD, sender=patient, records=theirs.records, **SAME_CARE
    )
    if providers_claim == "info-requested":
        claims_manager.requestInfo(theirs.id, 1, sender=insurer)
    elif providers_claim.startswith("approved"):
        amount = {"approved-in-full": 160 * USD, "approved-partly": 100 * USD}.get(
            providers_claim, 0
        )
        claims_manager.approveClaim(theirs.id, amount, sender=insurer)
    elif providers_claim.startswith("escalated"):
        advance_time(DECISION_PERIOD)
        claims_manager.escalateClaim(theirs.id, sender=clinic)
    elif providers_claim != "submitted":
        claims_manager.denyClaim(theirs.id, 1, sender=insurer)
        if providers_claim != "denied":
            claims_manager.disputeClaim(theirs.id, 1, sender=clinic)
    if providers_claim in ("awarded-after-a-denial", "resolved-as-covered-for-zero"):
        award = 50 * USD if providers_claim == "awarded-after-a-denial" else 0
        claims_manager.resolveDispute(theirs.id, award, True, sender=resolver)
    elif providers_claim.endswith("resolved-as-uncovered"):
        claims_manager.resolveDispute(theirs.id, 0, False, sender=resolver)
    allowed, deductible = claims_manager.allowedAmount(own.id)
    assert allowed > 0
    before = claim_of(own.id), policy_of(manual_policy.id)

    if blocks:
        with reverts(claims_manager.ClaimDuplicate, claimId=theirs.id):
            claims_manager.approveClaim(own.id, allowed, sender=insurer)
        assert (claim_of(own.id), policy_of(manual_policy.id)) == before
        assert keys_of(own) == [0, 0]
        assert claims_manager.claimOfKey(record_key(record)) == 0
        tx = claims_manager.denyClaim(own.id, 1, sender=insurer)
        assert_events(tx, claims_manager.ClaimDenied(claimId=own.id, reasonCode=1, decider=insurer))
        return

    tx = claims_manager.approveClaim(own.id, allowed, sender=insurer)

    assert_events(
        tx,
        claims_manager.ClaimApproved(
            claimId=own.id,
            payee=patient,
            amount=allowed,
            allowed=allowed,
            deductibleApplied=deductible,
            automatic=False,
            decider=insurer,
        ),
    )
    assert keys_of(own) == [own.id, own.id]
    assert claims_manager.claimOfKey(record_key(record)) == own.id
    assert claims_manager.creditOf(patient) == allowed


def test_providers_denied_claim_cannot_be_awarded_once_the_patients_claim_took_the_record(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    theirs = submit_claim(manual_policy.id, 300 * USD, **OTHER_CARE)
    claims_manager.denyClaim(theirs.id, 1, sender=insurer)
    own = submit_claim(
        manual_policy.id, 300 * USD, sender=patient, records=theirs.records, **SAME_CARE
    )
    claims_manager.approveClaim(own.id, 160 * USD, sender=insurer)  # pays the record once
    claims_manager.disputeClaim(theirs.id, 1, sender=clinic)  # within the denial's window
    with reverts(claims_manager.ClaimDuplicate, claimId=own.id):
        claims_manager.resolveDispute(theirs.id, 240 * USD, True, sender=resolver)
    assert claims_manager.creditOf(clinic) == 0


# ============================================================================ automatic settlement


@pytest.mark.parametrize("pay_patient", [False, True], ids=["pays-provider", "pays-patient"])
def test_small_proven_claim_settles_at_once_and_pays_the_payee_by_transfer(
    claims_manager: Any,
    token: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    policy_of: Callable[[int], dict[str, Any]],
    block_time: Callable[[ReceiptAPI], int],
    pay_patient: bool,
) -> None:
    payee, other = (patient, clinic) if pay_patient else (clinic, patient)

    claim = submit_claim(funded_policy.id, 300 * USD, pay_patient=pay_patient)

    # deductible 100, then 80 % of 200, sent to the payee in the same transaction
    assert_events(
        claim.receipt,
        submitted_event(claims_manager, claim, clinic, automatic=True, review=ReviewReason.NONE),
        claims_manager.ClaimApproved(
            claimId=claim.id,
            payee=payee,
            amount=160 * USD,
            allowed=160 * USD,
            deductibleApplied=100 * USD,
            automatic=True,
            decider=claims_manager.address,
        ),
        token.Transfer(**{"from": claims_manager, "to": payee, "value": 160 * USD}),
    )
    at = block_time(claim.receipt)
    expected = model_claim(
        claim,
        clinic,
        at,
        state=ClaimState.APPROVED,
        paid=160 * USD,
        decided_at=at,
        deductible_applied=100 * USD,
    )
    assert claim_of(claim.id) == expected.as_dict()
    funded_policy.model.paid = 160 * USD
    funded_policy.model.deductible_met = 100 * USD
    assert policy_of(funded_policy.id) == funded_policy.model.as_dict()
    assert token.balanceOf(payee) == 160 * USD
    assert token.balanceOf(other) == 0
    assert token.balanceOf(claims_manager) == (10_000 - 160) * USD
    assert claims_manager.creditOf(payee) == 0  # nothing left to withdraw
    assert claims_manager.creditOf(other) == 0
    assert claims_manager.allowedAmount(claim.id) == (0, 0)
    assert claims_manager.openClaimsOf(funded_policy.id) == 0


def test_claim_billed_exactly_the_automatic_limit_settles_with_several_proven_codes(
    claims_manager: Any,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    claim = submit_claim(funded_policy.id, 500 * USD, codes=("99213", "80053", "85025"))
    (approved,) = claims_manager.ClaimApproved.from_receipt(claim.receipt)
    assert approved.amount == 320 * USD
    assert claims_manager.getClaim(claim.id).state == ClaimState.APPROVED


def test_claim_settles_when_the_pool_holds_exactly_the_allowed_amount(
    claims_manager: Any,
    token: Any,
    clinic: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    policy = issue_policy()
    fund(policy.id, 160 * USD)
    claim = submit_claim(policy.id, 300 * USD)
    assert claims_manager.getClaim(claim.id).state == ClaimState.APPROVED
    assert claims_manager.getPolicy(policy.id).paid == 160 * USD
    assert token.balanceOf(clinic) == 160 * USD
    assert token.balanceOf(claims_manager) == 0


@pytest.mark.parametrize("pool", ["funded", "empty"])
def test_claim_within_the_deductible_settles_for_zero_and_counts_toward_it(
    claims_manager: Any,
    token: Any,
    clinic: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    block_time: Callable[[ReceiptAPI], int],
    pool: str,
) -> None:
    """80 of a 100 deductible: nothing is owed, nothing is sent (a zero transfer would be
    noise), the claim is approved for zero, and the deductible left is 20 for the next one."""
    policy = issue_policy()
    if pool == "funded":
        fund(policy.id, 1_000 * USD)

    claim = submit_claim(policy.id, 80 * USD)

    assert_events(
        claim.receipt,
        submitted_event(claims_manager, claim, clinic, automatic=True, review=ReviewReason.NONE),
        claims_manager.ClaimApproved(
            claimId=claim.id,
            payee=clinic,
            amount=0,
            allowed=0,
            deductibleApplied=80 * USD,
            automatic=True,
            decider=claims_manager.address,
        ),
    )
    at = block_time(claim.receipt)
    assert (
        claim_of(claim.id)
        == model_claim(
            claim, clinic, at, state=ClaimState.APPROVED, decided_at=at, deductible_applied=80 * USD
        ).as_dict()
    )
    stored = claims_manager.getPolicy(policy.id)
    assert (stored.paid, stored.deductibleMet) == (0, 80 * USD)
    assert token.balanceOf(clinic) == 0
    if pool == "funded":  # the next claim sees 20 of the deductible left
        nxt = submit_claim(policy.id, 120 * USD)
        (approved,) = claims_manager.ClaimApproved.from_receipt(nxt.receipt)
        assert (approved.amount, approved.deductibleApplied) == (80 * USD, 20 * USD)
        assert claims_manager.getPolicy(policy.id).deductibleMet == 100 * USD


NOT_PROVEN = {
    "no-proof",
    "wrong-proof",
    "uncovered-code",
    "one-of-two-codes-unproven",
    "proof-against-another-list",
}


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("automatic-settlement-disabled", ReviewReason.AUTO_SETTLE_DISABLED),
        ("billed-above-the-limit", ReviewReason.ABOVE_AUTO_SETTLE_LIMIT),
        ("no-proof", ReviewReason.CODE_NOT_PROVEN),
        ("wrong-proof", ReviewReason.CODE_NOT_PROVEN),
        ("uncovered-code", ReviewReason.CODE_NOT_PROVEN),
        ("one-of-two-codes-unproven", ReviewReason.CODE_NOT_PROVEN),
        ("proof-against-another-list", ReviewReason.CODE_NOT_PROVEN),
        ("annual-limit-used-up", ReviewReason.LIMIT_REACHED),
        ("coverage-rounds-to-zero", ReviewReason.LIMIT_REACHED),
        ("remainder-after-the-deductible-rounds-to-zero", ReviewReason.LIMIT_REACHED),
        ("pool-empty", ReviewReason.POOL_INSUFFICIENT),
        ("pool-one-unit-short", ReviewReason.POOL_INSUFFICIENT),
        ("submitted-by-the-patient", ReviewReason.SUBMITTED_BY_PATIENT),
        ("insurer-suspended", ReviewReason.INSURER_NOT_VERIFIED),
    ],
    ids=lambda value: value if isinstance(value, str) else value.name.lower(),
)
def test_claim_is_left_for_review_with_the_reason_it_could_not_settle(
    claims_manager: Any,
    token: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    insurer: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    policy_of: Callable[[int], dict[str, Any]],
    block_time: Callable[[ReceiptAPI], int],
    suspend: Callable[..., Any],
    case: str,
    reason: ReviewReason,
) -> None:
    """Each reason alone (the model's ``review_reason`` agrees). A claim the policy would pay
    nothing is settled only when the deductible swallows it whole; owed nothing because the
    limit is used up or the coverage rounds to zero, it is left for review (LimitReached)."""
    terms: dict[str, Any] = {}
    funding = 10_000 * USD
    kwargs: dict[str, Any] = {}
    billed = 300 * USD
    submitter = clinic
    if case == "automatic-settlement-disabled":
        terms = {"autoSettleLimit": 0}
    elif case == "billed-above-the-limit":
        billed = 500 * USD + 1
    elif case == "no-proof":
        kwargs = {"prove": False}
    elif case == "wrong-proof":
        kwargs = {"proofs": [COVERED.proof("80053")]}
    elif case == "uncovered-code":
        kwargs = {"codes": (UNCOVERED,)}
    elif case == "one-of-two-codes-unproven":
        kwargs = {"codes": ("99213", "80053"), "proofs": [COVERED.proof("99213"), []]}
    elif case == "proof-against-another-list":
        other = CodeList.of(["99213", "11111"])
        kwargs = {"codes": ("99213",), "proofs": [other.proof("99213")]}
    elif case == "annual-limit-used-up":
        terms = {"annualLimit": 160 * USD, "autoSettleLimit": 500 * USD}
    elif case == "coverage-rounds-to-zero":  # 0.9999 of a unit owed: nothing to pay
        terms = {"deductible": 0, "coverageBps": 1}
        billed = 9_999
    elif case == "remainder-after-the-deductible-rounds-to-zero":  # 80 % of one unit
        billed = 100 * USD + 1
    elif case == "pool-empty":
        funding = 0
    elif case == "pool-one-unit-short":
        funding = 160 * USD - 1
    elif case == "submitted-by-the-patient":  # small, proven, funded: still reviewed
        kwargs = {"sender": patient, "pay_patient": True}
        submitter = patient
    policy = issue_policy(**terms)
    if funding:
        fund(policy.id, funding)
        policy.model.funded = funding
    if case == "annual-limit-used-up":
        submit_claim(policy.id, 300 * USD)  # pays the whole limit
        policy.model.paid, policy.model.deductible_met = 160 * USD, 100 * USD
        assert policy_of(policy.id) == policy.model.as_dict()
    if case == "insurer-suspended":
        suspend(insurer)
    balances = [token.balanceOf(a) for a in (clinic, patient, claims_manager)]

    claim = submit_claim(policy.id, billed, **kwargs)

    assert_events(
        claim.receipt,
        submitted_event(claims_manager, claim, submitter, automatic=False, review=reason),
    )
    stored = model_claim(claim, submitter, block_time(claim.receipt))
    assert claim_of(claim.id) == stored.as_dict()
    assert [token.balanceOf(a) for a in (clinic, patient, claims_manager)] == balances
    assert claims_manager.creditOf(submitter) == 0
    assert claims_manager.openClaimsOf(policy.id) == 1
    assert (
        review_reason(
            policy.model,
            billed,
            proven=case not in NOT_PROVEN,
            by_patient=submitter == patient,
            insurer_verified=case != "insurer-suspended",
        )
        == reason
    )
    if case == "pool-one-unit-short":  # the insurer cannot pay it either until it funds more
        with reverts(
            claims_manager.ClaimPoolInsufficient,
            policyId=policy.id,
            needed=160 * USD,
            available=160 * USD - 1,
        ):
            claims_manager.approveClaim(claim.id, 160 * USD, sender=insurer)


# ============================================================================ arithmetic


@pytest.mark.parametrize(
    ("terms", "billed", "allowed", "deductible"),
    [
        ({}, 300 * USD, 160 * USD, 100 * USD),
        ({}, 100 * USD, 0, 100 * USD),
        ({}, 50 * USD, 0, 50 * USD),
        ({"deductible": 0}, 300 * USD, 240 * USD, 0),
        ({"coverageBps": 10_000, "deductible": 0}, 300 * USD, 300 * USD, 0),
        ({"coverageBps": 3_333, "deductible": 0}, 1_000, 333, 0),  # 333.3, rounded down
        ({"coverageBps": 1, "deductible": 0}, 9_999, 0, 0),  # 0.9999, rounded down
        ({"annualLimit": 100 * USD}, 1_000 * USD, 100 * USD, 100 * USD),
        ({"deductible": 2**96 - 1, "annualLimit": 2**96 - 1}, 2**96 - 1, 0, 2**96 - 1),
        ({"deductible": 0, "annualLimit": 2**96 - 1}, 2**96 - 1, (2**96 - 1) * 8 // 10, 0),
    ],
    ids=[
        "deductible-then-80-percent",
        "billed-equals-deductible",
        "billed-below-deductible",
        "no-deductible",
        "full-coverage",
        "rounds-down",
        "rounds-down-to-zero",
        "capped-by-annual-limit",
        "largest-deductible",
        "largest-bill",
    ],
)
def test_allowed_amount_applies_deductible_then_coverage_then_annual_limit(
    claims_manager: Any,
    issue_policy: Callable[..., IssuedPolicy],
    submit_claim: Callable[..., SubmittedClaim],
    terms: dict[str, Any],
    billed: int,
    allowed: int,
    deductible: int,
) -> None:
    policy = issue_policy(autoSettleLimit=0, **terms)
    claim = submit_claim(policy.id, billed)
    assert allowed_now(policy.model, billed) == (allowed, deductible)
    assert claims_manager.allowedAmount(claim.id) == (allowed, deductible)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    coverage_bps=st.integers(1, 10_000),
    limits=st.integers(1, 2**96 - 1).flatmap(
        lambda limit: st.tuples(st.integers(0, limit), st.just(limit))
    ),
    billed=st.lists(st.integers(1, 2**96 - 1), min_size=1, max_size=2),
)
def test_allowed_amount_equals_the_documented_formula(
    claims_manager: Any,
    insurer: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    isolated: Callable[[], Any],
    coverage_bps: int,
    limits: tuple[int, int],
    billed: list[int],
) -> None:
    """After each approval in full (of zero for a claim within the deductible), the next
    claim sees the deductible and limit left. A claim owed nothing that the deductible does
    not swallow whole (the limit used up, the coverage rounding to zero) cannot be approved
    for zero: it is left (the insurer would deny it)."""
    deductible, annual_limit = limits
    with isolated():
        policy = issue_policy(
            autoSettleLimit=0,
            coverageBps=coverage_bps,
            deductible=deductible,
            annualLimit=annual_limit,
        )
        fund(policy.id, MAX_UINT128)
        model = policy.model
        for amount in billed:
            claim = submit_claim(policy.id, amount, evidence=0)
            expected = allowed_now(model, amount)
            assert claims_manager.allowedAmount(claim.id) == expected
            allowed, applied = expected
            if allowed == 0 and not may_approve_zero(model, amount):
                with reverts(claims_manager.ClaimInvalidAmount, amount=0):
                    claims_manager.approveClaim(claim.id, 0, sender=insurer)
                continue
            claims_manager.approveClaim(claim.id, allowed, sender=insurer)
            model.paid += allowed
            model.deductible_met += applied
            stored = claims_manager.getPolicy(policy.id)
            assert (stored.paid, stored.deductibleMet) == (model.paid, model.deductible_met)


def test_deductible_is_applied_across_claims_until_it_is_met(
    claims_manager: Any,
    insurer: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    first = submit_claim(manual_policy.id, 160 * USD)
    second = submit_claim(manual_policy.id, 160 * USD)
    assert claims_manager.allowedAmount(second.id) == (48 * USD, 100 * USD)  # both see 100 left

    claims_manager.approveClaim(first.id, 48 * USD, sender=insurer)  # 100 applied

    assert claims_manager.allowedAmount(second.id) == (128 * USD, 0)
    claims_manager.approveClaim(second.id, 128 * USD, sender=insurer)
    third = submit_claim(manual_policy.id, 10 * USD)
    assert claims_manager.allowedAmount(third.id) == (8 * USD, 0)
    assert claims_manager.getPolicy(manual_policy.id).deductibleMet == 100 * USD


# ============================================================================ approveClaim


@pytest.mark.parametrize("decider", ["insurer", "practitioner"])
@pytest.mark.parametrize("from_state", ["submitted", "info-requested"])
@pytest.mark.parametrize("share", ["full", "partial"])
def test_approve_claim_credits_the_payee_and_applies_the_deductible(
    claims_manager: Any,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    policy_of: Callable[[int], dict[str, Any]],
    block_time: Callable[[ReceiptAPI], int],
    decider: str,
    from_state: str,
    share: str,
) -> None:
    sender = insurer if decider == "insurer" else adjuster
    claim = submit_claim(manual_policy.id, 300 * USD)
    if from_state == "info-requested":
        claims_manager.requestInfo(claim.id, 1, sender=insurer)
    amount = 160 * USD if share == "full" else 100 * USD

    tx = claims_manager.approveClaim(claim.id, amount, sender=sender)

    assert_events(
        tx,
        claims_manager.ClaimApproved(
            claimId=claim.id,
            payee=clinic,
            amount=amount,
            allowed=160 * USD,
            deductibleApplied=100 * USD,
            automatic=False,
            decider=sender,
        ),
    )
    state = ClaimState.APPROVED if share == "full" else ClaimState.PARTIALLY_APPROVED
    expected = model_claim(
        claim,
        clinic,
        block_time(claim.receipt),
        state=state,
        info_requests=int(from_state == "info-requested"),
        paid=amount,
        decided_at=block_time(tx),
        deductible_applied=100 * USD,
    )
    assert claim_of(claim.id) == expected.as_dict()
    manual_policy.model.paid = amount
    manual_policy.model.deductible_met = 100 * USD
    assert policy_of(manual_policy.id) == manual_policy.model.as_dict()
    assert claims_manager.creditOf(clinic) == amount
    assert claims_manager.openClaimsOf(manual_policy.id) == 0


def test_approve_claim_pays_the_patient_when_asked_to(
    claims_manager: Any,
    insurer: AccountAPI,
    patient: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD, pay_patient=True)
    tx = claims_manager.approveClaim(claim.id, 160 * USD, sender=insurer)
    (event,) = claims_manager.ClaimApproved.from_receipt(tx)
    assert event.payee == patient.address
    assert claims_manager.creditOf(patient) == 160 * USD
    assert claims_manager.creditOf(clinic) == 0


def test_approve_claim_reverts_above_the_allowed_amount(
    claims_manager: Any,
    insurer: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    with reverts(claims_manager.ClaimAmountExceedsAllowed, amount=160 * USD + 1, allowed=160 * USD):
        claims_manager.approveClaim(claim.id, 160 * USD + 1, sender=insurer)


def test_approve_claim_reverts_when_nothing_is_allowed(
    claims_manager: Any,
    insurer: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    claim = submit_claim(manual_policy.id, 100 * USD)  # all deductible
    with reverts(claims_manager.ClaimAmountExceedsAllowed, amount=1, allowed=0):
        claims_manager.approveClaim(claim.id, 1, sender=insurer)


OWED_BUT_NOT_ZERO = {
    "something-is-owed": (160 * USD, 100 * USD),
    "coverage-rounds-to-zero": (0, 0),
    "remainder-after-the-deductible-rounds-to-zero": (0, 100 * USD),
    "limit-used-up-deductible-met": (0, 0),
}
"""What each case's claim is owed: ``allowedAmount`` (allowed, deductible)."""


@pytest.mark.parametrize("case", list(OWED_BUT_NOT_ZERO))
def test_approve_claim_reverts_for_zero_amount_unless_within_the_deductible(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    policy_of: Callable[[int], dict[str, Any]],
    case: str,
) -> None:
    """Zero is a decision only for a claim the deductible swallows whole; otherwise a claim
    owed something is approved for something, and one owed nothing (the limit used up, or the
    coverage rounding to zero, even of what the deductible leaves: 80 % of one unit above it)
    is denied, and counts toward nothing."""
    terms: dict[str, Any] = {"autoSettleLimit": 0}
    billed = 300 * USD
    if case == "coverage-rounds-to-zero":
        terms |= {"deductible": 0, "coverageBps": 1}
        billed = 9_999
    elif case == "remainder-after-the-deductible-rounds-to-zero":
        billed = 100 * USD + 1
    elif case == "limit-used-up-deductible-met":
        terms |= {"annualLimit": 160 * USD}
    policy = issue_policy(**terms)
    fund(policy.id, 1_000 * USD)
    if case == "limit-used-up-deductible-met":
        used = submit_claim(policy.id, 300 * USD)
        claims_manager.approveClaim(used.id, 160 * USD, sender=insurer)
    claim = submit_claim(policy.id, billed)
    owed = OWED_BUT_NOT_ZERO[case]
    assert claims_manager.allowedAmount(claim.id) == owed
    before = policy_of(policy.id), claims_manager.creditOf(clinic)

    with reverts(claims_manager.ClaimInvalidAmount, amount=0):
        claims_manager.approveClaim(claim.id, 0, sender=insurer)

    if owed[0]:
        return
    tx = claims_manager.denyClaim(claim.id, 1, sender=insurer)  # what is left to the insurer
    assert_events(tx, claims_manager.ClaimDenied(claimId=claim.id, reasonCode=1, decider=insurer))
    assert (policy_of(policy.id), claims_manager.creditOf(clinic)) == before  # nothing counted


@pytest.mark.parametrize("billed", [80 * USD, 100 * USD], ids=["below", "equal-to"])
@pytest.mark.parametrize("from_state", ["submitted", "info-requested"])
def test_approve_claim_for_zero_within_the_deductible_counts_toward_it(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    policy_of: Callable[[int], dict[str, Any]],
    block_time: Callable[[ReceiptAPI], int],
    from_state: str,
    billed: int,
) -> None:
    claim = submit_claim(manual_policy.id, billed)
    if from_state == "info-requested":
        claims_manager.requestInfo(claim.id, 1, sender=insurer)
    assert claims_manager.allowedAmount(claim.id) == (0, billed)

    tx = claims_manager.approveClaim(claim.id, 0, sender=insurer)

    assert_events(
        tx,
        claims_manager.ClaimApproved(
            claimId=claim.id,
            payee=clinic,
            amount=0,
            allowed=0,
            deductibleApplied=billed,
            automatic=False,
            decider=insurer,
        ),
    )
    expected = model_claim(
        claim,
        clinic,
        block_time(claim.receipt),
        state=ClaimState.APPROVED,
        info_requests=int(from_state == "info-requested"),
        decided_at=block_time(tx),
        deductible_applied=billed,
    )
    assert claim_of(claim.id) == expected.as_dict()
    manual_policy.model.deductible_met = billed
    assert policy_of(manual_policy.id) == manual_policy.model.as_dict()
    assert claims_manager.creditOf(clinic) == 0
    assert claims_manager.openClaimsOf(manual_policy.id) == 0


def test_approve_claim_reverts_when_the_pool_is_short(
    claims_manager: Any,
    insurer: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    policy = issue_policy(autoSettleLimit=0)
    fund(policy.id, 150 * USD)
    claim = submit_claim(policy.id, 300 * USD)
    with reverts(
        claims_manager.ClaimPoolInsufficient,
        policyId=policy.id,
        needed=160 * USD,
        available=150 * USD,
    ):
        claims_manager.approveClaim(claim.id, 160 * USD, sender=insurer)
    tx = claims_manager.approveClaim(claim.id, 150 * USD, sender=insurer)  # what the pool holds
    assert claims_manager.ClaimApproved.from_receipt(tx)[0].amount == 150 * USD


@pytest.mark.parametrize(
    "caller",
    [
        "other-insurer",
        "care-providers-practitioner",
        "care-provider",
        "stranger",
        "suspended-insurer",
        "suspended-insurers-practitioner",
        "resolver",
    ],
)
@pytest.mark.parametrize("action", ["approve", "deny", "request-info"])
def test_insurer_actions_revert_when_caller_does_not_act_for_the_policys_insurer(
    claims_manager: Any,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    other_insurer: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    resolver: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    suspend: Callable[..., Any],
    caller: str,
    action: str,
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    account = {
        "other-insurer": other_insurer,
        "care-providers-practitioner": doctor,
        "care-provider": clinic,
        "stranger": stranger,
        "suspended-insurer": insurer,
        "suspended-insurers-practitioner": adjuster,
        "resolver": resolver,
    }[caller]
    if caller.startswith("suspended-insurer"):
        suspend(insurer)
    send = {
        "approve": lambda: claims_manager.approveClaim(claim.id, USD, sender=account),
        "deny": lambda: claims_manager.denyClaim(claim.id, 1, sender=account),
        "request-info": lambda: claims_manager.requestInfo(claim.id, 1, sender=account),
    }[action]
    with reverts(claims_manager.ClaimNotPolicyInsurer, caller=account, policyId=manual_policy.id):
        send()


@pytest.mark.parametrize("action", ["approve", "deny", "request-info"])
def test_insurer_actions_revert_for_unknown_claim(
    claims_manager: Any, insurer: AccountAPI, action: str
) -> None:
    send = {
        "approve": lambda: claims_manager.approveClaim(1, USD, sender=insurer),
        "deny": lambda: claims_manager.denyClaim(1, 1, sender=insurer),
        "request-info": lambda: claims_manager.requestInfo(1, 1, sender=insurer),
    }[action]
    with reverts(claims_manager.ClaimUnknownClaim, claimId=1):
        send()


@pytest.fixture
def claim_in_state(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    resolver: AccountAPI,
    submit_claim: Callable[..., SubmittedClaim],
) -> Callable[[ClaimState], int]:
    """``claim_in_state(state)``: a fresh claim brought to ``state`` (300 mUSD billed, 160
    allowed, 100 approved when the state needs a partial approval): settled automatically
    under ``funded_policy`` for APPROVED, under ``manual_policy`` otherwise."""

    def make(state: ClaimState) -> int:
        if state is ClaimState.APPROVED:
            policy = request.getfixturevalue("funded_policy")
            claim = submit_claim(policy.id, 300 * USD)  # settled automatically
            assert claims_manager.getClaim(claim.id).state == ClaimState.APPROVED
            return claim.id
        policy = request.getfixturevalue("manual_policy")
        claim_id = submit_claim(policy.id, 300 * USD).id
        if state is ClaimState.INFO_REQUESTED:
            claims_manager.requestInfo(claim_id, 1, sender=insurer)
        elif state in (ClaimState.PARTIALLY_APPROVED, ClaimState.DISPUTED, ClaimState.RESOLVED):
            claims_manager.approveClaim(claim_id, 100 * USD, sender=insurer)
        elif state is ClaimState.DENIED:
            claims_manager.denyClaim(claim_id, 1, sender=insurer)
        if state in (ClaimState.DISPUTED, ClaimState.RESOLVED):
            claims_manager.disputeClaim(claim_id, 1, sender=clinic)
        if state is ClaimState.RESOLVED:
            claims_manager.resolveDispute(claim_id, 0, True, sender=resolver)
        assert claims_manager.getClaim(claim_id).state == state
        return claim_id

    return make


DECIDED = [
    ClaimState.APPROVED,
    ClaimState.PARTIALLY_APPROVED,
    ClaimState.DENIED,
    ClaimState.DISPUTED,
    ClaimState.RESOLVED,
]


@pytest.mark.parametrize("state", DECIDED, ids=[s.name.lower() for s in DECIDED])
@pytest.mark.parametrize("action", ["approve", "deny"])
def test_approve_and_deny_revert_once_the_claim_is_decided(
    claims_manager: Any,
    insurer: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    state: ClaimState,
    action: str,
) -> None:
    claim_id = claim_in_state(state)
    with reverts(claims_manager.ClaimInvalidState, claimId=claim_id, state=state):
        if action == "approve":
            claims_manager.approveClaim(claim_id, USD, sender=insurer)
        else:
            claims_manager.denyClaim(claim_id, 1, sender=insurer)


# ============================================================================ denyClaim


@pytest.mark.parametrize("from_state", ["submitted", "info-requested"])
def test_deny_claim_records_the_decision_and_credits_nothing(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    policy_of: Callable[[int], dict[str, Any]],
    block_time: Callable[[ReceiptAPI], int],
    from_state: str,
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    if from_state == "info-requested":
        claims_manager.requestInfo(claim.id, 1, sender=insurer)

    tx = claims_manager.denyClaim(claim.id, 42, sender=insurer)

    assert_events(tx, claims_manager.ClaimDenied(claimId=claim.id, reasonCode=42, decider=insurer))
    expected = model_claim(
        claim,
        clinic,
        block_time(claim.receipt),
        state=ClaimState.DENIED,
        info_requests=int(from_state == "info-requested"),
        decided_at=block_time(tx),
    )
    assert claim_of(claim.id) == expected.as_dict()
    assert policy_of(manual_policy.id) == manual_policy.model.as_dict()  # nothing paid or met
    assert claims_manager.creditOf(clinic) == 0
    assert claims_manager.allowedAmount(claim.id) == (0, 0)
    assert claims_manager.openClaimsOf(manual_policy.id) == 0


@pytest.mark.parametrize("action", ["deny", "request-info"])
def test_deny_and_request_info_revert_without_a_reason(
    claims_manager: Any,
    insurer: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    action: str,
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    with reverts(claims_manager.ClaimReasonRequired):
        if action == "deny":
            claims_manager.denyClaim(claim.id, 0, sender=insurer)
        else:
            claims_manager.requestInfo(claim.id, 0, sender=insurer)


# ============================================================================ information requests


def test_request_info_moves_the_claim_to_info_requested(
    claims_manager: Any,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    tx = claims_manager.requestInfo(claim.id, 9, sender=adjuster)
    assert_events(
        tx, claims_manager.ClaimInfoRequested(claimId=claim.id, reasonCode=9, requester=adjuster)
    )
    stored = claims_manager.getClaim(claim.id)
    assert (stored.state, stored.decidedAt, stored.infoRequests) == (
        ClaimState.INFO_REQUESTED,
        0,
        1,
    )
    assert claims_manager.allowedAmount(claim.id) == (160 * USD, 100 * USD)
    assert claims_manager.openClaimsOf(manual_policy.id) == 1


@pytest.mark.parametrize("then", ["approve", "deny"])
def test_request_info_is_refused_after_the_third_request_and_the_insurer_must_decide(
    claims_manager: Any,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    then: str,
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    for n in range(1, MAX_INFO_REQUESTS + 1):
        claims_manager.requestInfo(claim.id, n, sender=insurer if n % 2 else adjuster)
        assert claims_manager.getClaim(claim.id).infoRequests == n
        claims_manager.provideInfo(claim.id, claim.records.evidence, sender=clinic)

    for sender in (insurer, adjuster):  # the fourth, by the insurer or its practitioner
        with reverts(claims_manager.ClaimTooManyInfoRequests, claimId=claim.id):
            claims_manager.requestInfo(claim.id, 4, sender=sender)

    stored = claims_manager.getClaim(claim.id)
    assert (stored.state, stored.infoRequests) == (ClaimState.SUBMITTED, MAX_INFO_REQUESTS)
    if then == "approve":
        claims_manager.approveClaim(claim.id, 160 * USD, sender=insurer)
        assert claims_manager.getClaim(claim.id).state == ClaimState.APPROVED
    else:
        claims_manager.denyClaim(claim.id, 1, sender=insurer)
        assert claims_manager.getClaim(claim.id).state == ClaimState.DENIED


NOT_SUBMITTED = [ClaimState.INFO_REQUESTED, *DECIDED]


@pytest.mark.parametrize("state", NOT_SUBMITTED, ids=[s.name.lower() for s in NOT_SUBMITTED])
def test_request_info_reverts_unless_the_claim_is_submitted(
    claims_manager: Any,
    insurer: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    state: ClaimState,
) -> None:
    claim_id = claim_in_state(state)
    with reverts(claims_manager.ClaimInvalidState, claimId=claim_id, state=state):
        claims_manager.requestInfo(claim_id, 1, sender=insurer)


@pytest.mark.parametrize("party", ["submitter", "practitioner", "patient"])
def test_provide_info_returns_the_claim_for_review_with_more_evidence(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_evidence: Callable[..., Evidence],
    claim_of: Callable[[int], dict[str, Any]],
    advance_time: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    party: str,
) -> None:
    """The answer is noted (``answeredAt``): the insurer's decision period runs from it."""
    sender = {"submitter": clinic, "practitioner": doctor, "patient": patient}[party]
    claim = submit_claim(manual_policy.id, 300 * USD)
    claims_manager.requestInfo(claim.id, 1, sender=insurer)
    more = claim_evidence(evidence=2).evidence
    before = claim_of(claim.id)
    advance_time(2 * DAY)

    tx = claims_manager.provideInfo(claim.id, more, sender=sender)

    assert_events(
        tx, claims_manager.ClaimInfoProvided(claimId=claim.id, evidence=more, provider=sender)
    )
    assert claim_of(claim.id) == {
        **before,
        "state": ClaimState.SUBMITTED,
        "answeredAt": block_time(tx),
    }
    assert block_time(tx) > block_time(claim.receipt)
    claims_manager.approveClaim(claim.id, 160 * USD, sender=insurer)
    assert claims_manager.getClaim(claim.id).state == ClaimState.APPROVED


def test_provide_info_reverts_without_evidence(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    claims_manager.requestInfo(claim.id, 1, sender=insurer)
    with reverts(claims_manager.ClaimEvidenceRequired):
        claims_manager.provideInfo(claim.id, [], sender=clinic)


@pytest.mark.parametrize("problem", ["other-patients-record", "not-consented"])
def test_provide_info_reverts_for_evidence_that_submission_would_refuse(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    manual_policy: IssuedPolicy,
    create_record: Callable[..., Anchored],
    consent_payment: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    claim_evidence: Callable[..., Evidence],
    problem: str,
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    claims_manager.requestInfo(claim.id, 1, sender=insurer)
    good = claim_evidence(evidence=0).claim_record
    if problem == "other-patients-record":
        bad = create_record(clinic, other_patient).id
        consent_payment(bad, patient=other_patient)
        expect = reverts(claims_manager.ClaimEvidenceNotPatients, record=bad, patient=patient)
    else:
        bad = create_record(clinic, patient).id
        expect = reverts(claims_manager.ClaimEvidenceNotConsented, record=bad, insurer=insurer)
    with expect:
        claims_manager.provideInfo(claim.id, [good, bad], sender=clinic)


@pytest.mark.parametrize(
    "caller",
    [
        "stranger",
        "other-care-provider",
        "practitioner-of-another-clinic",
        "insurer",
        "other-patient",
        "removed-practitioner",
    ],
)
@pytest.mark.parametrize("action", ["provide-info", "dispute", "escalate"])
@pytest.mark.parametrize("claimant", ["clinic", "patient"], ids=["clinics-claim", "patients-claim"])
def test_party_actions_revert_when_caller_is_neither_submitter_nor_patient(
    claims_manager: Any,
    provider_registry: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    other_doctor: AccountAPI,
    stranger: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_evidence: Callable[..., Evidence],
    advance_time: Callable[[int], int],
    caller: str,
    action: str,
    claimant: str,
) -> None:
    """Neither the submitter (or its practitioners), nor the patient, nor, for the patient's
    claim, the provider that wrote the claim record (the clinic, or its practitioners): another
    provider, its practitioner, the insurer, another patient, a stranger, a practitioner the
    clinic removed."""
    claim = submit_claim(
        manual_policy.id, 300 * USD, sender=clinic if claimant == "clinic" else patient
    )
    more = claim_evidence(evidence=0).claim_record
    if action == "provide-info":
        claims_manager.requestInfo(claim.id, 1, sender=insurer)
    elif action == "dispute":
        claims_manager.denyClaim(claim.id, 1, sender=insurer)
    else:
        advance_time(DECISION_PERIOD + DAY)  # overdue: only who may escalate is in question
    account = {
        "stranger": stranger,
        "other-care-provider": hospital,
        "practitioner-of-another-clinic": other_doctor,
        "insurer": insurer,
        "other-patient": other_patient,
        "removed-practitioner": doctor,
    }[caller]
    if caller == "removed-practitioner":
        provider_registry.removePractitioner(doctor, sender=clinic)
    with reverts(claims_manager.ClaimNotSubmitterOrPatient, caller=account, claimId=claim.id):
        if action == "provide-info":
            claims_manager.provideInfo(claim.id, [more], sender=account)
        elif action == "dispute":
            claims_manager.disputeClaim(claim.id, 1, sender=account)
        else:
            claims_manager.escalateClaim(claim.id, sender=account)


@pytest.mark.parametrize("by", ["clinic", "doctor"], ids=["writer", "writers-practitioner"])
def test_the_provider_that_wrote_a_patients_claim_record_is_a_party_to_the_claim(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    insurer: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_evidence: Callable[..., Evidence],
    claim_of: Callable[[int], dict[str, Any]],
    advance_time: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    by: str,
) -> None:
    """The patient claims on invoices the clinic wrote (the claims are the patient's): the
    clinic, or its practitioner, answers the insurer's request, disputes the denial and
    escalates the claim the insurer left undecided, as the patient could; the events name
    it, and the claims stay the patient's."""
    sender = request.getfixturevalue(by)
    answered = submit_claim(manual_policy.id, 300 * USD, sender=patient)
    overdue = submit_claim(manual_policy.id, 300 * USD, sender=patient)
    claims_manager.requestInfo(answered.id, 1, sender=insurer)
    more = claim_evidence(evidence=0).claim_record

    tx = claims_manager.provideInfo(answered.id, [more], sender=sender)

    assert_events(
        tx, claims_manager.ClaimInfoProvided(claimId=answered.id, evidence=[more], provider=sender)
    )
    assert claim_of(answered.id)["answeredAt"] == block_time(tx)
    claims_manager.denyClaim(answered.id, 2, sender=insurer)

    tx = claims_manager.disputeClaim(answered.id, 3, sender=sender)

    assert_events(
        tx, claims_manager.ClaimDisputed(claimId=answered.id, reasonCode=3, disputer=sender)
    )
    advance_time(DECISION_PERIOD)

    tx = claims_manager.escalateClaim(overdue.id, sender=sender)

    assert_events(tx, claims_manager.ClaimEscalated(claimId=overdue.id, by=sender))
    for claim in (answered, overdue):
        stored = claim_of(claim.id)
        assert (stored["state"], stored["submitter"]) == (ClaimState.DISPUTED, patient.address)
    assert claims_manager.openClaimsOf(manual_policy.id) == 2


@pytest.mark.parametrize("standing", ["wrote-another-claim-record", "writer-suspended"])
@pytest.mark.parametrize("action", ["provide-info", "dispute", "escalate"])
def test_a_provider_is_no_party_to_a_patients_claim_on_a_record_it_did_not_write_or_once_suspended(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    hospital: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_evidence: Callable[..., Evidence],
    suspend: Callable[..., Any],
    advance_time: Callable[[int], int],
    standing: str,
    action: str,
) -> None:
    """The clinic (and its practitioner) step into the patient's claim on the hospital's
    invoice; or into one on its own invoice while the registrars have it suspended."""
    issuer = hospital if standing == "wrote-another-claim-record" else clinic
    claim = submit_claim(
        manual_policy.id, 300 * USD, sender=patient, records=claim_evidence(issuer=issuer)
    )
    more = claim_evidence(evidence=0).claim_record
    if action == "provide-info":
        claims_manager.requestInfo(claim.id, 1, sender=insurer)
    elif action == "dispute":
        claims_manager.denyClaim(claim.id, 1, sender=insurer)
    else:
        advance_time(DECISION_PERIOD + DAY)
    if standing == "writer-suspended":
        suspend(clinic)
    for account in (clinic, doctor):
        with reverts(claims_manager.ClaimNotSubmitterOrPatient, caller=account, claimId=claim.id):
            if action == "provide-info":
                claims_manager.provideInfo(claim.id, [more], sender=account)
            elif action == "dispute":
                claims_manager.disputeClaim(claim.id, 1, sender=account)
            else:
                claims_manager.escalateClaim(claim.id, sender=account)


@pytest.mark.parametrize("action", ["provide-info", "dispute", "escalate"])
def test_party_actions_revert_for_unknown_claim(
    claims_manager: Any, clinic: AccountAPI, action: str
) -> None:
    with reverts(claims_manager.ClaimUnknownClaim, claimId=5):
        if action == "provide-info":
            claims_manager.provideInfo(5, [UNKNOWN_RECORD], sender=clinic)
        elif action == "dispute":
            claims_manager.disputeClaim(5, 1, sender=clinic)
        else:
            claims_manager.escalateClaim(5, sender=clinic)


NOT_INFO_REQUESTED = [ClaimState.SUBMITTED, *DECIDED]


@pytest.mark.parametrize(
    "state", NOT_INFO_REQUESTED, ids=[s.name.lower() for s in NOT_INFO_REQUESTED]
)
def test_provide_info_reverts_unless_information_was_requested(
    claims_manager: Any,
    clinic: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    claim_evidence: Callable[..., Evidence],
    state: ClaimState,
) -> None:
    claim_id = claim_in_state(state)
    more = claim_evidence(evidence=0).claim_record
    with reverts(claims_manager.ClaimInvalidState, claimId=claim_id, state=state):
        claims_manager.provideInfo(claim_id, [more], sender=clinic)


# ============================================================================ disputeClaim


@pytest.mark.parametrize("decision", ["partial-approval", "denial"])
@pytest.mark.parametrize("party", ["submitter", "practitioner", "patient"])
def test_dispute_claim_opens_a_dispute_over_a_partial_approval_or_denial(
    claims_manager: Any,
    clinic: AccountAPI,
    doctor: AccountAPI,
    patient: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    decision: str,
    party: str,
) -> None:
    sender = {"submitter": clinic, "practitioner": doctor, "patient": patient}[party]
    state = ClaimState.PARTIALLY_APPROVED if decision == "partial-approval" else ClaimState.DENIED
    claim_id = claim_in_state(state)
    before = claims_manager.getClaim(claim_id)

    tx = claims_manager.disputeClaim(claim_id, 5, sender=sender)

    assert_events(tx, claims_manager.ClaimDisputed(claimId=claim_id, reasonCode=5, disputer=sender))
    after = claims_manager.getClaim(claim_id)
    assert after.state == ClaimState.DISPUTED
    assert (after.paid, after.decidedAt) == (before.paid, before.decidedAt)
    assert claims_manager.openClaimsOf(after.policyId) == 1  # open again, for the resolver


UNDISPUTABLE = [
    ClaimState.SUBMITTED,
    ClaimState.INFO_REQUESTED,
    ClaimState.APPROVED,
    ClaimState.DISPUTED,
    ClaimState.RESOLVED,
]


@pytest.mark.parametrize("state", UNDISPUTABLE, ids=[s.name.lower() for s in UNDISPUTABLE])
def test_dispute_claim_reverts_unless_partially_approved_or_denied(
    claims_manager: Any,
    clinic: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    state: ClaimState,
) -> None:
    claim_id = claim_in_state(state)
    with reverts(claims_manager.ClaimInvalidState, claimId=claim_id, state=state):
        claims_manager.disputeClaim(claim_id, 1, sender=clinic)


def test_dispute_claim_reverts_without_a_reason(
    claims_manager: Any, clinic: AccountAPI, claim_in_state: Callable[[ClaimState], int]
) -> None:
    claim_id = claim_in_state(ClaimState.DENIED)
    with reverts(claims_manager.ClaimReasonRequired):
        claims_manager.disputeClaim(claim_id, 0, sender=clinic)


def test_dispute_is_accepted_in_the_last_second_of_the_window(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    decided_at = block_time(claims_manager.denyClaim(claim.id, 1, sender=insurer))
    last_second = next_tx_at(decided_at + DISPUTE_WINDOW - 1)

    tx = claims_manager.disputeClaim(claim.id, 1, sender=clinic)

    assert block_time(tx) == last_second
    assert claims_manager.getClaim(claim.id).state == ClaimState.DISPUTED


@pytest.mark.parametrize("late_by", [0, DAY], ids=["as-it-closes", "a-day-later"])
def test_dispute_reverts_once_the_window_has_closed(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    late_by: int,
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    decided_at = block_time(claims_manager.approveClaim(claim.id, USD, sender=insurer))
    closed_at = decided_at + DISPUTE_WINDOW
    next_tx_at(closed_at + late_by)
    with reverts(claims_manager.ClaimDisputeWindowClosed, claimId=claim.id, closedAt=closed_at):
        claims_manager.disputeClaim(claim.id, 1, sender=clinic)


def test_window_is_counted_from_the_decision_not_the_submission(
    claims_manager: Any,
    insurer: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    advance_time(2 * DISPUTE_WINDOW)  # a slow review
    claims_manager.denyClaim(claim.id, 1, sender=insurer)
    claims_manager.disputeClaim(claim.id, 1, sender=patient)
    assert claims_manager.getClaim(claim.id).state == ClaimState.DISPUTED


# ============================================================================ escalateClaim


@pytest.mark.parametrize("clock", ["from-the-submission", "from-the-answer"])
@pytest.mark.parametrize("party", ["submitter", "practitioner", "patient"])
def test_escalate_claim_after_the_decision_period_moves_it_to_disputed(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    advance_time: Callable[[int], int],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    party: str,
    clock: str,
) -> None:
    """The first second it may: ``DECISION_PERIOD`` after the submission, or after the answer
    to the insurer's request (five days later) when there was one."""
    sender = {"submitter": clinic, "practitioner": doctor, "patient": patient}[party]
    claim = submit_claim(manual_policy.id, 300 * USD)
    since = block_time(claim.receipt)
    if clock == "from-the-answer":
        claims_manager.requestInfo(claim.id, 1, sender=insurer)
        advance_time(5 * DAY)
        answer = claims_manager.provideInfo(claim.id, claim.records.evidence, sender=clinic)
        since = block_time(answer)
    before = claim_of(claim.id)
    model = model_claim(claim, clinic, before["submittedAt"], answered_at=before["answeredAt"])
    assert escalation_until(model) == since + DECISION_PERIOD
    next_tx_at(since + DECISION_PERIOD)

    tx = claims_manager.escalateClaim(claim.id, sender=sender)

    assert_events(tx, claims_manager.ClaimEscalated(claimId=claim.id, by=sender))
    assert claim_of(claim.id) == {**before, "state": ClaimState.DISPUTED}
    assert claims_manager.openClaimsOf(manual_policy.id) == 1  # still open, now for a resolver
    assert claims_manager.allowedAmount(claim.id) == (160 * USD, 100 * USD)
    for action in (
        lambda: claims_manager.approveClaim(claim.id, USD, sender=insurer),
        lambda: claims_manager.denyClaim(claim.id, 1, sender=insurer),
    ):  # the insurer had its 30 days
        with reverts(claims_manager.ClaimInvalidState, claimId=claim.id, state=ClaimState.DISPUTED):
            action()


@pytest.mark.parametrize("when", ["at-once", "the-last-second-before"])
@pytest.mark.parametrize(
    "answers", [0, 1, 2], ids=["unanswered", "answered-once", "answered-twice"]
)
def test_escalate_claim_reverts_while_the_insurer_may_still_decide(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
    advance_time: Callable[[int], int],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    when: str,
    answers: int,
) -> None:
    """Counted from the later of the submission and the last answer: every answer (here ten
    days apart) gives the insurer a full period to decide on what it asked for."""
    claim = submit_claim(manual_policy.id, 300 * USD)
    since = block_time(claim.receipt)
    for _ in range(answers):
        advance_time(10 * DAY)
        claims_manager.requestInfo(claim.id, 1, sender=insurer)
        advance_time(10 * DAY)
        since = block_time(
            claims_manager.provideInfo(claim.id, claim.records.evidence, sender=clinic)
        )
    until = since + DECISION_PERIOD
    assert claim_of(claim.id)["answeredAt"] == (since if answers else 0)
    if when == "the-last-second-before":
        next_tx_at(until - 1)
    with reverts(claims_manager.ClaimNotOverdue, claimId=claim.id, until=until):
        claims_manager.escalateClaim(claim.id, sender=clinic)


@pytest.mark.parametrize("by", ["clinic", "patient"])
def test_escalate_claim_reverts_from_info_requested_while_the_insurer_is_verified(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    by: str,
) -> None:
    """The insurer asked a question long ago and is still waiting: a claimant who does not
    answer cannot take the claim to a resolver, however late; once answered, the insurer has
    a full period from the answer."""
    sender = request.getfixturevalue(by)
    claim = submit_claim(manual_policy.id, 300 * USD)
    claims_manager.requestInfo(claim.id, 1, sender=insurer)
    advance_time(DECISION_PERIOD + 10 * DAY)

    with reverts(
        claims_manager.ClaimInvalidState, claimId=claim.id, state=ClaimState.INFO_REQUESTED
    ):
        claims_manager.escalateClaim(claim.id, sender=sender)

    answered_at = block_time(
        claims_manager.provideInfo(claim.id, claim.records.evidence, sender=sender)
    )
    with reverts(
        claims_manager.ClaimNotOverdue, claimId=claim.id, until=answered_at + DECISION_PERIOD
    ):
        claims_manager.escalateClaim(claim.id, sender=sender)
    next_tx_at(answered_at + DECISION_PERIOD)
    tx = claims_manager.escalateClaim(claim.id, sender=sender)
    assert_events(tx, claims_manager.ClaimEscalated(claimId=claim.id, by=sender))


ESCALATION_REFUSED = [
    ClaimState.APPROVED,
    ClaimState.PARTIALLY_APPROVED,
    ClaimState.DENIED,
    ClaimState.DISPUTED,
    ClaimState.RESOLVED,
]


@pytest.mark.parametrize(
    "state", ESCALATION_REFUSED, ids=[s.name.lower() for s in ESCALATION_REFUSED]
)
def test_escalate_claim_reverts_once_the_claim_is_decided(
    claims_manager: Any,
    clinic: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    advance_time: Callable[[int], int],
    state: ClaimState,
) -> None:
    """A decision is disputed (within its window), not escalated."""
    claim_id = claim_in_state(state)
    advance_time(DECISION_PERIOD + DAY)
    with reverts(claims_manager.ClaimInvalidState, claimId=claim_id, state=state):
        claims_manager.escalateClaim(claim_id, sender=clinic)


@pytest.mark.parametrize(
    "submitted",
    ["before-the-suspension", "info-requested-before-the-suspension", "after-the-suspension"],
)
def test_claim_on_a_suspended_insurers_policy_can_be_escalated_at_once(
    claims_manager: Any,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    suspend: Callable[..., Any],
    submitted: str,
) -> None:
    """Nobody can decide it (the insurer and its practitioners act only while verified), so
    the claimant need not wait 30 days for a decision that cannot come, nor answer a question
    nobody can read the answer to."""
    if submitted != "after-the-suspension":
        claim = submit_claim(funded_policy.id, 1_000 * USD)  # above the automatic limit
        if submitted == "info-requested-before-the-suspension":
            claims_manager.requestInfo(claim.id, 1, sender=insurer)
        suspend(insurer)
    else:
        suspend(insurer)
        claim = submit_claim(funded_policy.id, 300 * USD)  # would settle: InsurerNotVerified
    for sender in (insurer, adjuster):
        with reverts(
            claims_manager.ClaimNotPolicyInsurer, caller=sender, policyId=funded_policy.id
        ):
            claims_manager.approveClaim(claim.id, USD, sender=sender)

    tx = claims_manager.escalateClaim(claim.id, sender=patient)

    assert_events(tx, claims_manager.ClaimEscalated(claimId=claim.id, by=patient))
    assert claims_manager.getClaim(claim.id).state == ClaimState.DISPUTED


def test_reinstated_insurer_gets_its_decision_period_back(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    suspend: Callable[..., Any],
    approve: Callable[..., Any],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD)
    claims_manager.requestInfo(claim.id, 1, sender=insurer)
    suspend(insurer)
    approve(insurer)  # reinstated by the registrars
    with reverts(
        claims_manager.ClaimInvalidState, claimId=claim.id, state=ClaimState.INFO_REQUESTED
    ):
        claims_manager.escalateClaim(claim.id, sender=clinic)
    answered_at = block_time(
        claims_manager.provideInfo(claim.id, claim.records.evidence, sender=clinic)
    )
    until = answered_at + DECISION_PERIOD
    with reverts(claims_manager.ClaimNotOverdue, claimId=claim.id, until=until):
        claims_manager.escalateClaim(claim.id, sender=clinic)
    claims_manager.approveClaim(claim.id, 160 * USD, sender=insurer)


# ============================================================================ resolveDispute


@pytest.mark.parametrize("covered", [True, False], ids=["covered", "flag-ignored"])
def test_resolve_dispute_after_partial_approval_credits_the_award_on_top(
    claims_manager: Any,
    resolver: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    claim_in_state: Callable[[ClaimState], int],
    claim_of: Callable[[int], dict[str, Any]],
    covered: bool,
) -> None:
    """The insurer found the care covered when it paid part: ``covered`` changes nothing."""
    claim_id = claim_in_state(ClaimState.DISPUTED)  # 100 of 160 approved, deductible 100 applied
    assert claims_manager.allowedAmount(claim_id) == (60 * USD, 100 * USD)
    before = claim_of(claim_id)

    tx = claims_manager.resolveDispute(claim_id, 60 * USD, covered, sender=resolver)

    assert_events(
        tx,
        claims_manager.DisputeResolved(
            claimId=claim_id, payee=clinic, award=60 * USD, resolver=resolver
        ),
    )
    after = claim_of(claim_id)
    assert after == {**before, "state": ClaimState.RESOLVED, "paid": 160 * USD}
    stored = claims_manager.getPolicy(manual_policy.id)
    assert (stored.paid, stored.deductibleMet) == (160 * USD, 100 * USD)
    assert claims_manager.creditOf(clinic) == 160 * USD
    assert claims_manager.allowedAmount(claim_id) == (0, 0)
    assert claims_manager.openClaimsOf(manual_policy.id) == 0


def test_resolve_dispute_after_denial_credits_the_award_and_applies_the_deductible(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    patient: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    claim_of: Callable[[int], dict[str, Any]],
) -> None:
    claim = submit_claim(manual_policy.id, 300 * USD, pay_patient=True)
    claims_manager.denyClaim(claim.id, 1, sender=insurer)
    claims_manager.disputeClaim(claim.id, 1, sender=patient)
    assert claims_manager.allowedAmount(claim.id) == (160 * USD, 100 * USD)

    tx = claims_manager.resolveDispute(claim.id, 120 * USD, True, sender=resolver)

    assert_events(
        tx,
        claims_manager.DisputeResolved(
            claimId=claim.id, payee=patient, award=120 * USD, resolver=resolver
        ),
    )
    stored = claim_of(claim.id)
    assert (stored["state"], stored["paid"], stored["deductibleApplied"]) == (
        ClaimState.RESOLVED,
        120 * USD,
        100 * USD,
    )
    policy = claims_manager.getPolicy(manual_policy.id)
    assert (policy.paid, policy.deductibleMet) == (120 * USD, 100 * USD)
    assert claims_manager.creditOf(patient) == 120 * USD


def test_dispute_after_denial_uses_the_deductible_left_at_resolution(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    denied = submit_claim(manual_policy.id, 300 * USD)
    claims_manager.denyClaim(denied.id, 1, sender=insurer)
    claims_manager.disputeClaim(denied.id, 1, sender=clinic)
    other = submit_claim(manual_policy.id, 300 * USD)
    claims_manager.approveClaim(other.id, 160 * USD, sender=insurer)  # meets the deductible

    assert claims_manager.allowedAmount(denied.id) == (240 * USD, 0)
    claims_manager.resolveDispute(denied.id, 240 * USD, True, sender=resolver)
    assert claims_manager.getClaim(denied.id).deductibleApplied == 0
    assert claims_manager.getPolicy(manual_policy.id).deductibleMet == 100 * USD


def test_zero_award_upholds_the_decision_and_credits_nothing(
    claims_manager: Any,
    resolver: AccountAPI,
    clinic: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    claim_of: Callable[[int], dict[str, Any]],
) -> None:
    claim_id = claim_in_state(ClaimState.DISPUTED)
    before = claim_of(claim_id)
    credit = claims_manager.creditOf(clinic)

    tx = claims_manager.resolveDispute(claim_id, 0, True, sender=resolver)

    assert_events(
        tx,
        claims_manager.DisputeResolved(claimId=claim_id, payee=clinic, award=0, resolver=resolver),
    )
    assert claim_of(claim_id) == {**before, "state": ClaimState.RESOLVED}
    assert claims_manager.creditOf(clinic) == credit


def test_resolve_dispute_is_capped_by_the_annual_limit_left(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    policy = issue_policy(autoSettleLimit=0, annualLimit=200 * USD, deductible=0)
    fund(policy.id, 1_000 * USD)
    disputed = submit_claim(policy.id, 200 * USD)  # 160 allowed
    claims_manager.approveClaim(disputed.id, 60 * USD, sender=insurer)
    claims_manager.disputeClaim(disputed.id, 1, sender=clinic)
    other = submit_claim(policy.id, 200 * USD)
    claims_manager.approveClaim(other.id, 120 * USD, sender=insurer)  # 20 of the limit left

    assert claims_manager.allowedAmount(disputed.id) == (20 * USD, 0)
    with reverts(claims_manager.ClaimAmountExceedsAllowed, amount=20 * USD + 1, allowed=20 * USD):
        claims_manager.resolveDispute(disputed.id, 20 * USD + 1, True, sender=resolver)
    claims_manager.resolveDispute(disputed.id, 20 * USD, True, sender=resolver)
    assert claims_manager.getPolicy(policy.id).paid == 200 * USD


def test_resolve_dispute_reverts_above_what_the_policy_allows(
    claims_manager: Any, resolver: AccountAPI, claim_in_state: Callable[[ClaimState], int]
) -> None:
    claim_id = claim_in_state(ClaimState.DISPUTED)
    with reverts(claims_manager.ClaimAmountExceedsAllowed, amount=60 * USD + 1, allowed=60 * USD):
        claims_manager.resolveDispute(claim_id, 60 * USD + 1, True, sender=resolver)


def test_resolve_dispute_reverts_when_the_pool_is_short(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    policy = issue_policy(autoSettleLimit=0)
    fund(policy.id, 130 * USD)
    claim = submit_claim(policy.id, 300 * USD)
    claims_manager.approveClaim(claim.id, 100 * USD, sender=insurer)
    claims_manager.disputeClaim(claim.id, 1, sender=clinic)
    with reverts(
        claims_manager.ClaimPoolInsufficient,
        policyId=policy.id,
        needed=60 * USD,
        available=30 * USD,
    ):
        claims_manager.resolveDispute(claim.id, 60 * USD, True, sender=resolver)


@pytest.mark.parametrize("caller", ["insurer", "admin", "patient", "revoked-resolver"])
def test_resolve_dispute_reverts_for_caller_without_the_resolver_role(
    claims_manager: Any,
    insurer: AccountAPI,
    admin: AccountAPI,
    patient: AccountAPI,
    resolver: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    caller: str,
) -> None:
    claim_id = claim_in_state(ClaimState.DISPUTED)
    account = {"insurer": insurer, "admin": admin, "patient": patient}.get(caller, resolver)
    if caller == "revoked-resolver":
        claims_manager.revokeRole(RESOLVER_ROLE, resolver, sender=admin)
    with reverts(claims_manager.ClaimNotResolver, caller=account):
        claims_manager.resolveDispute(claim_id, 0, True, sender=account)


def test_a_resolver_granted_by_the_admin_can_resolve(
    claims_manager: Any,
    admin: AccountAPI,
    stranger: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
) -> None:
    claim_id = claim_in_state(ClaimState.DISPUTED)
    claims_manager.grantRole(RESOLVER_ROLE, stranger, sender=admin)
    claims_manager.resolveDispute(claim_id, 10 * USD, True, sender=stranger)
    assert claims_manager.getClaim(claim_id).state == ClaimState.RESOLVED


UNDISPUTED = [
    ClaimState.SUBMITTED,
    ClaimState.INFO_REQUESTED,
    ClaimState.APPROVED,
    ClaimState.PARTIALLY_APPROVED,
    ClaimState.DENIED,
    ClaimState.RESOLVED,
]


@pytest.mark.parametrize("state", UNDISPUTED, ids=[s.name.lower() for s in UNDISPUTED])
def test_resolve_dispute_reverts_unless_the_claim_is_disputed(
    claims_manager: Any,
    resolver: AccountAPI,
    claim_in_state: Callable[[ClaimState], int],
    state: ClaimState,
) -> None:
    claim_id = claim_in_state(state)
    with reverts(claims_manager.ClaimInvalidState, claimId=claim_id, state=state):
        claims_manager.resolveDispute(claim_id, 0, True, sender=resolver)


def test_resolve_dispute_reverts_for_unknown_claim(
    claims_manager: Any, resolver: AccountAPI
) -> None:
    with reverts(claims_manager.ClaimUnknownClaim, claimId=3):
        claims_manager.resolveDispute(3, 0, True, sender=resolver)


@pytest.fixture
def unpaid_dispute(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
) -> Callable[[str, int], int]:
    """``unpaid_dispute(origin, billed)``: a claim under ``manual_policy`` paid nothing and in
    dispute, from a denial disputed by the clinic or from an escalation after 30 days."""

    def make(origin: str, billed: int) -> int:
        claim = submit_claim(manual_policy.id, billed)
        if origin == "denied":
            claims_manager.denyClaim(claim.id, 1, sender=insurer)
            claims_manager.disputeClaim(claim.id, 1, sender=clinic)
        else:
            advance_time(DECISION_PERIOD + DAY)
            claims_manager.escalateClaim(claim.id, sender=clinic)
        assert claims_manager.getClaim(claim.id).state == ClaimState.DISPUTED
        return claim.id

    return make


ORIGINS = ["denied", "escalated"]


@pytest.mark.parametrize("origin", ORIGINS)
def test_resolving_an_unpaid_claim_as_covered_awards_and_applies_the_deductible(
    claims_manager: Any,
    resolver: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    unpaid_dispute: Callable[[str, int], int],
    claim_of: Callable[[int], dict[str, Any]],
    origin: str,
) -> None:
    claim_id = unpaid_dispute(origin, 300 * USD)
    before = claim_of(claim_id)

    tx = claims_manager.resolveDispute(claim_id, 160 * USD, True, sender=resolver)

    assert_events(
        tx,
        claims_manager.DisputeResolved(
            claimId=claim_id, payee=clinic, award=160 * USD, resolver=resolver
        ),
    )
    assert claim_of(claim_id) == {
        **before,
        "state": ClaimState.RESOLVED,
        "paid": 160 * USD,
        "deductibleApplied": 100 * USD,
    }
    stored = claims_manager.getPolicy(manual_policy.id)
    assert (stored.paid, stored.deductibleMet) == (160 * USD, 100 * USD)
    assert claims_manager.creditOf(clinic) == 160 * USD
    assert claims_manager.openClaimsOf(manual_policy.id) == 0


@pytest.mark.parametrize("origin", ORIGINS)
def test_resolving_an_unpaid_claim_as_uncovered_awards_nothing_and_applies_no_deductible(
    claims_manager: Any,
    resolver: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    unpaid_dispute: Callable[[str, int], int],
    claim_of: Callable[[int], dict[str, Any]],
    origin: str,
) -> None:
    """Care that is not covered does not count toward the deductible either."""
    claim_id = unpaid_dispute(origin, 80 * USD)
    before = claim_of(claim_id)
    for award in (1, 80 * USD):
        with reverts(claims_manager.ClaimInvalidAmount, amount=award):
            claims_manager.resolveDispute(claim_id, award, False, sender=resolver)

    tx = claims_manager.resolveDispute(claim_id, 0, False, sender=resolver)

    assert_events(
        tx,
        claims_manager.DisputeResolved(claimId=claim_id, payee=clinic, award=0, resolver=resolver),
    )
    assert claim_of(claim_id) == {**before, "state": ClaimState.RESOLVED}
    stored = claims_manager.getPolicy(manual_policy.id)
    assert (stored.paid, stored.deductibleMet) == (0, 0)
    assert claims_manager.openClaimsOf(manual_policy.id) == 0


@pytest.mark.parametrize("origin", ORIGINS)
def test_resolving_a_claim_within_the_deductible_as_covered_awards_zero_and_counts_toward_it(
    claims_manager: Any,
    resolver: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    unpaid_dispute: Callable[[str, int], int],
    claim_of: Callable[[int], dict[str, Any]],
    origin: str,
) -> None:
    claim_id = unpaid_dispute(origin, 80 * USD)
    assert claims_manager.allowedAmount(claim_id) == (0, 80 * USD)
    with reverts(claims_manager.ClaimAmountExceedsAllowed, amount=1, allowed=0):
        claims_manager.resolveDispute(claim_id, 1, True, sender=resolver)

    claims_manager.resolveDispute(claim_id, 0, True, sender=resolver)

    stored = claim_of(claim_id)
    assert (stored["state"], stored["paid"], stored["deductibleApplied"]) == (
        ClaimState.RESOLVED,
        0,
        80 * USD,
    )
    assert claims_manager.getPolicy(manual_policy.id).deductibleMet == 80 * USD
    assert claims_manager.creditOf(clinic) == 0


# ============================================================================ withdrawPayment


def test_withdraw_payment_sends_the_whole_credit_and_clears_it(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    """Decisions by people are credited (pull payment); the credit adds up across claims."""
    first = submit_claim(manual_policy.id, 300 * USD)
    claims_manager.approveClaim(first.id, 160 * USD, sender=insurer)
    second = submit_claim(manual_policy.id, 100 * USD)
    claims_manager.approveClaim(second.id, 80 * USD, sender=insurer)  # the deductible is met
    assert claims_manager.creditOf(clinic) == 240 * USD
    assert token.balanceOf(clinic) == 0
    assert claims_manager.withdrawPayment.call(sender=clinic) == 240 * USD

    tx = claims_manager.withdrawPayment(sender=clinic)

    assert_events(
        tx,
        claims_manager.PaymentWithdrawn(payee=clinic, amount=240 * USD, holder=clinic),
        token.Transfer(**{"from": claims_manager, "to": clinic, "value": 240 * USD}),
    )
    assert claims_manager.creditOf(clinic) == 0
    assert token.balanceOf(clinic) == 240 * USD
    assert token.balanceOf(claims_manager) == (10_000 - 240) * USD


@pytest.mark.parametrize("history", ["never-credited", "paid-by-transfer", "already-withdrawn"])
def test_withdraw_payment_reverts_with_nothing_credited(
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    funded_policy: IssuedPolicy,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    history: str,
) -> None:
    if history == "paid-by-transfer":  # an automatic settlement leaves nothing to withdraw
        submit_claim(funded_policy.id, 300 * USD)
    elif history == "already-withdrawn":
        claim = submit_claim(manual_policy.id, 300 * USD)
        claims_manager.approveClaim(claim.id, 160 * USD, sender=insurer)
        claims_manager.withdrawPayment(sender=clinic)
    with reverts(claims_manager.ClaimNothingToWithdraw, account=clinic):
        claims_manager.withdrawPayment(sender=clinic)


def test_money_in_equals_pools_plus_credits_plus_money_out_through_a_claims_life(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    """Funded (20,000) = what the pools hold + what is credited + what left to the payees
    (sent at once by automatic settlements, or withdrawn); the manager holds the first two."""
    funded = 20_000 * USD

    def balanced() -> None:
        pools = sum(
            (p := claims_manager.getPolicy(i)).funded - p.paid
            for i in (funded_policy.id, manual_policy.id)
        )
        credits = claims_manager.creditOf(clinic) + claims_manager.creditOf(patient)
        out = token.balanceOf(clinic) + token.balanceOf(patient)
        assert token.balanceOf(claims_manager) == pools + credits
        assert funded == pools + credits + out

    submit_claim(funded_policy.id, 300 * USD)  # 160 sent to the clinic
    balanced()
    claim = submit_claim(manual_policy.id, 300 * USD, pay_patient=True)
    claims_manager.approveClaim(claim.id, 100 * USD, sender=insurer)
    balanced()
    claims_manager.disputeClaim(claim.id, 1, sender=patient)
    claims_manager.resolveDispute(claim.id, 60 * USD, True, sender=resolver)
    balanced()
    with reverts(claims_manager.ClaimNothingToWithdraw, account=clinic):
        claims_manager.withdrawPayment(sender=clinic)
    claims_manager.withdrawPayment(sender=patient)
    balanced()
    assert token.balanceOf(patient) == 160 * USD
    assert token.balanceOf(clinic) == 160 * USD


# ============================================================================ openClaimsOf


def test_open_claims_count_every_claim_awaiting_the_insurer_or_a_resolver(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    funded_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
) -> None:
    policy_id = funded_policy.id

    def open_claims() -> int:
        return claims_manager.openClaimsOf(policy_id)

    assert open_claims() == 0
    submit_claim(policy_id, 300 * USD)  # settled automatically: never open
    assert open_claims() == 0
    partial = submit_claim(policy_id, 1_000 * USD)
    denied = submit_claim(policy_id, 1_000 * USD)
    asked = submit_claim(policy_id, 1_000 * USD)
    by_patient = submit_claim(policy_id, 300 * USD, sender=patient)
    assert open_claims() == 4
    claims_manager.approveClaim(partial.id, 100 * USD, sender=insurer)
    assert open_claims() == 3
    claims_manager.disputeClaim(partial.id, 1, sender=clinic)
    assert open_claims() == 4
    claims_manager.denyClaim(denied.id, 1, sender=insurer)
    assert open_claims() == 3
    claims_manager.requestInfo(asked.id, 1, sender=insurer)
    claims_manager.provideInfo(asked.id, asked.records.evidence, sender=clinic)
    claims_manager.requestInfo(asked.id, 2, sender=insurer)
    assert open_claims() == 3  # information requested: still open
    claims_manager.resolveDispute(partial.id, 0, True, sender=resolver)
    assert open_claims() == 2
    claims_manager.provideInfo(asked.id, asked.records.evidence, sender=clinic)
    advance_time(DECISION_PERIOD + DAY)
    claims_manager.escalateClaim(asked.id, sender=clinic)
    claims_manager.escalateClaim(by_patient.id, sender=patient)
    assert open_claims() == 2  # escalated: open, for a resolver now
    claims_manager.resolveDispute(asked.id, 10 * USD, True, sender=resolver)
    claims_manager.resolveDispute(by_patient.id, 0, False, sender=resolver)
    assert open_claims() == 0
    assert claims_manager.openClaimsOf(policy_id + 1) == 0  # unknown policy: none


# ============================================================================ reclaimPool


@pytest.fixture
def short_policy(
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    now: Callable[[], int],
) -> IssuedPolicy:
    """A default policy covering from a day ago until ten days from now, with 10,000 mUSD."""
    policy = issue_policy(validFrom=now() - DAY, validUntil=now() + 10 * DAY)
    fund(policy.id, 10_000 * USD)
    return policy


def test_reclaim_pool_returns_the_unspent_pool_from_the_second_after_the_term(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    short_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    policy_of: Callable[[int], dict[str, Any]],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    submit_claim(short_policy.id, 300 * USD)  # 160 paid at once; no decision to dispute
    end = short_policy.terms["validUntil"]
    next_tx_at(end)  # the last second of cover
    with reverts(claims_manager.ClaimPolicyNotSettled, policyId=short_policy.id, until=end + 1):
        claims_manager.reclaimPool(short_policy.id, sender=insurer)
    before = token.balanceOf(insurer)
    next_tx_at(end + 1)

    tx = claims_manager.reclaimPool(short_policy.id, sender=insurer)

    assert block_time(tx) == end + 1
    unspent = (10_000 - 160) * USD
    assert_events(
        tx,
        claims_manager.PoolReclaimed(policyId=short_policy.id, insurer=insurer, amount=unspent),
        token.Transfer(**{"from": claims_manager, "to": insurer, "value": unspent}),
    )
    assert token.balanceOf(insurer) == before + unspent
    stored = policy_of(short_policy.id)
    assert stored["funded"] == stored["paid"] == 160 * USD
    assert token.balanceOf(claims_manager) == 0
    assert token.balanceOf(clinic) == 160 * USD
    with reverts(claims_manager.ClaimNothingToWithdraw, account=insurer):
        claims_manager.reclaimPool(short_policy.id, sender=insurer)


@pytest.mark.parametrize(
    "state", ["submitted", "info-requested", "disputed-after-denial", "escalated"]
)
def test_reclaim_pool_reverts_while_a_claim_is_open(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    short_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    state: str,
) -> None:
    """Long after the term and any window: an open claim may still be paid from the pool."""
    claim = submit_claim(short_policy.id, 1_000 * USD)
    if state == "info-requested":
        claims_manager.requestInfo(claim.id, 1, sender=insurer)
    elif state == "disputed-after-denial":
        claims_manager.denyClaim(claim.id, 1, sender=insurer)
        claims_manager.disputeClaim(claim.id, 1, sender=clinic)
    advance_time(DECISION_PERIOD + DISPUTE_WINDOW + DAY)
    if state == "escalated":
        claims_manager.escalateClaim(claim.id, sender=clinic)
    with reverts(claims_manager.ClaimPolicyNotSettled, policyId=short_policy.id, until=0):
        claims_manager.reclaimPool(short_policy.id, sender=insurer)
    if state in ("disputed-after-denial", "escalated"):
        claims_manager.resolveDispute(claim.id, 0, False, sender=resolver)
    else:
        claims_manager.denyClaim(claim.id, 1, sender=insurer)
    assert claims_manager.openClaimsOf(short_policy.id) == 0


@pytest.mark.parametrize("decision", ["denial", "partial-approval"])
def test_reclaim_pool_reverts_within_the_dispute_window_of_the_last_decision(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    short_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    decision: str,
) -> None:
    """The insurer decides after the term ended: the claimant keeps the whole window to
    dispute, and the pool that would pay the dispute stays until the window closes."""
    claim = submit_claim(short_policy.id, 1_000 * USD)
    advance_time(20 * DAY)  # the term is over
    if decision == "denial":
        last = claims_manager.denyClaim(claim.id, 1, sender=insurer)
    else:
        last = claims_manager.approveClaim(claim.id, 100 * USD, sender=insurer)
    until = block_time(last) + DISPUTE_WINDOW
    next_tx_at(until - 1)
    with reverts(claims_manager.ClaimPolicyNotSettled, policyId=short_policy.id, until=until):
        claims_manager.reclaimPool(short_policy.id, sender=insurer)
    next_tx_at(until)

    tx = claims_manager.reclaimPool(short_policy.id, sender=insurer)

    paid = 0 if decision == "denial" else 100 * USD
    (event,) = claims_manager.PoolReclaimed.from_receipt(tx)
    assert event.amount == 10_000 * USD - paid
    assert claims_manager.getPolicy(short_policy.id).funded == paid
    assert token.balanceOf(claims_manager) == claims_manager.creditOf(clinic) == paid


@pytest.mark.parametrize(
    "later", ["full-approval", "zero-approval-within-the-deductible", "resolution"]
)
def test_reclaim_pool_waits_only_for_the_window_of_the_last_disputable_decision(
    claims_manager: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    short_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    next_tx_at: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    later: str,
) -> None:
    """After the term, the insurer denies a claim (its window keeps the pool); three days
    later it approves another claim in full (or for zero, within the deductible), or the
    resolver awards the denied claim, which the clinic disputed. Nobody can dispute those,
    so they do not restart the wait: the pool comes back when the denial's window closes."""
    denied = submit_claim(short_policy.id, 1_000 * USD)
    other = submit_claim(  # left for review: no proof
        short_policy.id, 1_000 * USD if later == "full-approval" else 50 * USD, prove=False
    )
    advance_time(20 * DAY)  # the term is over
    if later == "resolution":
        claims_manager.approveClaim(other.id, 0, sender=insurer)  # closed before the denial
    until = block_time(claims_manager.denyClaim(denied.id, 1, sender=insurer)) + DISPUTE_WINDOW
    if later == "resolution":
        advance_time(DAY)
        claims_manager.disputeClaim(denied.id, 1, sender=clinic)
    advance_time(3 * DAY)
    if later == "resolution":
        late = claims_manager.resolveDispute(denied.id, 720 * USD, True, sender=resolver)
    else:
        amount = 720 * USD if later == "full-approval" else 0
        assert claims_manager.allowedAmount(other.id)[0] == amount
        late = claims_manager.approveClaim(other.id, amount, sender=insurer)
        assert claims_manager.getClaim(other.id).state == ClaimState.APPROVED
    assert block_time(late) + DISPUTE_WINDOW > until
    assert claims_manager.openClaimsOf(short_policy.id) == 0
    next_tx_at(until - 1)
    with reverts(claims_manager.ClaimPolicyNotSettled, policyId=short_policy.id, until=until):
        claims_manager.reclaimPool(short_policy.id, sender=insurer)
    next_tx_at(until)

    tx = claims_manager.reclaimPool(short_policy.id, sender=insurer)

    assert block_time(tx) == until
    (event,) = claims_manager.PoolReclaimed.from_receipt(tx)
    policy = claims_manager.getPolicy(short_policy.id)
    assert event.amount == 10_000 * USD - policy.paid
    assert policy.funded == policy.paid


@pytest.mark.parametrize("closed_by", ["full-approval", "resolution-after-escalation"])
def test_reclaim_pool_right_after_the_term_when_nothing_decided_can_be_disputed(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    resolver: AccountAPI,
    clinic: AccountAPI,
    short_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    closed_by: str,
) -> None:
    """The only claim is approved in full after the term, or resolved after the clinic
    escalated it: the pool comes back in the next transaction."""
    claim = submit_claim(short_policy.id, 1_000 * USD)
    advance_time(DECISION_PERIOD + DAY)  # the term is over, and the claim overdue
    if closed_by == "full-approval":
        claims_manager.approveClaim(claim.id, 720 * USD, sender=insurer)
    else:
        claims_manager.escalateClaim(claim.id, sender=clinic)
        claims_manager.resolveDispute(claim.id, 720 * USD, True, sender=resolver)
    before = token.balanceOf(insurer)

    tx = claims_manager.reclaimPool(short_policy.id, sender=insurer)

    assert_events(
        tx,
        claims_manager.PoolReclaimed(
            policyId=short_policy.id, insurer=insurer, amount=(10_000 - 720) * USD
        ),
        token.Transfer(**{"from": claims_manager, "to": insurer, "value": (10_000 - 720) * USD}),
    )
    assert token.balanceOf(insurer) == before + (10_000 - 720) * USD
    assert claims_manager.creditOf(clinic) == 720 * USD


@pytest.mark.parametrize(
    "caller",
    ["practitioner", "other-insurer", "care-provider", "patient", "stranger", "resolver", "admin"],
)
def test_reclaim_pool_reverts_for_anyone_but_the_policys_insurer_account(
    request: pytest.FixtureRequest,
    claims_manager: Any,
    short_policy: IssuedPolicy,
    advance_time: Callable[[int], int],
    caller: str,
) -> None:
    advance_time(20 * DAY)
    fixture = {
        "practitioner": "adjuster",
        "other-insurer": "other_insurer",
        "care-provider": "clinic",
    }.get(caller, caller)
    account = request.getfixturevalue(fixture)
    with reverts(claims_manager.ClaimNotPolicyInsurer, caller=account, policyId=short_policy.id):
        claims_manager.reclaimPool(short_policy.id, sender=account)


def test_suspended_insurer_still_takes_back_its_pool(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    short_policy: IssuedPolicy,
    suspend: Callable[..., Any],
    advance_time: Callable[[int], int],
) -> None:
    suspend(insurer)
    advance_time(20 * DAY)
    before = token.balanceOf(insurer)
    claims_manager.reclaimPool(short_policy.id, sender=insurer)
    assert token.balanceOf(insurer) == before + 10_000 * USD


@pytest.mark.parametrize("pool", ["never-funded", "all-paid"])
def test_reclaim_pool_reverts_with_nothing_to_return(
    claims_manager: Any,
    insurer: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    now: Callable[[], int],
    pool: str,
) -> None:
    policy = issue_policy(validFrom=now() - DAY, validUntil=now() + 10 * DAY)
    if pool == "all-paid":
        fund(policy.id, 160 * USD)
        submit_claim(policy.id, 300 * USD)  # pays the whole pool at once
    advance_time(20 * DAY)
    with reverts(claims_manager.ClaimNothingToWithdraw, account=insurer):
        claims_manager.reclaimPool(policy.id, sender=insurer)


def test_reclaim_pool_leaves_what_payees_are_owed(
    claims_manager: Any,
    token: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    short_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
) -> None:
    claim = submit_claim(short_policy.id, 1_000 * USD)
    claims_manager.approveClaim(claim.id, 720 * USD, sender=insurer)  # credited, not withdrawn
    advance_time(20 * DAY)
    claims_manager.reclaimPool(short_policy.id, sender=insurer)
    assert token.balanceOf(claims_manager) == 720 * USD
    claims_manager.withdrawPayment(sender=clinic)
    assert token.balanceOf(clinic) == 720 * USD
    assert token.balanceOf(claims_manager) == 0


def test_reclaim_pool_reverts_for_unknown_policy(claims_manager: Any, insurer: AccountAPI) -> None:
    with reverts(claims_manager.ClaimUnknownPolicy, policyId=9):
        claims_manager.reclaimPool(9, sender=insurer)


# ============================================================================ views


def test_get_policy_and_get_claim_revert_for_unknown_ids(
    claims_manager: Any,
    manual_policy: IssuedPolicy,
    submit_claim: Callable[..., SubmittedClaim],
) -> None:
    claim = submit_claim(manual_policy.id, USD)
    with reverts(claims_manager.ClaimUnknownPolicy, policyId=manual_policy.id + 1):
        claims_manager.getPolicy(manual_policy.id + 1)
    with reverts(claims_manager.ClaimUnknownPolicy, policyId=0):
        claims_manager.getPolicy(0)
    with reverts(claims_manager.ClaimUnknownClaim, claimId=claim.id + 1):
        claims_manager.getClaim(claim.id + 1)
    evidence = record_number(claim.records.evidence[0])  # a record, but not a claim's
    with reverts(claims_manager.ClaimUnknownClaim, claimId=evidence):
        claims_manager.getClaim(evidence)
    with reverts(claims_manager.ClaimUnknownClaim, claimId=0):
        claims_manager.getClaim(0)


def test_allowed_amount_is_zero_for_unknown_and_settled_claims(
    claims_manager: Any, claim_in_state: Callable[[ClaimState], int]
) -> None:
    assert claims_manager.allowedAmount(99) == (0, 0)
    for state in (ClaimState.APPROVED, ClaimState.DENIED, ClaimState.PARTIALLY_APPROVED):
        assert claims_manager.allowedAmount(claim_in_state(state)) == (0, 0), state
    assert claims_manager.allowedAmount(claim_in_state(ClaimState.RESOLVED)) == (0, 0)


def test_allowed_amount_in_dispute_matches_the_model(
    claims_manager: Any,
    manual_policy: IssuedPolicy,
    claim_in_state: Callable[[ClaimState], int],
    claim_of: Callable[[int], dict[str, Any]],
) -> None:
    claim_id = claim_in_state(ClaimState.DISPUTED)
    stored = claim_of(claim_id)
    policy = manual_policy.model
    policy.paid, policy.deductible_met = 100 * USD, 100 * USD
    claim = ClaimModel(
        submitter=stored["submitter"],
        policy_id=manual_policy.id,
        billed=stored["billed"],
        pay_patient=False,
        submitted_at=stored["submittedAt"],
        state=ClaimState.DISPUTED,
        paid=stored["paid"],
        decided_at=stored["decidedAt"],
        deductible_applied=stored["deductibleApplied"],
    )
    assert claims_manager.allowedAmount(claim_id) == allowed_amount(policy, claim)
    assert allowed_amount(policy, claim) == (
        coverage(policy, 300 * USD, 100 * USD) - 100 * USD,
        100 * USD,
    )
