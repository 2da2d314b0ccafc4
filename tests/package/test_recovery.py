"""Recovery of a patient by guardians, through the package and the CLI.

The patient (dev:5) names three guardians (dev:16, dev:17, dev:18), two of which recover, with
a delay of one day; the new key is dev:19. The hospital (dev:3, in care of the patient) wrote
the patient's records; the doctor (dev:6, a clinic's practitioner) holds a grant. After a
recovery the patient's id stays the same (records and grants keyed by it); the new key controls
it, the old key has no right left; the hospital re-wraps the record keys it holds for the new
key (``deliver_recovery_keys``).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from medledger import consent, providers, records
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.consent.recovery_keys import deliver_recovery_keys
from medledger.errors import AccessRefused, NoKeyForReader, PreconditionFailed
from medledger.ipfs.local import LocalBlockStore
from medledger.providers import recovery

DAY = 86_400
ALL = consent.Scope(consent.ScopeKind.ALL)


def advance(chain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


@pytest.fixture
def guardians():
    return [dev_account(16), dev_account(17), dev_account(18)]


@pytest.fixture
def new_key():
    return dev_account(19)


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


@pytest.fixture
def world(chain, store, writer, registered_patient, doctor_with_key, guardians):
    """Three records by the hospital, the doctor's LAB grant, the guardians named."""
    chain.forget_blocks()
    drafts = [
        records.Draft(json.dumps({"resourceType": "Observation", "id": f"r{i}"}).encode(), cat)
        for i, cat in enumerate([Category.LAB, Category.LAB, Category.VITALS])
    ]
    written = records.anchor(
        chain, store, writer, registered_patient.address, drafts,
        readers=consent.readers_for(chain),
    )  # fmt: skip
    lab = consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB)
    consent.grant(
        chain, store, registered_patient, registered_patient.address, doctor_with_key.address,
        lab, consent.Purpose.TREATMENT, timedelta(days=30),
    )  # fmt: skip
    assert recovery.set_guardians(
        chain, registered_patient, [g.address for g in guardians], 2, timedelta(days=1)
    )
    return [(r, d.body) for r, d in zip(written, drafts, strict=True)]


def start(chain, patient, guardians, new_key) -> recovery.Recovery:
    recovery.approve_recovery(chain, guardians[0], patient.address, new_key.address)
    return recovery.approve_recovery(chain, guardians[1], patient.address, new_key.address)


def complete(chain, store, patient, guardians, new_key, hospital) -> None:
    start(chain, patient, guardians, new_key)
    advance(chain, DAY + 1)
    recovery.complete_recovery(chain, guardians[2], patient.address)
    providers.publish_key(chain, new_key)
    deliver_recovery_keys(chain, store, hospital, patient.address)


def test_guardians_recover_and_the_new_key_reads_every_earlier_record(
    chain, store, world, registered_patient, guardians, new_key, hospital, doctor_with_key
):
    patient = registered_patient
    complete(chain, store, patient, guardians, new_key, hospital)
    assert recovery.controller_of(chain, patient.address) == new_key.address
    for record, content in world:
        assert consent.read(chain, store, new_key, record.id) == content
        with pytest.raises(AccessRefused):
            consent.read(chain, store, patient, record.id)
    lab = [(r, c) for r, c in world if r.category == Category.LAB]
    for record, content in lab:  # the grant carried over: the doctor still reads
        assert consent.read(chain, store, doctor_with_key, record.id) == content
    trail = consent.access_trail(chain, patient.address)
    (recovered,) = [e for e in trail if e.event == "PATIENT RECOVERED"]
    assert recovered.actor == new_key.address
    assert any(e.event == "recovery keys delivered" for e in trail)


def test_before_the_keys_are_delivered_the_new_key_has_access_but_no_key(
    chain, store, world, registered_patient, guardians, new_key
):
    start(chain, registered_patient, guardians, new_key)
    advance(chain, DAY + 1)
    recovery.complete_recovery(chain, guardians[0], registered_patient.address)
    record, _ = world[0]
    with pytest.raises(NoKeyForReader):
        consent.read(chain, store, new_key, record.id)


