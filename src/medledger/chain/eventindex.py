"""The event index: every event of one deployment's contracts, kept in SQLite under the home.

Reads of history, grants, audit, claims, trials and batches ask this index, never the node for
the whole chain: before each query it fetches only the blocks it has not seen, in pages of the
network's ``log_block_range`` (halved while a provider refuses a page as too large), all
contracts of the deployment in one ``eth_getLogs`` per page.

Reorg-safe: it remembers the hash of every block it holds events of and of every page's last
block. Before it reads on, it checks the hash of the last block it indexed; when the node now
has another block there (a reorg, or a devnet reverted to a snapshot), it finds the highest
remembered block the node still has (a binary search: below a replaced block every block is
kept, above it none is), deletes everything above it and indexes again from there. A page is
kept only if the last block's hash after the page is the one seen before it (the head's, for
the last page), so a reorg during a request cannot mix two forks into the index.

The index is a cache of the chain: the file can be deleted at any time (it is rebuilt, with
progress shown for a long chain), and a file for another deployment of the same chain is
cleared. It is one file per chain and deployment: ``<home>/index/<chain id>-<genesis>.db``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import warnings
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medledger.errors import NodeUnavailable, Notice

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from medledger.chain.client import Chain
    from medledger.chain.deployments import Deployment

CACHE_KEY = "event-index"
_VERSION = 1
#: A cold start of more pages than this shows its progress (as notices, every few seconds).
_PROGRESS_PAGES = 8
_PROGRESS_EVERY_SECONDS = 2.0
#: Headers asked in one batch when a node's logs carry no block time.
_HEADER_BATCH = 100
#: Alternatives for one topic in one query (more are asked in slices).
_MOST_ALTERNATIVES = 500
#: Passes of one sync before a chain whose head keeps changing forks is reported.
_SYNC_ATTEMPTS = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    block INTEGER NOT NULL,
    position INTEGER NOT NULL,
    address TEXT NOT NULL,
    t0 BLOB NOT NULL,
    t1 BLOB,
    t2 BLOB,
    t3 BLOB,
    data BLOB NOT NULL,
    tx BLOB NOT NULL,
    PRIMARY KEY (block, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_by_t1 ON logs (t0, t1);
CREATE INDEX IF NOT EXISTS logs_by_t2 ON logs (t0, t2);
CREATE INDEX IF NOT EXISTS logs_by_t3 ON logs (t0, t3);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL, time INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


#: The columns of a :class:`RawLog`, its block's time joined in.
_SELECT = (
    "SELECT logs.address, t0, t1, t2, t3, data, logs.block, position, tx, blocks.time "
    "FROM logs LEFT JOIN blocks ON blocks.number = logs.block"
)


@dataclass(frozen=True)
class RawLog:
    """One indexed event as the node sent it (topics and data undecoded)."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block: int
    position: int
    transaction_hash: bytes
    time: int | None


