"""Stateful test of the ProviderRegistry lifecycle against a Python model.

Hypothesis drives, in random order, valid and invalid: applications, approvals (verification
and reinstatement), suspensions, practitioner invitations, acceptances, removals and
withdrawals, patient registrations, registrar votes (add and remove), threshold votes and
renunciations. Registrar candidates include the ``hospital`` account and ``doctor`` (who may
also be an institution and its practitioner), so that self-approval comes up.

Every step checks its outcome against the model: the exact custom error for a move the model
rejects (sent as an eth_call, see ``support.call_reverts``), the exact events for a move it
accepts. After every step that changed the chain, the invariants compare every account's
``Participant``, ``writerOf`` and ``verifiedInstitutionOf``, the invitations, the registrar
set, the threshold and each institution's ``approvalsOf`` with the model, and check:

* only the votes of current registrars, cast in their current term, count (``approvalsOf``
  equals the model's count of such votes, and never exceeds the number of registrars);
* an institution is verified only after approvals of at least the threshold of current
  registrars, none of which is the institution, ever worked for it or holds its invitation;
* a removed practitioner has no role (until it takes a new one);
* an account may write records (``writerOf``) iff it is a patient, a verified care
  institution or a practitioner of one.

Each example runs between a chain snapshot and its restore, so examples start from the same
chain; some start from a verified hospital, with a practitioner, or with that practitioner a
registrar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from eth_abi import decode, encode
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

from .support import (
    REGISTRAR_ROLE,
    THRESHOLD,
    ZERO_ADDRESS,
    Kind,
    Role,
    Status,
    assert_events,
    call_reverts,
    key_proof,
    new_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

REASON = b"stateful".ljust(32, b"\0")
KINDS = [k for k in Kind if k is not Kind.NONE]
CARE_KINDS = {Kind.HOSPITAL, Kind.CLINIC, Kind.LABORATORY, Kind.EMERGENCY_SERVICE}
MAX_REGISTRARS = 16


def registrar_motion(account: str, add: bool, round_: int) -> HexBytes:
    return HexBytes(
        keccak(encode(["string", "address", "bool", "uint32"], ["registrar", account, add, round_]))
    )


def threshold_motion(threshold: int, round_: int) -> HexBytes:
    return HexBytes(keccak(encode(["string", "uint8", "uint32"], ["threshold", threshold, round_])))


@dataclass
class Witness:
    """Who verified (or reinstated) an institution, as the model saw it at that moment."""

    voters: frozenset[str]
    threshold: int
    registrars: frozenset[str]
    insiders: frozenset[str]  # the institution and its insiders at that moment (``insiders``)


@dataclass
class Model:
    """What the registry should hold, keyed by address.

    Votes are kept as ``{registrar: term}``: a vote counts while its registrar is a registrar
    in the term it voted in (a returning registrar starts a new term).
    """

    threshold: int
    registrars: set[str]
    term: dict[str, int]
    role: dict[str, Role] = field(default_factory=dict)
    kind: dict[str, Kind] = field(default_factory=dict)
    status: dict[str, Status] = field(default_factory=dict)
    number: dict[str, int] = field(default_factory=dict)
    employer: dict[str, str] = field(default_factory=dict)
    invited: set[tuple[str, str]] = field(default_factory=set)  # (institution, account)
    worked_for: set[tuple[str, str]] = field(default_factory=set)  # (institution, account), ever
    approvals: dict[str, dict[str, int]] = field(default_factory=dict)  # current round only
    # The same approvals, kept the other way: a registrar's approvals dropped when it leaves.
    approvers: dict[str, set[str]] = field(default_factory=dict)
    registrar_votes: dict[tuple[str, bool], dict[str, int]] = field(default_factory=dict)
    registrar_round: dict[str, int] = field(default_factory=dict)
    threshold_votes: dict[int, dict[str, int]] = field(default_factory=dict)
    threshold_round: int = 0
    institutions: int = 0
    removed: set[str] = field(default_factory=set)  # practitioners removed, with no role since
    witness: dict[str, Witness] = field(default_factory=dict)

    def role_of(self, account: str) -> Role:
        return self.role.get(account, Role.NONE)

    def counted(self, votes: dict[str, int]) -> set[str]:
        return {r for r, t in votes.items() if r in self.registrars and self.term[r] == t}

    def has_voted(self, votes: dict[str, int], registrar: str) -> bool:
        return votes.get(registrar) == self.term.get(registrar)

    def acting_institution(self, account: str) -> str | None:
        """The verified institution the account is or works for."""
        role = self.role_of(account)
        institution = self.employer[account] if role is Role.PRACTITIONER else account
        verified = self.status.get(institution) is Status.VERIFIED
        return institution if verified and self.role_of(institution) is Role.INSTITUTION else None

    def writer_of(self, account: str) -> tuple[bool, int]:
        institution = self.acting_institution(account)
        if institution is None:
            return (self.role_of(account) is Role.PATIENT, 0)
        if self.kind[institution] not in CARE_KINDS:
            return (False, 0)
        return (True, self.number[institution])

    def insiders(self, institution: str) -> set[str]:
        """Who may never approve ``institution``: itself, whoever ever worked for it (a
        practitioner who left included) and whoever holds an invitation from it."""
        return (
            {institution}
            | {a for i, a in self.worked_for if i == institution}
            | {a for i, a in self.invited if i == institution}
        )

    def of_status(self, *statuses: Status) -> list[str]:
        return sorted(a for a, s in self.status.items() if s in statuses)


@pytest.mark.networks  # call_reverts and eth_call batches: eth-tester answers otherwise than Anvil
def test_registry_follows_the_lifecycle_model(
    chain: Any,
    provider_registry: Any,
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
    # Sensible moves make institutions of the first two, practitioners of the next three and
    # registrars of the registrar candidates; `arbitrary_move` may try anything on anyone.
    institution_candidates = [hospital, clinic]
    practitioner_candidates = [doctor, other_patient, stranger]
    registrar_candidates = [*registrars, hospital, doctor]
    actors = [*institution_candidates, *practitioner_candidates, *registrars]
    by_address = {a.address: a for a in [*actors, patient]}

    # The invariants ask about every actor after every step that changed the chain. Through
    # Ape a call costs 10-15 ms; a bare JSON-RPC eth_call, encoded once, 1-3 ms. Ape's own
    # path to these views is covered in the scenario tests.
    rpc = chain.provider.web3.provider

    def encoded(signature: str, types: list[str], args: list[Any]) -> dict[str, str]:
        data = keccak(text=signature)[:4] + encode(types, args)
        return {"from": patient.address, "to": registry.address, "data": HexBytes(data).to_0x_hex()}

    def eth_calls(calls: dict[Any, tuple[dict[str, str], list[str]]]) -> dict[Any, Any]:
        """Makes every call (in one JSON-RPC batch where the provider takes batches: the
        invariants make about fifty calls per step) and returns the decoded answers."""
        requests = [("eth_call", [request, "latest"]) for request, _ in calls.values()]
        batch = getattr(rpc, "make_batch_request", None)
        if batch is not None:
            responses = batch(requests)
            assert isinstance(responses, list), responses
        else:  # eth-tester
            responses = [rpc.make_request(method, params) for method, params in requests]
        answers = {}
        for (name, (_, types)), response in zip(calls.items(), responses, strict=True):
            assert "error" not in response, (name, response)
            answers[name] = decode(types, HexBytes(response["result"]))
        return answers

    participant_calls = {
        a.address: encoded("participant(address)", ["address"], [a.address]) for a in actors
    }
    participant_types = ["uint8", "uint8", "uint8", "uint8", "uint32", "address", "uint32"]
    writer_calls = {
        a.address: encoded("writerOf(address)", ["address"], [a.address]) for a in actors
    }
    acting_calls = {
        a.address: encoded("verifiedInstitutionOf(address)", ["address"], [a.address])
        for a in actors
    }
    cached: dict[tuple[str, ...], dict[str, str]] = {}

    def approvals_call(institution: str) -> dict[str, str]:
        key = ("approvalsOf", institution)
        if key not in cached:
            cached[key] = encoded("approvalsOf(address)", ["address"], [institution])
        return cached[key]

    def invited_call(institution: str, account: str) -> dict[str, str]:
        key = ("isInvited", institution, account)
        if key not in cached:
            cached[key] = encoded(
                "isInvited(address,address)", ["address", "address"], [institution, account]
            )
        return cached[key]

    members_call = encoded("getRoleMembers(bytes32)", ["bytes32"], [bytes(REGISTRAR_ROLE)])
    threshold_call = encoded("approvalThreshold()", [], [])

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            initial = {r.address for r in registrars}
            self.model = Model(
                threshold=THRESHOLD, registrars=initial, term=dict.fromkeys(initial, 1)
            )
            self._changed = True  # the chain changed since the invariants last looked
            self.answers: dict[Any, Any] = {}  # the views, as the invariants last read them
            self._isolation = isolated()
            self._isolation.__enter__()

        def teardown(self) -> None:
            self._isolation.__exit__(None, None, None)

        # ------------------------------------------------------------ helpers

        def _free(self, candidates: list[AccountAPI]) -> list[AccountAPI]:
            return [a for a in candidates if self.model.role_of(a.address) is Role.NONE]

        def _current(self, candidates: list[AccountAPI]) -> list[AccountAPI]:
            return [a for a in candidates if a.address in self.model.registrars]

        def _not_registrar(self, method: Any, *args: Any, sender: AccountAPI) -> bool:
            """Checks the AccessControl refusal of a registrar-only move; True if refused."""
            if sender.address in self.model.registrars:
                return False
            call_reverts(
                method, *args,
                sender=sender, error=registry.AccessControlUnauthorizedAccount,
                account=sender, neededRole=REGISTRAR_ROLE,
            )  # fmt: skip
            return True

        def _leaves(self, registrar: str) -> None:
            self.model.registrars.discard(registrar)
            for approvers in self.model.approvers.values():
                approvers.discard(registrar)

        def _take_role(self, account: str, role: Role) -> None:
            self.model.role[account] = role
            self.model.removed.discard(account)

        # ------------------------------------------------------------ moves
        # Each move sends its transaction and checks the outcome against the model, whether
        # the model accepts the move or not. The rules below choose the arguments.

        def do_apply(self, account: AccountAPI, kind: Kind) -> None:
            model, address = self.model, account.address
            key = new_key()
            proof = key_proof(registry, account, key)
            method = registry.applyAsInstitution
            if model.role_of(address) is not Role.NONE:
                call_reverts(
                    method, kind, "Applicant", key, proof,
                    sender=account, error=registry.ProviderAlreadyRegistered, account=account,
                )  # fmt: skip
                return
            tx = method(kind, "Applicant", key, proof, sender=account)
            model.institutions += 1
            assert_events(
                tx,
                registry.EncryptionKeyPublished(account=account, key=key),
                registry.InstitutionApplied(
                    institution=account, kind=kind, number=model.institutions, name="Applicant"
                ),
            )
            self._take_role(address, Role.INSTITUTION)
            model.kind[address] = kind
            model.status[address] = Status.PENDING
            model.number[address] = model.institutions
            model.approvals[address] = {}
            model.approvers[address] = set()
            self._changed = True

        def do_register(self, account: AccountAPI) -> None:
            key = new_key()
            proof = key_proof(registry, account, key)
            if self.model.role_of(account.address) is not Role.NONE:
                call_reverts(
                    registry.registerPatient, key, proof,
                    sender=account, error=registry.ProviderAlreadyRegistered, account=account,
                )  # fmt: skip
                return
            tx = registry.registerPatient(key, proof, sender=account)
            assert_events(
                tx,
                registry.EncryptionKeyPublished(account=account, key=key),
                registry.PatientRegistered(patient=account),
            )
            self._take_role(account.address, Role.PATIENT)
            self._changed = True

        def do_approve(self, registrar: AccountAPI, account: AccountAPI) -> None:
            model, address, method = self.model, account.address, registry.approveInstitution
            if self._not_registrar(method, account, sender=registrar):
                return
            if model.role_of(address) is not Role.INSTITUTION:
                call_reverts(
                    method, account,
                    sender=registrar, error=registry.ProviderNotInstitution, account=account,
                )  # fmt: skip
                return
            status = model.status[address]
            if status not in (Status.PENDING, Status.SUSPENDED):
                call_reverts(
                    method, account,
                    sender=registrar, error=registry.ProviderInvalidStatus,
                    institution=account, status=status,
                )  # fmt: skip
                return
            if registrar.address in model.insiders(address):
                call_reverts(
                    method, account,
                    sender=registrar, error=registry.ProviderSelfApproval,
                    registrar=registrar, institution=account,
                )  # fmt: skip
                return
            votes = model.approvals[address]
            if model.has_voted(votes, registrar.address):
                call_reverts(
                    method, account,
                    sender=registrar, error=registry.ProviderAlreadyApproved,
                    institution=account, registrar=registrar,
                )  # fmt: skip
                return
            tx = method(account, sender=registrar)
            votes[registrar.address] = model.term[registrar.address]
            model.approvers[address].add(registrar.address)
            counted = model.counted(votes)
            expected = [
                registry.InstitutionApproved(
                    institution=account,
                    registrar=registrar,
                    approvals=len(counted),
                    threshold=model.threshold,
                )
            ]
            if len(counted) >= model.threshold:
                done = "Verified" if status is Status.PENDING else "Reinstated"
                expected.append(getattr(registry, f"Institution{done}")(institution=account))
                model.witness[address] = Witness(
                    voters=frozenset(model.approvers[address]),
                    threshold=model.threshold,
                    registrars=frozenset(model.registrars),
                    insiders=frozenset(model.insiders(address)),
                )
                model.status[address] = Status.VERIFIED
                model.approvals[address] = {}  # a new round
                model.approvers[address] = set()
            assert_events(tx, *expected)
            self._changed = True

        def do_suspend(self, registrar: AccountAPI, account: AccountAPI) -> None:
            model, address, method = self.model, account.address, registry.suspendInstitution
            if self._not_registrar(method, account, REASON, sender=registrar):
                return
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
            model.approvals[address] = {}  # a new round
            model.approvers[address] = set()
            self._changed = True

        def do_invite(self, institution: AccountAPI, account: AccountAPI) -> None:
            model, method = self.model, registry.addPractitioner
            if model.role_of(institution.address) is not Role.INSTITUTION:
                call_reverts(
                    method, account,
                    sender=institution, error=registry.ProviderNotInstitution,
                    account=institution,
                )  # fmt: skip
                return
            if (status := model.status[institution.address]) is not Status.VERIFIED:
                call_reverts(
                    method, account,
                    sender=institution, error=registry.ProviderInvalidStatus,
                    institution=institution, status=status,
                )  # fmt: skip
                return
            if account.address == institution.address:
                call_reverts(
                    method, account,
                    sender=institution, error=registry.ProviderInvalidPractitioner,
                    account=account,
                )  # fmt: skip
                return
            if model.role_of(account.address) is not Role.NONE:
                call_reverts(
                    method, account,
                    sender=institution, error=registry.ProviderAlreadyRegistered,
                    account=account,
                )  # fmt: skip
                return
            tx = method(account, sender=institution)
            assert_events(
                tx, registry.PractitionerInvited(institution=institution, practitioner=account)
            )
            model.invited.add((institution.address, account.address))
            self._changed = True

        def do_accept(self, account: AccountAPI, institution: AccountAPI) -> None:
            model, method = self.model, registry.acceptPractitioner
            pair = (institution.address, account.address)
            if pair not in model.invited:
                call_reverts(
                    method, institution,
                    sender=account, error=registry.ProviderNotInvited,
                    institution=institution, account=account,
                )  # fmt: skip
                return
            if (status := model.status[institution.address]) is not Status.VERIFIED:
                call_reverts(
                    method, institution,
                    sender=account, error=registry.ProviderInvalidStatus,
                    institution=institution, status=status,
                )  # fmt: skip
                return
            if model.role_of(account.address) is not Role.NONE:
                call_reverts(
                    method, institution,
                    sender=account, error=registry.ProviderAlreadyRegistered, account=account,
                )  # fmt: skip
                return
            tx = method(institution, sender=account)
            assert_events(
                tx, registry.PractitionerAdded(institution=institution, practitioner=account)
            )
            model.invited.discard(pair)
            self._take_role(account.address, Role.PRACTITIONER)
            model.employer[account.address] = institution.address
            model.worked_for.add(pair)
            self._changed = True

        def do_remove(self, caller: AccountAPI, account: AccountAPI) -> None:
            model, address, method = self.model, account.address, registry.removePractitioner
            employer = model.employer.get(address)
            if model.role_of(address) is Role.PRACTITIONER and caller.address in (
                employer,
                address,
            ):
                assert employer is not None
                tx = method(account, sender=caller)
                assert_events(
                    tx,
                    registry.PractitionerRemoved(
                        institution=employer, practitioner=account, by=caller
                    ),
                )
                del model.role[address], model.employer[address]
                model.removed.add(address)
            elif (caller.address, address) in model.invited:
                tx = method(account, sender=caller)
                assert_events(
                    tx,
                    registry.PractitionerRemoved(
                        institution=caller, practitioner=account, by=caller
                    ),
                )
                model.invited.discard((caller.address, address))
            else:
                call_reverts(
                    method, account,
                    sender=caller, error=registry.ProviderNotPractitioner,
                    institution=caller, account=account,
                )  # fmt: skip
                return
            self._changed = True

        def do_vote_registrar(self, voter: AccountAPI, account: AccountAPI, add: bool) -> None:
            model, address, method = self.model, account.address, registry.voteRegistrar
            if self._not_registrar(method, account, add, sender=voter):
                return
            count = len(model.registrars)
            if (address in model.registrars) == add or (add and count >= MAX_REGISTRARS):
                call_reverts(
                    method, account, add,
                    sender=voter, error=registry.ProviderInvalidRegistrar,
                    account=account, add=add,
                )  # fmt: skip
                return
            votes = model.registrar_votes.setdefault((address, add), {})
            if model.has_voted(votes, voter.address):
                motion = registrar_motion(address, add, model.registrar_round.get(address, 0))
                call_reverts(
                    method, account, add,
                    sender=voter, error=registry.ProviderAlreadyVoted,
                    motion=motion, registrar=voter,
                )  # fmt: skip
                return
            counted = model.counted(votes | {voter.address: model.term[voter.address]})
            done = len(counted) >= model.threshold
            if done and not add and model.threshold > count - 1:
                call_reverts(
                    method, account, add,
                    sender=voter, error=registry.ProviderInvalidThreshold,
                    threshold=model.threshold, registrars=count - 1,
                )  # fmt: skip
                return
            tx = method(account, add, sender=voter)
            votes[voter.address] = model.term[voter.address]
            expected = [
                registry.RegistrarVoted(
                    account=account,
                    add=add,
                    registrar=voter,
                    votes=len(counted),
                    threshold=model.threshold,
                )
            ]
            if done:
                model.registrar_round[address] = model.registrar_round.get(address, 0) + 1
                model.registrar_votes.pop((address, True), None)
                model.registrar_votes.pop((address, False), None)
                if add:
                    model.registrars.add(address)
                    model.term[address] = model.term.get(address, 0) + 1
                    expected.append(
                        registry.RoleGranted(role=REGISTRAR_ROLE, account=account, sender=voter)
                    )
                else:
                    self._leaves(address)
                    expected.append(
                        registry.RoleRevoked(role=REGISTRAR_ROLE, account=account, sender=voter)
                    )
            assert_events(tx, *expected)
            self._changed = True

        def do_vote_threshold(self, voter: AccountAPI, threshold: int) -> None:
            model, method = self.model, registry.voteThreshold
            if self._not_registrar(method, threshold, sender=voter):
                return
            count = len(model.registrars)
            if threshold == 0 or threshold > count:
                call_reverts(
                    method, threshold,
                    sender=voter, error=registry.ProviderInvalidThreshold,
                    threshold=threshold, registrars=count,
                )  # fmt: skip
                return
            votes = model.threshold_votes.setdefault(threshold, {})
            if model.has_voted(votes, voter.address):
                call_reverts(
                    method, threshold,
                    sender=voter, error=registry.ProviderAlreadyVoted,
                    motion=threshold_motion(threshold, model.threshold_round), registrar=voter,
                )  # fmt: skip
                return
            tx = method(threshold, sender=voter)
            votes[voter.address] = model.term[voter.address]
            counted = model.counted(votes)
            expected = [
                registry.ThresholdVoted(
                    threshold=threshold, registrar=voter, votes=len(counted), needed=model.threshold
                )
            ]
            if len(counted) >= model.threshold:
                expected.append(
                    registry.ApprovalThresholdChanged(
                        previousThreshold=model.threshold, newThreshold=threshold
                    )
                )
                model.threshold = threshold
                model.threshold_round += 1
                model.threshold_votes.clear()
            assert_events(tx, *expected)
            self._changed = True

        def do_renounce(self, account: AccountAPI) -> None:
            model, address, method = self.model, account.address, registry.renounceRole
            count = len(model.registrars)
            if address not in model.registrars:
                assert_events(method(REGISTRAR_ROLE, account, sender=account))
                return
            if model.threshold > count - 1:
                call_reverts(
                    method, REGISTRAR_ROLE, account,
                    sender=account, error=registry.ProviderInvalidThreshold,
                    threshold=model.threshold, registrars=count - 1,
                )  # fmt: skip
                return
            tx = method(REGISTRAR_ROLE, account, sender=account)
            assert_events(
                tx, registry.RoleRevoked(role=REGISTRAR_ROLE, account=account, sender=account)
            )
            self._leaves(address)
            self._changed = True

        # ------------------------------------------------------------ rules
        # Sensible moves (arguments drawn from what the model says exists) keep the lifecycle
        # moving; `arbitrary_move` throws in any move with any accounts, mostly invalid ones.
        # A rejected move is checked with `call_reverts` (an eth_call through bare JSON-RPC):
        # it changes no state, and through Ape each revert would cost a trace on Anvil.

        @initialize(
            start=st.sampled_from(
                [
                    "registrar-left",
                    "insider-registrar",
                    "practitioner-left",
                    "verified-with-practitioner",
                    "empty",
                ]
            )
        )
        def start_from(self, start: str) -> None:
            # Deep states take many moves to reach by chance; most examples start nearer:
            # a verified hospital with a practitioner and an open invitation; one whose
            # practitioner left; one suspended, its practitioner made a registrar
            # (self-approval is one move away); or a pending hospital that a registrar
            # approved before being voted out (its return is two votes away).
            if start == "empty":
                return
            self.do_apply(hospital, Kind.HOSPITAL)
            if start == "registrar-left":
                self.do_approve(registrars[2], hospital)
                for registrar in registrars[:THRESHOLD]:
                    self.do_vote_registrar(registrar, registrars[2], False)
                return
            for registrar in registrars[:THRESHOLD]:
                self.do_approve(registrar, hospital)
            self.do_invite(hospital, doctor)
            self.do_accept(doctor, hospital)
            if start == "verified-with-practitioner":
                self.do_invite(hospital, stranger)
            elif start == "practitioner-left":
                self.do_remove(doctor, doctor)
            else:
                for registrar in registrars[:THRESHOLD]:
                    self.do_vote_registrar(registrar, doctor, True)
                self.do_suspend(registrars[0], hospital)

        def _insiders_voting(self) -> list[tuple[str, str]]:
            """(registrar, institution) pairs where a current registrar is a waiting
            institution or one of its insiders (see ``Model.insiders``)."""
            model = self.model
            return sorted(
                (registrar, institution)
                for institution in model.of_status(Status.PENDING, Status.SUSPENDED)
                for registrar in model.insiders(institution) & model.registrars
            )

        @precondition(lambda self: bool(self._insiders_voting()))
        @rule(data=st.data())
        def insider_approves(self, data: st.DataObject) -> None:
            registrar, institution = data.draw(st.sampled_from(self._insiders_voting()))
            self.do_approve(by_address[registrar], by_address[institution])

        @precondition(lambda self: bool(self._free(institution_candidates)))
        @rule(data=st.data(), kind=st.sampled_from(KINDS))
        def apply(self, data: st.DataObject, kind: Kind) -> None:
            free = self._free(institution_candidates)
            self.do_apply(data.draw(st.sampled_from(free), label="applicant"), kind)

        @precondition(lambda self: bool(self.model.of_status(Status.PENDING, Status.SUSPENDED)))
        @rule(data=st.data())
        def approve(self, data: st.DataObject) -> None:
            waiting = self.model.of_status(Status.PENDING, Status.SUSPENDED)
            institution = by_address[data.draw(st.sampled_from(waiting), label="institution")]
            voter = data.draw(st.sampled_from(self._current(actors)), label="by")
            self.do_approve(voter, institution)

        @precondition(lambda self: bool(self.model.of_status(Status.VERIFIED)))
        @rule(data=st.data())
        def suspend(self, data: st.DataObject) -> None:
            verified = self.model.of_status(Status.VERIFIED)
            institution = by_address[data.draw(st.sampled_from(verified), label="institution")]
            voter = data.draw(st.sampled_from(self._current(actors)), label="by")
            self.do_suspend(voter, institution)

        @precondition(
            lambda self: bool(
                self.model.of_status(Status.VERIFIED) and self._free(practitioner_candidates)
            )
        )
        @rule(data=st.data())
        def invite(self, data: st.DataObject) -> None:
            verified = self.model.of_status(Status.VERIFIED)
            institution = by_address[data.draw(st.sampled_from(verified), label="institution")]
            free = self._free(practitioner_candidates)
            self.do_invite(institution, data.draw(st.sampled_from(free), label="invited"))

        @precondition(lambda self: bool(self.model.invited))
        @rule(data=st.data())
        def accept(self, data: st.DataObject) -> None:
            institution, account = data.draw(st.sampled_from(sorted(self.model.invited)))
            self.do_accept(by_address[account], by_address[institution])

        @precondition(lambda self: bool(self.model.employer) or bool(self.model.invited))
        @rule(data=st.data(), by=st.sampled_from(["employer", "practitioner"]))
        def remove(self, data: st.DataObject, by: str) -> None:
            # An employer or its practitioner ends the work, or an inviter withdraws.
            pairs = sorted(
                {(e, a) for a, e in self.model.employer.items()} | set(self.model.invited)
            )
            institution, account = data.draw(st.sampled_from(pairs))
            caller = institution if by == "employer" else account
            self.do_remove(by_address[caller], by_address[account])

        @precondition(
            lambda self: any(self.model.role_of(a) is Role.NONE for a in self.model.removed)
        )
        @rule(data=st.data())
        def register_former_practitioner(self, data: st.DataObject) -> None:
            former = sorted(a for a in self.model.removed if self.model.role_of(a) is Role.NONE)
            self.do_register(by_address[data.draw(st.sampled_from(former))])

        @rule(data=st.data(), add=st.booleans())
        def vote_registrar(self, data: st.DataObject, add: bool) -> None:
            model = self.model
            targets = [a for a in registrar_candidates if (a.address in model.registrars) != add]
            if not targets:
                return
            account = data.draw(st.sampled_from(targets), label="account")
            voter = data.draw(st.sampled_from(self._current(actors)), label="by")
            self.do_vote_registrar(voter, account, add)

        def _former_registrars(self) -> list[str]:
            model = self.model
            return sorted(a for a in model.term if a not in model.registrars)

        @precondition(lambda self: bool(self._former_registrars()))
        @rule(data=st.data())
        def vote_former_registrar_back(self, data: st.DataObject) -> None:
            # Returning registrars start a new term: their votes from the last one must not
            # count again (the approvals they left behind are still on chain).
            model = self.model
            account = data.draw(st.sampled_from(self._former_registrars()), label="account")
            votes = model.registrar_votes.get((account, True), {})
            fresh = [a for a in self._current(actors) if not model.has_voted(votes, a.address)]
            voter = data.draw(st.sampled_from(fresh or self._current(actors)), label="by")
            self.do_vote_registrar(voter, by_address[account], True)

        @rule(data=st.data())
        def vote_threshold(self, data: st.DataObject) -> None:
            threshold = data.draw(st.integers(1, len(self.model.registrars)), label="threshold")
            voter = data.draw(st.sampled_from(self._current(actors)), label="by")
            self.do_vote_threshold(voter, threshold)

        @rule(
            move=st.sampled_from(
                [
                    "apply",
                    "register",
                    "approve",
                    "suspend",
                    "invite",
                    "accept",
                    "remove",
                    "vote-registrar",
                    "vote-threshold",
                    "renounce",
                ]
            ),
            first=st.sampled_from(actors),
            second=st.sampled_from(actors),
            kind=st.sampled_from(KINDS),
            add=st.booleans(),
            threshold=st.integers(0, 6),
        )
        def arbitrary_move(
            self,
            move: str,
            first: AccountAPI,
            second: AccountAPI,
            kind: Kind,
            add: bool,
            threshold: int,
        ) -> None:
            if move == "apply":
                self.do_apply(first, kind)
            elif move == "register":
                self.do_register(first)
            elif move == "approve":
                self.do_approve(first, second)
            elif move == "suspend":
                self.do_suspend(first, second)
            elif move == "invite":
                self.do_invite(first, second)
            elif move == "accept":
                self.do_accept(first, second)
            elif move == "remove":
                self.do_remove(first, second)
            elif move == "vote-registrar":
                self.do_vote_registrar(first, second, add)
            elif move == "vote-threshold":
                self.do_vote_threshold(first, threshold)
            else:
                self.do_renounce(first)

        # ------------------------------------------------------------ invariants
        # A rejected move is an eth_call, which cannot change the chain: after one, the
        # answers are the ones checked last time.

        def _read(self) -> dict[Any, Any]:
            """The views the invariants compare, read again only when the chain changed (a
            rejected move is an eth_call, which cannot change it)."""
            if self._changed:
                self._changed = False
                self.answers = eth_calls(self._calls())
            return self.answers

        def _calls(self) -> dict[Any, tuple[dict[str, str], list[str]]]:
            model = self.model
            institutions = model.of_status(*Status)
            calls: dict[Any, tuple[dict[str, str], list[str]]] = {
                "members": (members_call, ["address[]"]),
                "threshold": (threshold_call, ["uint8"]),
            }
            for account in actors:
                address = account.address
                calls["participant", address] = (participant_calls[address], participant_types)
                calls["writer", address] = (writer_calls[address], ["bool", "uint32"])
                calls["acting", address] = (acting_calls[address], ["address"])
                for institution in institutions:
                    pair = (institution, address)
                    calls["invited", *pair] = (invited_call(*pair), ["bool"])
            for institution in institutions:
                calls["approvals", institution] = (approvals_call(institution), ["uint256"])
            return calls

        @invariant()
        def chain_matches_the_model(self) -> None:
            model, answers = self.model, self._read()
            institutions = model.of_status(*Status)
            for account in actors:
                address = account.address
                role, kind, status, _, _, employer, number = answers["participant", address]
                assert role == model.role_of(address), account
                assert kind == model.kind.get(address, Kind.NONE), account
                assert status == model.status.get(address, Status.NONE), account
                assert number == model.number.get(address, 0), account
                assert employer.lower() == model.employer.get(address, ZERO_ADDRESS).lower()
                assert answers["writer", address] == model.writer_of(address), account
                (acting,) = answers["acting", address]
                expected = model.acting_institution(address) or ZERO_ADDRESS
                assert acting.lower() == expected.lower(), account
                for institution in institutions:
                    pair = (institution, address)
                    assert answers["invited", *pair] == (pair in model.invited,), pair
            (members,) = answers["members"]
            assert {to_checksum_address(m) for m in members} == model.registrars
            assert answers["threshold"] == (model.threshold,)

        @invariant()
        def only_current_registrars_votes_count(self) -> None:
            model, answers = self.model, self._read()
            for institution in model.of_status(*Status):
                (approvals,) = answers["approvals", institution]
                counted = model.counted(model.approvals[institution])
                # Two formulations of "current": by terms, and by dropping a leaver's votes.
                assert counted == model.approvers[institution], institution
                assert approvals == len(counted), institution
                assert counted <= model.registrars

        @invariant()
        def verified_only_by_threshold_of_current_outside_registrars(self) -> None:
            # A verified institution got there with the threshold of approvals of registrars
            # current at that moment, none of them the institution or one of its people.
            for institution in self.model.of_status(Status.VERIFIED):
                witness = self.model.witness[institution]
                assert len(witness.voters) >= witness.threshold, institution
                assert witness.voters <= witness.registrars, institution
                assert not witness.voters & witness.insiders, institution

        @invariant()
        def removed_practitioner_has_no_role(self) -> None:
            answers = self._read()
            for address in self.model.removed:
                role, *_, employer, _ = answers["participant", address]
                assert role == Role.NONE, address
                assert employer == ZERO_ADDRESS, address

    run_state_machine_as_test(
        Lifecycle,
        settings=settings(max_examples=25, stateful_step_count=15, deadline=None),
    )
