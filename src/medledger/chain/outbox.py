"""The outbox: a durable journal of every transaction this home signs, kept until it is safe.

Every transaction :class:`~medledger.chain.pipeline.Pipeline` sends is written here (signed, with
its hash and nonce) and committed to disk *before* it goes to the node, and marked mined when its
receipt comes back. So a command that printed a record id has that record's signed transaction on
disk, whatever happens to the node afterwards:

- on the embedded devnet, :mod:`medledger.chain.devnet` replays the journal after a restart from
  an older state (a crash of Anvil), and prunes it when a state snapshot covers it;
- on any chain, a later send from the same account first *settles* what an earlier, interrupted
  command left unmined (re-sends the very same signed transaction, or marks it dropped when
  another transaction took its nonce), and ``medledger doctor`` lists what is still not on chain.

It also keeps, per home: the bodies a write stored (so ``doctor`` can tell an orphan, stored by
a write that never landed, from a body a chain record needs), and the *intents* that make
anchoring idempotent (a keyed hash of issuer, patient and body mapped to the record id it got).

One SQLite file (``$MEDLEDGER_HOME/outbox.sqlite``, WAL, ``synchronous=FULL``): SQLite gives
atomic, durable commits across processes, which a hand-written journal file would have to
re-implement. Two processes sending from one account are serialised by :meth:`Outbox.sender_lock`
(an ``flock`` per chain and account), so nonces never clash between them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medledger.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

SIGNED, MINED, DROPPED = "signed", "mined", "dropped"
"""A journal entry's state: signed (committed, maybe sent, no receipt yet), mined (a receipt came
back; ``status`` says whether it succeeded), dropped (its nonce went to another transaction)."""

_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    chain TEXT NOT NULL,
    hash TEXT NOT NULL,
    sender TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    raw TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    block INTEGER,
    created REAL NOT NULL,
    UNIQUE (chain, hash)
);
CREATE INDEX IF NOT EXISTS sent_state ON sent (chain, state);
CREATE TABLE IF NOT EXISTS stored (
    cid TEXT NOT NULL,
    chain TEXT NOT NULL,
    pid INTEGER NOT NULL,
    created REAL NOT NULL,
    tx TEXT,
    PRIMARY KEY (chain, cid)
);
CREATE TABLE IF NOT EXISTS intents (
    chain TEXT NOT NULL,
    key BLOB NOT NULL,
    record BLOB NOT NULL,
    batch BLOB,
    cid TEXT NOT NULL,
    commitment BLOB NOT NULL,
    patient TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (chain, key)
);
"""


@dataclass(frozen=True)
class Entry:
    """One journalled transaction."""

    seq: int
    hash: str
    sender: str
    nonce: int
    raw: str
    action: str
    state: str
    status: int | None
    block: int | None


@dataclass(frozen=True)
class Stored:
    """A body a write stored: which transaction (if any) carried its pointer, and who stored it."""

    cid: str
    pid: int
    created: float
    tx: str | None


@dataclass(frozen=True)
class Intent:
    """What an earlier anchoring of the same body made: its record id, its batch (if any), and
    the sealed body it stored (so a run that never sent it can send it instead of sealing
    again)."""

    record: bytes
    batch: bytes | None
    cid: str
    commitment: bytes
    patient: str


