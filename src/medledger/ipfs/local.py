"""The embedded block store: blocks as files on the local disk, no daemon needed.

Layout under ``root``::

    blocks/<first two hex digits of the digest>/<multihash in hex>   one file per block
    pins/<CID>                                                     one empty file per pin
    pins/<random>.pinset                                           the pins of one bulk() call
    lock                                                           flock for pin/gc/add

Blocks are keyed by multihash, as in Kubo's flatfs, so one file serves both the CIDv0 and any
CIDv1 of the same bytes. Every write goes to a temporary file in the same folder and is moved
into place with ``os.replace``, so a reader never sees half a block. A pin is one file named by
the CID (so adding a record costs one small write, whatever the number of pins), created with
its folder fsynced, because losing a pin would let ``gc`` delete a record; the many pins of one
``bulk()`` call go into one pin set file (a CID per line), written and fsynced at its end.
Blocks are fsynced
only with ``sync_writes=True`` (one fsync per 256 KiB block costs about four times the import
time here);
a block lost in a crash is then detected on read (missing or not matching its CID).

``add_*``, ``pin``, ``unpin``, ``delete_block`` and ``gc`` hold an exclusive ``flock`` on
``lock``, so a ``gc`` in another process never removes the blocks of a file being added.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from medledger.errors import (
    BlockCorrupted,
    BlockNotFound,
    DagFormatError,
    StoreError,
)
from medledger.files import write_atomically
from medledger.ipfs.blockstore import BlockStoreBase, iter_dag, verify_block
from medledger.ipfs.cid import Cid
from medledger.ipfs.unixfs import import_chunks

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from medledger.ipfs.protobuf import BytesLike

_MULTIHASH_HEX = len("1220") + 64
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}
_HELD_LOCKS: set[BinaryIO] = set()
PIN_SET_SUFFIX = ".pinset"


def _pin_set_text(cids: Iterable[Cid]) -> bytes:
    return "".join(f"{c}\n" for c in sorted(cids, key=str)).encode()


def _close_inherited_locks() -> None:
    """In a forked child: drop the descriptors of locks the parent holds (an flock lives as
    long as any descriptor of it is open, so a long-lived worker would keep it forever)."""
    for handle in list(_HELD_LOCKS):
        handle.close()
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def _digest_of_name(name: str) -> bytes | None:
    """The digest a block file's name holds; None for temporary or foreign files."""
    if len(name) != _MULTIHASH_HEX or not name.startswith("1220"):
        return None
    try:
        return bytes.fromhex(name[4:])
    except ValueError:
        return None


