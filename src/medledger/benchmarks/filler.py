"""Filler for the growth benchmark: a hospital network's chain, grown by many patients.

:func:`register_patients` makes ``count`` new patients with fresh keys: one funded account
sends each a little ETH, then each registers (its own encryption key and proof) and lets the
bench's hospital write its records: about three transactions a patient, signed here and sent in
windows through the pipeline's JSON-RPC client, thousands at a time.

:func:`add_records` anchors filler records for those patients, round robin (the hospital's
transactions, through :class:`~medledger.chain.pipeline.Pipeline`), and each patient grants
each of its new records to the next filler patient. :func:`add_batches` anchors batches of
filler records with the registry's batch call, each with a real manifest
(:mod:`medledger.sealed.manifest`) stored in the given store, so that the batch lookups find
them. Filler pointers are random: the bodies are never read, so none is stored.

Each returns :class:`Filled`: how many transactions it sent and how long they took.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import coincurve

from medledger.accounts import Key, dev_account
from medledger.chain.pipeline import Fees, Pipeline, Rpc, calldata, sign

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medledger.benchmarks.harness import World
    from medledger.ipfs.blockstore import BlockStore

FUNDER = 9
"""The dev account that pays the filler patients' gas (the world uses 0, 3, 5 and 7)."""
FUNDS_WEI = 10**18
FILLER_CATEGORY = 3
_GWEI = 10**9
_REGISTER_GAS = 300_000
_CARE_GAS = 150_000
_ANCHOR_GAS = 150_000
_GRANT_GAS = 200_000
_BATCH_GAS = 200_000
_GRANT_SIGNATURE = "grant(address,address,uint8,bytes32,uint8,uint40,bytes32)"
_GRANT_TYPES = ["address", "address", "uint8", "bytes32", "uint8", "uint40", "bytes32"]
_BATCH_SIGNATURE = "anchorBatch(bytes32,bytes32,uint32)"
_BATCH_TYPES = ["bytes32", "bytes32", "uint32"]
_SCOPE_RECORD, _PURPOSE_TREATMENT = 0, 1
_UNTIL_REVOKED = 2**40 - 1


@dataclass(frozen=True)
class Filled:
    """What one filling sent: transactions and seconds (for the fill rate)."""

    transactions: int
    seconds: float

    def __add__(self, other: Filled) -> Filled:
        return Filled(self.transactions + other.transactions, self.seconds + other.seconds)


@dataclass
class Patients:
    """The filler patients: their accounts and each one's next nonce."""

    accounts: list[Key]
    nonces: list[int] = field(default_factory=list)
    _next: int = 0

    def take(self) -> int:
        """The index of the next patient, round robin."""
        index = self._next % len(self.accounts)
        self._next += 1
        return index


def register_patients(world: World, count: int) -> tuple[Patients, Filled]:
    """Fund, register and put in the hospital's care ``count`` new patients."""
    from medledger.chain import deployments
    from medledger.providers.keys import key_proof

    started = time.perf_counter()
    chain = world.chain
    accounts = [Key.from_private_key(os.urandom(32)) for _ in range(count)]
    funder = dev_account(FUNDER)
    rpc = Rpc(chain.url, mines=chain.embedded)
    fees = _fees(rpc)
    first = rpc.nonce(funder.address, "pending")
    secret = coincurve.PrivateKey(funder.key)
    funding = [
        _raw(sign(secret, chain.chain_id, first + i, a.address, b"", 21_000, fees, FUNDS_WEI))
        for i, a in enumerate(accounts)
    ]
    _submit(rpc, "funding the filler patients", funding)
    address = deployments.contract(chain, "ProviderRegistry").address
    signups: list[str] = []
    for account in accounts:
        key, proof = key_proof(chain, account)
        own = coincurve.PrivateKey(account.key)
        register = calldata("registerPatient(bytes,bytes)", ["bytes", "bytes"], [key, proof])
        care = calldata(
            "authorizeCare(address,address,uint40)", ["address", "address", "uint40"],
            [account.address, world.hospital.address, _UNTIL_REVOKED],
        )  # fmt: skip
        signups.append(_raw(sign(own, chain.chain_id, 0, address, register, _REGISTER_GAS, fees)))
        signups.append(_raw(sign(own, chain.chain_id, 1, address, care, _CARE_GAS, fees)))
    _submit(rpc, "registering the filler patients", signups)
    patients = Patients(accounts, [2] * count)
    return patients, Filled(len(funding) + len(signups), time.perf_counter() - started)