def test_the_old_key_cancels_within_the_delay(chain, world, registered_patient, guardians, new_key):
    state = start(chain, registered_patient, guardians, new_key)
    assert state.ready_at is not None
    with pytest.raises(PreconditionFailed, match="completes from"):
        recovery.complete_recovery(chain, guardians[2], registered_patient.address)
    recovery.cancel_recovery(chain, registered_patient)
    advance(chain, DAY + 1)
    with pytest.raises(PreconditionFailed, match="reached the threshold"):
        recovery.complete_recovery(chain, guardians[2], registered_patient.address)
    assert recovery.controller_of(chain, registered_patient.address) == registered_patient.address


def test_new_records_after_recovery_are_sealed_for_the_new_key(
    chain, store, world, registered_patient, guardians, new_key, hospital
):
    complete(chain, store, registered_patient, guardians, new_key, hospital)
    (record,) = records.anchor(
        chain, store, hospital, registered_patient.address,
        [records.Draft(b'{"resourceType":"Observation","id":"after"}', Category.LAB)],
        readers=consent.readers_for(chain),
    )  # fmt: skip
    assert consent.read(chain, store, new_key, record.id).endswith(b'"after"}')


def test_the_new_key_grants_and_the_old_key_cannot(
    chain, store, world, registered_patient, guardians, new_key, hospital, clinic
):
    complete(chain, store, registered_patient, guardians, new_key, hospital)
    with pytest.raises(PreconditionFailed):
        consent.grant(
            chain, store, registered_patient, registered_patient.address, clinic.address, ALL,
            consent.Purpose.TREATMENT, timedelta(days=1),
        )  # fmt: skip
    consent.grant(
        chain, store, new_key, registered_patient.address, clinic.address, ALL,
        consent.Purpose.TREATMENT, timedelta(days=1),
    )  # fmt: skip
    record, content = world[2]
    assert consent.read(chain, store, clinic, record.id) == content


def test_a_frozen_patient_is_read_by_nobody_as_the_patient(
    chain, store, world, registered_patient, guardians
):
    assert not recovery.freeze(chain, guardians[0], registered_patient.address)
    assert recovery.freeze(chain, guardians[1], registered_patient.address)
    record, _ = world[0]
    with pytest.raises(AccessRefused):
        consent.read(chain, store, registered_patient, record.id)
    with pytest.raises(PreconditionFailed, match="frozen"):
        recovery.cancel_recovery(chain, registered_patient)


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_recovery_walkthrough(medledger, chain, world, registered_patient, guardians, new_key):
    patient = registered_patient.address
    shown = medledger("patient", "guardians", "--account", "dev:5", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["threshold"] == 2
    for guardian in ("dev:16", "dev:17"):
        outcome = medledger("patient", "recover", "--patient", patient, "--to", new_key.address,
                            "--account", guardian)  # fmt: skip
        assert outcome.exit_code == 0, outcome.stderr
    assert "started" in outcome.stdout
    early = medledger(
        "patient", "recover", "--patient", patient, "--complete", "--account", "dev:18"
    )
    assert (
        early.exit_code == 1
        and early.stderr.startswith("error: ")
        and "completes from" in early.stderr
    )
    assert len(early.stderr.strip().splitlines()) == 1
    advance(chain, DAY + 1)
    done = medledger(
        "patient", "recover", "--patient", patient, "--complete", "--account", "dev:18"
    )
    assert done.exit_code == 0, done.stderr
    show = medledger("patient", "show", patient, "--json", "--account", "dev:18")
    assert show.json()["controller"] == new_key.address
    own = medledger("patient", "show", "--json", "--account", "dev:19")  # the new key's own
    assert own.json()["address"] == patient and own.json()["controller"] == new_key.address
    old = medledger("patient", "guardians", "--set", guardians[0].address, "--threshold", "1",
                    "--delay", "2d", "--account", "dev:5")  # fmt: skip
    assert old.exit_code == 1 and "does not control" in old.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "--set",
                "0x0000000000000000000000000000000000000010",
                "--threshold",
                "2",
                "--delay",
                "2d",
            ],
            "threshold must be between 1 and the 1",
        ),
        (
            [
                "--set",
                "0x0000000000000000000000000000000000000010",
                "--threshold",
                "1",
                "--delay",
                "10m",
            ],
            "between 1 hour and 365 days",
        ),
        (["--set", "not-an-address", "--threshold", "1", "--delay", "2d"], "--set"),
        (["--set", "0x0000000000000000000000000000000000000010"], "--threshold and --delay"),
    ],
    ids=["threshold-above-count", "delay-too-short", "bad-address", "missing-threshold"],
)
def test_cli_guardians_bad_input_is_one_line_and_sends_nothing(
    medledger, chain, registered_patient, args, message
):
    before = chain.w3.eth.block_number
    outcome = medledger("patient", "guardians", *args, "--account", "dev:5")
    assert outcome.exit_code == 1 and outcome.stderr.startswith("error: ")
    assert message in outcome.stderr and len(outcome.stderr.strip().splitlines()) == 1
    assert chain.w3.eth.block_number == before


