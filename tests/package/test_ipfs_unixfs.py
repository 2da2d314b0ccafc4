"""UnixFS import (the layout ``ipfs add`` builds) and the verifying reader, without Kubo.

Equality with Kubo's own CIDs is in test_ipfs_kubo_equivalence.py; these tests pin the tree
shape, the exact bytes of leaves and internal nodes, and the reader's checks.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_conftest_helpers import random_bytes

from medledger.errors import DagFormatError
from medledger.ipfs import CHUNK_SIZE, MAX_LINKS, RAW, Cid, hash_bytes
from medledger.ipfs._varint import encode_varint
from medledger.ipfs.protobuf import (
    UNIXFS_DIRECTORY,
    UNIXFS_FILE,
    PBLink,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    encode_unixfs,
)
from medledger.ipfs.unixfs import import_chunks, iter_chunks, iter_file, iter_stream_chunks

if TYPE_CHECKING:
    from collections.abc import Callable


def build(data: bytes) -> tuple[Cid, dict[Cid, bytes]]:
    blocks: dict[Cid, bytes] = {}
    root = import_chunks(iter_chunks(data), blocks.__setitem__)
    return root, blocks


def read(root: Cid, blocks: dict[Cid, bytes]) -> bytes:
    return b"".join(iter_file(blocks.__getitem__, root))


def test_known_cids() -> None:
    assert str(hash_bytes(b"hello world\n")) == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert str(hash_bytes(b"")) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


def test_leaf_and_empty_file_bytes() -> None:
    root, blocks = build(b"hello world\n")
    # PBNode{Data: UnixFS{Type: File, Data: "hello world\n", filesize: 12}}
    assert blocks[root] == b"\x0a\x12\x08\x02\x12\x0chello world\n\x18\x0c"
    empty_root, empty = build(b"")
    assert empty[empty_root] == b"\x0a\x04\x08\x02\x18\x00"  # no Data field, filesize 0


def test_internal_node_layout() -> None:
    data = random_bytes(2 * CHUNK_SIZE + 5, seed=1)
    root, blocks = build(data)
    node = decode_pbnode(blocks[root], root)
    assert len(node.links) == 3
    assert node.data is not None
    fs = decode_unixfs(node.data, root)
    assert (fs.kind, fs.data, fs.filesize) == (UNIXFS_FILE, None, len(data))
    assert fs.blocksizes == (CHUNK_SIZE, CHUNK_SIZE, 5)
    assert [link.name for link in node.links] == ["", "", ""]
    assert [link.tsize for link in node.links] == [len(blocks[link.cid]) for link in node.links]
    # canonical dag-pb: every link (field 2, 0x12) before Data (field 1, 0x0a), empty names
    # written (12 00); UnixFS Data without a Data field, then filesize and unpacked blocksizes
    unixfs = b"\x08\x02\x18" + encode_varint(len(data)) + b"\x20\x80\x80\x10" * 2 + b"\x20\x05"
    raw = blocks[root]
    assert raw[0] == 0x12
    assert raw.endswith(b"\x0a" + encode_varint(len(unixfs)) + unixfs)
    assert raw.count(b"\x12\x00\x18") == 3


def test_balanced_layout_at_the_fanout_boundary() -> None:
    one_level = b"\x01" * (MAX_LINKS * CHUNK_SIZE)
    root, blocks = build(one_level)
    assert len(decode_pbnode(blocks[root], root).links) == MAX_LINKS

    two_levels = one_level + b"\x02"
    root, blocks = build(two_levels)
    top = decode_pbnode(blocks[root], root)
    assert len(top.links) == 2
    first, second = (decode_pbnode(blocks[link.cid], link.cid) for link in top.links)
    assert len(first.links) == MAX_LINKS
    assert len(second.links) == 1  # the lone last leaf still gets its own internal node
    assert read(root, blocks) == two_levels
    assert top.links[0].tsize == len(blocks[top.links[0].cid]) + sum(
        link.tsize for link in first.links
    )


def test_repeated_chunks_are_one_block() -> None:
    root, blocks = build(bytes(5 * CHUNK_SIZE))
    assert len(blocks) == 2  # one zero leaf, one root
    assert read(root, blocks) == bytes(5 * CHUNK_SIZE)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=4 * CHUNK_SIZE + 3), st.integers(0, 2**32))
def test_read_back_what_was_imported(size: int, seed: int) -> None:
    data = random_bytes(size, seed)
    root, blocks = build(data)
    assert read(root, blocks) == data
    assert hash_bytes(data) == root


class TrickleStream(io.RawIOBase):
    """A stream that returns at most 1000 bytes per read (like a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = min(size if size >= 0 else len(self._data), 1000)
        chunk, self._data = self._data[:n], self._data[n:]
        return bytes(chunk)


def test_stream_chunks_are_full_size_despite_short_reads() -> None:
    data = random_bytes(CHUNK_SIZE + 777, seed=2)
    chunks = list(iter_stream_chunks(TrickleStream(data)))  # type: ignore[arg-type]
    assert [len(c) for c in chunks] == [CHUNK_SIZE, 777]
    assert import_chunks(chunks, lambda _c, _d: None) == hash_bytes(data)


def test_reader_accepts_raw_leaves() -> None:
    leaf = b"raw leaf bytes"
    leaf_cid = Cid.of_block(leaf, version=1, codec=RAW)
    parent_data = encode_unixfs(UNIXFS_FILE, None, len(leaf), [len(leaf)])
    parent = encode_pbnode([PBLink(leaf_cid, "", len(leaf))], parent_data)
    parent_cid = Cid.of_block(parent, version=1)
    assert read(parent_cid, {leaf_cid: leaf, parent_cid: parent}) == leaf


def _single(block: bytes) -> tuple[Cid, dict[Cid, bytes]]:
    cid = Cid.of_block(block)
    return cid, {cid: block}


def test_reader_refuses_a_directory() -> None:
    cid, blocks = _single(encode_pbnode((), encode_unixfs(UNIXFS_DIRECTORY, None, 0)))
    with pytest.raises(DagFormatError, match="directory, not a file"):
        read(cid, blocks)


@pytest.mark.parametrize(
    "block",
    [
        b"\x0a\x05\x08\x02",  # Data runs past the end of the block
        b"\x0b\x00",  # wire type 3 (groups) is not protobuf dag-pb
        b"\x12\x02\x12\x00",  # a link without a Hash
        b"\x12\x00",  # a node without UnixFS Data
        b"\x0a\x02\x18\x00",  # UnixFS Data without a Type
        encode_pbnode((), encode_unixfs(UNIXFS_FILE, b"abc", 4)),  # filesize lies
    ],
)
def test_reader_refuses_malformed_nodes(block: bytes) -> None:
    cid, blocks = _single(block)
    with pytest.raises(DagFormatError):
        read(cid, blocks)


def test_reader_checks_sizes_against_children() -> None:
    leaf = encode_pbnode((), encode_unixfs(UNIXFS_FILE, b"abc", 3))
    leaf_cid = Cid.of_block(leaf)
    parent = encode_pbnode(
        [PBLink(leaf_cid, "", len(leaf))], encode_unixfs(UNIXFS_FILE, None, 4, [4])
    )
    parent_cid = Cid.of_block(parent)
    with pytest.raises(DagFormatError, match="its parent says 4"):
        read(parent_cid, {leaf_cid: leaf, parent_cid: parent})


def test_import_speed() -> None:
    """Importing a 10 MB body is bounded by sha256, far above 300 MB/s."""
    data = random_bytes(10_000_000, seed=3)
    best = min(_cpu_seconds(lambda: hash_bytes(data)) for _ in range(3))
    assert 10_000_000 / best > 300e6, f"{10 / best:.0f} MB/s"


def _cpu_seconds(action: Callable[[], object]) -> float:
    # CPU time, not wall time: the test machines run other suites in parallel on 2 cores
    start = time.process_time()
    action()
    return time.process_time() - start
