"""The block store interface every MedLedger store implements, and the helpers they share.

A store keeps blocks by CID. ``get_block`` always verifies the bytes against the CID and raises
:class:`~medledger.errors.BlockCorrupted` naming the store; ``put_block`` verifies what it is
given. On top of these, :class:`BlockStoreBase` gives every store the same file operations
(``add_bytes``, ``add_file``, ``cat``), so a CID computed here is the one ``ipfs add`` prints.
Pins are recursive: ``gc`` removes every block that no pinned DAG reaches.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from medledger.errors import BlockCorrupted
from medledger.ipfs.cid import DAG_PB, Cid
from medledger.ipfs.protobuf import BytesLike, decode_pbnode
from medledger.ipfs.unixfs import (
    BlockSource,
    import_chunks,
    iter_chunks,
    iter_file,
    iter_stream_chunks,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


class BlockStore(Protocol):
    """What MedLedger needs from a place that keeps IPFS blocks."""

    @property
    def name(self) -> str:
        """A short human description (``local store /path``), used in error messages."""
        ...

    def put_block(self, cid: Cid, data: BytesLike) -> None:
        """Store ``data`` under ``cid``; raises BlockCorrupted if it does not hash to ``cid``."""
        ...

    def get_block(self, cid: Cid) -> bytes:
        """Return the block, verified; BlockNotFound if absent, BlockCorrupted if altered."""
        ...

    def has(self, cid: Cid) -> bool:
        """True when the store holds a block for ``cid`` (without reading it)."""
        ...

    def delete_block(self, cid: Cid) -> None:
        """Remove one block; no error if absent; refused for a block a pin needs."""
        ...

    def add_bytes(self, data: bytes, pin: bool = True) -> Cid:
        """Import ``data`` as a UnixFS file (``ipfs add`` defaults); return the root CID."""
        ...

    def add_file(self, path: Path, pin: bool = True) -> Cid:
        """Import the file at ``path``, streaming it; return the root CID."""
        ...

    def add_chunks(self, chunks: Iterable[BytesLike], pin: bool = True) -> Cid:
        """Import a file given chunk by chunk (``CHUNK_SIZE`` each, the last shorter; or
        ``unixfs.Leaf`` blocks filled in place); return the root CID."""
        ...

    def cat(self, cid: Cid) -> bytes:
        """Return the bytes of the UnixFS file ``cid``, every block verified."""
        ...

    def iter_cat(self, cid: Cid) -> Iterator[memoryview]:
        """Yield the file ``cid`` piece by piece (for large files), every block verified."""
        ...

    def pin(self, cid: Cid) -> None:
        """Pin the DAG under ``cid`` recursively; the whole DAG must be present."""
        ...

    def unpin(self, cid: Cid) -> None:
        """Remove the recursive pin on ``cid`` (no error if it was not pinned)."""
        ...

    def pins(self) -> frozenset[Cid]:
        """The recursively pinned roots."""
        ...

    def bulk(self) -> contextlib.AbstractContextManager[None]:
        """A context in which many adds may defer their durability work to its end."""
        ...

    def gc(self) -> int:
        """Remove every block no recursive pin reaches; return how many were removed."""
        ...


def verify_block(cid: Cid, data: BytesLike, source: str) -> None:
    """Raise BlockCorrupted (naming ``source``) unless ``data`` hashes to ``cid``."""
    if not cid.matches(data):
        raise BlockCorrupted(str(cid), source)


def child_cids(cid: Cid, block: bytes) -> list[Cid]:
    """The CIDs a block links to: the links of a dag-pb node, none for a raw block."""
    if cid.codec != DAG_PB:
        return []
    return [link.cid for link in decode_pbnode(block, cid).links]


def iter_dag(
    get_block: BlockSource, root: Cid, seen: set[Cid] | None = None
) -> Iterator[tuple[Cid, bytes]]:
    """Yield ``(cid, block)`` for every block under ``root``, depth-first, each block once.

    The order is that of ``ipfs dag export`` (a node, then each child's subtree in link order).
    Blocks already in ``seen`` are skipped, and every visited CID is added to it, so one set can
    be shared across several roots.
    """
    visited = seen if seen is not None else set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in visited:
            continue
        visited.add(cid)
        block = get_block(cid)
        yield cid, block
        stack.extend(reversed(child_cids(cid, block)))


class BlockStoreBase(ABC):
    """Shared implementation of the file-level operations on top of a store's primitives."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        """A short human description of the store, used in error messages."""
        return self._name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name}>"

    def bulk(self) -> contextlib.AbstractContextManager[None]:
        """A context for many adds; stores that can defer durability work override it."""
        return contextlib.nullcontext()

    def put_block(self, cid: Cid, data: BytesLike) -> None:
        """Store ``data`` under ``cid`` after checking that it hashes to ``cid``."""
        verify_block(cid, data, "the caller of put_block")
        self._write_block(cid, data)

    @abstractmethod
    def _write_block(self, cid: Cid, data: BytesLike) -> None:
        """Store a block whose CID the caller has computed (no hashing here); keep no
        reference to ``data`` (it may be a caller's buffer)."""

    @abstractmethod
    def get_block(self, cid: Cid) -> bytes:
        """Return the block, verified against ``cid``."""

    @abstractmethod
    def has(self, cid: Cid) -> bool:
        """True when the store holds a block for ``cid``."""

    @abstractmethod
    def delete_block(self, cid: Cid) -> None:
        """Remove one block (no error if absent; refused if a pin needs it)."""

    @abstractmethod
    def pin(self, cid: Cid) -> None:
        """Pin the DAG under ``cid`` recursively."""

    @abstractmethod
    def unpin(self, cid: Cid) -> None:
        """Remove the recursive pin on ``cid``."""

    @abstractmethod
    def pins(self) -> frozenset[Cid]:
        """The recursively pinned roots."""

    @abstractmethod
    def gc(self) -> int:
        """Remove unpinned blocks; return how many were removed."""

    def add_bytes(self, data: bytes, pin: bool = True) -> Cid:
        """Import ``data`` as a UnixFS file with ``ipfs add`` defaults; return the root CID."""
        return self._import(iter_chunks(data), pin)

    def add_file(self, path: Path, pin: bool = True) -> Cid:
        """Import the file at ``path`` chunk by chunk; return the root CID."""
        with Path(path).open("rb") as stream:
            return self._import(iter_stream_chunks(stream), pin)

    def add_chunks(self, chunks: Iterable[BytesLike], pin: bool = True) -> Cid:
        """Import a file given chunk by chunk (or as ``unixfs.Leaf`` blocks); return the root."""
        return self._import(chunks, pin)

    def _import(self, chunks: Iterable[BytesLike], pin: bool) -> Cid:
        """Write the blocks of a file and pin its root; stores override this to add locking."""
        root = import_chunks(chunks, self._write_block)
        if pin:
            self.pin(root)
        return root

    def cat(self, cid: Cid) -> bytes:
        """Return the bytes of the UnixFS file ``cid``; every block is verified."""
        return b"".join(self.iter_cat(cid))

    def iter_cat(self, cid: Cid) -> Iterator[memoryview]:
        """Yield the file ``cid`` piece by piece; every block is verified."""
        return iter_file(self.get_block, cid)
