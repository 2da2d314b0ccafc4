"""Stateful test of the ProviderRegistry lifecycle against a Python model.

Hypothesis drives applications, approvals (verification and reinstatement), suspensions,
threshold changes and practitioner additions and removals in random order, valid and
invalid, and after every step checks the invariant:

    an account may anchor for a patient (``canAnchor``) iff the model says it is a verified
    institution or an active practitioner of one.

Every step also checks the outcome against the model: the exact custom error for a move the
model rejects (sent as an eth_call, see ``support.call_reverts``), the exact events and the
on-chain ``Participant`` for a move it accepts. Each example runs between a chain snapshot
and its restore, so examples start from the same chain; a third of them start from a
verified hospital, a third from one with a practitioner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_abi import decode, encode
from eth_utils import keccak
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

from .support import THRESHOLD, Kind, Role, Status, assert_events, call_reverts, new_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

REASON = b"stateful".ljust(32, b"\0")
KINDS = [k for k in Kind if k is not Kind.NONE]


@dataclass
class Model:
    """What the registry should hold, keyed by address."""

    threshold: int = THRESHOLD
    role: dict[str, Role] = field(default_factory=dict)
    status: dict[str, Status] = field(default_factory=dict)
    approved: dict[str, set[str]] = field(default_factory=dict)  # current round only
    employer: dict[str, str] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)

    def role_of(self, account: str) -> Role:
        return self.role.get(account, Role.NONE)

    def may_write(self, account: str) -> bool:
        role = self.role_of(account)
        if role is Role.INSTITUTION:
            return self.status[account] is Status.VERIFIED
        if role is Role.PRACTITIONER:
            employer = self.employer[account]
            return self.active[account] and self.status[employer] is Status.VERIFIED
        return False

    def institutions(self, *statuses: Status) -> list[str]:
        return sorted(a for a, s in self.status.items() if s in statuses)


def test_can_anchor_follows_the_institution_lifecycle_model(
    chain: Any,
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    patient: AccountAPI,
    register_patient: Callable[..., Any],
    isolated: Callable[[], Any],
) -> None:
    register_patient(patient)  # rolled back by Ape after the test, kept across examples
    registry = provider_registry
    # Sensible moves make institutions of the first two and practitioners of the other three;
    # `arbitrary_move` may try any role on any of them.
    institution_candidates = [hospital, clinic]
    practitioner_candidates = [doctor, other_patient, stranger]
    actors = institution_candidates + practitioner_candidates
    by_address = {a.address: a for a in actors}

    # The invariant asks about every actor after every step that changed the chain (about 800
    # calls per run). Through Ape a call costs 10-15 ms; a bare JSON-RPC eth_call, encoded
    # once, 1-3 ms. Ape's own path to these views is covered in test_provider_registry.py.
    rpc = chain.provider.web3.provider

    def encoded_call(signature: str, types: list[str], args: list[Any]) -> dict[str, str]:
        data = keccak(text=signature)[:4] + encode(types, args)
        return {"from": patient.address, "to": registry.address, "data": HexBytes(data).to_0x_hex()}

    def eth_call(request: dict[str, str], output_types: list[str]) -> tuple[Any, ...]:
        response = rpc.make_request("eth_call", [request, "latest"])
        assert "error" not in response, response
        return decode(output_types, HexBytes(response["result"]))

    can_anchor_calls = {
        a.address: encoded_call(
            "canAnchor(address,address)", ["address", "address"], [a.address, patient.address]
        )
        for a in actors
    }
    participant_calls = {
        a.address: encoded_call("participant(address)", ["address"], [a.address]) for a in actors
    }
    participant_types = ["uint8", "uint8", "uint8", "uint8", "uint32", "address", "bool", "uint8"]

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.model = Model()
            self._changed = True  # the chain changed since the invariant last looked
            self._isolation = isolated()
            self._isolation.__enter__()

        def teardown(self) -> None:
            self._isolation.__exit__(None, None, None)

        # ------------------------------------------------------------ helpers

        def _free(self, candidates: list[AccountAPI]) -> list[AccountAPI]:
            return [a for a in candidates if self.model.role_of(a.address) is Role.NONE]

        def _check_participant(self, account: AccountAPI) -> None:
            """The account's on-chain Participant matches the model (after a move on it)."""
            self._changed = True
            model, address = self.model, account.address
            role, _, status, approvals, _, employer, active, _ = eth_call(
                participant_calls[address], participant_types
            )
            assert role == model.role_of(address), account
            if role == Role.INSTITUTION:
                assert (status, approvals) == (
                    model.status[address],
                    len(model.approved[address]),
                ), account
            if role == Role.PRACTITIONER:
                assert employer.lower() == model.employer[address].lower(), account
                assert active == model.active[address], account

        # ------------------------------------------------------------ moves
        # Each move sends its transaction and checks the outcome against the model, whether
        # the model accepts the move or not. The rules below choose the arguments.

        def do_apply(self, account: AccountAPI, kind: Kind) -> None:
            key = new_key()
            method = registry.applyAsInstitution
            if self.model.role_of(account.address) is not Role.NONE:
                call_reverts(
                    method, kind, "Applicant", key,
                    sender=account, error=registry.ProviderAlreadyRegistered, account=account,
                )  # fmt: skip
                return
            tx = method(kind, "Applicant", key, sender=account)
            assert_events(
                tx,
                registry.EncryptionKeyPublished(account=account, key=key),
                registry.InstitutionApplied(institution=account, kind=kind, name="Applicant"),
            )
            self.model.role[account.address] = Role.INSTITUTION
            self.model.status[account.address] = Status.PENDING
            self.model.approved[account.address] = set()
            self._check_participant(account)

        def do_approve(self, registrar: AccountAPI, account: AccountAPI) -> None:
            model, address, method = self.model, account.address, registry.approveInstitution
            if model.role_of(address) is not Role.INSTITUTION:
                call_reverts(
                    method, account,
                    sender=registrar, error=registry.ProviderNotInstitution, account=account,
                )  # fmt: skip
                return
            status = model.status[address]
            if status is Status.VERIFIED:
                call_reverts(
                    method, account,
                    sender=registrar, error=registry.ProviderInvalidStatus,
                    institution=account, status=status,
                )  # fmt: skip
                return
            if registrar.address in model.approved[address]:
                call_reverts(
                    method, account,
                    sender=registrar, error=registry.ProviderAlreadyApproved,
                    institution=account, registrar=registrar,
                )  # fmt: skip
                return
            tx = method(account, sender=registrar)
            approvals = len(model.approved[address]) + 1
            expected = [
                registry.InstitutionApproved(
                    institution=account,
                    registrar=registrar,
                    approvals=approvals,
                    threshold=model.threshold,
                )
            ]
            if approvals >= model.threshold:
                if status is Status.PENDING:
                    expected.append(registry.InstitutionVerified(institution=account))
                else:
                    expected.append(registry.InstitutionReinstated(institution=account))
                model.status[address] = Status.VERIFIED
                model.approved[address] = set()  # a new round
            else:
                model.approved[address].add(registrar.address)
            assert_events(tx, *expected)
            self._check_participant(account)

        def do_suspend(self, registrar: AccountAPI, account: AccountAPI) -> None:
            model, address, method = self.model, account.address, registry.suspendInstitution
            if model.role_of(address) is not Role.INSTITUTION:
                call_reverts(
                    method, account, REASON,
                    sender=registrar, error=registry.ProviderNotInstitution, account=account,
                )  # fmt: skip
                return
            if (status := model.status[address]) is not Status.VERIFIED:
                call_reverts(
                    method, account, REASON,
                    sender=registrar, error=registry.ProviderInvalidStatus,
                    institution=account, status=status,
                )  # fmt: skip
                return
            tx = method(account, REASON, sender=registrar)
            assert_events(
                tx,
                registry.InstitutionSuspended(
                    institution=account, registrar=registrar, reason=REASON
                ),
            )
            model.status[address] = Status.SUSPENDED
            model.approved[address] = set()  # a new round
            self._check_participant(account)

        def do_add_practitioner(self, institution: AccountAPI, practitioner: AccountAPI) -> None:
            model, method = self.model, registry.addPractitioner
            if model.role_of(institution.address) is not Role.INSTITUTION:
                call_reverts(
                    method, practitioner,
                    sender=institution, error=registry.ProviderNotInstitution,
                    account=institution,
                )  # fmt: skip
                return
            if (status := model.status[institution.address]) is not Status.VERIFIED:
                call_reverts(
                    method, practitioner,
                    sender=institution, error=registry.ProviderInvalidStatus,
                    institution=institution, status=status,
                )  # fmt: skip
                return
            if model.role_of(practitioner.address) is not Role.NONE:
                call_reverts(
                    method, practitioner,
                    sender=institution, error=registry.ProviderAlreadyRegistered,
                    account=practitioner,
                )  # fmt: skip
                return
            tx = method(practitioner, sender=institution)
            assert_events(
                tx,
                registry.PractitionerAdded(institution=institution, practitioner=practitioner),
            )
            model.role[practitioner.address] = Role.PRACTITIONER
            model.employer[practitioner.address] = institution.address
            model.active[practitioner.address] = True
            self._check_participant(practitioner)

        def do_remove_practitioner(self, institution: AccountAPI, practitioner: AccountAPI) -> None:
            model, address, method = self.model, practitioner.address, registry.removePractitioner
            is_theirs = (
                model.role_of(address) is Role.PRACTITIONER
                and model.employer[address] == institution.address
                and model.active[address]
            )
            if not is_theirs:
                call_reverts(
                    method, practitioner,
                    sender=institution, error=registry.ProviderNotPractitioner,
                    institution=institution, account=practitioner,
                )  # fmt: skip
                return
            tx = method(practitioner, sender=institution)
            assert_events(
                tx,
                registry.PractitionerRemoved(institution=institution, practitioner=practitioner),
            )
            model.active[address] = False
            self._check_participant(practitioner)

        def do_set_threshold(self, threshold: int) -> None:
            tx = registry.setApprovalThreshold(threshold, sender=admin)
            assert_events(
                tx,
                registry.ApprovalThresholdChanged(
                    previousThreshold=self.model.threshold, newThreshold=threshold
                ),
            )
            self.model.threshold = threshold
            self._changed = True

        # ------------------------------------------------------------ rules
        # Sensible moves (arguments drawn from what the model says exists) keep the lifecycle
        # moving; `arbitrary_move` throws in any move with any accounts, mostly invalid ones.
        # A rejected move is checked with `call_reverts` (an eth_call through bare JSON-RPC):
        # it changes no state, and through Ape each revert would cost a trace on Anvil.

        @initialize(start=st.sampled_from(["empty", "verified", "verified-with-practitioner"]))
        def start_from(self, start: str) -> None:
            # Deep states (a practitioner of a verified institution) take five moves to reach
            # by chance; a third of the examples start there, a third half-way.
            if start == "empty":
                return
            self.do_apply(hospital, Kind.HOSPITAL)
            for registrar in registrars[:THRESHOLD]:
                self.do_approve(registrar, hospital)
            if start == "verified-with-practitioner":
                self.do_add_practitioner(hospital, doctor)

        @precondition(lambda self: bool(self._free(institution_candidates)))
        @rule(data=st.data(), kind=st.sampled_from(KINDS))
        def apply(self, data: st.DataObject, kind: Kind) -> None:
            free = self._free(institution_candidates)
            self.do_apply(data.draw(st.sampled_from(free), label="applicant"), kind)

        @precondition(lambda self: bool(self.model.institutions(Status.PENDING, Status.SUSPENDED)))
        @rule(data=st.data(), registrar=st.sampled_from(registrars))
        def approve(self, data: st.DataObject, registrar: AccountAPI) -> None:
            waiting = self.model.institutions(Status.PENDING, Status.SUSPENDED)
            self.do_approve(registrar, by_address[data.draw(st.sampled_from(waiting))])

        @precondition(lambda self: bool(self.model.institutions(Status.VERIFIED)))
        @rule(data=st.data(), registrar=st.sampled_from(registrars))
        def suspend(self, data: st.DataObject, registrar: AccountAPI) -> None:
            verified = self.model.institutions(Status.VERIFIED)
            self.do_suspend(registrar, by_address[data.draw(st.sampled_from(verified))])

        @precondition(
            lambda self: bool(
                self.model.institutions(Status.VERIFIED) and self._free(practitioner_candidates)
            )
        )
        @rule(data=st.data())
        def add_practitioner(self, data: st.DataObject) -> None:
            verified = self.model.institutions(Status.VERIFIED)
            institution = by_address[data.draw(st.sampled_from(verified), label="institution")]
            free = self._free(practitioner_candidates)
            practitioner = data.draw(st.sampled_from(free), label="practitioner")
            self.do_add_practitioner(institution, practitioner)

        @precondition(lambda self: any(self.model.active.values()))
        @rule(data=st.data())
        def remove_practitioner(self, data: st.DataObject) -> None:
            active = sorted(a for a, on in self.model.active.items() if on)
            practitioner = by_address[data.draw(st.sampled_from(active), label="practitioner")]
            institution = by_address[self.model.employer[practitioner.address]]
            self.do_remove_practitioner(institution, practitioner)

        @rule(
            move=st.sampled_from(["apply", "approve", "suspend", "add", "remove", "threshold"]),
            first=st.sampled_from(actors),
            second=st.sampled_from(actors),
            registrar=st.sampled_from(registrars),
            kind=st.sampled_from(KINDS),
            threshold=st.integers(1, len(registrars)),
        )
        def arbitrary_move(
            self,
            move: str,
            first: AccountAPI,
            second: AccountAPI,
            registrar: AccountAPI,
            kind: Kind,
            threshold: int,
        ) -> None:
            if move == "apply":
                self.do_apply(first, kind)
            elif move == "approve":
                self.do_approve(registrar, first)
            elif move == "suspend":
                self.do_suspend(registrar, first)
            elif move == "add":
                self.do_add_practitioner(first, second)
            elif move == "remove":
                self.do_remove_practitioner(first, second)
            else:
                self.do_set_threshold(threshold)

        # ------------------------------------------------------------ invariant

        @invariant()
        def only_verified_institutions_and_their_active_practitioners_may_anchor(self) -> None:
            # A rejected move is an eth_call, which cannot change the chain: after one, the
            # answer is the one checked last time (on eth-tester a call costs ~10 ms of py-evm).
            if not self._changed:
                return
            self._changed = False
            for account in actors:
                may_write, registered = eth_call(
                    can_anchor_calls[account.address], ["bool", "bool"]
                )
                assert registered
                assert may_write == self.model.may_write(account.address), account

    run_state_machine_as_test(
        Lifecycle,
        settings=settings(max_examples=20, stateful_step_count=15, deadline=None),
    )
