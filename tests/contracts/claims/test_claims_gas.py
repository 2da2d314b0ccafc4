"""Gas of every ClaimsManager transaction, and the target of the automatic path.

The target: submitting a claim that settles automatically (claim record, one evidence record,
one procedure code proven against the policy's root, fresh service and identifier keys) costs
at most 250,000 gas in the steady state, *including the token transfer that pays it*: an
automatic settlement is paid at once, so there is no withdrawal to add. The steady state is a
clinic that has been paid before, on a policy that has paid before (its token balance and the
policy's paid slot are non-zero). The first claim of a fresh clinic on a fresh policy costs
more (the payee's balance slot and the policy's paid slot go from zero to non-zero) and is
held to a budget of its own. Gas is deterministic on a given chain and fork, so these are
exact measurements, not timings. The figures (``gas_used`` of each receipt, the 21,000 base
and calldata included) are printed per step, and each step is held to a budget about 10 %
above what it measured::

    ape test tests/contracts/claims/test_claims_gas.py --network ethereum:local:foundry

With category grants instead of record grants, ConsentManager spends one more cold read per
record (see the second case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..support import Category
from .conftest import ENVELOPE, PAYMENT
from .model import DAY, DECISION_PERIOD, DISPUTE_WINDOW, USD

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

    from .conftest import Evidence, IssuedPolicy, SubmittedClaim

STEADY_STATE_TARGET = 250_000
# The automatic path as measured on Anvil when written (eth-tester gives the same figures):
#   record grants:   first claim 250,344, steady state 233,256 (16,744 under the target)
#   category grants: first claim 255,656, steady state 238,556 (11,444 under the target)
# The steady state meets the target either way; the first claim of a fresh clinic on a fresh
# policy is about 17,100 dearer (a zero-to-non-zero token balance and the policy's first
# payment) and lies just above it: it has a budget of its own, about 2 % above what it measured.
BUDGETS_AUTOMATIC = {
    "record": {"first": 255_000, "steady": STEADY_STATE_TARGET},
    "category": {"first": 261_000, "steady": STEADY_STATE_TARGET},
}
# Every step: about 10 % above what it measured when written (the same on both networks),
# except the automatic steady state, held to the target (it measured 233,244 here, 233,336
# once a claim could wait for its keys). Re-measured when claims got `answeredAt` and a
# patient's claim its waiting keys: provideInfo writes `answeredAt` (58,421), escalateClaim
# reads the insurer's standing on every call (41,504), and approving a patient's claim takes
# its care and identifier keys (two new key slots: 128,440). Re-measured when a patient's claim
# got its own id and its record key: its submission stores a third waiting key (218,004), and
# its approval reads the provider's claim of the record and takes the record key (153,505).
BUDGETS = {
    "issuePolicy": 222_000,
    "fundPolicy (first)": 69_000,
    "fundPolicy (again)": 50_000,
    "submitClaim (settled automatically for zero, within the deductible)": 240_000,
    "submitClaim (settled automatically, deductible applied, first payment)": 276_000,
    "submitClaim (settled automatically, steady state)": STEADY_STATE_TARGET,
    # Pays the patient's controller: 253,690 before (the registry is asked who controls it).
    "submitClaim (settled automatically, steady state, paid to the patient)": 262_000,
    "submitClaim (to review: above the automatic limit)": 222_000,
    "submitClaim (to review: no proof)": 220_000,
    "submitClaim (to review: by the patient)": 240_000,
    "requestInfo": 43_000,
    "provideInfo (one record)": 64_000,
    "approveClaim (full, first for the hospital)": 92_000,
    "approveClaim (partial)": 92_000,
    "approveClaim (zero, within the deductible)": 71_000,
    "approveClaim (a patient's claim: takes its keys and its record)": 169_000,
    "denyClaim": 51_000,
    "disputeClaim (a denial)": 42_000,
    "resolveDispute (award after a denial, covered)": 68_000,
    "disputeClaim (a partial approval)": 42_000,
    "resolveDispute (zero award: upheld)": 53_000,
    "escalateClaim": 52_000,  # 47,674 once a patient's call asks the registry who controls it
    "resolveDispute (escalated, uncovered)": 56_000,
    # A withdrawal asks the registry whom the caller controls and whether its key was replaced:
    # 39,264 / 56,364 before payments followed a recovered patient's controller.
    "withdrawPayment (clinic)": 56_000,
    "withdrawPayment (hospital, first)": 74_000,
    "withdrawPayment (patient)": 55_000,
    "reclaimPool": 74_000,
}


@pytest.mark.parametrize("grants", ["record", "category"], ids=["record-grants", "category-grants"])
def test_automatic_settlement_stays_within_the_target(
    chain: Any,
    claims_manager: Any,
    consent_manager: Any,
    token: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    insurer: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    now: Callable[[], int],
    capsys: pytest.CaptureFixture[str],
    grants: str,
) -> None:
    """With the patient's payment consent given record by record (what the SDK grants when a
    patient submits), and with one category grant each for FINANCIAL and LAB instead
    (ConsentManager tries the record's own scope first, so a category grant costs each record
    one more cold read)."""
    policy = issue_policy()
    fund(policy.id, 10_000 * USD)
    if grants == "category":
        for category in (Category.FINANCIAL, Category.LAB):
            scope = int(category).to_bytes(32, "big")
            consent_manager.grant(
                patient, insurer, 1, scope, PAYMENT, now() + DAY, ENVELOPE, sender=patient
            )
    # Anchored and consented before: not the claim's cost.
    first_records = claim_evidence(evidence=1, consent=grants == "record")
    steady_records = claim_evidence(evidence=1, consent=grants == "record")
    assert token.balanceOf(clinic) == 0

    # 300 billed: the 100 deductible applied, 80 % of 200 sent to the clinic.
    first = submit_claim(policy.id, 300 * USD, records=first_records)
    # 300 billed again: the deductible is met, 80 % of 300 sent.
    steady = submit_claim(policy.id, 300 * USD, records=steady_records)

    for claim, amount in ((first, 160 * USD), (steady, 240 * USD)):
        (approved,) = claims_manager.ClaimApproved.from_receipt(claim.receipt)
        assert (approved.automatic, approved.amount) == (True, amount)
        (sent,) = token.Transfer.from_receipt(claim.receipt)
        assert (sent.to, sent.value) == (clinic.address, amount)
    assert token.balanceOf(clinic) == 400 * USD
    measured = {"first": first.receipt.gas_used, "steady": steady.receipt.gas_used}
    with capsys.disabled():
        _print(
            f"{chain.provider.network_choice}, payment consent by {grants} grants",
            [
                ("submitClaim (automatic, first: fresh clinic, deductible)", measured["first"]),
                ("submitClaim (automatic, steady state)", measured["steady"]),
            ],
        )
    budget = BUDGETS_AUTOMATIC[grants]
    assert measured["steady"] <= STEADY_STATE_TARGET, f"{measured['steady']:,} > target"
    over = [f"{k}: {measured[k]:,} > {budget[k]:,}" for k in measured if measured[k] > budget[k]]
    assert not over, "over budget: " + "; ".join(over)


def test_gas_of_every_claims_manager_step(
    chain: Any,
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    hospital: AccountAPI,
    patient: AccountAPI,
    resolver: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    advance_time: Callable[[int], int],
    now: Callable[[], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows: list[tuple[str, int]] = []

    def measure(label: str, receipt: ReceiptAPI) -> ReceiptAPI:
        rows.append((label, receipt.gas_used))
        return receipt

    manager = claims_manager
    policy = issue_policy(validFrom=now() - DAY, validUntil=now() + 60 * DAY)
    measure("issuePolicy", policy.receipt)
    policy_id = policy.id
    measure("fundPolicy (first)", fund(policy_id, 10_000 * USD))
    measure("fundPolicy (again)", fund(policy_id, 1_000 * USD))

    within = issue_policy()  # a second policy, whose deductible is still open
    fund(within.id, 1_000 * USD)
    measure(
        "submitClaim (settled automatically for zero, within the deductible)",
        submit_claim(within.id, 50 * USD).receipt,
    )
    auto = submit_claim(policy_id, 300 * USD)
    measure("submitClaim (settled automatically, deductible applied, first payment)", auto.receipt)
    auto_2 = submit_claim(policy_id, 300 * USD)
    measure("submitClaim (settled automatically, steady state)", auto_2.receipt)
    to_patient = submit_claim(policy_id, 300 * USD, pay_patient=True)
    measure(
        "submitClaim (settled automatically, steady state, paid to the patient)", to_patient.receipt
    )
    review = submit_claim(
        policy_id, 1_000 * USD, sender=hospital, records=claim_evidence(issuer=hospital)
    )
    measure("submitClaim (to review: above the automatic limit)", review.receipt)
    unproven = submit_claim(policy_id, 200 * USD, prove=False)
    measure("submitClaim (to review: no proof)", unproven.receipt)
    by_patient = submit_claim(policy_id, 200 * USD, sender=patient)
    measure("submitClaim (to review: by the patient)", by_patient.receipt)
    patients_approved = submit_claim(policy_id, 200 * USD, sender=patient)

    measure("requestInfo", manager.requestInfo(review.id, 7, sender=insurer))
    more = claim_evidence(evidence=1, issuer=hospital).evidence
    measure("provideInfo (one record)", manager.provideInfo(review.id, more, sender=hospital))
    measure(
        "approveClaim (full, first for the hospital)",
        manager.approveClaim(review.id, manager.allowedAmount(review.id)[0], sender=insurer),
    )
    partial = submit_claim(policy_id, 1_000 * USD)
    measure(
        "approveClaim (partial)",
        manager.approveClaim(partial.id, 100 * USD, sender=insurer),
    )
    zero = submit_claim(within.id, 30 * USD, prove=False)
    measure(
        "approveClaim (zero, within the deductible)",
        manager.approveClaim(zero.id, 0, sender=insurer),
    )
    measure(
        "approveClaim (a patient's claim: takes its keys and its record)",
        manager.approveClaim(patients_approved.id, 160 * USD, sender=insurer),
    )
    measure("denyClaim", manager.denyClaim(unproven.id, 3, sender=insurer))
    measure("disputeClaim (a denial)", manager.disputeClaim(unproven.id, 4, sender=clinic))
    measure(
        "resolveDispute (award after a denial, covered)",
        manager.resolveDispute(unproven.id, 50 * USD, True, sender=resolver),
    )
    measure("disputeClaim (a partial approval)", manager.disputeClaim(partial.id, 4, sender=clinic))
    measure(
        "resolveDispute (zero award: upheld)",
        manager.resolveDispute(partial.id, 0, True, sender=resolver),
    )
    advance_time(DECISION_PERIOD)
    measure("escalateClaim", manager.escalateClaim(by_patient.id, sender=patient))
    measure(
        "resolveDispute (escalated, uncovered)",
        manager.resolveDispute(by_patient.id, 0, False, sender=resolver),
    )
    measure("withdrawPayment (clinic)", manager.withdrawPayment(sender=clinic))
    measure("withdrawPayment (hospital, first)", manager.withdrawPayment(sender=hospital))
    measure("withdrawPayment (patient)", manager.withdrawPayment(sender=patient))
    advance_time(30 * DAY + DISPUTE_WINDOW)
    measure("reclaimPool", manager.reclaimPool(policy_id, sender=insurer))

    with capsys.disabled():
        _print(chain.provider.network_choice, rows)
    over = [f"{label}: {gas:,} > {BUDGETS[label]:,}" for label, gas in rows if gas > BUDGETS[label]]
    assert not over, "over budget: " + "; ".join(over)
    assert [label for label, _ in rows] == list(BUDGETS)


def _print(network: str, rows: list[tuple[str, int]]) -> None:
    width = max(len(label) for label, _ in rows) + 2
    print(f"\n\nClaimsManager gas on {network} (receipt gas_used)")
    print("-" * (width + 12))
    for label, gas in rows:
        print(f"{label:<{width}}{gas:>12,}")
