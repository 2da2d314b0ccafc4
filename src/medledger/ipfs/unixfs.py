"""UnixFS files: an importer that gives the CIDs of ``ipfs add`` and a verifying reader.

The importer reproduces Kubo's defaults (go-unixfs ``importer/balanced``): CIDv0, fixed-size
chunks of 262,144 bytes, dag-pb leaves (not raw leaves) holding ``Data{Type=File, Data=chunk,
filesize}``, internal nodes with ``Data{Type=File, filesize, blocksizes}`` and at most 174 links,
and the balanced layout. Building the tree level by level, closing a node as soon as it holds 174
children, yields the same tree as Kubo's depth-first ``fillNodeRec``: every subtree is full except
the right-most one, and a right-most child is wrapped in its own node even when it has a single
child. An empty file is one leaf ``Data{Type=File, filesize=0}``.

Chunks are memoryview slices of the input and are copied once, into the block that carries them,
so import speed is bounded by sha256. A producer that can write the file's bytes where they
belong (an encryption, :func:`iter_leaves`) fills each leaf block in place instead: no copy.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from medledger.errors import DagFormatError
from medledger.ipfs.cid import DAG_PB, RAW, Cid
from medledger.ipfs.protobuf import (
    UNIXFS_FILE,
    UNIXFS_RAW,
    UNIXFS_TYPE_NAMES,
    BytesLike,
    PBLink,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    encode_unixfs,
)

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

CHUNK_SIZE = 262_144
MAX_LINKS = 174

BlockSink = Callable[[Cid, BytesLike], None]
"""Receives each new block of an import: ``sink(cid, data)``; the CID is already computed.
``data`` may be any bytes-like object; it is never changed after the call, and the sink must
copy it if it keeps it beyond the call (a store writes it out)."""

BlockSource = Callable[[Cid], bytes]
"""Returns the verified bytes of a block (a store's ``get_block``)."""


@dataclass(frozen=True, slots=True)
class _Child:
    cid: Cid
    tsize: int  # the child's block size plus the tsize of all its descendants
    filesize: int  # the file bytes below the child


def iter_chunks(data: BytesLike, size: int = CHUNK_SIZE) -> Iterator[memoryview]:
    """Split ``data`` into ``size``-byte views (the last one shorter), without copying."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]


class Leaf(bytearray):
    """A chunk that arrives already framed as its leaf block (see :func:`iter_leaves`):
    the importer takes the block as it is, instead of copying the chunk into a new one, and
    its digest when :func:`iter_leaves` computed it beside."""

    size: int  # the file bytes the leaf carries
    digest: bytes | None  # sha2-256 of the block, computed by iter_leaves (or None)


def iter_leaves(
    size: int,
    fill: Callable[[memoryview], None],
    hasher: Executor | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[Leaf]:
    """The leaf blocks of a ``size``-byte file, each built by having ``fill`` write the next
    bytes of the file straight into it (the file is never held whole); for ``import_chunks``.

    With a ``hasher`` (one worker thread), each leaf's sha2-256 is computed there while the
    next leaf is filled and the previous one is stored: hashlib releases the GIL. A leaf is
    allocated as it is needed, so its memory is reused once the sink is done with it."""
    pending: tuple[Leaf, Future[bytes]] | None = None
    for start in range(0, size, chunk_size):
        leaf = _filled_leaf(min(chunk_size, size - start), fill)
        if hasher is None:
            yield leaf
            continue
        hashing = hasher.submit(_sha256, leaf)
        if pending is not None:
            yield _with_digest(*pending)
        pending = leaf, hashing
    if pending is not None:
        yield _with_digest(*pending)


def _filled_leaf(n: int, fill: Callable[[memoryview], None]) -> Leaf:
    head, tail = _leaf_frame(n)
    leaf = Leaf(len(head) + n + len(tail))
    leaf.size, leaf.digest = n, None
    view = memoryview(leaf)
    view[: len(head)] = head
    fill(view[len(head) : len(head) + n])
    view[len(head) + n :] = tail
    return leaf


def _sha256(block: BytesLike) -> bytes:
    return hashlib.sha256(block).digest()


def _with_digest(leaf: Leaf, hashing: Future[bytes]) -> Leaf:
    leaf.digest = hashing.result()
    return leaf


@functools.lru_cache(maxsize=8)
def _leaf_frame(size: int) -> tuple[bytes, bytes]:
    """The bytes around the file data in a leaf carrying ``size`` bytes: (before, after)."""
    hole = memoryview(bytes(size))
    parts = encode_unixfs(UNIXFS_FILE, hole, size)
    at = next(i for i, part in enumerate(parts) if part is hole)
    tail = b"".join(parts[at + 1 :])
    block = encode_pbnode((), parts)
    return block[: len(block) - size - len(tail)], tail


def iter_stream_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Read ``stream`` in full ``size``-byte chunks (short reads are topped up, as Kubo does)."""
    while chunk := stream.read(size):
        if len(chunk) < size:  # a pipe or socket: gather the rest without quadratic copying
            gathered = bytearray(chunk)
            while len(gathered) < size and (more := stream.read(size - len(gathered))):
                gathered += more
            chunk = bytes(gathered)
        yield chunk


class _Builder:
    """Accumulates children level by level and emits each distinct block once."""

    def __init__(self, sink: BlockSink) -> None:
        self._sink = sink
        self._seen: set[bytes] = set()
        self._levels: list[list[_Child]] = []

    def _emit(self, block: BytesLike, digest: bytes | None = None) -> Cid:
        cid = Cid(0, DAG_PB, digest or hashlib.sha256(block).digest())
        if cid.digest not in self._seen:  # identical chunks (zeros...) share one block
            self._seen.add(cid.digest)
            self._sink(cid, block)
        return cid

    def add_leaf(self, chunk: BytesLike) -> None:
        if isinstance(chunk, Leaf):  # framed (and perhaps hashed) in place by iter_leaves
            cid = self._emit(chunk, chunk.digest)
            self._push(0, _Child(cid, len(chunk), chunk.size))
            return
        block = encode_pbnode((), encode_unixfs(UNIXFS_FILE, chunk, len(chunk)))
        self._push(0, _Child(self._emit(block), len(block), len(chunk)))

    def _push(self, level: int, child: _Child) -> None:
        if level == len(self._levels):
            self._levels.append([])
        row = self._levels[level]
        if len(row) == MAX_LINKS:  # full: close it, so the new child starts a sibling node
            self._push(level + 1, self._close(row))
            row = self._levels[level] = []
        row.append(child)

    def _close(self, row: list[_Child]) -> _Child:
        filesize = sum(c.filesize for c in row)
        links = [PBLink(c.cid, "", c.tsize) for c in row]
        data = encode_unixfs(UNIXFS_FILE, None, filesize, [c.filesize for c in row])
        block = encode_pbnode(links, data)
        return _Child(self._emit(block), len(block) + sum(c.tsize for c in row), filesize)

    def finish(self) -> Cid:
        if not self._levels:  # no bytes at all: Kubo's empty-file leaf
            return self._emit(encode_pbnode((), encode_unixfs(UNIXFS_FILE, None, 0)))
        level = 0
        while True:
            row = self._levels[level]
            if level == len(self._levels) - 1 and len(row) == 1:
                return row[0].cid
            self._levels[level] = []
            self._push(level + 1, self._close(row))
            level += 1


def import_chunks(chunks: Iterable[BytesLike], sink: BlockSink) -> Cid:
    """Build the UnixFS DAG of a file from its chunks, feed each block to ``sink``, return the root.

    Blocks reach ``sink`` children first, the root last; a block repeated in the file is sent once.
    A chunk may be a :class:`Leaf` (from :func:`iter_leaves`), which is its own leaf block.
    """
    builder = _Builder(sink)
    for chunk in chunks:
        builder.add_leaf(chunk)
    return builder.finish()


def hash_bytes(data: BytesLike) -> Cid:
    """The CID ``ipfs add`` gives ``data``, storing nothing (like ``ipfs add -n``)."""
    return import_chunks(iter_chunks(data), lambda _cid, _block: None)


def iter_file(get_block: BlockSource, root: Cid) -> Iterator[memoryview]:
    """Yield the bytes of the UnixFS file ``root`` in order, walking its DAG depth-first.

    Every block comes from ``get_block``, which verifies it against its CID; the sizes recorded in
    each node are checked against what its children deliver, so a DAG that is well hashed but
    inconsistent raises :class:`~medledger.errors.DagFormatError` instead of returning wrong bytes.
    """
    stack: list[tuple[Cid, int | None]] = [(root, None)]
    while stack:
        cid, expected = stack.pop()
        block = get_block(cid)
        if cid.codec == RAW:  # raw leaves (``ipfs add --raw-leaves``): the block is the data
            _check_size(cid, expected, len(block))
            yield memoryview(block)
            continue
        node = decode_pbnode(block, cid)
        if node.data is None:
            raise DagFormatError(str(cid), "dag-pb node has no UnixFS Data")
        fs = decode_unixfs(node.data, cid)
        if fs.kind not in (UNIXFS_FILE, UNIXFS_RAW):
            kind = UNIXFS_TYPE_NAMES.get(fs.kind, f"type {fs.kind}")
            raise DagFormatError(str(cid), f"it is a UnixFS {kind}, not a file")
        if len(fs.blocksizes) != len(node.links):
            raise DagFormatError(
                str(cid), f"{len(node.links)} links but {len(fs.blocksizes)} blocksizes"
            )
        own = fs.data if fs.data is not None else memoryview(b"")
        total = len(own) + sum(fs.blocksizes)
        if fs.filesize is not None and fs.filesize != total:
            raise DagFormatError(str(cid), f"filesize {fs.filesize} but its parts hold {total}")
        _check_size(cid, expected, total)
        if own:
            yield own
        children = list(zip(node.links, fs.blocksizes, strict=True))
        stack.extend((link.cid, size) for link, size in reversed(children))


def _check_size(cid: Cid, expected: int | None, actual: int) -> None:
    if expected is not None and expected != actual:
        raise DagFormatError(str(cid), f"holds {actual} bytes, its parent says {expected}")
