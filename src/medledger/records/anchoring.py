"""Anchoring records: seal each FHIR body, store it in IPFS, anchor its pointer on chain.

Each body is sealed (:mod:`medledger.sealed`) in its record's context
(:func:`medledger.records.ids.associated_data`) for its readers: the patient, the issuer, the
issuer's institution (for a practitioner) and the extra readers the caller names (grantees
whose live grants cover the new record: key delivery on write, so a revoked party never gets a
new key). Its record id (:func:`medledger.records.ids.derive_id`) commits to every field the
``RecordAnchored`` event will show.

Anchoring is idempotent (:mod:`~medledger.records.once`): a body already anchored for the
patient by the same issuer is reported, not written again, and before anything is checked the
issuer's transactions an interrupted run left unmined are settled, so a re-run resumes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from medledger import providers
from medledger.addresses import parse_address
from medledger.categories import Category
from medledger.chain import events
from medledger.chain.outbox import Intent, open_outbox
from medledger.chain.pipeline import Pipeline, calldata
from medledger.crypto import envelope
from medledger.crypto.sameness import to_write
from medledger.errors import IntegrityError, PreconditionFailed
from medledger.records import once
from medledger.records.ids import ZERO_ID, Context, associated_data, derive_id
from medledger.records.reading import get, writer_of
from medledger.records.record import Record, registry
from medledger.sealed import Document, Sealed, seal_many

if TYPE_CHECKING:
    from collections.abc import Iterable

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt
    from medledger.ipfs.blockstore import BlockStore

ExtraReaders = Callable[[str, Category], Sequence[bytes]]
"""Who else gets a new record's key: ``readers(patient, category)`` returns the public keys of
the grantees whose live grants cover a new record of that patient and category
(``consent.readers_for(chain)`` is one)."""

ANCHOR_SIGNATURE = "anchor(address,bytes32,bytes32,uint8,bytes32)"
ANCHOR_TYPES = ("address", "bytes32", "bytes32", "uint8", "bytes32")
ANCHOR_GAS_LIMIT = 150_000


class Anchored(list[Record]):
    """Records in the order of the drafts given; ``skipped`` holds the positions of drafts
    that wrote nothing: their body was anchored before, or earlier in the same call."""

    def __init__(self, records: Iterable[Record], skipped: Iterable[int] = ()) -> None:
        super().__init__(records)
        self.skipped = frozenset(skipped)


@dataclass(frozen=True)
class Draft:
    """A body to anchor, with its category."""

    body: bytes
    category: Category
    label: str = ""


class Readers:
    """Who gets a new record's key: the patient, the issuer, the issuer's institution (for a
    practitioner), and the ``extra`` readers for the record's patient and category."""

    def __init__(self, chain: Chain, issuer: Signer, extra: ExtraReaders | None) -> None:
        self._chain = chain
        self._extra = extra
        employer = providers.participant(chain, issuer.address).employer
        self._own = [envelope.public_key(issuer.key)]
        if employer is not None:
            self._own.append(providers.encryption_key(chain, employer))
        self._cache: dict[tuple[str, int], tuple[bytes, ...]] = {}

    def of(self, patient: str, category: Category) -> tuple[bytes, ...]:
        """The public keys a new record of ``patient`` in ``category`` is wrapped for."""
        key = (patient, int(category))
        if key not in self._cache:
            patient_key = providers.encryption_key(self._chain, patient)
            extra = self._extra(patient, category) if self._extra is not None else ()
            self._cache[key] = tuple(dict.fromkeys((patient_key, *self._own, *extra)))
        return self._cache[key]