def test_cli_recover_by_a_non_guardian_is_refused(medledger, world, registered_patient, new_key):
    outcome = medledger("patient", "recover", "--patient", registered_patient.address,
                        "--to", new_key.address, "--account", "dev:9")  # fmt: skip
    assert outcome.exit_code == 1 and "is not a guardian" in outcome.stderr


# --- stateful: recovery mixed with grants, revocations and new records --------------------------

GRANTEE_COUNT = 2  # the doctor and the clinic
POOL = [dev_account(19), dev_account(10)]  # fresh addresses control moves to, in order


def make_machine(world, chain, store, patient, hospital, grantees, guardians):
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

    manager = consent.consent_contract(chain)
    seeds = list(world)

    def rpc(method: str, params: list) -> object:
        return chain.w3.provider.make_request(method, params)["result"]

    class RecoveryMachine(RuleBasedStateMachine):
        """Model: who controls the patient, which keys were replaced, which grantees hold a
        live ``all`` grant. No party may gain access it did not have: the controller reads
        every record, a replaced key none, a grantee exactly while its grant is live, a
        guardian never."""

        def __init__(self) -> None:
            super().__init__()
            self.snapshot = rpc("evm_snapshot", [])
            chain.forget_blocks()
            self.controller = patient
            self.replaced: list = []
            self.pool = list(POOL)
            self.live: dict[str, bool] = {g.address: False for g in grantees}
            # The doctor's LAB grant of the world is revoked first: the model tracks ``all``.
            consent.revoke(chain, patient, patient.address, grantees[0].address, LAB)
            self.written = list(seeds)
            self.serial = 0

        def teardown(self) -> None:
            rpc("evm_revert", [self.snapshot])
            chain.forget_blocks()

        @rule(pick=st.integers(0, GRANTEE_COUNT - 1))
        def grant(self, pick: int) -> None:
            grantee = grantees[pick]
            consent.grant(
                chain, store, self.controller, patient.address, grantee.address, ALL,
                consent.Purpose.TREATMENT, timedelta(days=300),
            )  # fmt: skip
            self.live[grantee.address] = True

        @precondition(lambda self: any(self.live.values()))
        @rule(pick=st.integers(0, GRANTEE_COUNT - 1))
        def revoke(self, pick: int) -> None:
            live = [g for g in grantees if self.live[g.address]]
            grantee = live[pick % len(live)]
            consent.revoke(chain, self.controller, patient.address, grantee.address, ALL)
            self.live[grantee.address] = False

        @precondition(lambda self: len(self.written) < 6)
        @rule()
        def write(self) -> None:
            self.serial += 1
            content = json.dumps({"resourceType": "Observation", "id": f"s{self.serial}"})
            (record,) = records.anchor(
                chain, store, hospital, patient.address,
                [records.Draft(content.encode(), Category.VITALS)],
                readers=consent.readers_for(chain),
            )  # fmt: skip
            self.written.append((record, content.encode()))

        @precondition(lambda self: bool(self.pool))
        @rule(cancel_first=st.booleans())
        def recover(self, cancel_first: bool) -> None:
            new = self.pool.pop(0)
            start(chain, patient, guardians, new)
            if cancel_first:  # the current key cancels; the guardians start again
                recovery.cancel_recovery(chain, self.controller, patient.address)
                with pytest.raises(PreconditionFailed):
                    recovery.complete_recovery(chain, guardians[2], patient.address, new.address)
                start(chain, patient, guardians, new)
            rpc("evm_increaseTime", [DAY + 1])
            rpc("evm_mine", [])
            recovery.complete_recovery(chain, guardians[2], patient.address, new.address)
            providers.publish_key(chain, new)
            deliver_recovery_keys(chain, store, hospital, patient.address)
            self.replaced.append(self.controller)
            self.controller = new

        @rule(pick=st.integers(0, 50))
        def read(self, pick: int) -> None:
            record, content = self.written[pick % len(self.written)]
            assert consent.read(chain, store, self.controller, record.id, log=False) == content
            for grantee in grantees:
                if self.live[grantee.address]:
                    got = consent.read(chain, store, grantee, record.id, log=False)
                    assert got == content
                else:
                    with pytest.raises(AccessRefused):
                        consent.read(chain, store, grantee, record.id, log=False)
            for old in self.replaced:
                with pytest.raises(AccessRefused):
                    consent.read(chain, store, old, record.id, log=False)

        @invariant()
        def nobody_gains_access(self) -> None:
            for record, _ in self.written:
                has = manager.functions.hasAccess
                assert has(self.controller.address, record.id).call()
                for old in self.replaced:
                    assert not has(old.address, record.id).call()
                    assert not providers.acts_for(chain, old.address, patient.address)
                for guardian in guardians:
                    assert not has(guardian.address, record.id).call()
                for grantee in grantees:
                    live = self.live[grantee.address]
                    assert has(grantee.address, record.id).call() == live, grantee.address
            assert recovery.controller_of(chain, patient.address) == self.controller.address

    return RecoveryMachine


