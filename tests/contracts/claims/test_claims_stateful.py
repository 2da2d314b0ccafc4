"""Stateful test of ClaimsManager's money against a Python model, honest and hostile actors mixed.

Hypothesis issues policies (by the insurer or a second insurer) with random terms, funds them,
and lets honest and hostile actors move in any order:

* honest: the clinic and the hospital (care providers with a care relationship, each claiming
  on records it wrote, and a party to the patient's claims on them), the clinic's
  practitioner, the patient
  (claiming on a provider's record, under an id of its own: always reviewed, and holding its
  duplicate keys and its record only once approved or awarded, which waits for the provider's
  claim on the same record unless that one was settled for nothing), the insurers deciding
  their own claims, the resolver;
* hostile: a clinic that never treated the patient (and its practitioner) claiming on others'
  records, the patient claiming on a record they wrote, the providers claiming the same care
  again (the same record, or the same care or claim identifier in a new record), the rival
  insurer (and the insurer's practitioner) deciding or reclaiming another insurer's policy,
  strangers to a claim answering, disputing and escalating it, the registrars suspending an
  insurer (and reinstating it) in the middle of everything.

Every accepted move checks the exact events the model predicts; every refused move checks the
exact custom error with ``support.call_reverts`` (an ``eth_call`` of the same transaction).

After every step the invariants check that:

* money in (everything funded) equals what the pools hold (``funded - paid`` summed) plus the
  credits outstanding plus what was withdrawn plus what automatic settlements paid out
  directly plus what insurers took back; the manager holds exactly the pools and the credits;
  every payee holds exactly what it withdrew and was sent;
* a piece of care (a care key) and a claim record are paid at most once: each key names one
  claim, every claim paid holds its care key (so no two claims paid share one), a provider's
  claim holds its keys from submission and a patient's (with its record key) only once
  approved or resolved with an award or as covered; a record offered many times backs at most
  one claim of its provider (under the record's id) and one of the patient (under
  ``patientClaimIdOf``), and at most one of them is paid (a provider's denied claim, disputed
  after the patient's claim took the record, gets no award);
* a claim is paid at most what its policy allows (coverage of ``billed - deductibleApplied``,
  once per decision), and a policy at most its funds and annual limit;
* the chain agrees with the model on every policy, claim, allowed amount, open count, key,
  credit and balance.

Time moves in whole days while transactions move it by seconds, and every period of cover
ends twelve hours after a whole number of days from its issue, so the networks (which differ
by a second in when a transaction runs) and the model agree on every "is it active", "is it
overdue" (counted from the later of the submission and the last answer), "is the window
closed" (of the last decision that can be disputed) and "is the term over": the model counts
days.

Each example runs between a chain snapshot and its restore.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_abi import decode, encode
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ..support import MAX_UINT40, Category, assert_events, call_reverts, digest
from .conftest import PAYMENT
from .model import (
    COVERED,
    DAY,
    DECISION_PERIOD,
    DISPUTE_WINDOW,
    MAX_INFO_REQUESTS,
    USD,
    ClaimModel,
    ClaimState,
    PolicyModel,
    ReviewReason,
    allowed_amount,
    allowed_now,
    care_key,
    coverage,
    escalation_until,
    identifier_key,
    is_disputable_decision,
    may_approve_zero,
    patient_claim_id,
    reclaim_until,
    record_key,
    resolution,
    resolution_takes_keys,
    review_reason,
    settled_for_nothing,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

    from ..conftest import Anchored

WINDOW_DAYS = DISPUTE_WINDOW // DAY
DECISION_DAYS = DECISION_PERIOD // DAY
CATEGORY_SCOPE = 1  # IConsentManager.ScopeKind.Category
DECIDABLE = (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED)
DISPUTABLE = (ClaimState.PARTIALLY_APPROVED, ClaimState.DENIED)
OPEN = (*DECIDABLE, ClaimState.DISPUTED)
PICK = st.integers(0, 9)
"""Which claim a move is about, among the claims in a state the move accepts (a rule runs only
when there is one, so that lifecycles get deep; ``misplaced`` tries moves on the others)."""
ACCEPTS = {
    "approve": DECIDABLE,
    "deny": DECIDABLE,
    "request_info": (ClaimState.SUBMITTED,),
    "provide_info": (ClaimState.INFO_REQUESTED,),
    "dispute": DISPUTABLE,
    "escalate": DECIDABLE,
    "resolve": (ClaimState.DISPUTED,),
}
SUBMISSION = {
    "index": st.integers(0, 2),
    "writer": st.sampled_from(["clinic", "hospital"]),
    "billed": st.sampled_from([40 * USD, 250 * USD, 500 * USD]),
    "codes": st.integers(0, 1),
    "service": st.integers(0, 1),
    "identifier": st.integers(0, 2),
    "proven": st.booleans(),
    "pay_patient": st.booleans(),
}
"""A claim's content: small sets of services, codes, amounts and identifiers, so that the same
care (and the same identifier) comes back often."""
HONEST = {
    **SUBMISSION,
    "by": st.sampled_from(["writer", "writer", "practitioner", "patient"]),
    "record": st.sampled_from(["new", "new", "new", "again"]),
}
"""Claims by the record's writer, its practitioner or the patient: accepted, or refused as
duplicates when the record backs a claim already or the care or identifier was claimed."""
HOSTILE = {
    **SUBMISSION,
    "by": st.sampled_from(
        [
            "other_provider",
            "stranger_clinic",
            "stranger_practitioner",
            "rival_insurer",
            "writer",
            "patient",
        ]
    ),
    "record": st.sampled_from(["new", "again", "patients_own", "lab"]),
}
"""Claims by whoever may not claim on the record (the other provider, a clinic that never
treated the patient, its practitioner, an insurer), or on a record nobody may claim on (the
one the patient wrote, a LAB record). The writer or the patient on a provider's FINANCIAL
record is honest and accepted here too."""
DECIDER = st.sampled_from(["own", "own", "own", "adjuster", "rival"])
"""Who decides: the policy's insurer (mostly), the first insurer's practitioner (who acts for
it only while it is verified) or the other insurer."""
PARTY = st.sampled_from(["clinic", "doctor", "hospital", "patient", "other_clinic"])


def examples(chain: Any) -> int:
    """8 examples of up to 40 steps on Anvil, 3 on eth-tester (whose py-evm spends 15-30 ms
    on each of the view calls an observation makes). ``CLAIMS_STATEFUL_EXAMPLES`` overrides
    both."""
    if override := os.environ.get("CLAIMS_STATEFUL_EXAMPLES"):
        return int(override)
    return 8 if chain.provider.name == "foundry" else 3


def record_number(record: bytes) -> int:
    """The id of a provider's claim on ``record`` (``uint256(claimRecord)``)."""
    return int.from_bytes(bytes(record), "big")


