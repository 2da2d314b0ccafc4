"""ClaimsManager against a token that calls back into it in the middle of a transfer.

``MockReentrantToken`` can be armed to call a target with given calldata from inside its next
transfer (as a malicious token, or a token with receiver hooks and a malicious receiver,
would). To make the worst case real, the token account itself is the insured patient here:
it registers, anchors its own claim record, consents to the insurer and submits the claim
(through ``execute``), so that it holds a credit of its own and a re-entrant
``withdrawPayment`` would be made by a payee that is owed money. Every re-entry must revert
with OpenZeppelin's ``ReentrancyGuardReentrantCall()``, roll the whole transaction back, and
leave the money where it was; the honest withdrawal afterwards pays exactly once.

A revert raised in the manager but reaching the test through ``token.execute`` is asserted
with the error of the ``project.ClaimsManager`` container: Ape names the transaction's target
(the token) as the source, and the container's error names no address to compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hexbytes import HexBytes

from ..support import NO_RECORD, Category, assert_events, digest, new_key, reverts
from .conftest import ENVELOPE, PAYMENT, RECORD_SCOPE, TERMS_DIGEST
from .model import COVERED, DAY, USD

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI


@pytest.fixture(scope="module")
def reentrant_token(project: Any, admin: AccountAPI) -> Any:
    return project.MockReentrantToken.deploy(sender=admin)


@pytest.fixture(scope="module")
def manager(deploy_claims_manager: Callable[..., Any], reentrant_token: Any) -> Any:
    """A ClaimsManager paying in the reentrant token."""
    return deploy_claims_manager(reentrant_token)


@pytest.fixture(scope="module")
def token_patient(
    reentrant_token: Any,
    provider_registry: Any,
    record_registry: Any,
    consent_manager: Any,
    insurer: AccountAPI,
    world: None,
    chain: Any,
) -> HexBytes:
    """Makes the token account a registered patient with one claim record, consented to the
    insurer for payment; returns the record id."""
    token = reentrant_token
    token.execute(
        provider_registry, provider_registry.registerPatient.encode_input(new_key()), sender=insurer
    )
    anchored = token.execute(
        record_registry,
        record_registry.anchor.encode_input(
            token, digest("token-claim"), digest("token-salt"), Category.FINANCIAL, NO_RECORD
        ),
        sender=insurer,
    )
    (log,) = record_registry.RecordAnchored.from_receipt(anchored)
    record = HexBytes(log.id)
    expires = int(chain.blocks.head.timestamp) + 90 * DAY
    token.execute(
        consent_manager,
        consent_manager.grant.encode_input(
            token, insurer, RECORD_SCOPE, record, PAYMENT, expires, ENVELOPE
        ),
        sender=insurer,
    )
    return record


@pytest.fixture(scope="module")
def policy_id(
    manager: Any, reentrant_token: Any, insurer: AccountAPI, token_patient: HexBytes, chain: Any
) -> int:
    """A policy insuring the token account, funded with 1,000 units."""
    start = int(chain.blocks.head.timestamp) - DAY
    terms = (
        reentrant_token.address,
        start,
        start + 365 * DAY,
        10_000,
        0,
        5_000 * USD,
        500 * USD,
        COVERED.root,
        TERMS_DIGEST,
    )
    manager.issuePolicy(terms, sender=insurer)
    reentrant_token.mint(insurer, 1_000 * USD, sender=insurer)
    reentrant_token.approve(manager, 1_000 * USD, sender=insurer)
    manager.fundPolicy(1, 1_000 * USD, sender=insurer)
    return 1


@pytest.fixture(scope="module", autouse=True)
def reentrancy_world(policy_id: int) -> None:
    """Sets up every module fixture before any test (see the contract conftest on isolation)."""


def submit_as_token(
    manager: Any, token: Any, policy_id: int, record: HexBytes, billed: int, sender: AccountAPI
) -> ReceiptAPI:
    """The token account, as the patient, submits a small proven claim (settled at once)."""
    submission = (
        policy_id,
        billed,
        True,
        record,
        [],
        [COVERED.hashes["99213"]],
        [COVERED.proof("99213")],
    )
    return token.execute(manager, manager.submitClaim.encode_input(submission), sender=sender)


def test_token_patient_is_credited_by_an_automatic_settlement(
    manager: Any,
    reentrant_token: Any,
    stranger: AccountAPI,
    policy_id: int,
    token_patient: HexBytes,
) -> None:
    submit_as_token(manager, reentrant_token, policy_id, token_patient, 300 * USD, stranger)
    assert manager.creditOf(reentrant_token) == 300 * USD


def test_reentrant_withdrawal_by_a_payee_owed_money_reverts_and_moves_nothing(
    project: Any,
    manager: Any,
    reentrant_token: Any,
    stranger: AccountAPI,
    policy_id: int,
    token_patient: HexBytes,
) -> None:
    token = reentrant_token
    submit_as_token(manager, token, policy_id, token_patient, 300 * USD, stranger)
    submit_as_token(manager, token, policy_id, token_patient, 200 * USD, stranger)
    assert manager.creditOf(token) == 500 * USD
    withdraw = manager.withdrawPayment.encode_input()
    token.arm(manager, withdraw, sender=stranger)

    with reverts(project.ClaimsManager.ReentrancyGuardReentrantCall):
        token.execute(manager, withdraw, sender=stranger)

    assert manager.creditOf(token) == 500 * USD
    assert token.balanceOf(manager) == 1_000 * USD
    assert token.balanceOf(token) == 0
    assert token.reentered() == 0
    assert token.target() == manager.address, "the reverted transfer disarmed nothing"


def test_withdrawal_after_a_failed_reentry_pays_exactly_once(
    project: Any,
    manager: Any,
    reentrant_token: Any,
    stranger: AccountAPI,
    policy_id: int,
    token_patient: HexBytes,
) -> None:
    token = reentrant_token
    submit_as_token(manager, token, policy_id, token_patient, 300 * USD, stranger)
    withdraw = manager.withdrawPayment.encode_input()
    token.arm(manager, withdraw, sender=stranger)
    with reverts(project.ClaimsManager.ReentrancyGuardReentrantCall):
        token.execute(manager, withdraw, sender=stranger)
    token.arm("0x" + "00" * 20, b"", sender=stranger)

    tx = token.execute(manager, withdraw, sender=stranger)

    assert_events(
        tx,
        manager.PaymentWithdrawn(payee=token, amount=300 * USD),
        token.Transfer(**{"from": manager, "to": token, "value": 300 * USD}),
    )
    assert token.balanceOf(token) == 300 * USD
    assert token.balanceOf(manager) == 700 * USD
    assert manager.creditOf(token) == 0
    with reverts(project.ClaimsManager.ClaimNothingToWithdraw, account=token):
        token.execute(manager, withdraw, sender=stranger)


def test_reentry_into_fund_policy_during_a_withdrawal_reverts(
    project: Any,
    manager: Any,
    reentrant_token: Any,
    stranger: AccountAPI,
    policy_id: int,
    token_patient: HexBytes,
) -> None:
    token = reentrant_token
    submit_as_token(manager, token, policy_id, token_patient, 300 * USD, stranger)
    token.arm(manager, manager.fundPolicy.encode_input(policy_id, 1), sender=stranger)

    with reverts(project.ClaimsManager.ReentrancyGuardReentrantCall):
        token.execute(manager, manager.withdrawPayment.encode_input(), sender=stranger)

    assert manager.creditOf(token) == 300 * USD
    assert manager.getPolicy(policy_id).funded == 1_000 * USD


def test_reentrant_funding_cannot_count_one_transfer_twice(
    manager: Any,
    reentrant_token: Any,
    insurer: AccountAPI,
    stranger: AccountAPI,
    policy_id: int,
) -> None:
    """Without the guard, a nested ``fundPolicy`` inside the outer one's ``transferFrom`` would
    make the outer call see the inner call's tokens arrive too, and credit them twice."""
    token = reentrant_token
    token.mint(token, 100 * USD, sender=stranger)
    token.execute(token, token.approve.encode_input(manager, 100 * USD), sender=stranger)
    token.mint(insurer, 100 * USD, sender=insurer)
    token.approve(manager, 100 * USD, sender=insurer)
    token.arm(manager, manager.fundPolicy.encode_input(policy_id, 100 * USD), sender=stranger)

    with reverts(manager.ReentrancyGuardReentrantCall):
        manager.fundPolicy(policy_id, 100 * USD, sender=insurer)

    assert manager.getPolicy(policy_id).funded == 1_000 * USD
    assert token.balanceOf(manager) == 1_000 * USD
    assert token.balanceOf(insurer) == 100 * USD


def test_a_transfer_that_does_not_re_enter_goes_through(
    manager: Any,
    reentrant_token: Any,
    stranger: AccountAPI,
    token_patient: HexBytes,
    policy_id: int,
) -> None:
    """The mock's call back itself works: armed with a harmless view, the transfer succeeds and
    counts the call (so the reverts above come from the guard, not from the mock)."""
    token = reentrant_token
    submit_as_token(manager, token, policy_id, token_patient, 300 * USD, stranger)
    token.arm(manager, manager.claimCount.encode_input(), sender=stranger)

    token.execute(manager, manager.withdrawPayment.encode_input(), sender=stranger)

    assert token.reentered() == 1
    assert token.balanceOf(token) == 300 * USD