LAB = consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB)


def test_recovery_mixed_with_grants_revocations_and_writes_gives_nobody_new_access(
    chain, store, world, registered_patient, hospital, doctor_with_key, clinic, guardians
):
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    verified = providers.participant(chain, clinic.address)
    assert verified.role is providers.Role.INSTITUTION
    providers.publish_key(chain, clinic)
    machine = make_machine(
        world, chain, store, registered_patient, hospital, [doctor_with_key, clinic], guardians
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=4,
            stateful_step_count=8,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def test_a_write_before_the_new_key_publishes_says_so_and_sends_nothing(
    chain, store, world, registered_patient, guardians, new_key, hospital
):
    start(chain, registered_patient, guardians, new_key)
    advance(chain, DAY + 1)
    recovery.complete_recovery(chain, guardians[0], registered_patient.address)
    before = chain.w3.eth.block_number
    body = json.dumps({"resourceType": "Observation", "id": "after-recovery"}).encode()
    with pytest.raises(PreconditionFailed, match="has not published its encryption key yet"):
        records.anchor(chain, store, hospital, registered_patient.address,
                       [records.Draft(body, Category.VITALS)])  # fmt: skip
    assert chain.w3.eth.block_number == before
    providers.publish_key(chain, new_key)
    (record,) = records.anchor(chain, store, hospital, registered_patient.address,
                               [records.Draft(body, Category.VITALS)])  # fmt: skip
    assert consent.read(chain, store, new_key, record.id) == body
