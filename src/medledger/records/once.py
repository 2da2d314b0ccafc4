"""Anchoring once: the same body for the same patient from the same issuer gets one record.

A record id commits to its sealed body's CID, and sealing draws a fresh key, so anchoring the
same FHIR body twice would make two records that both verify. Before sealing, each body gets a
*sameness key*: an HMAC, under a key derived from the issuer's private key, of the chain, the
registry, the patient, the version it replaces and the body in canonical JSON (so a re-indented
copy of the same resource is the same body). The key never leaves the home (it lives in the
:mod:`~medledger.chain.outbox`, mapped to the record id it got), and only the issuer could compute
it, so it says nothing to anyone who sees the chain or the store.

A body whose key is known and whose record is on chain (registered, or in an anchored batch) is
reported as already anchored instead of being written again. The scope is one home: another
machine holding the same issuer key does not know this home's keys (see the README).

A body an interrupted run sealed and stored, but never sent, is taken again only if it is wrapped
for this run's readers (``anchoring``). A transaction already journalled is resent as it was
signed, with the readers of its moment: a grantee revoked between the crash and the re-run can
open that one record (the chain refuses its access; its key is in the header), as when a
revocation races an anchoring in the mempool.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from medledger.chain import events
from medledger.crypto.sameness import sameness_key, writer_secret
from medledger.errors import RecordNotFound
from medledger.ipfs.cid import Cid
from medledger.records.ids import ZERO_ID
from medledger.records.reading import get
from medledger.sealed import Sealed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medledger.chain import Chain
    from medledger.chain.outbox import Outbox
    from medledger.ipfs.blockstore import BlockStore
    from medledger.records.ids import Context
    from medledger.records.record import Record


def issuer_secret(private_key: bytes) -> bytes:
    """The issuer's sameness secret (:func:`medledger.crypto.sameness.writer_secret`)."""
    return writer_secret(private_key)


def body_key(
    secret: bytes, ctx: Context, patient: str, previous: bytes | None, body: bytes
) -> bytes:
    """The sameness key of one body (see the module)."""
    return sameness_key(secret, _context(ctx, patient, previous), body)


@functools.lru_cache(maxsize=1024)
def _context(ctx: Context, patient: str, previous: bytes | None) -> bytes:
    """What a body key binds besides the body (the same for a batch's records of a patient)."""
    return b"".join([
        b"record",
        ctx.chain_id.to_bytes(32, "big"),
        bytes.fromhex(ctx.registry[2:]),
        bytes.fromhex(patient[2:]),
        previous or ZERO_ID,
    ])  # fmt: skip


def anchored(
    chain: Chain, store: BlockStore, box: Outbox, keys: Sequence[bytes]
) -> dict[bytes, Record]:
    """The records already on chain for these sameness keys (keys with none are left out)."""
    found: dict[bytes, Record] = {}
    for key, intent in box.intents(chain.journal_key, keys).items():
        try:
            record = get(chain, intent.record, store)
        except RecordNotFound:  # never landed, or rolled back and not replayed: write it again
            continue
        if not _erased(chain, record.id):  # an erased record's body is gone: write it again
            found[key] = record
    return found


def _erased(chain: Chain, record_id: bytes) -> bool:
    return bool(events.logs(chain, "ConsentManager", "RecordErased", {"id": record_id}))


def stored_bodies(
    store: BlockStore, box: Outbox, chain_key: str, keys: Sequence[bytes]
) -> dict[bytes, tuple[bytes, Sealed]]:
    """For keys an earlier run sealed but never got on chain: the record id it meant and the
    sealed body it stored, when the store still has it (the caller checks that the id still
    fits this run's fields, and the body's readers this run's readers, before sending it)."""
    return {
        key: (intent.record, Sealed(Cid.parse(intent.cid), intent.commitment))
        for key, intent in box.intents(chain_key, keys).items()
        if intent.batch is None and store.has(Cid.parse(intent.cid))
    }
