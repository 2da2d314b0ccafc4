"""The anchoring hot path: own ECIES wraps against eciespy, own transaction signing against
eth-account, hand-packed ids against eth-abi, and parallel sealing against serial sealing."""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import TYPE_CHECKING

import coincurve
import ecies
import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from medledger import sealed
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.chain.pipeline import CHUNK, Pipeline, Rpc, sign_eip1559
from medledger.crypto import envelope
from medledger.errors import ConfigurationError, DecryptionFailed, StoreError
from medledger.ipfs.local import LocalBlockStore
from medledger.records import ids
from medledger.sealed import sealing

if TYPE_CHECKING:
    from pathlib import Path

    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
words = st.binary(min_size=32, max_size=32)
private_keys = st.integers(min_value=1, max_value=coincurve.utils.GROUP_ORDER_INT - 1).map(
    lambda n: n.to_bytes(32, "big")
)


@pytest.fixture
def reader() -> coincurve.PrivateKey:
    return coincurve.PrivateKey()


@pytest.fixture
def store(tmp_path: Path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


# --- ECIES: our wraps are eciespy's format, both ways ----------------------------------------


def test_eciespy_opens_our_wraps_and_we_open_eciespy_s(reader: coincurve.PrivateKey) -> None:
    secret = envelope.BodySecret.generate()
    pub = reader.public_key.format(compressed=True)
    assert ecies.decrypt(reader.secret, envelope.wrap(secret, pub)) == secret.pack()
    assert ecies.decrypt(reader.secret, envelope.Wrapper().wrap(secret, pub)) == secret.pack()
    assert envelope.unwrap(ecies.encrypt(pub, secret.pack()), reader.secret) == secret


def test_one_wrapper_gives_every_secret_its_own_ciphertext(reader: coincurve.PrivateKey) -> None:
    wrapper, pub = envelope.Wrapper(), reader.public_key.format(compressed=True)
    secrets = [envelope.BodySecret.generate() for _ in range(20)]
    wrapped = [wrapper.wrap(s, pub) for s in secrets]
    assert len({w[65:81] for w in wrapped}) == len(wrapped)  # fresh nonces
    assert [envelope.unwrap(w, reader.secret) for w in wrapped] == secrets


def test_wrong_key_and_altered_wrap_fail_cleanly(reader: coincurve.PrivateKey) -> None:
    pub = reader.public_key.format(compressed=True)
    wrapped = envelope.wrap(envelope.BodySecret.generate(), pub)
    with pytest.raises(DecryptionFailed):
        envelope.unwrap(wrapped, coincurve.PrivateKey().secret)
    with pytest.raises(DecryptionFailed):
        envelope.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), reader.secret)
    with pytest.raises(DecryptionFailed):
        envelope.unwrap(b"\x04" + bytes(64) + wrapped[65:], reader.secret)  # not a point


# --- signing: byte for byte what eth-account makes --------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    key=private_keys,
    chain_id=st.integers(1, 2**32),
    nonce=st.integers(0, 2**40),
    to=addresses,
    data=st.binary(max_size=300),
    gas=st.integers(21_000, 30_000_000),
    tip=st.integers(0, 10**12),
    extra=st.integers(0, 10**12),
    value=st.integers(0, 10**20),
)
def test_signed_transactions_match_eth_account(
    key: bytes, chain_id: int, nonce: int, to: str, data: bytes, gas: int, tip: int, extra: int,
    value: int,
) -> None:  # fmt: skip
    tx = {
        "to": to_checksum_address(to), "nonce": nonce, "data": data, "gas": gas, "value": value,
        "chainId": chain_id, "type": 2, "maxFeePerGas": tip + extra, "maxPriorityFeePerGas": tip,
    }  # fmt: skip
    expected = bytes(Account.from_key(key).sign_transaction(tx).raw_transaction)
    mine = sign_eip1559(key, chain_id, nonce, to, data, gas, tip + extra, tip, value)
    assert mine == expected


# --- ids and associated data: hand-packed words equal eth-abi's encoding -----------------------