def anchor(
    chain: Chain,
    store: BlockStore,
    issuer: Signer,
    patient: str,
    drafts: Iterable[Draft],
    previous: bytes | None = None,
    progress: Callable[[int], None] | None = None,
    readers: ExtraReaders | None = None,
) -> Anchored:
    """Seal, store and anchor each draft for ``patient``; return its record for each draft
    (one that was already on chain is returned, not written again: see the module).

    Preconditions (patient registered, issuer allowed to write, previous version current) are
    checked once before anything is stored or sent. ``readers`` names who else gets each
    body's key (None: only the patient, the issuer and the issuer's institution). The first
    transaction is estimated before any is sent (a revert comes back decoded); then all are
    signed locally with consecutive nonces and sent before any receipt is awaited.
    """
    patient = parse_address(patient)
    providers.require_writer(chain, issuer.address, patient)
    drafts = list(drafts)
    if previous is not None and len(drafts) != 1:
        raise PreconditionFailed("an update anchors exactly one new version")
    box = open_outbox(chain.settings.home)
    # The issuer's lock, from the sameness check to the receipts: two runs of the same files
    # at once would otherwise both find nothing and both write.
    with box.sender_lock(chain.journal_key, issuer.address):
        return _anchor_once(chain, store, issuer, patient, drafts, previous, progress, readers)


def _anchor_once(
    chain: Chain,
    store: BlockStore,
    issuer: Signer,
    patient: str,
    drafts: list[Draft],
    previous: bytes | None,
    progress: Callable[[int], None] | None,
    readers: ExtraReaders | None,
) -> Anchored:
    ctx = Context(chain.chain_id, registry(chain).address, issuer.address)
    box = open_outbox(chain.settings.home)
    Pipeline(chain, issuer).settle()
    secret = once.issuer_secret(bytes(issuer.key))
    same = [once.body_key(secret, ctx, patient, previous, d.body) for d in drafts]
    found = once.anchored(chain, store, box, same)
    todo, skipped = to_write(same, found)
    if todo and previous is not None:
        _check_previous(chain, issuer, patient, previous)
    made = _anchor_new(chain, store, issuer, patient, [drafts[i] for i in todo],
                       [same[i] for i in todo], previous, progress, readers)  # fmt: skip
    by_key = {**found, **{same[i]: record for i, record in zip(todo, made, strict=True)}}
    if progress is not None and len(drafts) > len(todo):
        progress(len(drafts) - len(todo))
    return Anchored([by_key[key] for key in same], skipped)


def already_anchored(
    chain: Chain,
    store: BlockStore,
    issuer: Signer,
    patient: str,
    body: bytes,
    previous: bytes | None = None,
) -> Record | None:
    """The record this issuer already anchored for ``patient`` with this very body (see
    :mod:`~medledger.records.once`), or None."""
    ctx = Context(chain.chain_id, registry(chain).address, issuer.address)
    patient = parse_address(patient)
    key = once.body_key(once.issuer_secret(bytes(issuer.key)), ctx, patient, previous, body)
    return once.anchored(chain, store, open_outbox(chain.settings.home), [key]).get(key)


def _check_previous(chain: Chain, issuer: Signer, patient: str, previous: bytes) -> None:
    """A new version replaces a current record of the same patient, by its own writer."""
    old = get(chain, previous)
    if old.superseded:
        raise PreconditionFailed(f"{old.hex_id} already has a newer version")
    if old.patient != patient:
        raise PreconditionFailed(f"{old.hex_id} belongs to another patient")
    if writer_of(chain, old.id) != providers.writer_number(chain, issuer.address):
        raise PreconditionFailed(
            f"{old.hex_id} was written by another writer: only its writer (the same "
            "institution, or the patient for their own records) writes its next version"
        )