def add_records(world: World, patients: Patients, count: int) -> Filled:
    """Anchor ``count`` filler records for the filler patients, round robin, and let each
    patient grant each new record to the next filler patient."""
    if count <= 0:
        return Filled(0, 0.0)
    from medledger import records
    from medledger.chain import deployments

    started = time.perf_counter()
    chain, hospital = world.chain, world.hospital
    registry = deployments.contract(chain, "RecordRegistry")
    manager = deployments.contract(chain, "ConsentManager")
    context = records.Context(chain.chain_id, registry.address, hospital.address)
    owners = [patients.take() for _ in range(count)]
    rows = [(os.urandom(32), os.urandom(32)) for _ in range(count)]
    payloads = [
        calldata(
            records.ANCHOR_SIGNATURE,
            ["address", "bytes32", "bytes32", "uint8", "bytes32"],
            [patients.accounts[o].address, digest, commitment, FILLER_CATEGORY, bytes(32)],
        )
        for o, (digest, commitment) in zip(owners, rows, strict=True)
    ]
    Pipeline(chain, hospital).send("filling records", registry.address, payloads, _ANCHOR_GAS)
    rpc = Rpc(chain.url, mines=chain.embedded)
    fees = _fees(rpc)
    expires = int(time.time()) + 365 * 86400
    keys = [coincurve.PrivateKey(a.key) for a in patients.accounts]
    grants: list[str] = []
    for o, (digest, commitment) in zip(owners, rows, strict=True):
        patient = patients.accounts[o].address
        grantee = patients.accounts[(o + 1) % len(patients.accounts)].address
        record_id = records.derive_id(context, patient, digest, commitment, FILLER_CATEGORY, None)
        data = calldata(
            _GRANT_SIGNATURE, _GRANT_TYPES,
            [patient, grantee, _SCOPE_RECORD, record_id, _PURPOSE_TREATMENT, expires,
             os.urandom(32)],
        )  # fmt: skip
        nonce = patients.nonces[o]
        patients.nonces[o] += 1
        grants.append(
            _raw(sign(keys[o], chain.chain_id, nonce, manager.address, data, _GRANT_GAS, fees))
        )
    _submit(rpc, "filling grants", grants)
    return Filled(len(payloads) + len(grants), time.perf_counter() - started)


def add_batches(
    world: World, store: BlockStore, patients: Patients, count: int, batch_size: int
) -> tuple[Filled, list[bytes]]:
    """Anchor ``count`` filler records in batches of ``batch_size`` (the last may be smaller),
    each batch's manifest stored in ``store``; return the filling and one record id of each
    batch (to check the lookups find them)."""
    if count <= 0:
        return Filled(0, 0.0), []
    from medledger import records
    from medledger.chain import deployments
    from medledger.ipfs.cid import Cid
    from medledger.sealed import manifest

    started = time.perf_counter()
    chain, hospital = world.chain, world.hospital
    registry = deployments.contract(chain, "RecordRegistry")
    context = records.Context(chain.chain_id, registry.address, hospital.address)
    payloads: list[bytes] = []
    samples: list[bytes] = []
    with store.bulk():
        for start in range(0, count, batch_size):
            items: list[dict[str, Any]] = []
            for _ in range(min(batch_size, count - start)):
                patient = patients.accounts[patients.take()].address
                digest, commitment = os.urandom(32), os.urandom(32)
                record_id = records.derive_id(
                    context, patient, digest, commitment, FILLER_CATEGORY, None
                )
                items.append({
                    "id": "0x" + record_id.hex(), "patient": patient,
                    "cid": str(Cid.from_digest_v0(digest)), "commitment": "0x" + commitment.hex(),
                    "category": FILLER_CATEGORY, "previous": None,
                })  # fmt: skip
            raw, built = manifest.build(chain.chain_id, registry.address, hospital.address, {},
                                        items)  # fmt: skip
            cid = store.add_bytes(raw)
            payloads.append(
                calldata(_BATCH_SIGNATURE, _BATCH_TYPES, [built.root, cid.digest, len(items)])
            )
            samples.append(built.ids()[len(items) // 2])
    Pipeline(chain, hospital).send("filling batches", registry.address, payloads, _BATCH_GAS)
    return Filled(len(payloads), time.perf_counter() - started), samples


def _fees(rpc: Rpc) -> Fees:
    """Fees for the filler patients' transactions: twice the latest base fee plus a tip."""
    (reply,) = rpc.batch([("eth_getBlockByNumber", ["latest", False])])
    base = int(reply["result"].get("baseFeePerGas") or "0x0", 16)
    return Fees("eip1559", 2 * base + _GWEI, _GWEI)


def _raw(signed: bytes) -> str:
    return "0x" + signed.hex()


def _submit(rpc: Rpc, action: str, raws: Sequence[str]) -> None:
    """Send signed transactions in windows; every one must succeed."""
    for receipt in rpc.submit(action, raws):
        if receipt.status != 1:
            raise AssertionError(f"{action}: transaction {receipt.transaction_hash} reverted")