@settings(max_examples=60, deadline=None)
@given(
    chain_id=st.integers(0, 2**256 - 1),
    registry=addresses, patient=addresses, issuer=addresses,
    digest=words, commitment=words, category=st.integers(0, 255),
    previous=st.none() | words,
)  # fmt: skip
def test_record_ids_and_aad_equal_the_abi_encoding(
    chain_id: int, registry: str, patient: str, issuer: str, digest: bytes, commitment: bytes,
    category: int, previous: bytes | None,
) -> None:  # fmt: skip
    types = ["uint256", "address", "address", "address", "bytes32", "bytes32", "uint8", "bytes32"]
    values = [chain_id, registry, patient, issuer, digest, commitment, category]
    expected_id = keccak(abi_encode(types, [*values, previous or bytes(32)]))
    ctx = ids.Context(chain_id, registry, issuer)
    got = ids.derive_id(ctx, patient, digest, commitment, category, previous)
    assert got == expected_id
    aad_types = ["uint256", "address", "address", "address", "uint8", "bytes32"]
    aad_values = [chain_id, registry, patient, issuer, category, previous or bytes(32)]
    assert ids.associated_data(ctx, patient, category, previous) == (
        b"medledger/record/v1" + abi_encode(aad_types, aad_values)
    )


# --- sealing many bodies: in worker processes, the same outcome as in this process ------------

CTX = ids.Context(31337, "0x" + "11" * 20, "0x" + "22" * 20)
PATIENT = "0x" + "ab" * 20


def _documents(reader: coincurve.PrivateKey, count: int) -> list[sealed.Document]:
    pub = reader.public_key.format(compressed=True)
    aad = ids.associated_data(CTX, PATIENT, int(Category.VITALS), None)
    return [sealed.Document(os.urandom(200 + i * 37), aad, (pub,)) for i in range(count)]


