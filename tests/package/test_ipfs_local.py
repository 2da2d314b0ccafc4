"""The embedded LocalBlockStore: blocks, tampering, pins, garbage collection, reopening."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from ipfs_conftest_helpers import random_bytes, stored_digests

from medledger.errors import BlockCorrupted, BlockNotFound, IntegrityError, StoreError
from medledger.ipfs import CHUNK_SIZE, Cid, LocalBlockStore, hash_bytes
from medledger.ipfs.blockstore import iter_dag

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


def dag_digests(store: LocalBlockStore, root: Cid) -> set[bytes]:
    return {cid.digest for cid, _ in iter_dag(store.get_block, root)}


def test_put_get_has_delete(store: LocalBlockStore) -> None:
    cid = Cid.of_block(b"block", version=1, codec=0x55)
    assert not store.has(cid)
    store.put_block(cid, b"block")
    assert store.has(cid)
    assert store.get_block(cid) == b"block"
    store.delete_block(cid)
    store.delete_block(cid)  # deleting what is absent is not an error
    with pytest.raises(BlockNotFound):
        store.get_block(cid)


def test_put_refuses_data_that_does_not_match(store: LocalBlockStore) -> None:
    with pytest.raises(BlockCorrupted, match="caller of put_block"):
        store.put_block(Cid.of_block(b"one"), b"two")
    assert not store.has(Cid.of_block(b"one"))


def test_add_and_cat(store: LocalBlockStore, tmp_path: Path) -> None:
    body = random_bytes(3 * CHUNK_SIZE + 11, seed=1)
    cid = store.add_bytes(body)
    assert cid == hash_bytes(body)
    assert store.cat(cid) == body
    assert b"".join(store.iter_cat(cid)) == body
    assert cid in store.pins()
    source = tmp_path / "body.bin"
    source.write_bytes(body)
    assert store.add_file(source) == cid


def test_tampered_block_file_is_detected(store: LocalBlockStore) -> None:
    body = random_bytes(2 * CHUNK_SIZE, seed=2)
    root = store.add_bytes(body)
    leaf = next(cid for cid, _ in iter_dag(store.get_block, root) if cid != root)
    path = store.block_path(leaf)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01  # one flipped bit, as an attacker or a bad disk would leave it
    path.write_bytes(bytes(data))
    with pytest.raises(BlockCorrupted) as caught:
        store.get_block(leaf)
    assert str(store.root) in str(caught.value) and str(leaf) in str(caught.value)
    with pytest.raises(IntegrityError):  # callers may catch the general integrity error
        store.cat(root)


def test_truncated_block_file_is_detected(store: LocalBlockStore) -> None:
    root = store.add_bytes(b"short record")
    store.block_path(root).write_bytes(b"")  # what a crash before the data reached disk leaves
    with pytest.raises(BlockCorrupted):
        store.cat(root)


def test_reopen_keeps_blocks_and_pins(store: LocalBlockStore) -> None:
    cid = store.add_bytes(b"persisted")
    again = LocalBlockStore(store.root)
    assert again.pins() == {cid}
    assert again.cat(cid) == b"persisted"
    assert [p.name for p in (store.root / "pins").iterdir()] == [str(cid)]
    assert not list(store.root.rglob("*.tmp"))  # no temporary file left behind


def test_gc_removes_unpinned_and_keeps_pinned(store: LocalBlockStore) -> None:
    kept = store.add_bytes(random_bytes(2 * CHUNK_SIZE + 1, seed=3))
    dropped = store.add_bytes(random_bytes(2 * CHUNK_SIZE + 2, seed=4), pin=False)
    dropped_blocks = dag_digests(store, dropped)
    assert store.pins() == {kept}
    assert store.gc() == len(dropped_blocks) == 4
    assert stored_digests(store) == dag_digests(store, kept)
    assert not store.has(dropped)
    assert store.gc() == 0


def test_shared_blocks_stay_while_any_pin_needs_them(store: LocalBlockStore) -> None:
    shared = random_bytes(CHUNK_SIZE, seed=5)  # chunk-aligned, so both files hold this leaf
    first = store.add_bytes(shared + random_bytes(CHUNK_SIZE, seed=6))
    second = store.add_bytes(shared + random_bytes(CHUNK_SIZE, seed=7))
    common = dag_digests(store, first) & dag_digests(store, second)
    assert len(common) == 1
    store.unpin(second)
    assert store.gc() == 2  # the second root and its own leaf
    assert common <= stored_digests(store)
    assert store.cat(first)[:CHUNK_SIZE] == shared
    store.unpin(first)
    store.unpin(first)  # unpinning twice is not an error
    assert store.gc() == 3
    assert stored_digests(store) == set()


def test_pin_needs_the_whole_dag(store: LocalBlockStore) -> None:
    root = store.add_bytes(random_bytes(2 * CHUNK_SIZE, seed=8), pin=False)
    leaf = next(cid for cid, _ in iter_dag(store.get_block, root) if cid != root)
    store.block_path(leaf).unlink()
    with pytest.raises(BlockNotFound):
        store.pin(root)
    assert store.pins() == frozenset()


def test_gc_removes_nothing_when_a_pinned_dag_is_damaged(store: LocalBlockStore) -> None:
    root = store.add_bytes(random_bytes(3 * CHUNK_SIZE, seed=9))
    store.add_bytes(b"garbage", pin=False)
    before = stored_digests(store)
    store.block_path(root).write_bytes(b"altered root")
    with pytest.raises(StoreError, match="nothing was removed"):
        store.gc()
    assert stored_digests(store) == before


def test_delete_block_refuses_pinned_blocks(store: LocalBlockStore) -> None:
    root = store.add_bytes(random_bytes(2 * CHUNK_SIZE, seed=10))
    leaf = next(cid for cid, _ in iter_dag(store.get_block, root) if cid != root)
    with pytest.raises(StoreError, match="pinned"):
        store.delete_block(leaf)
    store.unpin(root)
    store.delete_block(leaf)
    assert not store.has(leaf)


def test_damaged_pin_is_reported(store: LocalBlockStore) -> None:
    (store.root / "pins" / "not-a-cid").write_text("")
    with pytest.raises(StoreError, match=r"not-a-cid is damaged"):
        store.pins()


def test_concurrent_adds_and_gc_lose_nothing(store: LocalBlockStore) -> None:
    bodies = [random_bytes(CHUNK_SIZE + i, seed=100 + i) for i in range(8)]
    roots: list[Cid] = []
    errors: list[BaseException] = []

    def add(body: bytes) -> None:
        try:
            roots.append(LocalBlockStore(store.root).add_bytes(body))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def collect() -> None:
        for _ in range(5):
            LocalBlockStore(store.root).gc()

    threads = [threading.Thread(target=add, args=(b,)) for b in bodies]
    threads.append(threading.Thread(target=collect))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert store.pins() == set(roots)
    assert sorted(store.cat(r) for r in roots) == sorted(bodies)


def test_sync_writes_mode(tmp_path: Path) -> None:
    durable = LocalBlockStore(tmp_path / "durable", sync_writes=True)
    body = random_bytes(CHUNK_SIZE + 1, seed=12)
    assert durable.cat(durable.add_bytes(body)) == body


def test_pins_of_a_bulk_call_go_into_one_pin_set(store: LocalBlockStore) -> None:
    with store.bulk():
        roots = [store.add_bytes(random_bytes(300, seed=i)) for i in range(30)]
        assert store.gc() == 0  # pins not yet written are still honoured inside the call
    pin_files = list((store.root / "pins").iterdir())
    assert len(pin_files) == 1 and pin_files[0].name.endswith(".pinset")
    reopened = LocalBlockStore(store.root)
    assert reopened.pins() == set(roots)
    assert reopened.gc() == 0


def test_unpinning_one_member_of_a_pin_set_frees_only_its_blocks(store: LocalBlockStore) -> None:
    with store.bulk():
        roots = [store.add_bytes(random_bytes(300, seed=50 + i)) for i in range(3)]
    store.unpin(roots[1])
    assert store.pins() == {roots[0], roots[2]}
    assert store.gc() == 1
    with pytest.raises(BlockNotFound):
        store.cat(roots[1])
    for root in (roots[0], roots[2]):
        store.unpin(root)
    assert store.pins() == set()
    assert list((store.root / "pins").iterdir()) == []  # an emptied set is removed


def test_damaged_pin_set_is_reported(store: LocalBlockStore) -> None:
    (store.root / "pins" / "broken.pinset").write_text("not-a-cid\n")
    with pytest.raises(StoreError, match="not a pin set"):
        store.pins()
