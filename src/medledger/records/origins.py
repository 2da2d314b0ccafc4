"""Where each record came from in its input: the input, the entry's ``fullUrl`` and ``Type/id``.

A Bundle's resources point at each other by bundle-local references (``urn:uuid:...``) that
mean something only inside that Bundle. Once its entries are anchored as separate records, the
``fullUrl`` → record mapping is what lets an export make those references resolvable again
(:mod:`medledger.consent.exporting`). It is kept privately, in this home, never on chain:
``$MEDLEDGER_HOME/origins.sqlite`` (WAL, ``synchronous=FULL``; a commit is on disk before
:func:`remember` returns, so before the command that anchored reports success).

An input is named by a key derived from the ids of the records it made, so anchoring the same
input again (the records are then already anchored) writes the same rows. A record anchored
with no origin noted (through the Python API, or before origins were kept) is exported with its
references as they are where they still resolve.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medledger.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

    from medledger.chain import Chain
    from medledger.records.record import Record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS origins (
    record BLOB PRIMARY KEY,
    input TEXT NOT NULL,
    full_url TEXT,
    type TEXT NOT NULL,
    id TEXT
);
CREATE INDEX IF NOT EXISTS origins_input ON origins (input);
"""
_CHUNK = 500  # ids per query (SQLite's default limit on parameters is 999)


@dataclass(frozen=True)
class Origin:
    """Where a record's resource sat: its input (a key), its entry's fullUrl, its type and id."""

    input: str
    full_url: str | None
    resource_type: str
    resource_id: str | None


@dataclass(frozen=True)
class Source:
    """What the anchoring command knows of one record's resource (from ``fhir.load``)."""

    full_url: str | None
    resource_type: str
    resource_id: str | None


def input_key(record_ids: Iterable[bytes]) -> str:
    """The key of an input: a hash of the ids of the records it made, in input order."""
    return hashlib.sha256(b"".join(record_ids)).hexdigest()[:32]


def remember(chain: Chain, inputs: Iterable[Sequence[tuple[Record, Source]]]) -> None:
    """Note, for each input, where each of its records came from (one commit for all)."""
    rows = []
    for pairs in inputs:
        key = input_key(record.id for record, _source in pairs)
        rows += [
            (record.id, key, s.full_url, s.resource_type, s.resource_id) for record, s in pairs
        ]
    with _connection(chain.settings.home) as db:
        db.executemany("INSERT OR REPLACE INTO origins VALUES (?, ?, ?, ?, ?)", rows)


def origins_of(chain: Chain, record_ids: Iterable[bytes]) -> dict[bytes, Origin]:
    """The origins noted for these records (records with none are left out)."""
    wanted = list(record_ids)
    found: dict[bytes, Origin] = {}
    with _connection(chain.settings.home) as db:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            query = f"SELECT * FROM origins WHERE record IN ({','.join('?' * len(chunk))})"
            found.update({bytes(r): Origin(*rest) for r, *rest in db.execute(query, chunk)})
    return found


def records_of_inputs(chain: Chain, inputs: Iterable[str]) -> dict[bytes, Origin]:
    """Every record noted as coming from these inputs, with its origin."""
    wanted = list(set(inputs))
    found: dict[bytes, Origin] = {}
    with _connection(chain.settings.home) as db:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            query = f"SELECT * FROM origins WHERE input IN ({','.join('?' * len(chunk))})"
            found.update({bytes(r): Origin(*rest) for r, *rest in db.execute(query, chunk)})
    return found


@contextlib.contextmanager
def _connection(home: Path) -> Iterator[sqlite3.Connection]:
    path = home / "origins.sqlite"
    try:
        home.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=60, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"the origins file {path} cannot be opened: {exc}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreError(f"the origins file {path} cannot be used: {exc}") from None
    finally:
        db.close()