def _anchor_new(
    chain: Chain,
    store: BlockStore,
    issuer: Signer,
    patient: str,
    drafts: list[Draft],
    same: list[bytes],
    previous: bytes | None,
    progress: Callable[[int], None] | None,
    readers: ExtraReaders | None,
) -> list[Record]:
    """Seal (or take the body an interrupted run stored), store and anchor new drafts."""
    if not drafts:
        return []
    contract = registry(chain)
    ctx = Context(chain.chain_id, contract.address, issuer.address)
    box = open_outbox(chain.settings.home)
    stored = once.stored_bodies(store, box, chain.journal_key, same)
    keys = Readers(chain, issuer, readers)
    sealed: list[Sealed | None] = []
    for d, key in zip(drafts, same, strict=True):
        body = stored.get(key)
        fits = (
            body is not None
            and derive_id(
                ctx, patient, body[1].cid.digest, body[1].commitment, int(d.category), previous
            )
            == body[0]
            # Its key is wrapped for the readers of the interrupted run's moment: taken only
            # if they are still the readers (a grantee revoked since must get no key).
            and set(envelope.readers(store.cat(body[1].cid))) == set(keys.of(patient, d.category))
        )
        sealed.append(body[1] if fits and body is not None else None)
    todo = [i for i, s in enumerate(sealed) if s is None]
    fresh = seal_many(store, [
        Document(
            drafts[i].body, associated_data(ctx, patient, int(drafts[i].category), previous),
            keys.of(patient, drafts[i].category),
        )
        for i in todo
    ])  # fmt: skip
    for i, s in zip(todo, fresh, strict=True):
        sealed[i] = s
    done = [s for s in sealed if s is not None]
    ids = [
        derive_id(ctx, patient, s.cid.digest, s.commitment, int(d.category), previous)
        for d, s in zip(drafts, done, strict=True)
    ]
    payloads = [
        calldata(
            ANCHOR_SIGNATURE,
            ANCHOR_TYPES,
            [patient, s.cid.digest, s.commitment, int(d.category), previous or ZERO_ID],
        )
        for d, s in zip(drafts, done, strict=True)
    ]
    box.stored(chain.journal_key, [str(s.cid) for s in done])
    box.intend(chain.journal_key, [
        (k, Intent(i, None, str(s.cid), s.commitment, patient))
        for k, i, s in zip(same, ids, done, strict=True)
    ])  # fmt: skip
    if payloads:  # run the first as a call: a revert is decoded before anything is sent
        chain.estimate("anchoring records", issuer, contract.address, payloads[0])
    receipts = Pipeline(chain, issuer).send(
        "anchoring records", contract.address, payloads, ANCHOR_GAS_LIMIT, progress
    )
    topic = events.topics("RecordRegistry", "RecordAnchored", None)[0]
    anchored = []
    for d, s, record_id, receipt in zip(drafts, done, ids, receipts, strict=True):
        if not _confirms(receipt, topic, record_id):
            raise IntegrityError(f"transaction {receipt.transaction_hash} anchored another record")
        anchored.append(Record(
            id=record_id, patient=patient, issuer=issuer.address, previous=previous, cid=s.cid,
            commitment=s.commitment, category=d.category, anchored_at=anchored_at(chain, receipt),
            block=receipt.block_number, transaction_hash=receipt.transaction_hash,
            superseded=False, chain_id=chain.chain_id, registry=contract.address,
        ))  # fmt: skip
    return anchored


def anchored_at(chain: Chain, receipt: Receipt) -> datetime:
    """The time of the block a receipt's transaction is in (from the receipt when it says)."""
    if receipt.block_timestamp is not None:
        return datetime.fromtimestamp(receipt.block_timestamp, tz=UTC)
    return chain.block_time(receipt.block_number)


def _confirms(receipt: Receipt, topic: str, record_id: bytes) -> bool:
    """True when the receipt holds the ``RecordAnchored`` event of ``record_id``.

    Only the event's first two topics are compared (the event's own, from
    :func:`medledger.chain.events.topics`, and the indexed id): decoding every log with
    ``events.from_receipt`` costs about 0.5 ms, a quarter of a core at 500 records a second.
    """
    wanted = "0x" + record_id.hex()
    return any(
        len(log["topics"]) > 1
        and str(log["topics"][0]).lower() == topic
        and str(log["topics"][1]).lower() == wanted
        for log in receipt.logs
    )
