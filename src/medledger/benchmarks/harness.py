"""The bench's world: a fresh devnet in a temporary home, the contracts, the actors, timing.

Everything runs on 127.0.0.1: the devnet the package starts on demand, and the embedded store
in the temporary home, removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.config import Settings
    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.local import LocalBlockStore

KIB = 1024
MIB = 1024 * KIB


@dataclass
class World:
    """A devnet with MedLedger deployed, a verified hospital and registered patients."""

    settings: Settings
    chain: Chain
    hospital: Signer
    patient: Signer
    reader: Signer
    _stores: list[Path] = field(default_factory=list)

    def fresh_store(self) -> LocalBlockStore:
        """An empty embedded store of its own (big bodies are deleted between cells)."""
        from medledger.ipfs.local import LocalBlockStore

        folder = Path(tempfile.mkdtemp(prefix="store-", dir=self.settings.home))
        self._stores.append(folder)
        return LocalBlockStore(folder)

    def home_store(self) -> BlockStore:
        """The store a ``medledger`` command run in this world's home opens."""
        from medledger.ipfs.stores import open_store

        return open_store(self.settings)

    def drop_stores(self) -> None:
        """Delete every store made by :meth:`fresh_store` (they can hold gigabytes)."""
        for folder in self._stores:
            shutil.rmtree(folder, ignore_errors=True)
        self._stores.clear()

    def env(self) -> dict[str, str]:
        """Environment for a ``medledger`` subprocess that uses this world."""
        return {
            **os.environ,
            "MEDLEDGER_HOME": str(self.settings.home),
            "MEDLEDGER_DEPLOYMENTS": str(self.settings.deployments_dir),
        }


@contextlib.contextmanager
def temporary_home(state: str = "off") -> Iterator[tuple[Settings, Chain]]:
    """Settings and a chain for a fresh temporary home; afterwards the devnet is stopped, the
    home removed and the environment restored. ``state`` "on" keeps the devnet durable
    (snapshots and journal replay, as a user's devnet); "off" is a throwaway chain."""
    from medledger.chain import Chain, devnet
    from medledger.config import load_settings

    home = Path(tempfile.mkdtemp(prefix="medledger-bench-"))
    names = ("MEDLEDGER_HOME", "MEDLEDGER_DEPLOYMENTS", "MEDLEDGER_DEVNET_STATE")
    saved = {k: os.environ.get(k) for k in names}
    os.environ["MEDLEDGER_HOME"] = str(home)
    os.environ["MEDLEDGER_DEPLOYMENTS"] = str(home / "deployments")
    # A throwaway chain by default: no snapshots (the durability section measures them).
    os.environ["MEDLEDGER_DEVNET_STATE"] = state
    settings = replace(load_settings(), home=home, deployments_dir=home / "deployments")
    try:
        yield settings, Chain(settings)
    finally:
        devnet.stop(settings)
        shutil.rmtree(home, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def open_world(state: str = "off") -> Iterator[World]:
    """A fresh world: contracts deployed, hospital verified, patient and reader registered."""
    from medledger import providers
    from medledger.accounts import dev_account
    from medledger.chain import deployments

    with temporary_home(state) as (settings, chain):
        deployments.deploy(chain, dev_account(0))
        hospital, patient, reader = dev_account(3), dev_account(5), dev_account(7)
        providers.apply_institution(chain, hospital, providers.InstitutionKind.HOSPITAL, "Bench")
        providers.approve_institution(chain, dev_account(0), hospital.address)
        providers.register_patient(chain, patient)
        providers.register_patient(chain, reader)
        providers.authorize_care(chain, patient, patient.address, hospital.address, None)
        world = World(settings, chain, hospital, patient, reader)
        try:
            yield world
        finally:
            world.drop_stores()


def receipt_gas(chain: Chain, transaction_hash: str) -> int:
    """Gas used by a mined transaction the package sent but did not hand back the receipt of
    (a record's anchor, a grant, a read's access log): its receipt, asked for by hash."""
    from eth_typing import HexStr

    return int(chain.w3.eth.get_transaction_receipt(HexStr(transaction_hash))["gasUsed"])
