"""A grant's FHIR id, and finding the grant again from it (``GET /Consent/<id>``).

One grant (patient, grantee, scope) has one id, whatever its state (given, revoked, given
again): the 64 hex digits of ``keccak(abi.encode(chainId, ConsentManager, patient, grantee,
scopeKey))``, a FHIR id (``[A-Za-z0-9-.]{1,64}``) that names the chain and deployment too.

Finding a grant by id scans no grants: each ``AccessGranted`` event is hashed once into a table
beside the event index (:meth:`~medledger.chain.eventindex.EventIndex.derived`, rewound with the
index on a reorg). The event's three indexed topics are exactly the ABI words of patient,
grantee and scope key, so hashing needs no decoding (one keccak of 160 bytes an event, on the
first lookup after the event is indexed). A lookup is then one indexed SQLite query, one
topic-filtered select of that grant's events, one decode and one ``getGrant`` call.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hexbytes import HexBytes

from medledger.chain import eventindex, events
from medledger.consent.contract import CONTRACT, consent_contract
from medledger.consent.grants import GrantState, grant_state
from medledger.consent.scopes import Scope
from medledger.errors import ConsentNotFound
from medledger.keccak import keccak

if TYPE_CHECKING:
    import sqlite3

    from medledger.chain import Chain

_CONSENT_ID = re.compile(r"[0-9a-f]{64}")
_TABLE = "consent_ids"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_TABLE} (
    block INTEGER NOT NULL,
    position INTEGER NOT NULL,
    id BLOB NOT NULL,
    patient BLOB NOT NULL,
    grantee BLOB NOT NULL,
    scope_key BLOB NOT NULL,
    PRIMARY KEY (block, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {_TABLE}_by_id ON {_TABLE} (id)
"""


def consent_id(chain: Chain, state: GrantState) -> str:
    """The FHIR id of a grant's ``Consent``: 64 hex digits, the same for every state of the
    grant (given, revoked, given again)."""
    words = _word(state.patient) + _word(state.grantee) + state.scope.key
    return keccak(_id_prefix(chain) + words).hex()


def _id_prefix(chain: Chain) -> bytes:
    """The first two words of every id's preimage ``abi.encode(chainId, ConsentManager,
    patient, grantee, scopeKey)``; an ``AccessGranted`` event's three indexed topics are
    exactly the other three."""
    return chain.chain_id.to_bytes(32, "big") + _word(consent_contract(chain).address)


def _word(address: str) -> bytes:
    return bytes(12) + bytes(HexBytes(address))


def find_consent(chain: Chain, consent_id: str) -> GrantState:
    """The grant whose ``Consent`` has id ``consent_id``, as it stands now; raises
    :class:`ConsentNotFound` for an id no grant on this chain has."""
    wanted = consent_id.strip().lower()
    if not _CONSENT_ID.fullmatch(wanted):
        raise ConsentNotFound(consent_id)
    index, db = _consent_ids(chain)
    row = db.execute(
        f"SELECT patient, grantee, scope_key FROM {_TABLE} WHERE id = ? LIMIT 1",
        (bytes.fromhex(wanted),),
    ).fetchone()
    if row is None:
        raise ConsentNotFound(consent_id)
    topics = [*events.topics(CONTRACT, "AccessGranted", None)[:1], *map(bytes, row)]
    given = index.select(consent_contract(chain).address, topics)
    if not given:  # rewound since the row was read
        raise ConsentNotFound(consent_id)
    log = events.decode(CONTRACT, "AccessGranted", given[-1])
    scope = Scope.from_chain(log["scopeKind"], log["scope"])
    return grant_state(chain, log["patient"], log["grantee"], scope)


def _consent_ids(chain: Chain) -> tuple[eventindex.EventIndex, sqlite3.Connection]:
    """The event index and its table of Consent ids, brought up to the index's head: the
    ``AccessGranted`` events from the last block the table holds on (those of that block
    again, ignored) are hashed and added."""
    index = eventindex.for_chain(chain)
    db = index.derived(_SCHEMA)
    (last,) = db.execute(f"SELECT MAX(block) FROM {_TABLE}").fetchone()
    wanted = events.topics(CONTRACT, "AccessGranted", None)
    found = index.select(consent_contract(chain).address, wanted, last)
    prefix = _id_prefix(chain)
    rows = [
        (raw.block, raw.position, keccak(prefix + b"".join(raw.topics[1:4])), *raw.topics[1:4])
        for raw in found
    ]
    if rows:
        with index.writing() as writer:
            writer.executemany(f"INSERT OR IGNORE INTO {_TABLE} VALUES (?,?,?,?,?,?)", rows)
    return index, db
