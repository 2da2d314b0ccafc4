"""Stateful test of ClaimsManager's money against a Python model.

Hypothesis issues policies with random terms, funds them, submits claims (small and large,
proven or not, paid to the clinic or to the patient, by the clinic or by the patient),
approves them in full or in part (or above what is allowed), denies them, asks for and
provides information, disputes decisions (inside and outside the window), resolves disputes
with random awards, withdraws and moves time on, valid moves and invalid ones in any order.
Every accepted move checks the exact events the model predicts; every refused move checks the
exact custom error with ``support.call_reverts`` (an ``eth_call`` of the same transaction).

After every step the invariants check that:

* the manager's token balance equals the sum over policies of ``funded - paid`` plus the sum
  of unwithdrawn credits;
* every policy has paid at most what was funded into it and at most its annual limit;
* every claim was credited at most once per decision, and its ``paid`` is at most the
  coverage of ``billed - deductibleApplied``;
* the chain agrees with the model on every policy, claim, allowed amount and credit.

Time moves in whole days while transactions move it by seconds, and every period of cover
ends twelve hours after a whole number of days from its issue, so the networks (which differ
by a second in when a transaction runs) and the model agree on every "is it active" and "is
the window closed": the model counts days.

Each example runs between a chain snapshot and its restore.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ..support import assert_events, call_reverts
from .model import (
    COVERED,
    DAY,
    DISPUTE_WINDOW,
    USD,
    ClaimModel,
    ClaimState,
    PolicyModel,
    ReviewReason,
    allowed_amount,
    allowed_now,
    coverage,
    review_reason,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

    from .conftest import Evidence

WINDOW_DAYS = DISPUTE_WINDOW // DAY
DECIDABLE = (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED)
DISPUTABLE = (ClaimState.PARTIALLY_APPROVED, ClaimState.DENIED)
PICK = st.integers(0, 9)
"""Which claim a move is about, among the claims in a state the move accepts (a rule runs only
when there is one, so that lifecycles get deep; ``misplaced`` tries moves on the others)."""
ACCEPTS = {
    "approve": DECIDABLE,
    "deny": DECIDABLE,
    "request_info": (ClaimState.SUBMITTED,),
    "provide_info": (ClaimState.INFO_REQUESTED,),
    "dispute": DISPUTABLE,
    "resolve": (ClaimState.DISPUTED,),
}


def examples(chain: Any) -> int:
    """8 examples of up to 20 steps on Anvil, 5 on eth-tester (whose py-evm spends 15-30 ms
    on each of the view calls an observation makes): about 25-30 s either way on an idle
    machine. ``CLAIMS_STATEFUL_EXAMPLES`` overrides both."""
    if override := os.environ.get("CLAIMS_STATEFUL_EXAMPLES"):
        return int(override)
    return 8 if chain.provider.name == "foundry" else 5


@dataclass
class PolicyState:
    model: PolicyModel
    issued_day: int
    cover_days: int

    def active(self, day: int) -> bool:
        return day - self.issued_day <= self.cover_days


@dataclass
class ClaimState_:
    model: ClaimModel
    payee: str
    decided_day: int = -1
    was_denied: bool = False


@dataclass
class World:
    day: int = 0
    policies: dict[int, PolicyState] = field(default_factory=dict)
    claims: dict[int, ClaimState_] = field(default_factory=dict)
    credits: dict[str, int] = field(default_factory=dict)
    withdrawn: dict[str, int] = field(default_factory=dict)


@dataclass
class Observed:
    """What the chain holds, as the invariants compare it."""

    counts: tuple[int, int]
    policies: dict[int, dict[str, Any]]
    claims: dict[int, dict[str, Any]]
    allowed: dict[int, tuple[int, int]]
    credits: dict[str, int]
    balances: dict[str, int]


def test_money_follows_the_claims_lifecycle_model(
    chain: Any,
    claims_manager: Any,
    token: Any,
    admin: AccountAPI,
    insurer: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    resolver: AccountAPI,
    claim_evidence: Callable[..., Evidence],
    advance_time: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    now: Callable[[], int],
    isolated: Callable[[], Any],
) -> None:
    # Rolled back by Ape after the test, kept across examples: consented records every claim
    # reuses (nothing stops two claims citing the same record), and tokens for the insurer.
    records = claim_evidence(evidence=1)
    extra = claim_evidence(evidence=0).claim_record
    token.mint(insurer, 10**15, sender=admin)
    token.approve(claims_manager, 2**256 - 1, sender=insurer)
    manager = claims_manager
    payees = [clinic, patient]
    code = "99213"

    # The invariants read every policy, claim, allowed amount, credit and balance after every
    # step that mined a block: through bare JSON-RPC eth_calls, which cost a fraction of an
    # Ape call (Ape's own decoding of these views is covered in test_claims_manager.py).
    rpc = chain.provider.web3.provider

    def view(to: str, signature: str, args: list[Any], outputs: list[str]) -> tuple[Any, ...]:
        name, _, rest = signature.partition("(")
        types = [t for t in rest.rstrip(")").split(",") if t]
        data = keccak(text=signature)[:4] + encode(types, args)
        request = {"from": admin.address, "to": to, "data": HexBytes(data).to_0x_hex()}
        response = rpc.make_request("eth_call", [request, "latest"])
        assert "error" not in response, (name, args, response)
        return decode(outputs, HexBytes(response["result"]))

    def plain(value: Any) -> Any:
        if isinstance(value, str):  # eth-abi decodes addresses as lower-case hex
            return to_checksum_address(value)
        return HexBytes(value) if isinstance(value, bytes) else int(value)

    def fields(names: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
        return {n: plain(v) for n, v in zip(names, values, strict=True)}

    policy_names = [
        "insurer", "validFrom", "validUntil", "coverageBps", "patient", "deductible",
        "annualLimit", "paid", "autoSettleLimit", "deductibleMet", "funded", "codesRoot",
    ]  # fmt: skip
    claim_names = [
        "submitter", "policyId", "state", "payPatient", "billed", "paid", "decidedAt",
        "deductibleApplied", "submittedAt",
    ]  # fmt: skip
    policy_type = (
        "(address,uint40,uint40,uint16,address,uint96,uint96,uint96,uint96,uint96,uint128,bytes32)"
    )
    claim_type = "(address,uint64,uint8,bool,uint96,uint96,uint40,uint96,uint40)"
    address = manager.address

    def observe(policies: int, claims: int) -> Observed:
        return Observed(
            counts=(
                view(address, "policyCount()", [], ["uint64"])[0],
                view(address, "claimCount()", [], ["uint256"])[0],
            ),
            policies={
                i: fields(policy_names, view(address, "getPolicy(uint64)", [i], [policy_type])[0])
                for i in range(1, policies + 1)
            },
            claims={
                i: fields(claim_names, view(address, "getClaim(uint256)", [i], [claim_type])[0])
                for i in range(1, claims + 1)
            },
            allowed={
                i: view(address, "allowedAmount(uint256)", [i], ["uint96", "uint96"])
                for i in range(1, claims + 1)
            },
            credits={
                p.address: view(address, "creditOf(address)", [p.address], ["uint256"])[0]
                for p in payees
            },
            balances={
                a: view(token.address, "balanceOf(address)", [a], ["uint256"])[0]
                for a in (address, *(p.address for p in payees))
            },
        )

    class ClaimsLifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._isolation = isolated()
            self._isolation.__enter__()
            self.world = World()
            self._observed: Observed | None = None
            self._observed_at: Any = None
            self.issue(
                coverage_bps=8_000,
                deductible=50 * USD,
                annual_limit=1_000 * USD,
                auto_limit=300 * USD,
                cover_days=30,
            )
            self.fund(0, 700 * USD)
            # Claims to start from: one denied and disputed (the deductible still open), one
            # waiting for review; the rules take every claim anywhere from there.
            self.submit(0, 400 * USD, proven=False, pay_patient=False, by_patient=True)
            self.deny(0)
            self.dispute(0, by_patient=True)
            self.submit(0, 500 * USD, proven=False, pay_patient=True, by_patient=False)

        def teardown(self) -> None:
            self._isolation.__exit__(None, None, None)

        # ------------------------------------------------------------ helpers

        def in_states(self, states: tuple[ClaimState, ...], accepted: bool = True) -> list[int]:
            return [
                i
                for i, c in sorted(self.world.claims.items())
                if (c.model.state in states) == accepted
            ]

        def claim(self, index: int, action: str) -> tuple[int, ClaimState_]:
            ids = self.in_states(ACCEPTS[action])
            claim_id = ids[index % len(ids)]
            return claim_id, self.world.claims[claim_id]

        def policy_of(self, claim: ClaimState_) -> PolicyModel:
            return self.world.policies[claim.model.policy_id].model

        def credit(self, payee: str, amount: int) -> None:
            self.world.credits[payee] = self.world.credits.get(payee, 0) + amount

        def pay(
            self, claim: ClaimState_, amount: int, deductible: int, decided_at: int | None
        ) -> None:
            policy = self.policy_of(claim)
            policy.paid += amount
            policy.deductible_met += deductible
            claim.model.paid += amount
            if amount:
                claim.model.credits.append(amount)
            self.credit(claim.payee, amount)
            if decided_at is not None:
                claim.model.decided_at = decided_at
                claim.decided_day = self.world.day

        # ------------------------------------------------------------ rules

        @precondition(lambda self: len(self.world.policies) < 2)
        @rule(
            coverage_bps=st.sampled_from([1, 5_000, 8_000, 10_000]),
            deductible=st.sampled_from([0, 50 * USD, 250 * USD]),
            annual_limit=st.sampled_from([100 * USD, 1_000 * USD]),
            auto_limit=st.sampled_from([0, 200 * USD, 600 * USD]),
            cover_days=st.sampled_from([2, 30]),
        )
        def issue(
            self,
            coverage_bps: int,
            deductible: int,
            annual_limit: int,
            auto_limit: int,
            cover_days: int,
        ) -> None:
            start = now()
            terms = {
                "patient": patient.address,
                "validFrom": start - DAY,
                "validUntil": start + cover_days * DAY + DAY // 2,
                "coverageBps": coverage_bps,
                "deductible": deductible,
                "annualLimit": annual_limit,
                "autoSettleLimit": auto_limit,
                "codesRoot": COVERED.root,
                "termsDigest": HexBytes(bytes(32)),
            }
            tx = manager.issuePolicy(terms, sender=insurer)
            policy_id = len(self.world.policies) + 1
            assert_events(
                tx,
                manager.PolicyIssued(
                    policyId=policy_id,
                    insurer=insurer,
                    patient=patient,
                    validFrom=terms["validFrom"],
                    validUntil=terms["validUntil"],
                    coverageBps=coverage_bps,
                    deductible=deductible,
                    annualLimit=annual_limit,
                    autoSettleLimit=auto_limit,
                    codesRoot=COVERED.root,
                    termsDigest=terms["termsDigest"],
                ),
            )
            model = PolicyModel(
                insurer=insurer.address,
                patient=patient.address,
                valid_from=terms["validFrom"],
                valid_until=terms["validUntil"],
                coverage_bps=coverage_bps,
                deductible=deductible,
                annual_limit=annual_limit,
                auto_settle_limit=auto_limit,
                codes_root=COVERED.root,
            )
            self.world.policies[policy_id] = PolicyState(model, self.world.day, cover_days)

        @precondition(
            lambda self: any(p.model.pool < 300 * USD for p in self.world.policies.values())
        )
        @rule(index=st.integers(0, 2), amount=st.sampled_from([1, 150 * USD, 700 * USD]))
        def fund(self, index: int, amount: int) -> None:
            policy_id = sorted(self.world.policies)[index % len(self.world.policies)]
            model = self.world.policies[policy_id].model
            tx = manager.fundPolicy(policy_id, amount, sender=insurer)
            model.funded += amount
            assert_events(
                tx,
                token.Transfer(**{"from": insurer, "to": manager, "value": amount}),
                manager.PolicyFunded(
                    policyId=policy_id, funder=insurer, amount=amount, funded=model.funded
                ),
            )

        @rule(
            index=st.integers(0, 2),
            billed=st.sampled_from([40 * USD, 150 * USD, 250 * USD, 500 * USD]),
            proven=st.booleans(),
            pay_patient=st.booleans(),
            by_patient=st.booleans(),
        )
        def submit(
            self, index: int, billed: int, proven: bool, pay_patient: bool, by_patient: bool
        ) -> None:
            active = [i for i, p in sorted(self.world.policies.items()) if p.active(self.world.day)]
            if not active:  # a refusal for an expired policy is a unit test (its `at` is the
                return  # block time, which the two networks see differently in an eth_call)
            policy_id = active[index % len(active)]
            policy = self.world.policies[policy_id].model
            sender = patient if by_patient else clinic
            submission = {
                "policyId": policy_id,
                "billed": billed,
                "payPatient": pay_patient,
                "claimRecord": records.claim_record,
                "evidence": records.evidence,
                "codeHashes": [COVERED.hashes[code]],
                "codeProofs": [COVERED.proof(code)] if proven else [],
            }
            reason = review_reason(policy, billed, proven)
            allowed, deductible = allowed_now(policy, billed)
            tx = manager.submitClaim(submission, sender=sender)
            claim_id = len(self.world.claims) + 1
            payee = patient.address if pay_patient or by_patient else clinic.address
            at = block_time(tx)
            claim = ClaimState_(
                ClaimModel(sender.address, policy_id, billed, pay_patient, at), payee
            )
            self.world.claims[claim_id] = claim
            expected = [
                manager.ClaimSubmitted(
                    claimId=claim_id,
                    policyId=policy_id,
                    submitter=sender,
                    billed=billed,
                    payPatient=pay_patient,
                    claimRecord=records.claim_record,
                    evidence=records.evidence,
                    codeHashes=submission["codeHashes"],
                    automatic=reason is ReviewReason.NONE,
                    review=reason,
                )
            ]
            if reason is ReviewReason.NONE:
                claim.model.state = ClaimState.APPROVED
                claim.model.deductible_applied = deductible
                self.pay(claim, allowed, deductible, decided_at=at)
                expected.append(
                    manager.ClaimApproved(
                        claimId=claim_id,
                        payee=payee,
                        amount=allowed,
                        allowed=allowed,
                        deductibleApplied=deductible,
                        automatic=True,
                        decider=manager.address,
                    )
                )
            assert_events(tx, *expected)

        @precondition(lambda self: self.in_states(ACCEPTS["approve"]))
        @rule(index=PICK, share=st.sampled_from(["full", "half", "over"]))
        def approve(self, index: int, share: str) -> None:
            claim_id, claim = self.claim(index, "approve")
            policy = self.policy_of(claim)
            args = (claim_id,)
            allowed, deductible = allowed_amount(policy, claim.model)
            amount = {"full": allowed, "half": allowed // 2, "over": allowed + 1}[share]
            if amount == 0:
                call_reverts(
                    manager.approveClaim, *args, 0, sender=insurer,
                    error=manager.ClaimInvalidAmount, amount=0,
                )  # fmt: skip
                return
            if amount > allowed:
                call_reverts(
                    manager.approveClaim, *args, amount, sender=insurer,
                    error=manager.ClaimAmountExceedsAllowed, amount=amount, allowed=allowed,
                )  # fmt: skip
                return
            if policy.pool < amount:
                call_reverts(
                    manager.approveClaim, *args, amount, sender=insurer,
                    error=manager.ClaimPoolInsufficient, policyId=claim.model.policy_id,
                    needed=amount, available=policy.pool,
                )  # fmt: skip
                return
            tx = manager.approveClaim(claim_id, amount, sender=insurer)
            assert_events(
                tx,
                manager.ClaimApproved(
                    claimId=claim_id,
                    payee=claim.payee,
                    amount=amount,
                    allowed=allowed,
                    deductibleApplied=deductible,
                    automatic=False,
                    decider=insurer,
                ),
            )
            claim.model.state = (
                ClaimState.APPROVED if amount == allowed else ClaimState.PARTIALLY_APPROVED
            )
            claim.model.deductible_applied = deductible
            self.pay(claim, amount, deductible, decided_at=block_time(tx))

        @precondition(lambda self: self.in_states(ACCEPTS["deny"]))
        @rule(index=PICK)
        def deny(self, index: int) -> None:
            claim_id, claim = self.claim(index, "deny")
            tx = manager.denyClaim(claim_id, 3, sender=insurer)
            assert_events(tx, manager.ClaimDenied(claimId=claim_id, reasonCode=3, decider=insurer))
            claim.model.state = ClaimState.DENIED
            claim.was_denied = True
            claim.model.decided_at = block_time(tx)
            claim.decided_day = self.world.day

        @precondition(lambda self: self.in_states(ACCEPTS["request_info"]))
        @rule(index=PICK)
        def request_info(self, index: int) -> None:
            claim_id, claim = self.claim(index, "request_info")
            tx = manager.requestInfo(claim_id, 2, sender=insurer)
            assert_events(
                tx, manager.ClaimInfoRequested(claimId=claim_id, reasonCode=2, requester=insurer)
            )
            claim.model.state = ClaimState.INFO_REQUESTED

        @precondition(lambda self: self.in_states(ACCEPTS["provide_info"]))
        @rule(index=PICK)
        def provide_info(self, index: int) -> None:
            claim_id, claim = self.claim(index, "provide_info")
            tx = manager.provideInfo(claim_id, [extra], sender=patient)
            assert_events(
                tx, manager.ClaimInfoProvided(claimId=claim_id, evidence=[extra], provider=patient)
            )
            claim.model.state = ClaimState.SUBMITTED

        @precondition(lambda self: self.in_states(ACCEPTS["dispute"]))
        @rule(index=PICK, by_patient=st.booleans())
        def dispute(self, index: int, by_patient: bool) -> None:
            claim_id, claim = self.claim(index, "dispute")
            sender = patient if by_patient else clinic
            if sender.address not in (claim.model.submitter, patient.address):
                call_reverts(
                    manager.disputeClaim, claim_id, 4, sender=sender,
                    error=manager.ClaimNotSubmitterOrPatient, caller=sender, claimId=claim_id,
                )  # fmt: skip
                return
            if self.world.day - claim.decided_day >= WINDOW_DAYS:
                call_reverts(
                    manager.disputeClaim, claim_id, 4, sender=sender,
                    error=manager.ClaimDisputeWindowClosed, claimId=claim_id,
                    closedAt=claim.model.decided_at + DISPUTE_WINDOW,
                )  # fmt: skip
                return
            tx = manager.disputeClaim(claim_id, 4, sender=sender)
            assert_events(
                tx, manager.ClaimDisputed(claimId=claim_id, reasonCode=4, disputer=sender)
            )
            claim.model.state = ClaimState.DISPUTED

        @precondition(lambda self: self.in_states(ACCEPTS["resolve"]))
        @rule(index=PICK, share=st.sampled_from(["zero", "half", "full", "over"]))
        def resolve(self, index: int, share: str) -> None:
            claim_id, claim = self.claim(index, "resolve")
            policy = self.policy_of(claim)
            allowed, deductible = allowed_amount(policy, claim.model)
            award = {"zero": 0, "half": allowed // 2, "full": allowed, "over": allowed + 1}[share]
            if award > allowed:
                call_reverts(
                    manager.resolveDispute, claim_id, award, sender=resolver,
                    error=manager.ClaimAmountExceedsAllowed, amount=award, allowed=allowed,
                )  # fmt: skip
                return
            if policy.pool < award:
                call_reverts(
                    manager.resolveDispute, claim_id, award, sender=resolver,
                    error=manager.ClaimPoolInsufficient, policyId=claim.model.policy_id,
                    needed=award, available=policy.pool,
                )  # fmt: skip
                return
            tx = manager.resolveDispute(claim_id, award, sender=resolver)
            assert_events(
                tx,
                manager.DisputeResolved(
                    claimId=claim_id, payee=claim.payee, award=award, resolver=resolver
                ),
            )
            claim.model.state = ClaimState.RESOLVED
            applied = deductible if claim.was_denied else 0
            if claim.was_denied:
                claim.model.deductible_applied = deductible
            self.pay(claim, award, applied, decided_at=None)

        @precondition(lambda self: self.world.claims)
        @rule(action=st.sampled_from(sorted(ACCEPTS)), index=PICK)
        def misplaced(self, action: str, index: int) -> None:
            """A move on a claim whose state does not accept it is refused, naming the state."""
            ids = self.in_states(ACCEPTS[action], accepted=False)
            if not ids:
                return
            claim_id = ids[index % len(ids)]
            state = self.world.claims[claim_id].model.state
            method, args, sender = {
                "approve": (manager.approveClaim, (claim_id, 1), insurer),
                "deny": (manager.denyClaim, (claim_id, 3), insurer),
                "request_info": (manager.requestInfo, (claim_id, 2), insurer),
                "provide_info": (manager.provideInfo, (claim_id, [extra]), patient),
                "dispute": (manager.disputeClaim, (claim_id, 4), patient),
                "resolve": (manager.resolveDispute, (claim_id, 0), resolver),
            }[action]
            call_reverts(
                method, *args, sender=sender,
                error=manager.ClaimInvalidState, claimId=claim_id, state=state,
            )  # fmt: skip

        @precondition(lambda self: any(self.world.credits.values()))
        @rule(payee=st.sampled_from(payees))
        def withdraw(self, payee: AccountAPI) -> None:
            owed = self.world.credits.get(payee.address, 0)
            if owed == 0:
                call_reverts(
                    manager.withdrawPayment, sender=payee,
                    error=manager.ClaimNothingToWithdraw, account=payee,
                )  # fmt: skip
                return
            tx = manager.withdrawPayment(sender=payee)
            assert_events(
                tx,
                manager.PaymentWithdrawn(payee=payee, amount=owed),
                token.Transfer(**{"from": manager, "to": payee, "value": owed}),
            )
            self.world.credits[payee.address] = 0
            self.world.withdrawn[payee.address] = self.world.withdrawn.get(payee.address, 0) + owed

        @rule(days=st.sampled_from([1, 3, WINDOW_DAYS + 1]))
        def advance(self, days: int) -> None:
            advance_time(days * DAY)
            self.world.day += days

        # ------------------------------------------------------------ invariants
        # The first states the money rule of the whole contract; the others single out the
        # promises a payee and an insurer rely on, so that a failure names the one broken.

        @invariant()
        def balance_equals_pools_plus_credits(self) -> None:
            seen = self.observed()
            pools = sum(p["funded"] - p["paid"] for p in seen.policies.values())
            assert seen.balances[manager.address] == pools + sum(seen.credits.values())
            for payee in payees:
                assert seen.balances[payee.address] == self.world.withdrawn.get(payee.address, 0)

        @invariant()
        def policies_pay_at_most_what_was_funded_and_the_annual_limit(self) -> None:
            for policy_id, stored in self.observed().policies.items():
                assert stored["paid"] <= stored["funded"], policy_id
                assert stored["paid"] <= stored["annualLimit"], policy_id
                assert stored["deductibleMet"] <= stored["deductible"], policy_id

        @invariant()
        def claims_are_credited_once_per_decision_within_their_coverage(self) -> None:
            seen = self.observed()
            for claim_id, claim in self.world.claims.items():
                stored = seen.claims[claim_id]
                decisions = 1 + (claim.model.state is ClaimState.RESOLVED)
                assert len(claim.model.credits) <= decisions, claim_id
                assert stored["paid"] == sum(claim.model.credits), claim_id
                policy = self.policy_of(claim)
                limit = coverage(policy, stored["billed"], stored["deductibleApplied"])
                assert stored["paid"] <= limit, claim_id

        @invariant()
        def chain_agrees_with_the_model(self) -> None:
            seen = self.observed()
            assert seen.counts == (len(self.world.policies), len(self.world.claims))
            for policy_id, policy in self.world.policies.items():
                assert seen.policies[policy_id] == policy.model.as_dict(), policy_id
            for claim_id, claim in self.world.claims.items():
                assert seen.claims[claim_id] == claim.model.as_dict(), claim_id
                expected = allowed_amount(self.policy_of(claim), claim.model)
                assert seen.allowed[claim_id] == expected, claim_id
            for payee in payees:
                assert seen.credits[payee.address] == self.world.credits.get(payee.address, 0)

        def observed(self) -> Observed:
            """What the chain holds, read once per block (a refused move mines none)."""
            number = rpc.make_request("eth_blockNumber", [])["result"]
            if self._observed is None or self._observed_at != number:
                self._observed_at = number
                self._observed = observe(len(self.world.policies), len(self.world.claims))
            return self._observed

    run_state_machine_as_test(
        ClaimsLifecycle,
        settings=settings(max_examples=examples(chain), stateful_step_count=20, deadline=None),
    )