@dataclass
class PolicyState:
    model: PolicyModel
    issued_day: int
    cover_days: int
    open_claims: int = 0
    last_decision_at: int = 0
    last_decision_day: int = -(10**6)

    def active(self, day: int) -> bool:
        return day - self.issued_day <= self.cover_days


@dataclass
class ClaimEntry:
    model: ClaimModel
    payee: str
    record: HexBytes
    care_key: HexBytes
    keys: list[bytes]  # the care key, the identifier key if any, a patient's record key
    submitted_day: int
    decided_day: int = -1
    answered_day: int = -1
    payments: list[int] = field(default_factory=list)  # one entry per decision that paid
    by_patient: bool = False

    @property
    def since_day(self) -> int:
        """The day the insurer's decision period started: the submission or the last answer."""
        return max(self.submitted_day, self.answered_day)


@dataclass
class World:
    day: int = 0
    policies: dict[int, PolicyState] = field(default_factory=dict)
    claims: dict[int, ClaimEntry] = field(default_factory=dict)
    keys: dict[bytes, int] = field(default_factory=dict)  # duplicate key -> claim id
    pending: dict[int, list[bytes]] = field(default_factory=dict)  # patient's claim -> its keys
    writers: dict[bytes, int] = field(default_factory=dict)  # record -> writer number
    not_financial: set[bytes] = field(default_factory=set)
    offered: set[bytes] = field(default_factory=set)  # every record a submission named
    verified: dict[str, bool] = field(default_factory=dict)  # insurer -> verified
    funded_in: int = 0
    funded_by: dict[str, int] = field(default_factory=dict)
    reclaimed: dict[str, int] = field(default_factory=dict)
    credits: dict[str, int] = field(default_factory=dict)
    withdrawn: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)  # paid directly by automatic settlement


@dataclass
class Observed:
    """What the chain holds, as the invariants compare it."""

    policy_count: int
    policies: dict[int, dict[str, Any]]
    open_claims: dict[int, int]
    claims: dict[int, dict[str, Any]]
    allowed: dict[int, tuple[int, int]]
    keys: dict[bytes, int]  # every key the model holds or a claim waits for -> claimOfKey
    unclaimed: dict[int, bool]  # both claim ids of each offered record -> getClaim reverts
    credits: dict[str, int]
    balances: dict[str, int]


