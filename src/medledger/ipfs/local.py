"""The embedded block store: an SQLite database beside a folder of large blocks, no daemon needed.

Layout under ``root``::

    store.db (+ -wal, -shm)     SQLite in WAL mode: small blocks, the pins, the layout version
    blocks/<2 hex>/<multihash>  blocks of 32 KiB or more, one file each (see ``_blockfiles``)

Blocks are keyed by multihash, as in Kubo's datastores, so one entry serves both the CIDv0 and
any CIDv1 of the same bytes. A record's sealed body is one block of about 1.3 KB: as a file it
cost ~110 us to create and rename, as a row ~12 us, and one commit covers a whole ``bulk()``.
Large blocks stay files (faster there, and a big body streams through them block by block).

Every add, ``bulk()`` call, pin, unpin, ``delete_block`` and ``gc`` is one SQLite write
transaction (``BEGIN IMMEDIATE``, committed with ``synchronous=FULL``): a crash leaves all of it
or none of it, and pins are durable once the call returns. SQLite lets one writer in at a time,
across processes, so a ``gc`` elsewhere waits until an add (and its pin) is committed, and
never removes the blocks of an add in progress; readers never wait (WAL). A store written by
the file-per-block code (``pins/`` folder) is migrated when opened (see ``_legacy``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from medledger.errors import BlockCorrupted, BlockNotFound, DagFormatError, StoreError
from medledger.ipfs import _legacy
from medledger.ipfs._blockfiles import (
    LARGE,
    block_file,
    iter_block_files,
    make_shards,
    write_block_file,
)
from medledger.ipfs.blockstore import BlockStoreBase, iter_dag, verify_block
from medledger.ipfs.cid import Cid
from medledger.ipfs.unixfs import import_chunks

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.protobuf import BytesLike

DB_NAME = "store.db"
BUSY_SECONDS = 600.0  # how long a writer waits for another process's transaction to end
_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS blocks (multihash BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pins (cid BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
COMMIT;
"""  # one transaction: one fsync when the store is created
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}
_OPEN_STORES: weakref.WeakSet[LocalBlockStore] = weakref.WeakSet()


def _forget_parent_connections() -> None:
    """In a forked child: a store object inherited from the parent opens its own connection
    (SQLite connections must not cross a fork) and must not wait on a lock the parent held."""
    for store in list(_OPEN_STORES):
        store._after_fork()


os.register_at_fork(after_in_child=_forget_parent_connections)


