"""The embedded LocalBlockStore: blocks, tampering, pins, garbage collection, reopening, other
processes (a gc waiting for a bulk, a bulk killed half-way), the old layout's migration."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest
from ipfs_conftest_helpers import random_bytes, stored_digests

from medledger.errors import BlockCorrupted, BlockNotFound, IntegrityError, StoreError
from medledger.ipfs import CHUNK_SIZE, Cid, LocalBlockStore, hash_bytes
from medledger.ipfs._blockfiles import LARGE, iter_block_files
from medledger.ipfs.blockstore import iter_dag
from medledger.ipfs.local import tamper_with_block
from medledger.ipfs.unixfs import import_chunks, iter_chunks


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


@pytest.mark.parametrize("size", [1_000, 2 * CHUNK_SIZE], ids=["small-row", "large-file"])
def test_tampered_block_is_detected(store: LocalBlockStore, size: int) -> None:
    root = store.add_bytes(random_bytes(size, seed=2))
    target = max(iter_dag(store.get_block, root), key=lambda item: len(item[1]))[0]
    data = bytearray(store.get_block(target))
    data[100] ^= 0x01  # one flipped bit, as an attacker or a bad disk would leave it
    tamper_with_block(store, target, bytes(data))
    with pytest.raises(BlockCorrupted) as caught:
        store.get_block(target)
    assert str(store.root) in str(caught.value) and str(target) in str(caught.value)
    with pytest.raises(IntegrityError):  # callers may catch the general integrity error
        store.cat(root)
    store.put_block(target, store_bytes := bytes(data[:100]) + bytes([data[100] ^ 1]) + data[101:])
    assert store.get_block(target) == store_bytes  # a verified write repairs the copy


def test_truncated_block_is_detected(store: LocalBlockStore) -> None:
    root = store.add_bytes(b"short record")
    tamper_with_block(store, root, b"")
    with pytest.raises(BlockCorrupted):
        store.cat(root)


def test_small_blocks_are_rows_and_large_blocks_files(store: LocalBlockStore) -> None:
    small = store.add_bytes(random_bytes(1_300, seed=20))
    large = store.add_bytes(random_bytes(CHUNK_SIZE + 5, seed=21))
    files = {multihash for multihash, _ in iter_block_files(store.root / "blocks")}
    sizes = {cid.multihash: len(block) for cid, block in iter_dag(store.get_block, large)}
    assert small.multihash not in files
    assert files == {mh for mh, size in sizes.items() if size >= LARGE}  # the full leaf
    assert len(files) == 1 and store.multihashes() == set(sizes) | {small.multihash}


def test_reopen_keeps_blocks_and_pins(store: LocalBlockStore) -> None:
    cid = store.add_bytes(b"persisted")
    v1 = Cid(1, cid.codec, cid.digest)
    again = LocalBlockStore(store.root)
    assert again.pins() == {cid}
    assert again.cat(cid) == again.cat(v1) == b"persisted"  # CIDv0 and CIDv1 share the block
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
    tamper_with_block(store, leaf, None)
    with pytest.raises(BlockNotFound):
        store.pin(root)
    assert store.pins() == frozenset()


def test_gc_removes_nothing_when_a_pinned_dag_is_damaged(store: LocalBlockStore) -> None:
    root = store.add_bytes(random_bytes(3 * CHUNK_SIZE, seed=9))
    store.add_bytes(b"garbage", pin=False)
    before = stored_digests(store)
    tamper_with_block(store, root, b"altered root")
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
    store.add_bytes(b"anything")  # creates the database
    with sqlite3.connect(store.root / "store.db") as conn:  # a pin altered on disk
        conn.execute("INSERT INTO pins VALUES (x'0102')")
    with pytest.raises(StoreError, match=r"is damaged: b'\\x01\\x02' is not a pin"):
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


def test_a_bulk_call_commits_once_at_its_end(store: LocalBlockStore) -> None:
    other = LocalBlockStore(store.root)  # another connection, as another process would have
    with store.bulk():
        roots = [store.add_bytes(random_bytes(300, seed=i)) for i in range(30)]
        assert store.gc() == 0  # pins not yet committed are still honoured inside the call
        assert other.pins() == set() and not other.has(roots[0])  # nothing committed yet
    assert other.pins() == set(roots)
    assert other.gc() == 0


def test_a_failed_bulk_call_leaves_nothing(store: LocalBlockStore) -> None:
    with pytest.raises(RuntimeError), store.bulk():
        root = store.add_bytes(b"never committed")
        raise RuntimeError("the caller failed half-way")
    assert not store.has(root) and store.pins() == set()


def test_unpinning_one_root_frees_only_its_blocks(store: LocalBlockStore) -> None:
    with store.bulk():
        roots = [store.add_bytes(random_bytes(300, seed=50 + i)) for i in range(3)]
    store.unpin(roots[1])
    assert store.pins() == {roots[0], roots[2]}
    assert store.gc() == 1
    with pytest.raises(BlockNotFound):
        store.cat(roots[1])


# --- other processes ------------------------------------------------------------------------

FORK = multiprocessing.get_context("fork")


def _add_in_bulk_then_wait(root: str, ready, go) -> None:  # pragma: no cover - in a child
    store = LocalBlockStore(Path(root))
    with store.bulk():
        for i in range(200):
            store.add_bytes(random_bytes(1_000, seed=1_000 + i))
        store.add_bytes(random_bytes(2 * CHUNK_SIZE, seed=999))  # large blocks too
        ready.set()
        go.wait(60)


def test_a_gc_elsewhere_waits_for_a_bulk_and_keeps_its_blocks(store: LocalBlockStore) -> None:
    garbage = store.add_bytes(b"garbage", pin=False)
    ready, go = FORK.Event(), FORK.Event()
    child = FORK.Process(target=_add_in_bulk_then_wait, args=(str(store.root), ready, go))
    child.start()
    assert ready.wait(60)
    removed: list[int] = []
    collector = threading.Thread(target=lambda: removed.append(LocalBlockStore(store.root).gc()))
    collector.start()
    collector.join(0.5)
    assert collector.is_alive()  # waiting for the bulk's transaction, not deleting under it
    go.set()
    child.join(60)
    collector.join(60)
    assert child.exitcode == 0 and removed == [1]  # only the garbage
    assert not store.has(garbage)
    assert len(store.pins()) == 201
    for root in store.pins():
        store.cat(root)


def test_a_bulk_killed_half_way_leaves_nothing(store: LocalBlockStore) -> None:
    kept = store.add_bytes(b"committed before")
    ready, go = FORK.Event(), FORK.Event()
    child = FORK.Process(target=_add_in_bulk_then_wait, args=(str(store.root), ready, go))
    child.start()
    assert ready.wait(60)
    os.kill(child.pid, signal.SIGKILL)
    child.join(60)
    reopened = LocalBlockStore(store.root)
    assert reopened.pins() == {kept}
    rows = reopened.multihashes() - {m for m, _ in iter_block_files(store.root / "blocks")}
    assert rows == {kept.multihash}  # no row of the killed bulk
    assert reopened.gc() == 2  # its large leaf files, written whole, go with the first gc
    assert reopened.multihashes() == {kept.multihash}


# --- a read-only home -----------------------------------------------------------------------


def test_a_store_that_cannot_be_written_is_read_and_refuses_writes(
    store: LocalBlockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = store.add_bytes(b"readable")
    real = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:  # as root, modes do not stop us
        if self.is_relative_to(store.root):
            raise PermissionError(errno.EROFS, "Read-only file system", str(self))
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", mkdir)
    read_only = LocalBlockStore(store.root)
    assert read_only.pins() == {root} and read_only.cat(root) == b"readable"
    with pytest.raises(StoreError, match=r"is read-only \(Read-only file system\): it can be read"):
        read_only.add_bytes(b"refused")
    with pytest.raises(StoreError, match="is read-only"):
        read_only.gc()


# --- a store written by the file-per-block code -----------------------------------------------


def _write_old_layout(
    root: Path, bodies: list[bytes], pinned: list[int], in_set: list[int]
) -> list[Cid]:
    """The old writer, kept here to build a store as MedLedger wrote it before issue #15: every
    block a file ``blocks/<2 hex>/<multihash hex>``, a pin an empty file ``pins/<CID>``, the pins
    of a bulk() call one ``pins/<random>.pinset`` (a CID a line)."""
    (root / "pins").mkdir(parents=True)

    def write(cid: Cid, data: object) -> None:
        path = root / "blocks" / cid.digest.hex()[:2] / cid.multihash.hex()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(data))  # type: ignore[call-overload]

    roots = [import_chunks(iter_chunks(body), write) for body in bodies]
    for i in pinned:
        (root / "pins" / str(roots[i])).touch()
    (root / "pins" / "0badc0de.pinset").write_text("".join(f"{roots[i]}\n" for i in in_set))
    return roots


OLD_BODIES = [random_bytes(1_200, seed=70), random_bytes(3 * CHUNK_SIZE, seed=71), b"garbage"]


def test_an_old_store_is_migrated_on_open(tmp_path: Path) -> None:
    roots = _write_old_layout(tmp_path / "old", OLD_BODIES, pinned=[0], in_set=[1])
    store = LocalBlockStore(tmp_path / "old")
    assert store.pins() == {roots[0], roots[1]}
    assert [store.cat(r) for r in roots] == OLD_BODIES
    assert not (tmp_path / "old" / "pins").exists()
    files = {mh for mh, _ in iter_block_files(tmp_path / "old" / "blocks")}
    assert roots[0].multihash not in files and len(files) == 3  # small ones moved, leaves stay
    assert store.gc() == 1  # the unpinned one
    assert LocalBlockStore(tmp_path / "old").pins() == {roots[0], roots[1]}


def test_a_migration_killed_before_its_commit_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = _write_old_layout(tmp_path / "old", OLD_BODIES, pinned=[0], in_set=[1])
    real, calls = Path.read_bytes, []

    def dies_on_the_second_block(self: Path) -> bytes:
        calls.append(self)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process ends here
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", dies_on_the_second_block)
    with pytest.raises(KeyboardInterrupt):
        LocalBlockStore(tmp_path / "old")
    monkeypatch.undo()
    assert (tmp_path / "old" / "pins").is_dir()  # the old layout is whole
    store = LocalBlockStore(tmp_path / "old")
    assert store.pins() == {roots[0], roots[1]} and store.cat(roots[0]) == OLD_BODIES[0]


def test_a_migration_killed_after_its_commit_only_finishes_the_cleanup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = _write_old_layout(tmp_path / "old", OLD_BODIES, pinned=[0], in_set=[1])

    def dies(self: Path, missing_ok: bool = False) -> None:
        raise KeyboardInterrupt  # the process ends before the first file is removed

    monkeypatch.setattr(Path, "unlink", dies)
    with pytest.raises(KeyboardInterrupt):
        LocalBlockStore(tmp_path / "old")
    monkeypatch.undo()
    with sqlite3.connect(tmp_path / "old" / "store.db") as conn:  # committed: unpin one root
        conn.execute("DELETE FROM pins WHERE cid = ?", (roots[1].to_bytes(),))
    store = LocalBlockStore(tmp_path / "old")
    assert store.pins() == {roots[0]}  # the old pin files are not read again
    assert not (tmp_path / "old" / "pins").exists()
    assert store.cat(roots[0]) == OLD_BODIES[0]