class Outbox:
    """The journal of one home; rows are per chain (``chain``: a key from :func:`chain_key`)."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.path = home / "outbox.sqlite"
        self.pid = os.getpid()
        self._held: dict[str, int] = {}
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version < _VERSION:  # intents gained columns: an old table is only a cache
                self._db.execute("DROP TABLE IF EXISTS intents")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"the outbox {self.path} cannot be opened: {exc}") from None

    # --- sent transactions ------------------------------------------------------------------

    def add(
        self, chain: str, sender: str, action: str, signed: Iterable[tuple[str, int, str]]
    ) -> None:
        """Commit signed transactions ``(hash, nonce, raw)`` to disk before they are sent, and
        attach the bodies this process stored since its last send to the first of them."""
        rows = [(chain, h, sender, n, raw, action, SIGNED, time.time()) for h, n, raw in signed]
        if not rows:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO sent (chain, hash, sender, nonce, raw, action, state, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute(
                "UPDATE stored SET tx = ? WHERE chain = ? AND pid = ? AND tx IS NULL",
                (rows[0][1], chain, os.getpid()),
            )

    def mined(self, chain: str, results: Iterable[tuple[str, int, int]]) -> None:
        """Mark transactions ``(hash, block, status)`` mined."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE sent SET state = ?, block = ?, status = ? WHERE chain = ? AND hash = ?",
                [(MINED, block, status, chain, h) for h, block, status in results],
            )

    def unmine(self, chain: str, hashes: Iterable[str]) -> None:
        """Mark mined transactions the chain no longer has as unmined (rolled back)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE sent SET state = ?, block = NULL, status = NULL "
                "WHERE chain = ? AND hash = ?",
                [(SIGNED, chain, h) for h in hashes],
            )

    def dropped(self, chain: str, hashes: Iterable[str]) -> None:
        """Mark transactions dropped: another transaction took their nonce."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE sent SET state = ? WHERE chain = ? AND hash = ?",
                [(DROPPED, chain, h) for h in hashes],
            )

    def entries(
        self, chain: str, states: Iterable[str] = (SIGNED, MINED), sender: str | None = None
    ) -> list[Entry]:
        """Journal entries in the order they were signed."""
        wanted = tuple(states)
        query = (
            "SELECT seq, hash, sender, nonce, raw, action, state, status, block FROM sent "
            f"WHERE chain = ? AND state IN ({','.join('?' * len(wanted))})"
        )
        params: list[object] = [chain, *wanted]
        if sender is not None:
            query += " AND sender = ?"
            params.append(sender)
        rows = self._db.execute(query + " ORDER BY seq", params).fetchall()
        return [Entry(*row) for row in rows]

    def count(self, chain: str, states: Iterable[str] = (SIGNED, MINED)) -> int:
        """How many entries of a chain are in these states."""
        wanted = tuple(states)
        marks = ",".join("?" * len(wanted))
        (number,) = self._db.execute(
            f"SELECT COUNT(*) FROM sent WHERE chain = ? AND state IN ({marks})", [chain, *wanted]
        ).fetchone()
        return int(number)

    def prune(self, chain: str, through_block: int) -> int:
        """Forget mined entries in blocks up to ``through_block`` (a durable snapshot holds
        them) and dropped ones; return how many were removed."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM sent WHERE chain = ? AND ((state = ? AND block <= ?) OR state = ?)",
                (chain, MINED, through_block, DROPPED),
            )
            return cursor.rowcount

    def adopt(self, old: str, new: str) -> None:
        """Move the rows kept under an older name of a chain to its name now (once: a name
        with nothing under it costs one read)."""
        held = " UNION ALL ".join(
            f"SELECT 1 FROM (SELECT 1 FROM {t} WHERE chain = ? LIMIT 1)"
            for t in ("sent", "stored", "intents")
        )
        if self._db.execute(held, (old, old, old)).fetchone() is None:
            return
        with self._transaction() as db:
            for table in ("sent", "stored", "intents"):
                db.execute(f"UPDATE OR IGNORE {table} SET chain = ? WHERE chain = ?", (new, old))
                db.execute(f"DELETE FROM {table} WHERE chain = ?", (old,))

    def forget_chain(self, chain: str) -> None:
        """Drop everything about a chain (the devnet was reset on purpose)."""
        with self._transaction() as db:
            for table in ("sent", "stored", "intents"):
                db.execute(f"DELETE FROM {table} WHERE chain = ?", (chain,))

    # --- stored bodies ----------------------------------------------------------------------

    def stored(self, chain: str, cids: Iterable[str]) -> None:
        """Note bodies a write has just stored and pinned (linked to its first transaction by
        the next :meth:`add` of this process)."""
        with self._transaction() as db:
            _note_stored(db, chain, cids)

    def bodies(self, chain: str) -> list[Stored]:
        """Every body a write of this home stored on ``chain``."""
        rows = self._db.execute(
            "SELECT cid, pid, created, tx FROM stored WHERE chain = ?", (chain,)
        ).fetchall()
        return [Stored(*row) for row in rows]

    def sent_state(self, chain: str, tx: str) -> Entry | None:
        """The journal entry of one transaction, if the journal still has it."""
        row = self._db.execute(
            "SELECT seq, hash, sender, nonce, raw, action, state, status, block FROM sent "
            "WHERE chain = ? AND hash = ?",
            (chain, tx),
        ).fetchone()
        return Entry(*row) if row else None

    def forget_bodies(self, chain: str, cids: Iterable[str]) -> None:
        """Forget bodies that were collected."""
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM stored WHERE chain = ? AND cid = ?", [(chain, c) for c in cids]
            )

    # --- intents (idempotent anchoring) -----------------------------------------------------

    def intents(self, chain: str, keys: Iterable[bytes]) -> dict[bytes, Intent]:
        """What earlier anchorings of these keys made."""
        found: dict[bytes, Intent] = {}
        wanted = list(keys)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._db.execute(
                "SELECT key, record, batch, cid, commitment, patient FROM intents "
                f"WHERE chain = ? AND key IN ({','.join('?' * len(chunk))})",
                [chain, *chunk],
            ).fetchall()
            found.update({
                bytes(k): Intent(bytes(r), bytes(b) if b else None, c, bytes(m), p)
                for k, r, b, c, m, p in rows
            })  # fmt: skip
        return found

    def intend(
        self, chain: str, made: Iterable[tuple[bytes, Intent]], stored: Iterable[str] = ()
    ) -> None:
        """Remember, for each sameness key, the record about to be sent; and note ``stored``
        as :meth:`stored` does, in the same transaction (one commit, one fsync, not two)."""
        now = time.time()
        with self._transaction() as db:
            _note_stored(db, chain, stored, now)
            db.executemany(
                "INSERT OR REPLACE INTO intents (chain, key, record, batch, cid, commitment, "
                "patient, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (chain, k, i.record, i.batch, i.cid, i.commitment, i.patient, now)
                    for k, i in made
                ],
            )

    def sent_records(
        self, chain: str, patient: str | None = None, record: bytes | None = None
    ) -> list[tuple[Intent, Entry | None]]:
        """Records this home meant to write (of a patient, or one record), each with the journal
        entry of the transaction that carried its body (None: never sent, or pruned)."""
        query = (
            "SELECT i.record, i.batch, i.cid, i.commitment, i.patient, s.tx FROM intents i "
            "LEFT JOIN stored s ON s.chain = i.chain AND s.cid = i.cid WHERE i.chain = ?"
        )
        params: list[object] = [chain]
        if patient is not None:
            query += " AND i.patient = ?"
            params.append(patient)
        if record is not None:
            query += " AND i.record = ?"
            params.append(record)
        found = []
        for r, b, c, m, p, tx in self._db.execute(query, params).fetchall():
            intent = Intent(bytes(r), bytes(b) if b else None, c, bytes(m), p)
            found.append((intent, self.sent_state(chain, tx) if tx else None))
        return found

    # --- locks --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def sender_lock(self, chain: str, sender: str) -> Iterator[None]:
        """Hold the lock of one account on one chain: a second command writing from the same
        account waits here instead of taking the same nonces (or sealing the same bodies).
        Re-entrant within a process: a write holds it from its sameness check to its receipts,
        and the send inside takes it again."""
        name = f"{chain}-{sender.lower()}"
        if name in self._held:
            self._held[name] += 1
            try:
                yield
            finally:
                self._held[name] -= 1
            return
        folder = self.home / "locks"
        folder.mkdir(exist_ok=True)
        with (folder / f"{name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._held[name] = 1
            try:
                yield
            finally:
                del self._held[name]
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"the outbox {self.path} cannot be written: {exc}") from None


def _note_stored(
    db: sqlite3.Connection, chain: str, cids: Iterable[str], now: float | None = None
) -> None:
    """Insert or renew ``stored`` rows for this process, in the caller's transaction."""
    now, pid = now or time.time(), os.getpid()
    db.executemany(
        "INSERT INTO stored (cid, chain, pid, created) VALUES (?, ?, ?, ?) ON CONFLICT "
        "(chain, cid) DO UPDATE SET pid = excluded.pid, created = excluded.created, tx = NULL",
        [(c, chain, pid, now) for c in cids],
    )


_OPEN: dict[str, Outbox] = {}


def open_outbox(home: Path) -> Outbox:
    """The outbox of a home (one connection per process and home)."""
    key = str(home)
    if key not in _OPEN or _OPEN[key].pid != os.getpid():  # a forked child opens its own
        _OPEN[key] = Outbox(home)
    return _OPEN[key]
