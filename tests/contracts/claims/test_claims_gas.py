"""Gas of every ClaimsManager transaction, and the hard target of the automatic path.

The target: a claim settled automatically at submission (claim record, one evidence record,
one procedure code proven against the policy's root), then withdrawn by the provider, costs
at most 250,000 gas over both receipts, for the first claim of a fresh clinic (its credit slot
and token balance start at zero). Gas is deterministic on a given chain and fork, so this is
an exact measurement, not a timing (the figures are the same on eth-tester and Anvil). The
figures (``gas_used`` of each receipt, the 21,000 base and calldata included) are printed
per step, and each step is held to a budget about 10 % above what it measured::

    ape test tests/contracts/claims/test_claims_gas.py --network ethereum:local:foundry

The target holds with the patient's payment consent given record by record; with category
grants ConsentManager spends one more cold read per record and the path costs about 252,700
(see the second case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..support import Category
from .conftest import ENVELOPE, PAYMENT
from .model import DAY, USD

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

    from .conftest import Evidence, IssuedPolicy, SubmittedClaim

AUTOMATIC_PATH_TARGET = 250_000
CATEGORY_GRANT_BUDGET = 255_000  # about 1 % above what it measured (252,685)
# Every step: about 10 % above what it measured when written (the same on both networks).
BUDGETS = {
    "issuePolicy": 222_000,
    "fundPolicy (first)": 69_000,
    "fundPolicy (again)": 50_000,
    "submitClaim (settled automatically, deductible applied)": 211_000,
    "submitClaim (settled automatically, second for the clinic)": 192_000,
    "submitClaim (to review: above the automatic limit)": 170_000,
    "submitClaim (to review: no proof)": 169_000,
    "requestInfo": 41_000,
    "provideInfo (one record)": 58_000,
    "approveClaim (full, first for the hospital)": 88_000,
    "approveClaim (partial)": 69_000,
    "denyClaim": 47_000,
    "disputeClaim (a denial)": 35_000,
    "resolveDispute (award after a denial)": 62_000,
    "disputeClaim (a partial approval)": 35_000,
    "resolveDispute (zero award: upheld)": 47_000,
    "withdrawPayment (clinic)": 62_000,
    "withdrawPayment (hospital, first)": 62_000,
}


@pytest.mark.parametrize(
    ("grants", "budget"),
    [("record", AUTOMATIC_PATH_TARGET), ("category", CATEGORY_GRANT_BUDGET)],
    ids=["record-grants", "category-grants"],
)
def test_automatic_settlement_and_withdrawal_stay_within_budget(
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
    budget: int,
) -> None:
    """The target, with the patient's payment consent given record by record (what the SDK
    grants when a patient submits); and, as a budget, with one category grant each for
    FINANCIAL and LAB instead (ConsentManager tries the record's own scope first, so a
    category grant costs each record one more cold read: about 2,600 gas)."""
    policy = issue_policy()
    fund(policy.id, 10_000 * USD)
    # Anchored and consented before: not the claim's cost.
    records = claim_evidence(evidence=1, consent=grants == "record")
    if grants == "category":
        for category in (Category.FINANCIAL, Category.LAB):
            scope = int(category).to_bytes(32, "big")
            consent_manager.grant(
                patient, insurer, 1, scope, PAYMENT, now() + DAY, ENVELOPE, sender=patient
            )
    assert claims_manager.creditOf(clinic) == 0
    assert token.balanceOf(clinic) == 0

    # 300 billed: the 100 deductible applied, 80 % of 200 paid.
    submitted = submit_claim(policy.id, 300 * USD, records=records, codes=("99213",))
    withdrawn = claims_manager.withdrawPayment(sender=clinic)

    (approved,) = claims_manager.ClaimApproved.from_receipt(submitted.receipt)
    assert approved.automatic
    assert (approved.amount, approved.deductibleApplied) == (160 * USD, 100 * USD)
    assert token.balanceOf(clinic) == 160 * USD
    total = submitted.receipt.gas_used + withdrawn.gas_used
    with capsys.disabled():
        _print(
            f"{chain.provider.network_choice}, payment consent by {grants} grants",
            [
                ("submitClaim (settled automatically)", submitted.receipt.gas_used),
                ("withdrawPayment (first, fresh clinic)", withdrawn.gas_used),
                ("automatic path total", total),
            ],
        )
    assert total <= budget, f"{total:,} > {budget:,}"


def test_gas_of_every_claims_manager_step(
    chain: Any,
    claims_manager: Any,
    insurer: AccountAPI,
    clinic: AccountAPI,
    hospital: AccountAPI,
    resolver: AccountAPI,
    issue_policy: Callable[..., IssuedPolicy],
    fund: Callable[..., ReceiptAPI],
    claim_evidence: Callable[..., Evidence],
    submit_claim: Callable[..., SubmittedClaim],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows: list[tuple[str, int]] = []

    def measure(label: str, receipt: ReceiptAPI) -> ReceiptAPI:
        rows.append((label, receipt.gas_used))
        return receipt

    manager = claims_manager
    policy = issue_policy()
    measure("issuePolicy", policy.receipt)
    policy_id = policy.id
    measure("fundPolicy (first)", fund(policy_id, 10_000 * USD))
    measure("fundPolicy (again)", fund(policy_id, 1_000 * USD))

    auto = submit_claim(policy_id, 300 * USD)
    measure("submitClaim (settled automatically, deductible applied)", auto.receipt)
    auto_2 = submit_claim(policy_id, 300 * USD)
    measure("submitClaim (settled automatically, second for the clinic)", auto_2.receipt)
    review = submit_claim(policy_id, 1_000 * USD, sender=hospital)
    measure("submitClaim (to review: above the automatic limit)", review.receipt)
    unproven = submit_claim(policy_id, 200 * USD, prove=False)
    measure("submitClaim (to review: no proof)", unproven.receipt)

    measure("requestInfo", manager.requestInfo(review.id, 7, sender=insurer))
    more = claim_evidence(evidence=1).evidence
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
    measure("denyClaim", manager.denyClaim(unproven.id, 3, sender=insurer))
    measure("disputeClaim (a denial)", manager.disputeClaim(unproven.id, 4, sender=clinic))
    measure(
        "resolveDispute (award after a denial)",
        manager.resolveDispute(unproven.id, 50 * USD, sender=resolver),
    )
    measure("disputeClaim (a partial approval)", manager.disputeClaim(partial.id, 4, sender=clinic))
    measure(
        "resolveDispute (zero award: upheld)",
        manager.resolveDispute(partial.id, 0, sender=resolver),
    )
    measure("withdrawPayment (clinic)", manager.withdrawPayment(sender=clinic))
    measure("withdrawPayment (hospital, first)", manager.withdrawPayment(sender=hospital))

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