def test_money_follows_the_claims_model_among_honest_and_hostile_actors(
    chain: Any,
    claims_manager: Any,
    consent_manager: Any,
    token: Any,
    admin: AccountAPI,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    other_insurer: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    hospital: AccountAPI,
    other_clinic: AccountAPI,
    other_doctor: AccountAPI,
    patient: AccountAPI,
    resolver: AccountAPI,
    create_record: Callable[..., Anchored],
    authorize_care: Callable[..., ReceiptAPI],
    suspend: Callable[..., Any],
    approve: Callable[..., Any],
    number_of: Callable[[Any], int],
    advance_time: Callable[[int], int],
    block_time: Callable[[ReceiptAPI], int],
    now: Callable[[], int],
    isolated: Callable[[], Any],
) -> None:
    # Rolled back by Ape after the test, kept across examples: the patient's care relationships
    # with the clinic and the hospital, category grants for payment to both insurers (every
    # FINANCIAL and LAB record, so that each claim needs only its record anchored), one LAB
    # record for answers, one FINANCIAL record the patient wrote, tokens for both insurers.
    manager = claims_manager
    for provider in (clinic, hospital):
        authorize_care(patient, provider)
    for grantee in (insurer, other_insurer):
        for category in (Category.FINANCIAL, Category.LAB):
            consent_manager.grant(
                patient,
                grantee,
                CATEGORY_SCOPE,
                int(category).to_bytes(32, "big"),
                PAYMENT,
                MAX_UINT40,
                digest("envelope"),
                sender=patient,
            )
    answer = create_record(clinic, patient, category=Category.LAB, care=False).id
    own_record = create_record(patient, patient, category=Category.FINANCIAL).id
    lab_record = answer  # a provider's record of the patient, but not FINANCIAL
    minted = 10**15
    for account in (insurer, other_insurer):
        token.mint(account, minted, sender=admin)
        token.approve(manager, 2**256 - 1, sender=account)
    numbers = {a.address: number_of(a) for a in (clinic, hospital, other_clinic)}
    institution_of = {
        clinic.address: clinic.address,
        doctor.address: clinic.address,
        hospital.address: hospital.address,
        other_clinic.address: other_clinic.address,
        other_doctor.address: other_clinic.address,
    }
    actors = {
        "clinic": clinic,
        "doctor": doctor,
        "hospital": hospital,
        "patient": patient,
        "other_clinic": other_clinic,
        "other_doctor": other_doctor,
    }
    insurers = [insurer, other_insurer]
    payees = [clinic, hospital, patient]

    # The invariants read the chain after every step that mined a block, through bare JSON-RPC
    # eth_calls, which cost a fraction of an Ape call (Ape's own decoding of these views is
    # covered in test_claims_manager.py).
    rpc = chain.provider.web3.provider

    def raw_call(to: str, signature: str, args: list[Any]) -> dict[str, Any]:
        types = [t for t in signature.partition("(")[2].rstrip(")").split(",") if t]
        data = keccak(text=signature)[:4] + encode(types, args)
        request = {"from": admin.address, "to": to, "data": HexBytes(data).to_0x_hex()}
        try:
            return rpc.make_request("eth_call", [request, "latest"])
        except TransactionFailed as raised:  # eth-tester raises where Anvil answers with an error
            return {"error": str(raised)}

    def view(to: str, signature: str, args: list[Any], outputs: list[str]) -> tuple[Any, ...]:
        response = raw_call(to, signature, args)
        assert "error" not in response, (signature, args, response)
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
        "submitter", "policyId", "state", "payPatient", "infoRequests", "billed", "paid",
        "decidedAt", "deductibleApplied", "submittedAt", "answeredAt",
    ]  # fmt: skip
    policy_type = (
        "(address,uint40,uint40,uint16,address,uint96,uint96,uint96,uint96,uint96,uint128,bytes32)"
    )
    claim_type = "(address,uint64,uint8,bool,uint8,uint96,uint96,uint40,uint96,uint40,uint40)"
    address = manager.address
    holders = [*(p.address for p in payees), *(i.address for i in insurers), address]

    def watched_keys(world: World) -> set[bytes]:
        return set(world.keys) | {k for keys in world.pending.values() for k in keys}

    def observe(world: World) -> Observed:
        return Observed(
            policy_count=view(address, "policyCount()", [], ["uint64"])[0],
            policies={
                i: fields(policy_names, view(address, "getPolicy(uint64)", [i], [policy_type])[0])
                for i in world.policies
            },
            open_claims={
                i: view(address, "openClaimsOf(uint64)", [i], ["uint256"])[0]
                for i in world.policies
            },
            claims={
                i: fields(claim_names, view(address, "getClaim(uint256)", [i], [claim_type])[0])
                for i in world.claims
            },
            allowed={
                i: view(address, "allowedAmount(uint256)", [i], ["uint96", "uint96"])
                for i in world.claims
            },
            keys={
                k: view(address, "claimOfKey(bytes32)", [k], ["uint256"])[0]
                for k in watched_keys(world)
            },
            unclaimed={
                i: "error" in raw_call(address, "getClaim(uint256)", [i])
                for r in world.offered
                for i in (record_number(r), patient_claim_id(r))
            },
            credits={
                p.address: view(address, "creditOf(address)", [p.address], ["uint256"])[0]
                for p in payees
            },
            balances={
                a: view(token.address, "balanceOf(address)", [a], ["uint256"])[0] for a in holders
            },
        )

    class ClaimsAmongAdversaries(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._isolation = isolated()
            self._isolation.__enter__()
            self.world = World(
                verified={i.address: True for i in insurers},
                writers={bytes(own_record): 0, bytes(lab_record): numbers[clinic.address]},
                not_financial={bytes(lab_record)},
            )
            self._observed: Observed | None = None
            self._observed_at: Any = None
            self.issue(
                issuer=0,
                coverage_bps=8_000,
                deductible=50 * USD,
                annual_limit=1_000 * USD,
                auto_limit=300 * USD,
                cover_days=30,
            )
            self.fund(0, 700 * USD)
            # Claims to start from: the patient's, denied and disputed (the deductible still
            # open); the patient's claim of the care the clinic claims next (its keys wait, so
            # the clinic's claim is accepted and takes them; the patient's can then only be
            # denied), waiting for review; the clinic's, asked for more information; and the
            # clinic's own claim, of other care, on the record of the patient's second claim
            # (a claim of its own: the patient's cannot be approved while it is not settled for
            # nothing). The rules take them anywhere.
            self.submit(0, "clinic", "patient", "new", 400 * USD, 1, 0, 0, False, False)
            self.deny(0, "own")  # not a rule of its own: see `decide_claim`
            self.dispute(0, "patient")
            self.submit(0, "clinic", "patient", "new", 500 * USD, 0, 1, 1, False, True)
            self.submit(0, "clinic", "writer", "new", 500 * USD, 0, 1, 1, False, True)
            self.request_info(1, "own")  # the second claim Submitted: the clinic's
            shared = list(self.world.claims.values())[1].record  # the patient's second claim
            self.submit(1, "clinic", "writer", "again", 250 * USD, 1, 0, 2, False, False)
            assert record_number(shared) in self.world.claims, "the clinic's claim on it"

        def teardown(self) -> None:
            self._isolation.__exit__(None, None, None)

        # ------------------------------------------------------------ helpers

        def in_states(self, states: tuple[ClaimState, ...], accepted: bool = True) -> list[int]:
            """Claims in (or not in) ``states``, in order of submission: not sorted by id, for
            ids are record ids, which differ from run to run, and a replay must pick the same
            claims."""
            claims = self.world.claims.items()
            return [i for i, c in claims if (c.model.state in states) == accepted]

        def claim(self, index: int, action: str) -> tuple[int, ClaimEntry]:
            ids = self.in_states(ACCEPTS[action])
            claim_id = ids[index % len(ids)]
            return claim_id, self.world.claims[claim_id]

        def policy_state(self, claim: ClaimEntry) -> PolicyState:
            return self.world.policies[claim.model.policy_id]

        def policy_of(self, claim: ClaimEntry) -> PolicyModel:
            return self.policy_state(claim).model

        def add(self, ledger: dict[str, int], account: str, amount: int) -> None:
            ledger[account] = ledger.get(account, 0) + amount

        def decider(self, claim: ClaimEntry, who: str) -> tuple[AccountAPI, bool]:
            """The account deciding, and whether it acts for the claim's insurer now."""
            owner = self.policy_of(claim).insurer
            account = {
                "own": insurer if owner == insurer.address else other_insurer,
                "adjuster": adjuster,
                "rival": other_insurer if owner == insurer.address else insurer,
            }[who]
            acts_for = insurer.address if account == adjuster else account.address
            return account, acts_for == owner and self.world.verified[owner]

        def is_party(self, claim: ClaimEntry, account: AccountAPI) -> bool:
            """The submitter (or its practitioners), the patient, and, for the patient's claim,
            the provider that wrote the claim record (or its practitioners)."""
            institution = institution_of.get(account.address)
            if account.address in (claim.model.submitter, patient.address):
                return True
            if institution == claim.model.submitter:
                return True
            writer = self.world.writers[bytes(claim.record)]
            return (
                claim.by_patient
                and institution is not None
                and numbers[institution] == writer
            )

        def duplicate_of(self, claim_id: int) -> int | None:
            """Why a patient's claim waiting for its keys cannot take them (``None``: it may):
            the provider's claim on its record, unless settled for nothing; else the claim
            holding its care key, then its identifier key (its record key is its own: a
            record backs one claim of the patient). A provider's claim: the patient's claim
            holding its record."""
            record = self.world.claims[claim_id].record
            if claim_id not in self.world.pending:  # a provider's claim, or keys already taken
                holder = self.world.keys.get(record_key(record))
                return holder if holder not in (None, claim_id) else None
            theirs = self.world.claims.get(record_number(record))
            if theirs is not None and not settled_for_nothing(
                theirs.model.state, theirs.model.paid, theirs.model.deductible_applied
            ):
                return record_number(record)
            for key in self.world.pending[claim_id]:
                if (holder := self.world.keys.get(key)) is not None:
                    assert key != record_key(record), "only the patient's claim takes its record"
                    return holder
            return None

        def take_keys(self, claim_id: int) -> None:
            """A patient's claim takes its keys and its record."""
            if claim_id not in self.world.pending:
                return
            for key in self.world.pending.pop(claim_id):
                self.world.keys[key] = claim_id

        def decide(
            self,
            claim: ClaimEntry,
            state: ClaimState,
            at: int,
            amount: int = 0,
            deductible: int = 0,
            *,
            disputable: bool,
        ) -> None:
            """A decision by people (or a resolution): credits the payee, closes the claim;
            one that can be disputed keeps the pool for its window."""
            policy = self.policy_state(claim)
            claim.model.state = state
            if amount:
                claim.payments.append(amount)
                self.add(self.world.credits, claim.payee, amount)
            claim.model.paid += amount
            policy.model.paid += amount
            policy.model.deductible_met += deductible
            policy.open_claims -= 1
            if disputable:
                policy.last_decision_at = at
                policy.last_decision_day = self.world.day

        def refused_submission(
            self, sender: AccountAPI, policy_id: int, record: bytes, keys: list[bytes]
        ) -> tuple[Any, dict[str, Any]] | None:
            """The error the contract must raise for this submission, in its order of checks
            (the policy is active and the amounts, service key and codes are well formed): the
            caller, the record, the claim's id (the record's for a provider's claim, its own
            for the patient's), the record key (a provider's claim only), the care key, the
            identifier key."""
            writer = self.world.writers.get(bytes(record), 0)
            if sender.address != patient.address:
                institution = institution_of.get(sender.address)
                if institution is None:
                    return manager.ClaimNotProviderOrPatient, {
                        "caller": sender,
                        "policyId": policy_id,
                    }
                if numbers[institution] != writer:
                    return manager.ClaimNotRecordWriter, {"caller": sender, "record": record}
            if writer == 0 or bytes(record) in self.world.not_financial:
                return manager.ClaimRecordNotProviders, {"record": record}
            by_patient = sender.address == patient.address
            claim_id = patient_claim_id(record) if by_patient else record_number(record)
            if claim_id in self.world.claims:
                return manager.ClaimDuplicate, {"claimId": claim_id}
            if not by_patient and (taken := self.world.keys.get(record_key(record))) is not None:
                return manager.ClaimDuplicate, {"claimId": taken}  # the patient's, approved
            for key in keys:
                if (earlier := self.world.keys.get(bytes(key))) is not None:
                    return manager.ClaimDuplicate, {"claimId": earlier}
            return None

        # ------------------------------------------------------------ policies and money

        @precondition(lambda self: len(self.world.policies) < 3)
        @rule(
            issuer=st.integers(0, 1),
            coverage_bps=st.sampled_from([1, 5_000, 8_000, 10_000]),
            deductible=st.sampled_from([0, 50 * USD, 250 * USD]),
            annual_limit=st.sampled_from([250 * USD, 1_000 * USD]),
            auto_limit=st.sampled_from([0, 200 * USD, 600 * USD]),
            cover_days=st.sampled_from([2, 45]),
        )
        def issue(
            self,
            issuer: int,
            coverage_bps: int,
            deductible: int,
            annual_limit: int,
            auto_limit: int,
            cover_days: int,
        ) -> None:
            account = insurers[issuer]
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
            if not self.world.verified[account.address]:
                call_reverts(
                    manager.issuePolicy, terms, sender=account,
                    error=manager.ClaimNotInsurer, caller=account,
                )  # fmt: skip
                return
            tx = manager.issuePolicy(terms, sender=account)
            policy_id = len(self.world.policies) + 1
            assert_events(
                tx,
                manager.PolicyIssued(
                    policyId=policy_id,
                    insurer=account,
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
                insurer=account.address,
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
            funder = insurer if model.insurer == insurer.address else other_insurer
            tx = manager.fundPolicy(policy_id, amount, sender=funder)
            model.funded += amount
            self.world.funded_in += amount
            self.add(self.world.funded_by, funder.address, amount)
            assert_events(
                tx,
                token.Transfer(**{"from": funder, "to": manager, "value": amount}),
                manager.PolicyFunded(
                    policyId=policy_id, funder=funder, amount=amount, funded=model.funded
                ),
            )

        @rule(index=st.integers(0, 2), by=st.sampled_from(["own", "adjuster", "rival"]))
        def reclaim(self, index: int, by: str) -> None:
            policy_id = sorted(self.world.policies)[index % len(self.world.policies)]
            state = self.world.policies[policy_id]
            model = state.model
            owner = insurer if model.insurer == insurer.address else other_insurer
            sender = {
                "own": owner,
                "adjuster": adjuster,
                "rival": other_insurer if owner == insurer else insurer,
            }[by]
            if sender != owner:
                call_reverts(
                    manager.reclaimPool, policy_id, sender=sender,
                    error=manager.ClaimNotPolicyInsurer, caller=sender, policyId=policy_id,
                )  # fmt: skip
                return
            ended = not state.active(self.world.day)
            window_over = self.world.day - state.last_decision_day >= WINDOW_DAYS
            until = reclaim_until(model, state.open_claims, state.last_decision_at)
            if state.open_claims or not ended or not window_over:
                call_reverts(
                    manager.reclaimPool, policy_id, sender=owner,
                    error=manager.ClaimPolicyNotSettled, policyId=policy_id, until=until,
                )  # fmt: skip
                return
            amount = model.pool
            if amount == 0:
                call_reverts(
                    manager.reclaimPool, policy_id, sender=owner,
                    error=manager.ClaimNothingToWithdraw, account=owner,
                )  # fmt: skip
                return
            tx = manager.reclaimPool(policy_id, sender=owner)
            assert_events(
                tx,
                manager.PoolReclaimed(policyId=policy_id, insurer=owner, amount=amount),
                token.Transfer(**{"from": manager, "to": owner, "value": amount}),
            )
            model.funded = model.paid
            self.add(self.world.reclaimed, owner.address, amount)

        @rule(index=st.integers(0, 1))
        def suspend_or_reinstate(self, index: int) -> None:
            """The registrars suspend a verified insurer, or reinstate a suspended one."""
            account = insurers[index]
            if self.world.verified[account.address]:
                suspend(account)
            else:
                approve(account)
            self.world.verified[account.address] = not self.world.verified[account.address]

        # ------------------------------------------------------------ submissions

        @initialize(
            claims=st.lists(st.fixed_dictionaries(HONEST), min_size=1, max_size=4),
            suspended=st.booleans(),
        )
        def seed(self, claims: list[dict[str, Any]], suspended: bool) -> None:
            """In half the examples the registrars suspend the insurer first (until a rule
            reinstates it), so that claims meet a suspended insurer often; then more claims to
            start from, honest but random (and so sometimes the same care)."""
            if suspended:
                self.suspend_or_reinstate(0)
            for claim in claims:
                self.submit(**claim)

        @precondition(
            lambda self: any(p.active(self.world.day) for p in self.world.policies.values())
        )
        @rule(**HONEST)
        def honest_submit(self, **claim: Any) -> None:
            self.submit(**claim)

        @precondition(
            lambda self: any(p.active(self.world.day) for p in self.world.policies.values())
        )
        @rule(**HOSTILE)
        def hostile_submit(self, **claim: Any) -> None:
            self.submit(**claim)

        def submit(
            self,
            index: int,
            writer: str,
            by: str,
            record: str,
            billed: int,
            codes: int,
            service: int,
            identifier: int,
            proven: bool,
            pay_patient: bool,
        ) -> None:
            """A claim on a new record of the clinic or the hospital, on a record that already
            backs a claim, on the record the patient wrote or on a LAB record; by the record's
            writer, its practitioner (the clinic's doctor), the patient, the other provider, a
            clinic that never treated the patient or its practitioner, or the rival insurer.
            Small sets of services, codes, amounts and identifiers make the same care come
            back often."""
            world = self.world
            active = [i for i, p in sorted(world.policies.items()) if p.active(world.day)]
            policy_id = active[index % len(active)]
            state = world.policies[policy_id]
            writer_account = clinic if writer == "clinic" else hospital
            rival = other_insurer if state.model.insurer == insurer.address else insurer
            sender = {
                "writer": writer_account,
                "practitioner": doctor if writer == "clinic" else hospital,
                "patient": patient,
                "other_provider": hospital if writer == "clinic" else doctor,
                "stranger_clinic": other_clinic,
                "stranger_practitioner": other_doctor,
                "rival_insurer": rival,
            }[by]
            claimed = [c.record for c in world.claims.values()]  # in order of submission
            if record == "again" and claimed:
                claim_record = claimed[index % len(claimed)]
            elif record == "patients_own":
                claim_record = own_record
            elif record == "lab":
                claim_record = lab_record
            else:
                claim_record = create_record(
                    writer_account, patient, category=Category.FINANCIAL, care=False
                ).id
                world.writers[bytes(claim_record)] = numbers[writer_account.address]
            world.offered.add(bytes(claim_record))
            provider = world.writers[bytes(claim_record)]
            names = [("99213",), ("80053", "99213")][codes]
            hashes = sorted(COVERED.hashes[c] for c in names)
            service_key = digest(f"service-{service}")
            identifier_value = digest(f"CLM-{identifier}") if identifier else HexBytes(bytes(32))
            submission = {
                "policyId": policy_id,
                "billed": billed,
                "payPatient": pay_patient,
                "claimRecord": claim_record,
                "evidence": [],
                "codeHashes": hashes,
                "codeProofs": [COVERED.proofs[bytes(h)] for h in hashes] if proven else [],
                "serviceKey": service_key,
                "identifierKey": identifier_value,
            }
            care = care_key(patient.address, provider, service_key, hashes)
            keys = [care]
            if identifier:
                keys.append(identifier_key(provider, identifier_value))
            refusal = self.refused_submission(sender, policy_id, claim_record, keys)
            if refusal is not None:
                error, inputs = refusal
                call_reverts(manager.submitClaim, submission, sender=sender, error=error, **inputs)
                return

            policy = state.model
            by_patient = sender == patient
            reason = review_reason(
                policy,
                billed,
                proven,
                by_patient=by_patient,
                insurer_verified=world.verified[policy.insurer],
            )
            allowed, deductible = allowed_now(policy, billed)
            tx = manager.submitClaim(submission, sender=sender)
            claim_id = patient_claim_id(claim_record) if by_patient else record_number(claim_record)
            submitter = patient.address if by_patient else institution_of[sender.address]
            payee = patient.address if pay_patient else submitter
            at = block_time(tx)
            claim = ClaimEntry(
                ClaimModel(submitter, policy_id, billed, pay_patient, at),
                payee,
                HexBytes(claim_record),
                care,
                [bytes(k) for k in [*keys, *([record_key(claim_record)] if by_patient else [])]],
                world.day,
                by_patient=by_patient,
            )
            world.claims[claim_id] = claim
            if by_patient:  # checked free, taken (with the record) only when approved or awarded
                world.pending[claim_id] = list(claim.keys)
            else:
                for key in claim.keys:
                    world.keys[key] = claim_id
            expected = [
                manager.ClaimSubmitted(
                    claimId=claim_id,
                    policyId=policy_id,
                    submitter=submitter,
                    claimRecord=claim_record,
                    billed=billed,
                    payPatient=pay_patient,
                    evidence=[],
                    codeHashes=hashes,
                    automatic=reason is ReviewReason.NONE,
                    review=reason,
                )
            ]
            if reason is ReviewReason.NONE:
                claim.model.state = ClaimState.APPROVED
                claim.model.paid = allowed
                claim.model.decided_at = at
                claim.model.deductible_applied = deductible
                claim.decided_day = world.day
                if allowed:
                    claim.payments.append(allowed)
                policy.paid += allowed
                policy.deductible_met += deductible
                self.add(world.sent, payee, allowed)
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
                if allowed:
                    expected.append(
                        token.Transfer(**{"from": manager, "to": payee, "value": allowed})
                    )
            else:
                state.open_claims += 1
            assert_events(tx, *expected)

        # ------------------------------------------------------------ decisions

        @precondition(lambda self: self.in_states(ACCEPTS["approve"]))
        @rule(
            index=PICK,
            decision=st.sampled_from(["full", "full", "half", "zero", "over", "deny"]),
            who=DECIDER,
        )
        def decide_claim(self, index: int, decision: str, who: str) -> None:
            if decision == "deny":
                self.deny(index, who)
            else:
                self.approve(index, decision, who)

        def approve(self, index: int, share: str, who: str) -> None:
            claim_id, claim = self.claim(index, "approve")
            policy = self.policy_of(claim)
            sender, acts = self.decider(claim, who)
            allowed, deductible = allowed_amount(policy, claim.model)
            amount = {"full": allowed, "half": allowed // 2, "zero": 0, "over": allowed + 1}[share]
            args = (claim_id, amount)
            if not acts:
                call_reverts(
                    manager.approveClaim, *args, sender=sender,
                    error=manager.ClaimNotPolicyInsurer, caller=sender,
                    policyId=claim.model.policy_id,
                )  # fmt: skip
                return
            if amount == 0 and not may_approve_zero(policy, claim.model.billed):
                call_reverts(
                    manager.approveClaim, *args, sender=sender,
                    error=manager.ClaimInvalidAmount, amount=0,
                )  # fmt: skip
                return
            if amount > allowed:
                call_reverts(
                    manager.approveClaim, *args, sender=sender,
                    error=manager.ClaimAmountExceedsAllowed, amount=amount, allowed=allowed,
                )  # fmt: skip
                return
            if policy.pool < amount:
                call_reverts(
                    manager.approveClaim, *args, sender=sender,
                    error=manager.ClaimPoolInsufficient, policyId=claim.model.policy_id,
                    needed=amount, available=policy.pool,
                )  # fmt: skip
                return
            if (holder := self.duplicate_of(claim_id)) is not None:  # the care is claimed
                call_reverts(
                    manager.approveClaim, *args, sender=sender,
                    error=manager.ClaimDuplicate, claimId=holder,
                )  # fmt: skip
                return
            tx = manager.approveClaim(*args, sender=sender)
            assert_events(
                tx,
                manager.ClaimApproved(
                    claimId=claim_id,
                    payee=claim.payee,
                    amount=amount,
                    allowed=allowed,
                    deductibleApplied=deductible,
                    automatic=False,
                    decider=sender,
                ),
            )
            at = block_time(tx)
            claim.model.decided_at = at
            claim.decided_day = self.world.day
            claim.model.deductible_applied = deductible
            state = ClaimState.APPROVED if amount == allowed else ClaimState.PARTIALLY_APPROVED
            self.take_keys(claim_id)
            disputable = is_disputable_decision(amount, allowed)
            self.decide(claim, state, at, amount, deductible, disputable=disputable)

        def deny(self, index: int, who: str) -> None:
            claim_id, claim = self.claim(index, "deny")
            sender, acts = self.decider(claim, who)
            if not acts:
                call_reverts(
                    manager.denyClaim, claim_id, 3, sender=sender,
                    error=manager.ClaimNotPolicyInsurer, caller=sender,
                    policyId=claim.model.policy_id,
                )  # fmt: skip
                return
            tx = manager.denyClaim(claim_id, 3, sender=sender)
            assert_events(tx, manager.ClaimDenied(claimId=claim_id, reasonCode=3, decider=sender))
            at = block_time(tx)
            claim.model.decided_at = at
            claim.decided_day = self.world.day
            self.decide(claim, ClaimState.DENIED, at, disputable=True)

        @precondition(lambda self: self.in_states(ACCEPTS["request_info"]))
        @rule(index=PICK, who=DECIDER)
        def request_info(self, index: int, who: str) -> None:
            claim_id, claim = self.claim(index, "request_info")
            sender, acts = self.decider(claim, who)
            if not acts:
                call_reverts(
                    manager.requestInfo, claim_id, 2, sender=sender,
                    error=manager.ClaimNotPolicyInsurer, caller=sender,
                    policyId=claim.model.policy_id,
                )  # fmt: skip
                return
            if claim.model.info_requests >= MAX_INFO_REQUESTS:
                call_reverts(
                    manager.requestInfo, claim_id, 2, sender=sender,
                    error=manager.ClaimTooManyInfoRequests, claimId=claim_id,
                )  # fmt: skip
                return
            tx = manager.requestInfo(claim_id, 2, sender=sender)
            assert_events(
                tx, manager.ClaimInfoRequested(claimId=claim_id, reasonCode=2, requester=sender)
            )
            claim.model.state = ClaimState.INFO_REQUESTED
            claim.model.info_requests += 1

        @precondition(lambda self: self.in_states(ACCEPTS["provide_info"]))
        @rule(index=PICK, by=PARTY)
        def provide_info(self, index: int, by: str) -> None:
            claim_id, claim = self.claim(index, "provide_info")
            sender = actors[by]
            if not self.is_party(claim, sender):
                call_reverts(
                    manager.provideInfo, claim_id, [answer], sender=sender,
                    error=manager.ClaimNotSubmitterOrPatient, caller=sender, claimId=claim_id,
                )  # fmt: skip
                return
            tx = manager.provideInfo(claim_id, [answer], sender=sender)
            assert_events(
                tx, manager.ClaimInfoProvided(claimId=claim_id, evidence=[answer], provider=sender)
            )
            claim.model.state = ClaimState.SUBMITTED
            claim.model.answered_at = block_time(tx)
            claim.answered_day = self.world.day

        @precondition(lambda self: self.in_states(ACCEPTS["dispute"]))
        @rule(index=PICK, by=PARTY)
        def dispute(self, index: int, by: str) -> None:
            claim_id, claim = self.claim(index, "dispute")
            sender = actors[by]
            if not self.is_party(claim, sender):
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
            self.policy_state(claim).open_claims += 1

        @precondition(lambda self: self.in_states(ACCEPTS["escalate"]))
        @rule(index=PICK, by=PARTY)
        def escalate(self, index: int, by: str) -> None:
            claim_id, claim = self.claim(index, "escalate")
            sender = actors[by]
            if not self.is_party(claim, sender):
                call_reverts(
                    manager.escalateClaim, claim_id, sender=sender,
                    error=manager.ClaimNotSubmitterOrPatient, caller=sender, claimId=claim_id,
                )  # fmt: skip
                return
            verified = self.world.verified[self.policy_of(claim).insurer]
            if claim.model.state is ClaimState.INFO_REQUESTED and verified:  # answer first
                call_reverts(
                    manager.escalateClaim, claim_id, sender=sender,
                    error=manager.ClaimInvalidState, claimId=claim_id, state=claim.model.state,
                )  # fmt: skip
                return
            overdue = self.world.day - claim.since_day >= DECISION_DAYS
            if not overdue and verified:
                call_reverts(
                    manager.escalateClaim, claim_id, sender=sender,
                    error=manager.ClaimNotOverdue, claimId=claim_id,
                    until=escalation_until(claim.model),
                )  # fmt: skip
                return
            tx = manager.escalateClaim(claim_id, sender=sender)
            assert_events(tx, manager.ClaimEscalated(claimId=claim_id, by=sender))
            claim.model.state = ClaimState.DISPUTED  # still open: no change to the count

        @precondition(lambda self: self.in_states(ACCEPTS["resolve"]))
        @rule(
            index=PICK,
            share=st.sampled_from(["zero", "half", "full", "over"]),
            covered=st.booleans(),
            by=st.sampled_from(["resolver", "resolver", "resolver", "insurer", "patient"]),
        )
        def resolve(self, index: int, share: str, covered: bool, by: str) -> None:
            claim_id, claim = self.claim(index, "resolve")
            if by != "resolver":  # the insurer, or the patient, deciding its own dispute
                sender = insurer if by == "insurer" else patient
                call_reverts(
                    manager.resolveDispute, claim_id, 0, True, sender=sender,
                    error=manager.ClaimNotResolver, caller=sender,
                )  # fmt: skip
                return
            policy = self.policy_of(claim)
            allowed, _ = allowed_amount(policy, claim.model)
            award = {"zero": 0, "half": allowed // 2, "full": allowed, "over": allowed + 1}[share]
            args = (claim_id, award, covered)
            unpaid = claim.model.paid == 0
            if unpaid and not covered and award:
                call_reverts(
                    manager.resolveDispute, *args, sender=resolver,
                    error=manager.ClaimInvalidAmount, amount=award,
                )  # fmt: skip
                return
            if award > allowed:
                call_reverts(
                    manager.resolveDispute, *args, sender=resolver,
                    error=manager.ClaimAmountExceedsAllowed, amount=award, allowed=allowed,
                )  # fmt: skip
                return
            if policy.pool < award:
                call_reverts(
                    manager.resolveDispute, *args, sender=resolver,
                    error=manager.ClaimPoolInsufficient, policyId=claim.model.policy_id,
                    needed=award, available=policy.pool,
                )  # fmt: skip
                return
            takes = resolution_takes_keys(claim.model, award, covered)
            if takes and (holder := self.duplicate_of(claim_id)) is not None:
                call_reverts(
                    manager.resolveDispute, *args, sender=resolver,
                    error=manager.ClaimDuplicate, claimId=holder,
                )  # fmt: skip
                return
            most, applied = resolution(policy, claim.model, covered)
            assert award <= most
            tx = manager.resolveDispute(*args, sender=resolver)
            assert_events(
                tx,
                manager.DisputeResolved(
                    claimId=claim_id, payee=claim.payee, award=award, resolver=resolver
                ),
            )
            if unpaid:
                claim.model.deductible_applied = applied
            if takes:
                self.take_keys(claim_id)
            self.decide(
                claim, ClaimState.RESOLVED, block_time(tx), award, applied, disputable=False
            )

        @precondition(lambda self: self.world.claims)
        @rule(action=st.sampled_from(sorted(ACCEPTS)), index=PICK)
        def misplaced(self, action: str, index: int) -> None:
            """A move on a claim whose state does not accept it is refused, naming the state
            (once the caller is one who may make the move at all)."""
            ids = self.in_states(ACCEPTS[action], accepted=False)
            if not ids:
                return
            claim_id = ids[index % len(ids)]
            claim = self.world.claims[claim_id]
            owner = self.policy_of(claim).insurer
            decider = insurer if owner == insurer.address else other_insurer
            method, args, sender = {
                "approve": (manager.approveClaim, (claim_id, 1), decider),
                "deny": (manager.denyClaim, (claim_id, 3), decider),
                "request_info": (manager.requestInfo, (claim_id, 2), decider),
                "provide_info": (manager.provideInfo, (claim_id, [answer]), patient),
                "dispute": (manager.disputeClaim, (claim_id, 4), patient),
                "escalate": (manager.escalateClaim, (claim_id,), patient),
                "resolve": (manager.resolveDispute, (claim_id, 0, True), resolver),
            }[action]
            if sender == decider and not self.world.verified[owner]:
                call_reverts(
                    method, *args, sender=sender,
                    error=manager.ClaimNotPolicyInsurer, caller=sender,
                    policyId=claim.model.policy_id,
                )  # fmt: skip
                return
            call_reverts(
                method, *args, sender=sender,
                error=manager.ClaimInvalidState, claimId=claim_id, state=claim.model.state,
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
                manager.PaymentWithdrawn(payee=payee, amount=owed, holder=payee),
                token.Transfer(**{"from": manager, "to": payee, "value": owed}),
            )
            self.world.credits[payee.address] = 0
            self.add(self.world.withdrawn, payee.address, owed)

        @rule(days=st.sampled_from([1, 3, WINDOW_DAYS + 1, DECISION_DAYS]))
        def advance(self, days: int) -> None:
            advance_time(days * DAY)
            self.world.day += days

        # ------------------------------------------------------------ invariants
        # The first states the money rule of the whole contract; the others single out the
        # promises a payee and an insurer rely on, so that a failure names the one broken.

        @invariant()
        def money_in_equals_pools_plus_credits_plus_money_out(self) -> None:
            seen = self.observed()
            world = self.world
            pools = sum(p["funded"] - p["paid"] for p in seen.policies.values())
            credits = sum(seen.credits.values())
            out = (
                sum(world.withdrawn.values())
                + sum(world.sent.values())
                + sum(world.reclaimed.values())
            )
            assert world.funded_in == pools + credits + out
            assert seen.balances[manager.address] == pools + credits
            for payee in payees:
                received = world.withdrawn.get(payee.address, 0) + world.sent.get(payee.address, 0)
                assert seen.balances[payee.address] == received, payee
            for account in insurers:
                spent = world.funded_by.get(account.address, 0)
                back = world.reclaimed.get(account.address, 0)
                assert seen.balances[account.address] == minted - spent + back, account

        @invariant()
        def care_and_claim_records_are_paid_at_most_once(self) -> None:
            seen = self.observed()
            paid_claims = Counter(
                bytes(c.care_key)
                for i, c in self.world.claims.items()
                if seen.claims[i]["paid"] > 0
            )
            assert all(n == 1 for n in paid_claims.values()), paid_claims
            for claim_id, claim in self.world.claims.items():
                holders = [seen.keys[k] for k in claim.keys]
                if claim_id in self.world.pending:  # a patient's claim not approved (yet)
                    assert claim_id not in holders, claim_id
                    stored = seen.claims[claim_id]
                    assert stored["paid"] == 0, claim_id
                    assert stored["state"] not in (
                        ClaimState.APPROVED,
                        ClaimState.PARTIALLY_APPROVED,
                    )
                else:  # each key names this one claim
                    assert holders == [claim_id] * len(claim.keys), claim_id
            for claim_id, unclaimed in seen.unclaimed.items():  # offered, maybe many times
                assert unclaimed == (claim_id not in self.world.claims), claim_id
            paid_records = Counter(
                bytes(c.record) for i, c in self.world.claims.items() if seen.claims[i]["paid"] > 0
            )
            assert all(n == 1 for n in paid_records.values()), paid_records

        @invariant()
        def claims_are_paid_at_most_what_their_policy_allows(self) -> None:
            seen = self.observed()
            for policy_id, stored in seen.policies.items():
                assert stored["paid"] <= stored["annualLimit"], policy_id
                assert stored["deductibleMet"] <= stored["deductible"], policy_id
                assert stored["paid"] <= stored["funded"], policy_id
            for claim_id, claim in self.world.claims.items():
                stored = seen.claims[claim_id]
                decisions = 1 + (claim.model.state is ClaimState.RESOLVED)
                assert len(claim.payments) <= decisions, claim_id
                assert stored["paid"] == sum(claim.payments), claim_id
                policy = self.policy_of(claim)
                limit = coverage(policy, stored["billed"], stored["deductibleApplied"])
                assert stored["paid"] <= limit <= stored["billed"], claim_id

        @invariant()
        def chain_agrees_with_the_model(self) -> None:
            seen = self.observed()
            world = self.world
            assert seen.policy_count == len(world.policies)
            for policy_id, policy in world.policies.items():
                assert seen.policies[policy_id] == policy.model.as_dict(), policy_id
                assert seen.open_claims[policy_id] == policy.open_claims, policy_id
                counted = sum(
                    1
                    for c in world.claims.values()
                    if c.model.policy_id == policy_id and c.model.state in OPEN
                )
                assert policy.open_claims == counted, policy_id
            for claim_id, claim in world.claims.items():
                assert seen.claims[claim_id] == claim.model.as_dict(), claim_id
                expected = allowed_amount(self.policy_of(claim), claim.model)
                assert seen.allowed[claim_id] == expected, claim_id
            assert seen.keys == {k: world.keys.get(k, 0) for k in watched_keys(world)}
            for payee in payees:
                assert seen.credits[payee.address] == world.credits.get(payee.address, 0)

        def observed(self) -> Observed:
            """What the chain holds, read once per block (a refused move mines none)."""
            number = rpc.make_request("eth_blockNumber", [])["result"]
            if self._observed is None or self._observed_at != number:
                self._observed_at = number
                self._observed = observe(self.world)
            return self._observed

    run_state_machine_as_test(
        ClaimsAmongAdversaries,
        settings=settings(max_examples=examples(chain), stateful_step_count=40, deadline=None),
    )
