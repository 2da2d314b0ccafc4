"""The shipped artifacts match the Solidity sources, and the main job runs end to end."""

from __future__ import annotations

import json

import pytest

from medledger.chain import artifacts
from medledger.toolchain import project_root


@pytest.mark.slow  # runs in `make test`; kept out of `make test-fast` (seconds)
def test_shipped_artifacts_match_a_fresh_compile():
    root = project_root()
    assert root is not None
    fresh = artifacts.build(root)
    shipped = json.loads(artifacts.ARTIFACT_FILE.read_text())
    assert fresh["compiler"] == shipped["compiler"]
    assert set(fresh["contracts"]) == set(shipped["contracts"]) >= set(artifacts.DEPLOYABLE)
    for name, entry in fresh["contracts"].items():
        assert entry["bytecode"] == shipped["contracts"][name]["bytecode"], (
            f"{name} changed: run `python -m medledger.chain.artifacts`"
        )
        assert entry["abi"] == shipped["contracts"][name]["abi"]


@pytest.mark.slow
def test_demo_runs_end_to_end_and_reports_every_check(medledger_process, tmp_path):
    env = {"MEDLEDGER_HOME": str(tmp_path / "home"), "MEDLEDGER_DEPLOYMENTS": str(tmp_path / "dep")}
    try:
        outcome = medledger_process("demo", extra_env=env)
        assert outcome.exit_code == 0, outcome.stderr
        text = outcome.stdout
        assert "identical to the input" in text
        assert "altered body:     caught" in text
        assert "swapped pointer:  caught" in text
        assert "another reader:   refused" in text
        assert "120 of 120 records" in text
        assert "the doctor reads" in text and "(verified)" in text
        assert "revoked the grant" in text
        assert "never wrapped for the revoked doctor" in text
        assert "EMERGENCY ACCESS OPENED" in text
        again = medledger_process("demo", extra_env=env)  # a re-run on the same home is safe
        assert again.exit_code == 0, again.stderr
        assert "(reused)" in again.stdout and "already verified" in again.stdout
    finally:
        medledger_process("devnet", "stop", extra_env=env)
