"""An acknowledged record is never lost and a re-run never duplicates: faults injected at chosen
points of a real anchoring (``MEDLEDGER_FAILPOINT``, see ``medledger.chain.failpoints``), with
Anvil or the CLI killed (SIGKILL, no cleanup), then the devnet restarted and the same command run
again. After each: every body is on chain exactly once, readable, and ``doctor`` finds the home
clean. These run on a home of their own whose devnet keeps its state (snapshots and journal
replay), unlike the session's throwaway chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from durable_home import (
    CLINIC,
    CLINIC_NUMBER,
    cared_for_patient,
    chain_of,
    durable_home,
    write_bodies,
)

from medledger import records
from medledger.ipfs.stores import open_store


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    """A home whose devnet keeps its state, with the contracts and a verified clinic."""
    path = tmp_path_factory.mktemp("durable-home")
    # Snapshots every 150 transactions: snapshots, pruning and replay all happen.
    with durable_home(path, MEDLEDGER_DEVNET_SNAPSHOT_EVERY="150") as env:
        yield env


_patients = iter(n for n in range(1, 20) if n != CLINIC_NUMBER)


@pytest.fixture
def patient(home):
    """A fresh registered patient who lets the clinic write."""
    return cared_for_patient(home, next(_patients))


def _medledger(env: dict[str, str], *args: str, failpoint: str | None = None):
    extra = {"MEDLEDGER_FAILPOINT": failpoint} if failpoint else {}
    script = Path(sys.executable).with_name("medledger")
    return subprocess.run(
        [str(script), *args, "--account", "dev:4"],
        capture_output=True, text=True, timeout=600, env={**os.environ, **env, **extra},
    )  # fmt: skip


def _assert_exactly_once(env: dict[str, str], patient, bodies: list[bytes]) -> None:
    chain = chain_of(env)
    store = open_store(chain.settings)
    found = records.for_patient(chain, patient.address, store)
    read = sorted(records.read(chain, store, CLINIC, r.id) for r in found)
    assert len(found) == len(bodies)
    assert read == sorted(bodies)


def _assert_clean(env: dict[str, str]) -> None:
    done = _medledger(env, "doctor")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "clean" in done.stdout


FAULTS = [
    pytest.param("after-mined=anvil", 40, [], id="acknowledged-then-anvil-killed"),
    pytest.param("after-journal=cli", 40, [], id="cli-killed-before-sending"),
    pytest.param("after-send=cli", 40, [], id="cli-killed-after-sending", marks=pytest.mark.slow),
    pytest.param("after-mined=cli", 40, [], id="cli-killed-after-mining", marks=pytest.mark.slow),
    pytest.param("after-journal=anvil", 40, [], id="anvil-killed-before-sending",
                 marks=pytest.mark.slow),
    pytest.param("after-send@2=anvil", 300, [], id="anvil-killed-mid-batch-of-windows",
                 marks=pytest.mark.slow),
    pytest.param("after-send@2=cli", 300, [], id="cli-killed-mid-batch-of-windows",
                 marks=pytest.mark.slow),
    pytest.param("after-journal=cli", 40, ["--batch"], id="cli-killed-before-a-merkle-batch",
                 marks=pytest.mark.slow),
    pytest.param("after-mined=anvil", 40, ["--batch"], id="merkle-batch-acked-then-anvil-killed",
                 marks=pytest.mark.slow),
]  # fmt: skip


@pytest.mark.parametrize(("failpoint", "count", "options"), FAULTS)
def test_a_fault_then_a_re_run_leaves_every_record_on_chain_exactly_once(
    home, patient, tmp_path, failpoint: str, count: int, options: list[str]
) -> None:
    bodies = write_bodies(tmp_path / "in", count, failpoint.replace("=", "-").replace("@", "-"))
    folder = str(tmp_path / "in")
    first = _medledger(home, "anchor", folder, "--patient", patient.address, *options,
                       failpoint=failpoint)  # fmt: skip
    if failpoint.startswith("after-mined") and failpoint.endswith("anvil"):
        assert first.returncode == 0, first.stderr  # acknowledged: the ids were printed
        printed = {line.split()[0] for line in first.stdout.splitlines() if line.startswith("0x")}
        assert len(printed) == count
    again = _medledger(home, "anchor", folder, "--patient", patient.address, *options)
    assert again.returncode == 0, again.stderr
    _assert_exactly_once(home, patient, bodies)
    if first.returncode == 0:  # the first run's ids are the ones on chain
        assert printed <= {
            r.hex_id
            for r in records.for_patient(
                chain_of(home), patient.address, open_store(chain_of(home).settings)
            )
        }
    _assert_clean(home)


def test_the_same_files_named_twice_or_anchored_twice_are_written_once(home, patient, tmp_path):
    bodies = write_bodies(tmp_path / "in", 3, "twice")
    folder = tmp_path / "in"
    first = _medledger(home, "anchor", str(folder), str(folder / "obs-0000.json"),
                       "--patient", patient.address)  # fmt: skip
    assert first.returncode == 0, first.stderr
    again = _medledger(home, "anchor", str(folder), "--patient", patient.address, "--json")
    assert again.returncode == 0, again.stderr
    assert all(row["already_anchored"] for row in json.loads(again.stdout))
    _assert_exactly_once(home, patient, bodies)


@pytest.mark.slow
def test_two_commands_from_one_account_at_once_both_succeed(home, patient, tmp_path):
    left = write_bodies(tmp_path / "left", 60, "left")
    right = write_bodies(tmp_path / "right", 60, "right")
    script = Path(sys.executable).with_name("medledger")
    running = [
        subprocess.Popen(
            [
                str(script),
                "anchor",
                str(tmp_path / side),
                "--patient",
                patient.address,
                "--account",
                "dev:4",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **home},
        )
        for side in ("left", "right")
    ]
    for process in running:
        _out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    _assert_exactly_once(home, patient, left + right)
    _assert_clean(home)


def test_a_rolled_back_write_is_named_by_verify_and_resumed_by_doctor(home, patient, tmp_path):
    bodies = write_bodies(tmp_path / "in", 3, "rolled")
    chain = chain_of(home)
    mark = _rpc(chain.url, "evm_snapshot")
    done = _medledger(home, "anchor", str(tmp_path / "in"), "--patient", patient.address)
    assert done.returncode == 0, done.stderr
    _rpc(chain.url, "evm_revert", mark)  # the node forgets the blocks (as after a reorg)
    checked = _medledger(home, "verify", "--patient", patient.address)
    assert checked.returncode == 1
    assert "rolled back" in checked.stdout + checked.stderr
    doctor = _medledger(home, "doctor")
    assert doctor.returncode == 1 and "the chain no longer has" in doctor.stdout
    resumed = _medledger(home, "doctor", "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _assert_exactly_once(home, patient, bodies)


def _rpc(url: str, method: str, *params: object) -> object:
    reply = requests.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10
    )
    return reply.json()["result"]
