"""Fixtures for the package and CLI tests.

One real Anvil devnet serves the whole session (started by ``medledger.devnet`` in a temporary
``MEDLEDGER_HOME``, exactly as the CLI starts it); each test runs between an ``evm_snapshot``
and an ``evm_revert``, so tests see a freshly deployed chain and never each other's writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medledger import providers as registry
from medledger.accounts import dev_account
from medledger.chain import Chain, deployments, devnet
from medledger.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("medledger-home")
    yield home
    devnet.stop(load_settings(home))


@pytest.fixture(scope="session")
def env(session_home: Path) -> dict[str, str]:
    """Environment variables that point MedLedger at the session's home."""
    return {
        "MEDLEDGER_HOME": str(session_home),
        "MEDLEDGER_DEPLOYMENTS": str(session_home / "deployments"),
    }


@pytest.fixture(scope="session")
def settings(env: dict[str, str]) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield load_settings()


@pytest.fixture(scope="session")
def base_chain(settings: Settings) -> Chain:
    chain = Chain(settings)
    deployments.deploy(
        chain,
        dev_account(0),
        registrars=[dev_account(i).address for i in (0, 1, 2)],
        threshold=2,
    )
    return chain


@pytest.fixture
def chain(base_chain: Chain, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Chain]:
    """The session chain, rolled back after the test."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    snapshot = base_chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield base_chain
    base_chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    base_chain.forget_blocks()  # the reverted blocks' times must not outlive them


# Role fixtures: devnet accounts 0-2 are the registrars (threshold 2 of 3).
@pytest.fixture
def registrars() -> list:
    return [dev_account(i) for i in (0, 1, 2)]


@pytest.fixture
def hospital():
    return dev_account(3)


@pytest.fixture
def clinic():
    return dev_account(4)


@pytest.fixture
def patient():
    return dev_account(5)


@pytest.fixture
def doctor():
    return dev_account(6)


@pytest.fixture
def stranger():
    return dev_account(9)


@pytest.fixture
def verified_institution(chain: Chain, registrars: list):
    """Factory: apply as an institution and gather the registrars' approvals."""

    def make(account, kind: registry.InstitutionKind = registry.InstitutionKind.HOSPITAL, name: str = "St Mary"):
        registry.apply_institution(chain, account, kind, name)
        registry.approve_institution(chain, registrars[0], account.address)
        registry.approve_institution(chain, registrars[1], account.address)
        return account

    return make


@pytest.fixture
def registered_patient(chain: Chain, patient):
    registry.register_patient(chain, patient)
    return patient


@pytest.fixture
def care(chain: Chain):
    """Factory: ``care(patient, institution)``: the patient lets a verified care institution
    write their records (until revoked). Returns the patient."""

    def open_care(patient, institution):
        registry.authorize_care(chain, patient, patient.address, institution.address, None)
        return patient

    return open_care


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


@pytest.fixture
def medledger(chain: Chain, capsys: pytest.CaptureFixture[str]):
    """Run a ``medledger`` command in-process, exactly as the console script's ``main``."""
    from medledger.cli import main

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def medledger_process(env: dict[str, str]):
    """Run the installed ``medledger`` console script in a subprocess."""

    def run(*args: str, extra_env: dict[str, str] | None = None) -> Outcome:
        script = Path(sys.executable).with_name("medledger")
        completed = subprocess.run(
            [str(script), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env, **(extra_env or {})},
            timeout=120,
        )
        return Outcome(completed.returncode, completed.stdout, completed.stderr)

    return run


# --- trials (tests/package/test_trials.py) ---------------------------------------------------------
# dev:13 is the research sponsor. Participants are fresh keys: pseudonymous, no ETH, no role.


@pytest.fixture
def sponsor(verified_institution):
    """A verified research sponsor institution (dev:13)."""
    return verified_institution(
        dev_account(13), registry.InstitutionKind.RESEARCH_SPONSOR, "Northwind Research"
    )


@pytest.fixture
def participant():
    """A fresh pseudonymous study account: an eth_account key with no ETH and no role."""
    from eth_account import Account

    return Account.create()