class LocalBlockStore(BlockStoreBase):
    """The embedded store under ``root`` (created if missing; safe to reopen, from many
    processes at once). A folder that cannot be written is opened read-only."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blocks_dir = self.root / "blocks"
        self.db_path = self.root / DB_NAME
        self._read_only: str | None = None  # why it cannot be written, when it cannot
        self._conn: sqlite3.Connection | None = None
        self._abandoned: list[sqlite3.Connection] = []  # a parent's, kept open in a fork child
        self._mutex = threading.RLock()  # one connection per process, shared by its threads
        self._depth = 0  # nesting of write transactions (bulk() around adds)
        super().__init__(f"local store {self.root}")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno not in _READ_ONLY:
                raise StoreError(f"{self.name} cannot be created: {exc.strerror}") from exc
            self._read_only = exc.strerror or "not writable"  # reads still work
        _OPEN_STORES.add(self)
        if self._read_only is None:
            self._db()  # create the database now (~10 ms of fsyncs once), not in the first add
            try:
                make_shards(self.blocks_dir)
            except OSError as exc:
                raise StoreError(f"{self.name} cannot be created: {exc.strerror}") from exc
            if _legacy.needs_migration(self.root):
                _legacy.migrate(self)

    def _after_fork(self) -> None:
        if self._conn is not None:
            self._abandoned.append(self._conn)  # closing it here could disturb the parent's
        self._conn = None
        self._mutex = threading.RLock()
        self._depth = 0

    # --- the database ---------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection | None:
        """This process's connection (opened on first use); None for a read-only store that
        holds no database yet."""
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> sqlite3.Connection | None:
        if self._read_only is None:
            try:
                conn = sqlite3.connect(
                    self.db_path, timeout=BUSY_SECONDS, isolation_level=None,
                    check_same_thread=False,
                )  # fmt: skip
                conn.execute("PRAGMA page_size = 16384")  # before the first table only
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                # Up to 64 MiB of pages, taken only as used: a bulk() of 10,000 records then
                # stays in memory until its commit (8 us a record instead of 11, measured).
                conn.execute("PRAGMA cache_size = -65536")
                if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                    conn.executescript(_SCHEMA)
                return conn
            except sqlite3.OperationalError as exc:
                if "readonly" not in str(exc) and "unable to open" not in str(exc):
                    raise StoreError(f"{self.name} cannot be opened: {exc}") from exc
                self._read_only = str(exc)
        if not self.db_path.is_file():
            return None
        for mode in ("mode=ro", "immutable=1"):  # immutable: a read-only medium without -shm
            try:
                conn = sqlite3.connect(
                    f"{self.db_path.as_uri()}?{mode}", uri=True, check_same_thread=False
                )
                conn.execute("SELECT count(*) FROM pins").fetchone()
                return conn
            except sqlite3.Error as exc:
                last = exc
        raise StoreError(f"{self.name} cannot be read: {last}")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (nested calls join the open one): committed, durably, at the
        end of the outermost call; rolled back if it raises."""
        with self._mutex:
            conn = self._db() if self._read_only is None else None
            if conn is None or self._read_only is not None:
                raise StoreError(
                    f"{self.name} is read-only ({self._read_only}): it can be read, not written"
                )
            if self._depth:
                self._depth += 1
                try:
                    yield conn
                finally:
                    self._depth -= 1
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._write_error(exc) from exc
            self._depth = 1
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    conn.execute("ROLLBACK")
                    raise self._write_error(exc) from exc
            finally:
                self._depth = 0

    def _write_error(self, exc: sqlite3.OperationalError) -> StoreError:
        if "readonly" in str(exc):
            self._read_only = str(exc)
            return StoreError(f"{self.name} is read-only ({exc}): it can be read, not written")
        if "locked" in str(exc):
            return StoreError(
                f"{self.name} is busy: another process held it for {BUSY_SECONDS:.0f} s; try again"
            )
        return StoreError(f"{self.name} cannot be written: {exc}")

    # --- blocks ---------------------------------------------------------------------------

    def _write_block(self, cid: Cid, data: BytesLike) -> None:
        with self._writing() as conn:
            if len(data) >= LARGE:
                write_block_file(self.blocks_dir, cid, data, self.name)
            else:  # SQLite copies the bytes: no reference to a caller's buffer is kept.
                # REPLACE, not IGNORE: writing a verified block repairs a damaged copy.
                conn.execute("INSERT OR REPLACE INTO blocks VALUES (?, ?)", (cid.multihash, data))

    def put_blocks(self, blocks: Iterable[tuple[bytes, BytesLike]], roots: Iterable[Cid]) -> None:
        """Store the small blocks ``(multihash, data)`` a :class:`BlockBatch` gathered and pin
        ``roots`` (whose large blocks it wrote), in the open transaction of ``bulk()``."""
        if not self._depth:
            raise StoreError(f"{self.name}: put_blocks is only for blocks written inside bulk()")
        with self._writing() as conn:
            conn.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?)", blocks)
            conn.executemany("INSERT OR IGNORE INTO pins VALUES (?)", _pin_rows(roots))

    def _stored(self, cid: Cid) -> bytes | None:
        with self._mutex:
            conn = self._db()
            row = None
            if conn is not None:
                row = conn.execute(
                    "SELECT data FROM blocks WHERE multihash = ?", (cid.multihash,)
                ).fetchone()
        if row is not None:
            return bytes(row[0])
        try:
            return block_file(self.blocks_dir, cid.multihash).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{self.name} cannot read block {cid}: {exc.strerror}") from exc

    def get_block(self, cid: Cid) -> bytes:
        """Read and verify a block; BlockNotFound if absent, BlockCorrupted if altered."""
        data = self._stored(cid)
        if data is None:
            raise BlockNotFound(str(cid))
        verify_block(cid, data, self.name)
        return data

    def has(self, cid: Cid) -> bool:
        """True when the store holds the block (its content is checked on read)."""
        with self._mutex:
            conn = self._db()
            if (
                conn is not None
                and conn.execute(
                    "SELECT 1 FROM blocks WHERE multihash = ?", (cid.multihash,)
                ).fetchone()
            ):
                return True
        return block_file(self.blocks_dir, cid.multihash).is_file()

    def delete_block(self, cid: Cid) -> None:
        """Remove one block; refused (StoreError) if a pinned DAG needs it."""
        with self._writing() as conn:
            if cid.multihash in self._pinned_multihashes("delete a block"):
                raise StoreError(f"block {cid} is pinned in {self.name}: unpin its root first")
            conn.execute("DELETE FROM blocks WHERE multihash = ?", (cid.multihash,))
            block_file(self.blocks_dir, cid.multihash).unlink(missing_ok=True)

    def multihashes(self) -> set[bytes]:
        """The multihash of every stored block (for inspection and tests)."""
        with self._mutex:
            conn = self._db()
            rows = conn.execute("SELECT multihash FROM blocks").fetchall() if conn else []
        return {bytes(row[0]) for row in rows} | {mh for mh, _ in iter_block_files(self.blocks_dir)}

    # --- files and pins -------------------------------------------------------------------

    def _import(self, chunks: Iterable[BytesLike], pin: bool) -> Cid:
        with self._writing() as conn:
            root = import_chunks(chunks, self._write_block)
            if pin:  # every block was just written: no need to walk the DAG again
                conn.execute("INSERT OR IGNORE INTO pins VALUES (?)", (root.to_bytes(),))
            return root

    def pin(self, cid: Cid) -> None:
        """Pin ``cid`` after checking that its whole DAG is present and intact."""
        with self._writing() as conn:
            for _ in iter_dag(self.get_block, cid):
                pass
            conn.execute("INSERT OR IGNORE INTO pins VALUES (?)", (cid.to_bytes(),))

    def pin_written(self, cid: Cid) -> None:
        """Pin a root whose blocks were just written for this ``bulk()`` call (no DAG walk)."""
        if not self._depth:
            raise StoreError(f"{self.name}: pin_written is only for blocks written inside bulk()")
        with self._writing() as conn:
            conn.execute("INSERT OR IGNORE INTO pins VALUES (?)", (cid.to_bytes(),))

    def unpin(self, cid: Cid) -> None:
        """Remove the pin on ``cid``; no error if it was not pinned."""
        with self._writing() as conn:
            conn.execute("DELETE FROM pins WHERE cid = ?", (cid.to_bytes(),))

    def pins(self) -> frozenset[Cid]:
        """The recursively pinned roots."""
        with self._mutex:
            conn = self._db()
            rows = conn.execute("SELECT cid FROM pins").fetchall() if conn else []
        pins = set()
        for (raw,) in rows:
            try:
                pins.add(Cid.from_bytes(raw))
            except (ValueError, TypeError) as exc:  # InvalidCid is a ValueError
                raise StoreError(f"{self.name} is damaged: {raw!r} is not a pin ({exc})") from exc
        return frozenset(pins)

    def gc(self) -> int:
        """Delete every block no pin reaches; nothing is deleted if a pinned DAG is broken."""
        with self._writing() as conn:
            keep = self._pinned_multihashes("collect garbage")
            rows = conn.execute("SELECT multihash FROM blocks").fetchall()
            drop = [row for row in rows if bytes(row[0]) not in keep]
            conn.executemany("DELETE FROM blocks WHERE multihash = ?", drop)
            removed = len(drop)
            for multihash, path in iter_block_files(self.blocks_dir):
                if multihash not in keep:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed

    def _pinned_multihashes(self, action: str) -> set[bytes]:
        """Every block some pin reaches; StoreError if a pinned DAG cannot be walked."""
        seen: set[Cid] = set()
        for root in self.pins():
            try:
                for _ in iter_dag(self.get_block, root, seen):
                    pass
            except (BlockNotFound, BlockCorrupted, DagFormatError) as exc:
                raise StoreError(
                    f"{self.name} will not {action} while pinned DAG {root} is damaged "
                    f"(nothing was removed): {exc}"
                ) from exc
        return {cid.multihash for cid in seen}

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Add many files in one transaction: one commit (and one fsync) at the end, and a
        ``gc`` in another process waits for it."""
        with self._writing():
            yield


def _pin_rows(cids: Iterable[Cid]) -> list[tuple[bytes]]:
    """Pins are binary CIDs: base58 text cost ~30 us a pin, more than storing the block."""
    return [(cid.to_bytes(),) for cid in cids]


class BlockBatch:
    """A block sink for a sealing worker process: small blocks are kept (copied) for the parent
    to store with :meth:`LocalBlockStore.put_blocks` in its ``bulk()`` transaction; large ones
    are written as files at once (the parent's open transaction keeps a ``gc`` away from them).

    Why the blocks go back rather than each worker committing them: ``medledger.sealed.sealing``.
    """

    def __init__(self, root: Path) -> None:
        self._blocks_dir = Path(root) / "blocks"
        self._name = f"local store {root}"
        self.small: list[tuple[bytes, bytes]] = []

    def sink(self, cid: Cid, data: BytesLike) -> None:
        """Take one block of an import (``unixfs.BlockSink``)."""
        if len(data) >= LARGE:
            write_block_file(self._blocks_dir, cid, data, self._name)
        else:
            self.small.append((cid.multihash, bytes(data)))


def tamper_with_block(store: BlockStore, cid: Cid, data: bytes | None) -> None:
    """Play an attacker (or a failing disk) with access to the store's files: replace the
    stored bytes of ``cid`` with ``data``, or delete them when ``data`` is None, straight in the
    database file and the block file, bypassing every check and pin. For tests and the demo,
    which prove that a read then reports the block as corrupted or missing (and put the
    original bytes back the same way). StoreError for a store that is not the embedded one."""
    if not isinstance(store, LocalBlockStore):
        raise StoreError(f"only the embedded store's files can be altered, not {store.name}")
    multihash = cid.multihash
    path = block_file(store.blocks_dir, multihash)
    as_file = data is not None and (path.is_file() or len(data) >= LARGE)  # where it lives
    if not as_file:
        path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(store.db_path, isolation_level=None)) as conn:
        conn.execute("DELETE FROM blocks WHERE multihash = ?", (multihash,))
        if data is not None and not as_file:
            conn.execute("INSERT INTO blocks VALUES (?, ?)", (multihash, data))
    if data is not None and as_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
