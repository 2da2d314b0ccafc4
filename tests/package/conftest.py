"""Fixtures for the package and CLI tests.

One real Anvil devnet serves the whole session (started by ``medledger.devnet`` in a temporary
``MEDLEDGER_HOME``, exactly as the CLI starts it, without state dumps: a throwaway chain). Each
test starts from the freshly deployed chain plus its own setup and never sees another test's
writes: before the test touches the chain, it is reverted (``evm_revert``) to a snapshot.

The setup is built once per run: verifying an institution, registering the patient, opening
care and the fixtures that test modules mark ``@world_step`` are *world steps*, kept as chain
snapshots (``chain_worlds.py``), so the next test that asks for the same steps in the same
order is reverted to their snapshot instead of sending their transactions again. A revert also
puts Anvil's clock back to the restored head's time, so no test's time travel reaches another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from chain_worlds import WORLDS, run_step, world_step

from medledger import providers
from medledger.accounts import dev_account
from medledger.chain import Chain, deployments, devnet
from medledger.chain.outbox import open_outbox
from medledger.config import Settings, load_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

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
def base_chain(settings: Settings) -> Iterator[Chain]:
    """The session's devnet with the contracts deployed: the root of every test's world."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDLEDGER_DEVNET_STATE", "off")  # the devnet starts here
        chain = Chain(settings)
    deployments.deploy(
        chain,
        dev_account(0),
        registrars=[dev_account(i).address for i in (0, 1, 2)],
        threshold=2,
    )
    WORLDS.start(chain.url, on_restore=lambda: _forget_the_world(chain))
    yield chain
    WORLDS.stop()


def _forget_the_world(chain: Chain) -> None:
    """After a revert: what the client remembers of the chain may be of blocks that are gone
    (and the outbox's writes, rolled back on purpose)."""
    chain.forget_blocks()
    chain.cache.clear()
    open_outbox(chain.settings.home).forget_chain(chain.journal_key)


@pytest.fixture
def chain(base_chain: Chain, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Chain:
    """The session chain, at the test's world (reverted before the test touches it)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return base_chain


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test's world starts as the freshly deployed chain."""
    WORLDS.begin()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """The chain is at the test's world before its body runs (a subprocess it starts cannot
    be watched)."""
    if {"base_chain", "env", "settings"} & set(getattr(item, "fixturenames", ())):
        WORLDS.enter()


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

    def verify(account, kind, name):
        providers.apply_institution(chain, account, kind, name)
        providers.approve_institution(chain, registrars[0], account.address)
        providers.approve_institution(chain, registrars[1], account.address)
        return account

    def make(
        account,
        kind: providers.InstitutionKind = providers.InstitutionKind.HOSPITAL,
        name: str = "St Mary",
    ):
        key = ("verified_institution", account, kind, name)
        return run_step(key, lambda: verify(account, kind, name))

    return make


@pytest.fixture
@world_step
def registered_patient(chain: Chain, patient):
    providers.register_patient(chain, patient)
    return patient


@pytest.fixture
def care(chain: Chain):
    """Factory: ``care(patient, institution)``: the patient lets a verified care institution
    write their records (until revoked). Returns the patient."""

    def open_care(patient, institution):
        providers.authorize_care(chain, patient, patient.address, institution.address, None)
        return patient

    return lambda patient, institution: run_step(
        ("care", patient, institution), lambda: open_care(patient, institution)
    )


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


# --- trials (tests/package/test_trials.py) -------------------------------------------------
# dev:13 is the research sponsor. Participants are fresh keys: pseudonymous, no ETH, no role.


@pytest.fixture
def sponsor(verified_institution):
    """A verified research sponsor institution (dev:13)."""
    return verified_institution(
        dev_account(13), providers.InstitutionKind.RESEARCH_SPONSOR, "Northwind Research"
    )


@pytest.fixture
def participant():
    """A fresh pseudonymous study account: an eth_account key with no ETH and no role."""
    from eth_account import Account

    return Account.create()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if WORLDS.hits or WORLDS.builds:
        terminalreporter.write_line(
            f"world steps: {WORLDS.hits} restored from snapshots, {WORLDS.builds} built"
        )


@pytest.fixture
def writer(verified_institution, hospital, registered_patient, care):
    """The hospital (dev:3), verified and in care of the registered patient (dev:5)."""
    care(registered_patient, verified_institution(hospital))
    return hospital


@pytest.fixture
def doctor_with_key(chain: Chain, verified_institution, clinic, doctor):
    """The doctor (dev:6) as a practitioner of a verified clinic, with a published key."""
    verified_institution(clinic, providers.InstitutionKind.CLINIC, "Riverside Clinic")
    providers.add_practitioner(chain, clinic, doctor.address)
    providers.accept_practitioner(chain, doctor, clinic.address)
    providers.publish_key(chain, doctor)
    return doctor
