"""A home of its own whose devnet keeps its state (snapshots and journal replay), for the tests
that kill Anvil or the CLI (test_durability, test_reliability_attacks): the contracts, a verified
clinic, fresh patients, and FHIR bodies to anchor."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

import pytest

from medledger import providers
from medledger.accounts import dev_account
from medledger.chain import Chain, deployments, devnet
from medledger.config import load_settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from eth_account.signers.local import LocalAccount

CLINIC_NUMBER = 4
CLINIC = dev_account(CLINIC_NUMBER)


@contextlib.contextmanager
def durable_home(path: Path, **extra: str) -> Iterator[dict[str, str]]:
    """The environment of a home at ``path`` (plus ``extra``) whose devnet keeps its state, with
    the contracts deployed and the clinic verified; its devnet is stopped afterwards."""
    env = {
        "MEDLEDGER_HOME": str(path),
        "MEDLEDGER_DEPLOYMENTS": str(path / "deployments"),
        "MEDLEDGER_DEVNET_STATE": "on",
        **extra,
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = load_settings(path)
        chain = Chain(settings)
        deployments.deploy(chain, dev_account(0), registrars=[dev_account(0).address], threshold=1)
        providers.apply_institution(chain, CLINIC, providers.InstitutionKind.CLINIC, "Durable")
        providers.approve_institution(chain, dev_account(0), CLINIC.address)
        try:
            yield env
        finally:
            devnet.stop(settings)


def chain_of(env: dict[str, str]) -> Chain:
    """A fresh connection to the home's chain (the devnet may have restarted since)."""
    return Chain(load_settings(env["MEDLEDGER_HOME"]))


def cared_for_patient(env: dict[str, str], number: int) -> LocalAccount:
    """Devnet account ``number``, registered as a patient who lets the clinic write."""
    account = dev_account(number)
    chain = chain_of(env)
    providers.register_patient(chain, account)
    providers.authorize_care(chain, account, account.address, CLINIC.address, None)
    return account


def write_bodies(folder: Path, count: int, tag: str) -> list[bytes]:
    """``count`` distinct FHIR Observations (ids ``tag-N``) written to ``folder``."""
    folder.mkdir(parents=True)
    bodies = []
    for n in range(count):
        body = {
            "resourceType": "Observation", "id": f"{tag}-{n}", "status": "final",
            "code": {"text": "heart rate"}, "subject": {"reference": "Patient/p-1"},
            "valueQuantity": {"value": 60 + n % 40, "unit": "/min"},
        }  # fmt: skip
        data = json.dumps(body).encode()
        (folder / f"obs-{n:04}.json").write_bytes(data)
        bodies.append(data)
    return bodies
