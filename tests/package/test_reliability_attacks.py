"""Attacks on the reliability work of issue #14 (outbox, sameness keys, doctor, devnet replay).

Each test is a way a clinic (by accident) or a hostile user (on purpose) tried to make MedLedger
lose an acknowledged record, write one body twice, or fail where it should not. Each failed
first (an independent attack round) and passes since its fix; they run in ``make test`` (slow:
real subprocesses and devnet restarts).

Interleavings of two processes are made deterministic with *gates*: a small driver runs the
real ``medledger`` CLI in a subprocess with a few functions wrapped so that the process stops
at a named moment (``<gate>.reached`` appears) until the test lets it go (``<gate>.go``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from durable_home import (
    cared_for_patient,
    chain_of,
    durable_home,
    write_bodies,
)

from medledger import providers, records
from medledger.accounts import dev_account
from medledger.ipfs.stores import open_store

pytestmark = pytest.mark.slow

DRIVER = r'''
"""Run the medledger CLI with gates (see the test module)."""
import os, sys, time
from pathlib import Path

from medledger.chain import failpoints, pipeline
from medledger.records import anchoring


def gate(name, wait=True):
    where = os.environ.get("GATE_" + name)
    if not where:
        return
    Path(where + ".reached").touch()
    while wait and not Path(where + ".go").exists():
        time.sleep(0.01)


real_settle = pipeline.Pipeline.settle
def settle(self):
    done = real_settle(self)
    gate("after_settle")
    return done
pipeline.Pipeline.settle = settle

real_send = pipeline.Pipeline.send
def send(self, *args, **kwargs):
    gate("before_send", wait=False)
    return real_send(self, *args, **kwargs)
pipeline.Pipeline.send = send

real_seal = anchoring.seal_many
def seal_many(*args, **kwargs):
    sealed = real_seal(*args, **kwargs)
    gate("after_seal")
    return sealed
anchoring.seal_many = seal_many

real_reach = failpoints.reach
def reach(point):
    gate(point.replace("-", "_"))
    real_reach(point)
failpoints.reach = reach
pipeline.failpoints.reach = reach

from medledger.cli import main
sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    """A home of its own (its devnet keeps its state), the contracts and a verified clinic."""
    path = tmp_path_factory.mktemp("attacked-home")
    with durable_home(path) as env:
        (path / "driver.py").write_text(DRIVER)
        yield env


_patients = iter(n for n in range(5, 20))


@pytest.fixture
def patient(home):
    """A fresh registered patient who lets the clinic write."""
    return cared_for_patient(home, next(_patients))


def _env(home: dict[str, str], **extra: str) -> dict[str, str]:
    return {**os.environ, **home, **extra}


def _medledger(home: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("medledger")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=300,
        env=_env(home, **extra),
    )  # fmt: skip


def _gated(home: dict[str, str], *args: str, **gates: Path) -> subprocess.Popen:
    """Start the CLI through the driver, stopping at the named gates."""
    driver = Path(home["MEDLEDGER_HOME"]) / "driver.py"
    extra = {f"GATE_{name}": str(where) for name, where in gates.items()}
    return subprocess.Popen(
        [sys.executable, str(driver), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(home, **extra),
    )  # fmt: skip


def _wait(gate: Path, process: subprocess.Popen, seconds: float = 60.0) -> None:
    reached = gate.with_name(gate.name + ".reached")
    deadline = time.monotonic() + seconds
    while not reached.exists():
        if process.poll() is not None:
            raise AssertionError(f"exited before {gate.name}: {process.communicate()}")
        assert time.monotonic() < deadline, f"{gate.name} not reached"
        time.sleep(0.01)


def _go(gate: Path) -> None:
    gate.with_name(gate.name + ".go").touch()


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def _on_chain(home: dict[str, str], patient) -> list:
    chain = chain_of(home)
    return records.for_patient(chain, patient.address, open_store(chain.settings))


# --- duplicates ---------------------------------------------------------------------------------


def test_two_runs_of_the_same_file_at_once_anchor_it_once(home, patient, tmp_path):
    # Found by attack: both runs checked before either recorded its intent, and both wrote.
    # The issuer's lock now spans the sameness check to the receipts: the second run waits.
    write_bodies(tmp_path / "in", 1, f"race-{time.time_ns()}")
    args = ("anchor", str(tmp_path / "in"), "--patient", patient.address, "--account", "dev:4")
    sealed = tmp_path / "first-sealed"
    first = _gated(home, *args, after_seal=sealed)
    _wait(sealed, first)  # the first run checked, found nothing, and sealed the body
    second = _gated(home, *args)  # meanwhile a second run (a double click, a retry, cron)
    time.sleep(0.5)
    _go(sealed)
    for process in (first, second):
        code, _out, err = _finish(process)
        assert code == 0, err
    assert len(_on_chain(home, patient)) == 1


def test_the_same_body_through_batch_single_and_another_category_is_one_record(
    home, patient, tmp_path
):
    write_bodies(tmp_path / "in", 2, f"ways-{time.time_ns()}")
    one = str(tmp_path / "in" / "obs-0000.json")
    base = ("--patient", patient.address, "--account", "dev:4")
    for args in (
        (one, "--batch"),
        (one, str(tmp_path / "in"), "--category", "lab"),
        (str(tmp_path / "in"), "--batch", "--category", "document"),
    ):
        done = _medledger(home, "anchor", *args, *base)
        assert done.returncode == 0, done.stderr
    assert len(_on_chain(home, patient)) == 2


# --- data loss by doctor --collect ----------------------------------------------------------------


def test_doctor_collect_never_deletes_the_body_of_an_acknowledged_record(home, patient, tmp_path):
    # Found by attack: a second run reused the first's sealed body while the first was in flight,
    # its own transaction reverted, and doctor --collect deleted the acknowledged record's body.
    # The issuer's lock now spans sameness check to receipts (the second run waits), and doctor
    # never collects a body a chain event names.
    write_bodies(tmp_path / "in", 1, f"reuse-{time.time_ns()}")
    args = ("anchor", str(tmp_path / "in"), "--patient", patient.address, "--account", "dev:4")
    settled = tmp_path / "b-settled"
    second = _gated(home, *args, after_settle=settled)
    _wait(settled, second)  # the second run holds the issuer's lock ...
    first = _gated(home, *args)  # ... so the first waits for it
    time.sleep(0.5)
    _go(settled)
    results = [_finish(second), _finish(first)]
    assert [code for code, _out, _err in results] == [0, 0], results
    ids = {out.split()[0] for _code, out, _err in results}
    assert len(ids) == 1 and "(already anchored)" in results[1][1]
    _medledger(home, "doctor", "--collect", "--account", "dev:4")
    read = _medledger(home, "read", ids.pop(), "--account", "dev:4")
    assert read.returncode == 0, read.stderr


# --- concurrency: doctor and devnet restarts while a command sends --------------------------------


def _acknowledged_despite(home, patient, tmp_path, meanwhile) -> None:
    """An anchor stopped after journalling its transaction (holding the account's lock), then
    ``meanwhile(...)`` runs; the anchor goes on and must succeed with its record on chain once."""
    bodies = write_bodies(tmp_path / "in", 3, f"meanwhile-{time.time_ns()}")
    journalled = tmp_path / "journalled"
    first = _gated(home, "anchor", str(tmp_path / "in"), "--patient", patient.address,
                   "--account", "dev:4", after_journal=journalled)  # fmt: skip
    _wait(journalled, first)
    other = meanwhile()  # in the background: it may wait for the anchor's lock
    time.sleep(1.0)
    _go(journalled)
    code, _out, err = _finish(first)
    if other is not None:
        assert other.wait(timeout=300) == 0, other.communicate()
    assert code == 0, err
    found = _on_chain(home, patient)
    assert len(found) == len(bodies)


def test_doctor_resume_while_an_anchor_runs_does_not_make_it_fail(home, patient, tmp_path):
    def doctor() -> subprocess.Popen:
        script = Path(sys.executable).with_name("medledger")
        return subprocess.Popen(
            [str(script), "doctor", "--resume", "--account", "dev:4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(home),
        )

    _acknowledged_despite(home, patient, tmp_path, doctor)


def test_a_devnet_restart_while_an_anchor_runs_does_not_make_it_fail(home, patient, tmp_path):
    def restart() -> None:
        assert _medledger(home, "devnet", "stop").returncode == 0
        assert _medledger(home, "devnet", "start").returncode == 0
        return None

    _acknowledged_despite(home, patient, tmp_path, restart)


# --- performance traps ----------------------------------------------------------------------------


def test_entries_left_by_another_account_do_not_make_every_send_take_a_snapshot(
    home, patient, tmp_path
):
    every = {"MEDLEDGER_DEVNET_SNAPSHOT_EVERY": "3"}
    write_bodies(tmp_path / "own", 4, f"own-{time.time_ns()}")
    own = (str(tmp_path / "own"), "--patient", patient.address)
    killed = _medledger(home, "anchor", *own, "--account", f"dev:{_number(patient)}",
                        MEDLEDGER_FAILPOINT="after-journal=cli")  # fmt: skip
    assert killed.returncode == 137  # the patient's own anchoring, killed: 4 entries unsent
    state = Path(home["MEDLEDGER_HOME"]) / "devnet" / "state.json"
    snapshots = []
    for n in range(3):
        write_bodies(tmp_path / f"one-{n}", 1, f"one-{n}-{time.time_ns()}")
        done = _medledger(home, "anchor", str(tmp_path / f"one-{n}"), "--patient",
                          patient.address, "--account", "dev:4", **every)  # fmt: skip
        assert done.returncode == 0, done.stderr
        snapshots.append(state.stat().st_mtime_ns)  # a snapshot rewrites the file
    assert snapshots[1] == snapshots[2]  # one record sent: no second snapshot so soon


def _number(account) -> int:
    return next(n for n in range(20) if dev_account(n).address == account.address)


# --- erased records -----------------------------------------------------------------------------


def test_anchoring_the_body_of_an_erased_record_again_does_not_call_it_anchored(
    home, patient, tmp_path
):
    write_bodies(tmp_path / "in", 1, f"gone-{time.time_ns()}")
    args = ("anchor", str(tmp_path / "in"), "--patient", patient.address, "--account", "dev:4")
    first = _medledger(home, *args)
    assert first.returncode == 0, first.stderr
    record_id = first.stdout.split()[0]
    erased = _medledger(home, "erase", record_id, "--account", f"dev:{_number(patient)}")
    assert erased.returncode == 0, erased.stderr
    again = _medledger(home, *args)
    said = again.stdout + again.stderr
    assert "erased" in said or "already anchored" not in said, said


# --- damaged files ------------------------------------------------------------------------------


def test_a_damaged_genesis_record_is_not_an_internal_error(home):
    record = Path(home["MEDLEDGER_HOME"]) / "devnet" / "genesis.json"
    assert _medledger(home, "devnet", "start").returncode == 0
    good = record.read_bytes()
    try:
        record.write_text('{"hash": "0x12')  # what a power cut during its first write leaves
        stopped = _medledger(home, "devnet", "stop")
    finally:
        record.write_bytes(good)
    assert stopped.returncode != 70, stopped.stderr


# --- writes the user never saw acknowledged -------------------------------------------------------


def test_an_interrupted_grant_is_not_given_silently_by_a_later_command(home, patient, tmp_path):
    grantee = dev_account(next(_patients))
    providers.register_patient(chain_of(home), grantee)
    me = f"dev:{_number(patient)}"
    killed = _medledger(home, "grant", grantee.address, "--account", me,
                        MEDLEDGER_FAILPOINT="after-journal=cli")  # fmt: skip
    assert killed.returncode == 137  # as a Ctrl-C or a crash: nothing printed, no grant
    write_bodies(tmp_path / "own", 1, f"own-{time.time_ns()}")
    later = _medledger(home, "anchor", str(tmp_path / "own"), "--patient", patient.address,
                       "--account", me)  # fmt: skip
    assert later.returncode == 0, later.stderr
    grants = _medledger(home, "grants", "--account", me)
    given = grantee.address in grants.stdout and "active" in grants.stdout
    assert not given or "grant" in later.stdout + later.stderr, later.stdout
