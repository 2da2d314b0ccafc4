"""FHIR input anchored as records: the one path ``medledger anchor`` and the FHIR server share.

Each input (a resource or a Bundle, already read by :func:`medledger.fhir.load`) gives one
record per resource. They are anchored one transaction each or as one batch, with the keys of
grantees whose live grants cover them (``consent.readers_for``), and where each record came
from in its input (its ``fullUrl``, type and id) is noted in the home
(:mod:`medledger.records.origins`) before the records are returned, so that references between
them resolve when they are exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from medledger import consent, records
from medledger.records import origins

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.fhir import Ingest
    from medledger.ipfs.blockstore import BlockStore


@dataclass(frozen=True)
class Intake:
    """What anchoring the inputs wrote: one record and one label per resource, in input
    order, and the positions already on chain (written before, not written again)."""

    records: list[records.Record]
    labels: list[str]
    skipped: frozenset[int]


def anchor_fhir(
    chain: Chain,
    store: BlockStore,
    account: Signer,
    patient: str,
    inputs: Sequence[tuple[str, Ingest]],
    *,
    category: records.Category | None = None,
    previous: bytes | None = None,
    batch: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Intake:
    """Anchor every resource of ``inputs`` (each named, e.g. by its file) for ``patient``:
    ``category`` forces one category on all, ``previous`` makes them new versions of a
    record, ``batch`` writes them in one transaction (a Merkle root)."""
    drafts = [
        records.Draft(
            d.body, category or d.category, f"{name}: {d.resource_type}/{d.resource_id or '-'}"
        )
        for name, ingest in inputs
        for d in ingest.drafts
    ]
    readers = consent.readers_for(chain)  # grantees whose live grants cover the new records
    if batch:
        entries = [records.Entry(patient, d, previous) for d in drafts]
        done = records.anchor_batch(chain, store, account, entries, progress, readers)
        anchored, skipped = list(done.records), done.skipped
    else:
        written = records.anchor(
            chain, store, account, patient, drafts, previous, progress, readers
        )
        anchored, skipped = list(written), written.skipped
    made = iter(anchored)  # where each record sat in its input, noted before success is told
    origins.remember(chain, [
        [(next(made), origins.Source(d.full_url, d.resource_type, d.resource_id))
         for d in ingest.drafts]
        for _name, ingest in inputs
    ])  # fmt: skip
    return Intake(anchored, [d.label or "" for d in drafts], frozenset(skipped))
