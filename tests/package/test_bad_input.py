"""The bad-input catalogue: every verb, tried with what a person gets wrong (bad addresses,
durations, ids, numbers, accounts, networks, files, claims and policies; see
``bad_input_cases.py``), answers with exactly one ``error:`` line naming the reason and a
non-zero exit, never an internal error, and writes nothing: no block is mined and no body is
pinned."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from bad_input_cases import CASES, OBSERVATION, write_bad_files
from chain_worlds import world_step

from medledger import records
from medledger.categories import Category
from medledger.ipfs.stores import open_store

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input")
    write_bad_files(folder)
    return folder


@pytest.fixture
@world_step
def anchored(chain, settings, verified_institution, hospital, registered_patient, care):
    """One record the hospital (in care of the patient) anchored in the session's store."""
    care(registered_patient, verified_institution(hospital))
    (record,) = records.anchor(
        chain, open_store(settings), hospital, registered_patient.address,
        [records.Draft(OBSERVATION.read_bytes(), Category.LAB)],
    )  # fmt: skip
    return record.hex_id


def assert_refused_and_nothing_written(medledger, chain, settings, argv: list[str], phrase: str):
    store = open_store(settings)
    block, pins = chain.w3.eth.block_number, store.pins()
    outcome = medledger(*argv)
    lines = outcome.stderr.strip().splitlines()
    assert outcome.exit_code not in (0, 70), (argv, outcome)
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, outcome.stderr)
    assert phrase in lines[0], (argv, lines[0])
    assert chain.w3.eth.block_number == block, "a bad input mined a block"
    assert store.pins() == pins, "a bad input pinned a body"


@pytest.mark.parametrize(("argv", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(
    medledger, chain, settings, anchored, patient, hospital, bad_files, tmp_path, argv, phrase
):
    names = {"patient": patient.address, "hospital": hospital.address, "record": anchored,
             "data": str(bad_files), "tmp": str(tmp_path)}  # fmt: skip
    argv = [a.format(**names) if "{" in a else a for a in argv]
    assert_refused_and_nothing_written(medledger, chain, settings, argv, phrase)


@pytest.mark.parametrize("home", ["/dev/null/medledger", "/proc/medledger-home"])
def test_a_home_that_cannot_be_written_is_one_line_before_the_devnet_starts(
    medledger, chain, settings, monkeypatch, home
):
    monkeypatch.setenv("MEDLEDGER_HOME", home)
    outcome = medledger("devnet", "start")
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("error: MEDLEDGER_HOME: ") and "cannot be written" in (
        outcome.stderr
    )
    assert len(outcome.stderr.strip().splitlines()) == 1


def test_the_catalogue_tries_every_verb_at_least_150_ways():
    verbs = {c[1][0] for c in CASES}
    assert len(CASES) >= 150
    assert len({c[0] for c in CASES}) == len(CASES), "case ids must be unique"
    assert verbs >= {"anchor", "read", "verify", "history", "grant", "revoke", "delegate",
                     "care", "deliver-keys", "erase", "grants", "audit", "institution",
                     "registrar", "patient", "policy", "claim", "trial", "ipfs", "deploy",
                     "emergency-access", "close-emergency-access", "cancel-signatures"}  # fmt: skip
