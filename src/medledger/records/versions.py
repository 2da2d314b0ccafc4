"""A record's versions, oldest first, each as it stands now: superseded, erased or current,
and the batch it came in (registered on chain or not yet).

A new version names its previous one in its id, so the walk back is by ``previous``; the walk
forward follows ``RecordSuperseded`` events and, for a version written in a batch and not yet
registered (the chain has no event for it yet), the batch manifests.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from medledger.chain import events
from medledger.errors import RecordNotFound
from medledger.records.batch_index import batch_of, batched_successor
from medledger.records.reading import get
from medledger.records.record import RecordRef
from medledger.records.unconfirmed import unconfirmed_writes

if TYPE_CHECKING:
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore
    from medledger.records.record import Erasures, Record

_CONTRACT = "RecordRegistry"


def history(
    chain: Chain,
    record_id: bytes | str,
    store: BlockStore | None = None,
    erasures: Erasures | None = None,
) -> list[Record]:
    """Every version of a record, oldest first, whichever version is named.

    With a ``store``, versions known only from a batch are found too; with ``erasures``
    (``consent.erasures(chain)``), each erased version says when and by whom. Every version
    but the newest is superseded; a registered version that came from a batch names it.
    """
    start = _get(chain, record_id, store)
    versions = [start]
    while versions[0].previous is not None:
        versions.insert(0, get(chain, versions[0].previous, store))
    while (following := _next(chain, store, versions[-1])) is not None:
        versions.append(following)
    last = len(versions) - 1
    return [
        _as_now(chain, v, superseded=v.superseded or n < last, erasures=erasures)
        for n, v in enumerate(versions)
    ]


def _get(chain: Chain, record_id: bytes | str, store: BlockStore | None) -> Record:
    """The named version; a record this client sent that the chain lost is named as such."""
    try:
        return get(chain, record_id, store)
    except RecordNotFound as exc:
        ref = RecordRef.parse(record_id) if isinstance(record_id, str) else RecordRef(record_id)
        for write in unconfirmed_writes(chain, record_id=ref.id):
            raise RecordNotFound(exc.record_id, write.problem) from None
        raise


def _next(chain: Chain, store: BlockStore | None, record: Record) -> Record | None:
    if record.superseded or not record.registered:
        nexts = events.logs(chain, _CONTRACT, "RecordSuperseded", {"previous": record.id})
        if nexts:
            return get(chain, nexts[0]["next"], store)
    return batched_successor(chain, store, record.id) if store is not None else None


def _as_now(chain: Chain, record: Record, superseded: bool, erasures: Erasures | None) -> Record:
    batch = record.batch
    if batch is None and record.registered:
        batch = batch_of(chain, record.id)
    erased = erasures(record) if erasures is not None else None
    return replace(record, superseded=superseded, batch=batch, erased=erased)