def _open(
    store: LocalBlockStore, document: sealed.Document, done: sealed.Sealed, key: bytes
) -> bytes:
    """Open by hand (envelope, not ``sealed.open_one``), then check ``open_one`` agrees."""
    body = store.cat(done.cid)
    secret = envelope.secret_for(body, key)
    aad = ids.associated_data(CTX, PATIENT, int(Category.VITALS), None)
    assert document.aad == aad
    plaintext = envelope.open_sealed(body, aad, secret)
    assert envelope.commitment(secret.salt, plaintext) == done.commitment
    assert sealed.open_one(body, aad, done.commitment, private_key=key) == plaintext
    return plaintext


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sealed_bodies_open_are_pinned_and_survive_gc(
    workers: str, reader: coincurve.PrivateKey, store: LocalBlockStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("MEDLEDGER_WORKERS", workers)
    documents = _documents(reader, sealing.PARALLEL_FROM + 10)
    out = sealed.seal_many(store, documents)
    assert store.gc() == 0  # every block written, by whichever process, is pinned
    assert store.pins() == {s.cid for s in out}
    assert [_open(store, d, s, reader.secret) for d, s in zip(documents, out, strict=True)] == [
        d.body for d in documents
    ]


def test_progress_counts_every_body(
    reader: coincurve.PrivateKey, store: LocalBlockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDLEDGER_WORKERS", "2")
    seen: list[int] = []
    sealed.seal_many(store, _documents(reader, 100), seen.append)
    assert sum(seen) == 100


@pytest.mark.parametrize("workers", ["1", "2"])
def test_each_chunk_comes_back_in_order_before_seal_many_returns(
    workers: str, reader: coincurve.PrivateKey, store: LocalBlockStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("MEDLEDGER_WORKERS", workers)
    chunks: list[list[sealed.Sealed]] = []
    out = sealed.seal_many(store, _documents(reader, 100), each=chunks.append)
    assert [s for chunk in chunks for s in chunk] == out
    assert (len(chunks) > 1) == (workers == "2")  # in this process: one call at the end


def test_a_failing_chunk_callback_stores_nothing_and_leaves_the_pool_usable(
    reader: coincurve.PrivateKey, store: LocalBlockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDLEDGER_WORKERS", "2")

    def refuse(_done: list[sealed.Sealed]) -> None:
        raise ValueError("the caller refused a chunk")

    with pytest.raises(ValueError, match="refused"):
        sealed.seal_many(store, _documents(reader, 100), each=refuse)
    assert store.pins() == set()
    assert store.multihashes() == set()
    assert len(sealed.seal_many(store, _documents(reader, 100))) == 100


def _gc_in_another_process(root: str, queue: multiprocessing.Queue[int]) -> None:
    queue.put(LocalBlockStore(root).gc())  # pragma: no cover - runs in a child


def test_workers_do_not_keep_the_store_locked(
    reader: coincurve.PrivateKey, store: LocalBlockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pool workers are forked while the caller holds the store's flock; they must drop their
    copy, or the next gc from another process would wait forever."""
    monkeypatch.setenv("MEDLEDGER_WORKERS", "2")
    sealed.seal_many(store, _documents(reader, sealing.PARALLEL_FROM))
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[int] = context.Queue()
    child = context.Process(target=_gc_in_another_process, args=(str(store.root), queue))
    child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "gc in another process was blocked by a lock a worker kept"
    assert queue.get(timeout=5) == 0


def test_the_store_lock_is_reentrant_inside_bulk(store: LocalBlockStore) -> None:
    with store.bulk():
        cid = store.add_bytes(b"inside bulk")  # takes the lock again: must not deadlock
        store.pin(cid)
    assert cid in store.pins()


def test_pin_written_is_only_for_bulk_and_needs_the_block(store: LocalBlockStore) -> None:
    cid = store.add_bytes(b"x", pin=False)
    with pytest.raises(Exception, match="only for blocks written inside bulk"):
        store.pin_written(cid)
    with store.bulk():
        store.pin_written(cid)
    assert cid in store.pins()


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_bad_worker_setting_is_named(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDLEDGER_WORKERS", value)
    with pytest.raises(ConfigurationError, match="MEDLEDGER_WORKERS"):
        sealed.worker_count()


def _die(*_args: object) -> None:  # pragma: no cover - runs in a worker, which it ends
    os._exit(3)


def test_a_worker_that_dies_is_a_one_line_store_error(
    reader: coincurve.PrivateKey, store: LocalBlockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDLEDGER_WORKERS", "2")
    sealing._forget_pool()  # a pool forked after the patch below runs it
    monkeypatch.setattr(sealing, "_seal_chunk", _die)
    try:
        with pytest.raises(StoreError, match="worker process died"):
            sealed.seal_many(store, _documents(reader, sealing.PARALLEL_FROM))
    finally:
        sealing._forget_pool()
    assert store.pins() == set()


# --- the devnet mines a window of transactions per block ----------------------------------------


def _transfers(chain: Chain, count: int) -> list[Receipt]:
    return Pipeline(chain, dev_account(9)).send(
        "paying", "0x" + "ab" * 20, [b""] * count, 21_000, value=1
    )


def _automine(chain: Chain) -> bool:
    return bool(Rpc(chain.url).batch([("anvil_getAutomine", [])])[0]["result"])


def test_a_send_of_many_mines_a_window_per_block_then_mines_instantly_again(chain: Chain) -> None:
    receipts = _transfers(chain, CHUNK + 50)
    assert len({r.block_number for r in receipts}) == 2  # a block per window, not per transfer
    assert _automine(chain)
    (alone,) = _transfers(chain, 1)
    assert alone.block_number > receipts[-1].block_number


def test_a_command_killed_inside_a_window_leaves_a_devnet_that_still_mines(chain: Chain) -> None:
    rpc = Rpc(chain.url)
    rpc.batch([("evm_setIntervalMining", [1])])  # what a kill inside windows_mined leaves
    try:
        head = int(rpc.batch([("eth_blockNumber", [])])[0]["result"], 16)
        deadline = time.monotonic() + 30
        while int(rpc.batch([("eth_blockNumber", [])])[0]["result"], 16) == head:
            assert time.monotonic() < deadline, "the devnet stopped mining"
            time.sleep(0.1)
        _transfers(chain, 1)  # the next send, from any account, restores instant mining
        assert _automine(chain)
    finally:
        rpc.batch([("evm_setAutomine", [True])])