class EventIndex:
    """The events of one deployment, synced from one node."""

    def __init__(self, chain: Chain, recorded: Deployment, path: Path | None) -> None:
        self.chain = chain
        self.addresses = sorted(c.address.lower() for c in recorded.contracts.values())
        self.start = min(c.block for c in recorded.contracts.values())
        self.page = max(1, chain.settings.log_block_range_for(chain.network))
        self.path = path
        #: Open :func:`one_view` blocks: while any is, queries do not sync again.
        self.held = 0
        self._db = _open(path)
        self._check_deployment(recorded)

    # --- reading ------------------------------------------------------------------------------

    def select(
        self, address: str, topics: list[Any], from_block: int | None = None
    ) -> list[RawLog]:
        """The indexed events of ``address`` whose topics match ``topics`` (``eth_getLogs``
        form: a value, a list of alternatives, or None for any), oldest first."""
        for position, wanted in enumerate(topics):
            if isinstance(wanted, list) and len(wanted) > _MOST_ALTERNATIVES:
                # One query per slice (SQLite bounds the parameters of one statement).
                found = [
                    log
                    for at in range(0, len(wanted), _MOST_ALTERNATIVES)
                    for log in self.select(
                        address,
                        [*topics[:position], wanted[at : at + _MOST_ALTERNATIVES],
                         *topics[position + 1 :]],
                        from_block,
                    )
                ]  # fmt: skip
                unique = {(log.block, log.position): log for log in found}
                return [unique[key] for key in sorted(unique)]
        where = ["logs.address = ?"]
        args: list[Any] = [address.lower()]
        for position, wanted in enumerate(topics):
            if wanted is None:
                continue
            options = wanted if isinstance(wanted, list) else [wanted]
            if not options:
                return []
            where.append(f"t{position} IN ({','.join('?' * len(options))})")
            args.extend(hex_bytes(o) for o in options)
        if from_block is not None:
            where.append("logs.block >= ?")
            args.append(from_block)
        rows = self._db.execute(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY logs.block, position", args
        ).fetchall()
        return [_raw(row) for row in rows]

    def every(self) -> Iterator[RawLog]:
        """Every indexed event of the deployment, oldest first."""
        rows = self._db.execute(f"{_SELECT} ORDER BY logs.block, position")
        return (_raw(row) for row in rows)

    # --- facts derived from events -----------------------------------------------------------

    def derived(self, schema: str) -> sqlite3.Connection:
        """The index's database with the tables ``schema`` creates (SQL statements, each
        table by ``CREATE TABLE IF NOT EXISTS name``), for facts a module derives from indexed
        events and keeps beside them. Each row names the ``block`` of the event it comes
        from; a rewind deletes the rows above the block it keeps, as it deletes the events,
        and a new deployment clears the tables."""
        tables = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", schema))
        if not tables <= set(self._derived()):
            with self._write() as db:
                for statement in filter(str.strip, schema.split(";")):
                    db.execute(statement)
                known = sorted({*self._derived(), *tables})
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('derived', ?)", (json.dumps(known),)
                )
        return self._db

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the index's database (for derived facts)."""
        with self._write() as db:
            yield db

    def _derived(self) -> list[str]:
        return list(json.loads(self._meta("derived") or "[]"))

    @property
    def synced(self) -> int:
        """The last block indexed (one before the deployment's first: none yet)."""
        value = self._meta("synced")
        return int(value) if value is not None else self.start - 1

    # --- syncing ------------------------------------------------------------------------------

    def sync(self) -> int:
        """Index every block up to the node's head; return the head."""
        for _attempt in range(_SYNC_ATTEMPTS):
            head = self._sync_once()
            if head is not None:
                return head
        raise NodeUnavailable("chain RPC", self.chain.url, "its head keeps changing forks")

    def _sync_once(self) -> int | None:
        """One pass: check the last indexed block, rewind if it was replaced, fetch the rest.
        None: the chain changed under the pass (a reorg, or another process rewound)."""
        synced = self.synced
        calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", ["latest", False])]
        if synced >= self.start:
            calls.append(("eth_getBlockByNumber", [hex(synced), False]))
        replies = self._ask(calls)
        head_block = replies[0]
        head, head_hash = _int(head_block["number"]), hex_bytes(head_block["hash"])
        if synced >= self.start:
            tip = replies[1]
            if tip is None or hex_bytes(tip["hash"]) != self._hash(synced):
                synced = self._rewind(head)
        if synced >= head:
            return head
        return head if self._fetch(synced + 1, head, head_hash) else None

    def _fetch(self, first: int, head: int, head_hash: bytes) -> bool:
        """Index blocks ``first``..``head``; False if the chain changed meanwhile."""
        page = self.page
        start, total, shown = first, head - first + 1, time.monotonic()
        show = total > _PROGRESS_PAGES * self.page
        while first <= head:
            last = min(head, first + page - 1)
            try:
                found, last_hash = self._page(first, last)
            except _PageRefused as refused:
                if page == 1:
                    raise NodeUnavailable("chain RPC", self.chain.url, refused.message) from None
                page = max(1, page // 2)
                continue
            if last == head and last_hash != head_hash:
                return False  # the head moved to another fork during the page
            if not self._store(first, last, last_hash, found):
                return False
            first = last + 1
            if show and time.monotonic() - shown >= _PROGRESS_EVERY_SECONDS:
                shown = time.monotonic()
                done = first - start
                warnings.warn(Notice(
                    f"indexing events: block {first - 1:,} of {head:,} "
                    f"({100 * done // total}%)"
                ), stacklevel=2)  # fmt: skip
        return True

    def _page(self, first: int, last: int) -> tuple[list[dict[str, Any]], bytes]:
        """The deployment's logs of blocks ``first``..``last`` and the hash of ``last``."""
        query = {"address": self.addresses, "fromBlock": hex(first), "toBlock": hex(last)}
        replies = self.chain.rpc.batch([
            ("eth_getLogs", [query]),
            ("eth_getBlockByNumber", [hex(last), False]),
        ])  # fmt: skip
        if "error" in replies[0]:
            error = replies[0]["error"]
            raise _PageRefused(f"eth_getLogs: {error.get('message', error)}")
        header = replies[1].get("result")
        if header is None:
            raise NodeUnavailable("chain RPC", self.chain.url, f"block {last} is not served")
        found = list(replies[0].get("result") or [])
        return [entry for entry in found if not entry.get("removed")], hex_bytes(header["hash"])

    def _store(self, first: int, last: int, last_hash: bytes, found: list[dict[str, Any]]) -> bool:
        """Keep one page; False (nothing kept) if it mixes forks or another process moved
        the index meanwhile."""
        hashes = {_int(e["blockNumber"]): hex_bytes(e["blockHash"]) for e in found}
        if len(hashes) != len({(_int(e["blockNumber"]), hex_bytes(e["blockHash"])) for e in found}):
            return False  # two hashes for one block: a reorg during the request
        if hashes.setdefault(last, last_hash) != last_hash:
            return False
        times = self._times(found)
        rows = [
            (
                _int(e["blockNumber"]), _int(e["logIndex"]), str(e["address"]).lower(),
                *_topics(e["topics"]), hex_bytes(e.get("data", "0x")),
                hex_bytes(e["transactionHash"]),
            )
            for e in found
        ]  # fmt: skip
        with self._write() as db:
            if self.synced != first - 1:
                return False  # another process indexed (or rewound) meanwhile
            db.executemany("INSERT OR REPLACE INTO logs VALUES (?,?,?,?,?,?,?,?,?)", rows)
            db.executemany(
                "INSERT OR REPLACE INTO blocks VALUES (?,?,?)",
                [(number, digest, times.get(number)) for number, digest in hashes.items()],
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('synced', ?)", (str(last),))
        return True

    def _times(self, found: list[dict[str, Any]]) -> dict[int, int]:
        """Each block's time: from the logs (``blockTimestamp``, as Anvil and newer nodes send
        it) or, for a node that does not, from the blocks' headers in batches."""
        times: dict[int, int] = {}
        missing: set[int] = set()
        for entry in found:
            number = _int(entry["blockNumber"])
            stamp = entry.get("blockTimestamp")
            if stamp is None:
                missing.add(number)
            else:
                times[number] = _int(stamp)
        wanted = sorted(missing - times.keys())
        for at in range(0, len(wanted), _HEADER_BATCH):
            chunk = wanted[at : at + _HEADER_BATCH]
            replies = self._ask([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            times.update(
                (n, _int(header["timestamp"]))
                for n, header in zip(chunk, replies, strict=True)
                if header is not None
            )
        return times

    def _rewind(self, head: int) -> int:
        """Drop what the node no longer has (a reorg or a reverted devnet); return the last
        block still indexed."""
        remembered = [
            number
            for (number,) in self._db.execute(
                "SELECT number FROM blocks WHERE number <= ? ORDER BY number", (head,)
            )
        ]
        low, high = 0, len(remembered)  # remembered[:low] kept, remembered[high:] replaced
        while low < high:
            middle = (low + high) // 2
            number = remembered[middle]
            (header,) = self._ask([("eth_getBlockByNumber", [hex(number), False])])
            if header is not None and hex_bytes(header["hash"]) == self._hash(number):
                low = middle + 1
            else:
                high = middle
        kept = remembered[low - 1] if low else self.start - 1
        with self._write() as db:
            db.execute("DELETE FROM logs WHERE block > ?", (kept,))
            db.execute("DELETE FROM blocks WHERE number > ?", (kept,))
            for table in self._derived():
                db.execute(f'DELETE FROM "{table}" WHERE block > ?', (kept,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('synced', ?)", (str(kept),))
        self.chain.forget_blocks()
        return kept

    # --- storage ------------------------------------------------------------------------------

    def _ask(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        replies = self.chain.rpc.batch(calls)
        for (method, _params), reply in zip(calls, replies, strict=True):
            if "error" in reply:
                message = str(reply["error"].get("message", reply["error"]))
                raise NodeUnavailable("chain RPC", self.chain.url, f"{method}: {message}")
        return [reply.get("result") for reply in replies]

    def _hash(self, number: int) -> bytes | None:
        row = self._db.execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
        return bytes(row[0]) if row else None

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def _check_deployment(self, recorded: Deployment) -> None:
        """Clear an index made for another deployment on this chain (a redeploy)."""
        fingerprint = json.dumps(
            sorted((c.address.lower(), c.block) for c in recorded.contracts.values())
        )
        if self._meta("deployment") == fingerprint:
            return
        with self._write() as db:
            db.execute("DELETE FROM logs")
            db.execute("DELETE FROM blocks")
            for table in self._derived():
                db.execute(f'DELETE FROM "{table}"')
            db.execute("DELETE FROM meta WHERE key != 'derived'")
            db.execute("INSERT INTO meta VALUES ('deployment', ?)", (fingerprint,))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


class _PageRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def for_chain(chain: Chain) -> EventIndex:
    """The event index of the chain's deployment (one per connection), synced to the head."""
    from medledger.chain import deployments

    index = chain.cache.get(CACHE_KEY)
    if not isinstance(index, EventIndex):
        recorded = deployments.require(chain)
        index = EventIndex(chain, recorded, index_file(chain))
        chain.cache[CACHE_KEY] = index
    if not index.held:
        index.sync()
    return index


@contextmanager
def one_view(chain: Chain) -> Iterator[EventIndex]:
    """Event reads inside see the chain as one sync left it: one request for all of them, and
    one consistent view. For an operation that only reads (a write inside would not see its
    own events until the block ends)."""
    index = for_chain(chain)
    index.held += 1
    try:
        yield index
    finally:
        index.held -= 1


def index_file(chain: Chain) -> Path | None:
    """Where the chain's index lives (None: the home is not writable, keep it in memory)."""
    folder = chain.settings.home / "index"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder / f"{chain.chain_id}-{chain.genesis_hash[2:10]}.db"


def _open(path: Path | None) -> sqlite3.Connection:
    """The index database; a damaged file is moved aside and rebuilt (it is only a cache)."""
    if path is not None:
        try:
            return _connect(str(path))
        except sqlite3.DatabaseError:
            with suppress(OSError):
                path.replace(path.with_suffix(".damaged"))
            with suppress(sqlite3.DatabaseError):
                return _connect(str(path))
    return _connect(":memory:")


def _connect(where: str) -> sqlite3.Connection:
    db = sqlite3.connect(where, timeout=60, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # a cache: a lost tail is fetched again
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version not in (0, _VERSION):
        db.close()
        raise sqlite3.DatabaseError(f"index version {version}")
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {_VERSION}")
    return db


def _raw(row: tuple[Any, ...]) -> RawLog:
    address, t0, t1, t2, t3, data, block, position, tx, stamp = row
    topics = tuple(bytes(t) for t in (t0, t1, t2, t3) if t is not None)
    return RawLog(address, topics, bytes(data), block, position, bytes(tx), stamp)


def _topics(topics: list[Any]) -> tuple[bytes | None, ...]:
    values: list[bytes | None] = [hex_bytes(t) for t in topics[:4]]
    return tuple(values + [None] * (4 - len(values)))


def hex_bytes(value: Any) -> bytes:
    """Bytes a node sends as ``0x`` hex (or already bytes)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _int(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)