class LocalBlockStore(BlockStoreBase):
    """Blocks in files under ``root`` (created if missing; safe to reopen)."""

    def __init__(self, root: Path, *, sync_writes: bool = False) -> None:
        self.root = Path(root)
        self._blocks = self.root / "blocks"
        self._pins_dir = self.root / "pins"
        self._lock_path = self.root / "lock"
        self._sync = sync_writes
        self._bulk_depth = 0
        self._lock_owner: int | None = None  # the thread holding the flock, if this object does
        self._pending_pins: set[Cid] = set()  # pinned inside bulk(), written at its end
        self._read_only: str | None = None  # why it cannot be written, when it cannot
        super().__init__(f"local store {self.root}")
        try:
            if not self._blocks.is_dir():
                # All 256 shard folders up front: a block written to a missing shard costs a
                # failed open, a mkdir and a second open (a 10 MB body touches ~40 shards).
                self._blocks.mkdir(parents=True)
                for shard in range(256):
                    (self._blocks / f"{shard:02x}").mkdir(exist_ok=True)
            self._pins_dir.mkdir(exist_ok=True)
        except OSError as exc:
            if exc.errno not in _READ_ONLY:
                raise StoreError(f"{self.name} cannot be created: {exc.strerror}") from exc
            self._read_only = exc.strerror or "not writable"  # reads still work

    # --- blocks -----------------------------------------------------------------------------

    def block_path(self, cid: Cid) -> Path:
        """The file that holds the block (for inspection; write blocks with put_block)."""
        return self._blocks / cid.digest.hex()[:2] / cid.multihash.hex()

    def write_block_unlocked(self, cid: Cid, data: BytesLike) -> None:
        """Write a block whose CID the caller computed from ``data``, without taking the lock.

        For worker processes of a caller that holds ``bulk()`` (and so the lock) and pins the
        roots with :meth:`pin_written` afterwards; see ``medledger.sealing``.
        """
        self._write_block(cid, data)

    def _write_block(self, cid: Cid, data: BytesLike) -> None:
        path = self.block_path(cid)
        try:
            try:
                write_atomically(path, data, self._sync)
            except FileNotFoundError:  # first block of this shard: create its folder once
                path.parent.mkdir(exist_ok=True)
                write_atomically(path, data, self._sync)
        except OSError as exc:
            raise StoreError(f"{self.name} cannot write block {cid}: {exc.strerror}") from exc

    def get_block(self, cid: Cid) -> bytes:
        """Read and verify a block; BlockNotFound if absent, BlockCorrupted if altered."""
        try:
            data = self.block_path(cid).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(str(cid)) from None
        except OSError as exc:
            raise StoreError(f"{self.name} cannot read block {cid}: {exc.strerror}") from exc
        verify_block(cid, data, self.name)
        return data

    def has(self, cid: Cid) -> bool:
        """True when a file exists for the block (its content is checked on read)."""
        return self.block_path(cid).is_file()

    def delete_block(self, cid: Cid) -> None:
        """Remove one block file; refused (StoreError) if a pinned DAG needs it."""
        with self._locked():
            if cid.digest in self._pinned_digests("delete a block"):
                raise StoreError(f"block {cid} is pinned in {self.name}: unpin its root first")
            self.block_path(cid).unlink(missing_ok=True)

    # --- files and pins -----------------------------------------------------------------------

    def _import(self, chunks: Iterable[BytesLike], pin: bool) -> Cid:
        with self._locked():
            root = import_chunks(chunks, self._write_block)
            if pin:  # every block was just written: no need to walk the DAG again
                self._add_pin(root)
            return root

    def pin(self, cid: Cid) -> None:
        """Pin ``cid`` after checking that its whole DAG is present and intact."""
        with self._locked():
            for _ in iter_dag(self.get_block, cid):
                pass
            self._add_pin(cid)

    def pin_written(self, cid: Cid) -> None:
        """Pin a root whose blocks were just written for this ``bulk()`` call (no DAG walk)."""
        if not self._bulk_depth:
            raise StoreError(f"{self.name}: pin_written is only for blocks written inside bulk()")
        self._add_pin(cid)

    def unpin(self, cid: Cid) -> None:
        """Remove the pin on ``cid``; no error if it was not pinned."""
        with self._locked():
            self._pending_pins.discard(cid)
            (self._pins_dir / str(cid)).unlink(missing_ok=True)
            for path, members in self._pin_sets():
                if cid in members:
                    rest = members - {cid}
                    if rest:
                        write_atomically(path, _pin_set_text(rest), sync=True)
                    else:
                        path.unlink(missing_ok=True)
            self._sync_folder(self._pins_dir)

    def pins(self) -> frozenset[Cid]:
        """The recursively pinned roots."""
        return frozenset(self._load_pins())

    def gc(self) -> int:
        """Delete every block file no pin reaches; nothing is deleted if a pinned DAG is broken."""
        with self._locked():
            keep = self._pinned_digests("collect garbage")
            removed = 0
            for shard in self._blocks.iterdir():
                if not shard.is_dir():
                    continue
                for path in shard.iterdir():
                    digest = _digest_of_name(path.name)
                    if digest is not None and digest not in keep:
                        path.unlink(missing_ok=True)
                        removed += 1
            return removed

    def _pinned_digests(self, action: str) -> set[bytes]:
        """Digests of every block some pin reaches; StoreError if a pinned DAG cannot be walked."""
        seen: set[Cid] = set()
        for root in self._load_pins():
            try:
                for _ in iter_dag(self.get_block, root, seen):
                    pass
            except (BlockNotFound, BlockCorrupted, DagFormatError) as exc:
                raise StoreError(
                    f"{self.name} will not {action} while pinned DAG {root} is damaged "
                    f"(nothing was removed): {exc}"
                ) from exc
        return {cid.digest for cid in seen}

    def _load_pins(self) -> set[Cid]:
        pins: set[Cid] = set(self._pending_pins)
        if not self._pins_dir.is_dir():
            return pins  # a read-only store that was never created pins nothing
        for path in self._pins_dir.iterdir():
            if path.name.startswith(".") or path.name.endswith(PIN_SET_SUFFIX):
                continue  # a pin being written, or a pin set (below)
            try:
                pins.add(Cid.parse(path.name))
            except ValueError as exc:  # InvalidCid is a ValueError
                raise StoreError(f"{path} is damaged: not a pin ({exc})") from exc
        for _, members in self._pin_sets():
            pins |= members
        return pins

    def _pin_sets(self) -> list[tuple[Path, set[Cid]]]:
        sets = []
        for path in self._pins_dir.glob("*" + PIN_SET_SUFFIX):
            if path.name.startswith("."):
                continue
            try:
                members = {Cid.parse(line) for line in path.read_text().split()}
            except (OSError, ValueError) as exc:
                raise StoreError(f"{path} is damaged: not a pin set ({exc})") from exc
            sets.append((path, members))
        return sets

    def _add_pin(self, cid: Cid) -> None:
        # An empty file needs no data fsync: creating it and syncing its folder makes it
        # durable. Inside ``bulk()`` pins are kept and written at its end as one pin set.
        if self._bulk_depth:
            self._pending_pins.add(cid)
            return
        try:
            (self._pins_dir / str(cid)).touch()
            self._sync_folder(self._pins_dir)
        except OSError as exc:
            raise StoreError(f"{self.name} cannot save a pin: {exc.strerror}") from exc

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Add many files under one lock; their pins are written at the end as one pin set
        (one file and one folder sync, instead of a file per pin: creating a file costs
        60-200 us here, more than sealing a 1 KB record)."""
        with self._locked():
            self._bulk_depth += 1
            try:
                yield
            finally:
                self._bulk_depth -= 1
                if not self._bulk_depth and self._pending_pins:
                    self._flush_pins()

    def _flush_pins(self) -> None:
        """Write the pins added inside ``bulk()`` as one pin set, durably."""
        path = self._pins_dir / f"{uuid.uuid4().hex}{PIN_SET_SUFFIX}"
        try:
            write_atomically(path, _pin_set_text(self._pending_pins), sync=True)
            self._sync_folder(self._pins_dir)
        except OSError as exc:
            raise StoreError(f"{self.name} cannot save pins: {exc.strerror}") from exc
        self._pending_pins = set()

    @staticmethod
    def _sync_folder(folder: Path) -> None:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's exclusive lock (between processes and between threads).

        Reentrant for the thread that holds it (``bulk()`` holds it around many adds): a second
        ``flock`` on a new descriptor of the same file would wait for the first forever.
        """
        me = threading.get_ident()
        if self._lock_owner == me:
            yield
            return
        try:
            handle = open(self._lock_path, "ab")  # noqa: SIM115 (closed by the with below)
        except OSError as exc:
            if self._read_only is None and exc.errno not in _READ_ONLY:
                raise StoreError(f"{self.name} cannot be locked: {exc.strerror}") from exc
            why = self._read_only or exc.strerror
            raise StoreError(
                f"{self.name} is read-only ({why}): it can be read, not written"
            ) from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_owner = me
            _HELD_LOCKS.add(handle)
            try:
                yield
            finally:
                _HELD_LOCKS.discard(handle)
                self._lock_owner = None
