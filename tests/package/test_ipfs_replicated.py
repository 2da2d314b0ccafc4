"""ReplicatedStore: writes to every store, reads from the first valid copy, clear failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from ipfs_conftest_helpers import FakeKubo, random_bytes

from medledger.errors import BlockNotFound, ConfigurationError, ReplicationError
from medledger.ipfs import CHUNK_SIZE, Cid, KuboStore, LocalBlockStore, ReplicatedStore
from medledger.ipfs.blockstore import iter_dag
from medledger.ipfs.local import tamper_with_block

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BODY = random_bytes(2 * CHUNK_SIZE + 7, seed=11)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[LocalBlockStore, LocalBlockStore]:
    return LocalBlockStore(tmp_path / "a"), LocalBlockStore(tmp_path / "b")


@pytest.fixture
def down_kubo(tmp_path: Path) -> Iterator[KuboStore]:
    server = FakeKubo(tmp_path / "stopped")
    server.stop()
    with KuboStore(server.url, timeout=2, retries=1, backoff=0.01) as store:
        yield store


def leaf_of(store: LocalBlockStore, root: Cid) -> Cid:
    return next(cid for cid, _ in iter_dag(store.get_block, root) if cid != root)


def test_writes_reach_every_store(pair: tuple[LocalBlockStore, LocalBlockStore]) -> None:
    a, b = pair
    replicated = ReplicatedStore([a, b])
    cid = replicated.add_bytes(BODY)
    assert a.cat(cid) == b.cat(cid) == BODY
    assert a.pins() == b.pins() == replicated.pins() == {cid}


def test_corrupted_copy_falls_through_and_is_repaired(
    pair: tuple[LocalBlockStore, LocalBlockStore],
) -> None:
    a, b = pair
    replicated = ReplicatedStore([a, b])
    cid = replicated.add_bytes(BODY)
    leaf = leaf_of(a, cid)
    tamper_with_block(a, leaf, b"tampered")
    assert replicated.cat(cid) == BODY  # served by b
    assert a.cat(cid) == BODY  # a's copy was rewritten from b's valid one


def test_store_that_is_down_is_skipped_on_read(
    pair: tuple[LocalBlockStore, LocalBlockStore],
    down_kubo: KuboStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _ = pair
    cid = a.add_bytes(BODY)
    asked: list[Cid] = []
    get_block = down_kubo.get_block

    def counting_get_block(cid: Cid) -> bytes:
        asked.append(cid)
        return get_block(cid)

    monkeypatch.setattr(down_kubo, "get_block", counting_get_block)
    replicated = ReplicatedStore([down_kubo, a], min_copies=1)
    assert replicated.cat(cid) == BODY
    assert replicated.cat(cid) == BODY
    assert asked == [cid]  # after refusing once, the dead node is asked last, not per block


def test_write_with_a_store_down(
    pair: tuple[LocalBlockStore, LocalBlockStore], down_kubo: KuboStore
) -> None:
    a, _ = pair
    lenient = ReplicatedStore([down_kubo, a], min_copies=1)
    assert a.cat(lenient.add_bytes(BODY)) == BODY
    strict = ReplicatedStore([a, down_kubo])
    with pytest.raises(ReplicationError) as caught:
        strict.add_bytes(b"must reach both")
    assert down_kubo.api_url in str(caught.value)


def test_both_copies_bad_gives_a_clear_error(
    pair: tuple[LocalBlockStore, LocalBlockStore], down_kubo: KuboStore
) -> None:
    a, b = pair
    replicated = ReplicatedStore([a, b, down_kubo], min_copies=2)
    cid = replicated.add_bytes(BODY)
    leaf = leaf_of(a, cid)
    tamper_with_block(a, leaf, b"tampered")
    tamper_with_block(b, leaf, None)
    with pytest.raises(ReplicationError) as caught:
        replicated.cat(cid)
    message = str(caught.value)
    assert message.startswith(f"no store could serve a valid copy of block {leaf}: ")
    assert f"local store {a.root}: block {leaf} served by local store {a.root} does not match" in (
        message
    )
    assert f"local store {b.root}: block {leaf} is not in any configured store" in message
    assert f"Kubo at {down_kubo.api_url}: IPFS node at {down_kubo.api_url} is not reachable" in (
        message
    )


def test_missing_everywhere_is_block_not_found(
    pair: tuple[LocalBlockStore, LocalBlockStore],
) -> None:
    with pytest.raises(BlockNotFound):
        ReplicatedStore(list(pair)).get_block(Cid.of_block(b"nowhere"))


def test_pins_and_gc_on_every_store(pair: tuple[LocalBlockStore, LocalBlockStore]) -> None:
    a, b = pair
    replicated = ReplicatedStore([a, b])
    cid = replicated.add_bytes(BODY)
    replicated.add_bytes(b"temporary", pin=False)
    assert replicated.gc() == 2  # one block in each store
    replicated.unpin(cid)
    assert replicated.pins() == frozenset()
    assert replicated.gc() == 8
    assert not replicated.has(cid)


def test_bad_settings_are_refused(pair: tuple[LocalBlockStore, LocalBlockStore]) -> None:
    with pytest.raises(ConfigurationError):
        ReplicatedStore([])
    with pytest.raises(ConfigurationError):
        ReplicatedStore(list(pair), min_copies=3)
