"""Trial data: submitting a visit's FHIR bodies (each alone, or in one Merkle batch), listing
and finding them, asking the contract whether one is anchored, and reading one under consent.

Each body is sealed (:mod:`medledger.sealed`, in worker processes when there are many) under
its own key for the participant, the site's institution, the submitting account, the sponsor
(reader bit 0) and every monitor with a published key (reader bit 1). Bodies submitted alone
go through the transaction pipeline together (``chain.send``, one ``submitData`` each); a
batch is one ``submitDataBatch`` with its public manifest (:mod:`medledger.trials.batches`).
Preconditions are checked before anything is stored or sent, so a refused submission names
the reason (withdrawn, stale consent, not the enrolling site) instead of reverting.
"""

from __future__ import annotations

import binascii
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes

from medledger import fhir, providers, sealed
from medledger.chain import events
from medledger.chain.outbox import Intent, open_outbox
from medledger.crypto import envelope
from medledger.crypto.sameness import sameness_key, to_write, writer_secret
from medledger.errors import (
    AccessRefused,
    ConfigurationError,
    IntegrityError,
    MedLedgerError,
    NoKeyForReader,
    PreconditionFailed,
    TransactionReverted,
)
from medledger.ipfs.cid import Cid
from medledger.trials.batches import batch_items, batch_manifest, manifest_items
from medledger.trials.enrolment import participant_key
from medledger.trials.ids import data_context, data_id, visit_id
from medledger.trials.model import CONTRACT, ZERO, DataItem, Participation, Standing, Submission
from medledger.trials.reading import address, enrolled, get_study, trial_registry

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.events import Log
    from medledger.ipfs.blockstore import BlockStore
    from medledger.trials.model import Study


def _data_readers(
    chain: Chain, study: Study, current: Participation, submitter: Signer
) -> tuple[bytes, ...]:
    keys = [
        participant_key(chain, study.id, current.participant),
        providers.encryption_key(chain, current.site),
        envelope.public_key(submitter.key),
    ]
    if current.sponsor_reads:
        keys.append(providers.encryption_key(chain, study.sponsor))
    if current.monitors_read:
        for monitor in study.monitors:
            key = providers.participant(chain, monitor).encryption_key
            if key is not None:
                keys.append(key)
    return tuple(dict.fromkeys(keys))


def _require_current(current: Participation) -> None:
    if current.standing is Standing.WITHDRAWN:
        assert current.withdrawn_at is not None
        raise PreconditionFailed(
            f"participant {current.participant} withdrew from study {current.study_id} on "
            f"{current.withdrawn_at:%F %H:%M}Z: no more data is accepted"
        )
    if current.standing is Standing.STALE:
        raise PreconditionFailed(
            f"participant {current.participant}'s consent is stale: they consented to version "
            f"{current.consented_version}, but version {current.required_version} requires "
            "re-consent before more data is accepted"
        )


def submit_data(
    chain: Chain,
    store: BlockStore,
    site: Signer,
    study_id: int,
    participant: str,
    visit: str,
    bodies: Sequence[bytes],
    *,
    batch: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Submission:
    """Seal each FHIR body for the participant and the readers their consent allows, store it
    in IPFS and anchor it: one ``submitData`` per body (sent together through the pipeline),
    or one ``submitDataBatch`` (Merkle root of their ids, public manifest in IPFS) for the
    visit. ``progress`` is told how many bodies were sealed as it goes."""
    if not bodies:
        raise ConfigurationError("FILES", "give at least one data body")
    study = get_study(chain, study_id)
    current = enrolled(chain, study, address(participant, "--participant"))
    if providers.verified_institution_of(chain, site.address) != current.site:
        raise PreconditionFailed(
            f"{site.address} does not act for {current.site}, the participant's enrolling site"
        )
    _require_current(current)
    for index, body in enumerate(bodies):
        fhir.load(body, f"data body {index + 1}")  # FHIR only, refused before anything is stored
    visit_hash = visit_id(visit)
    contract = trial_registry(chain)
    who = current.participant
    same = _sameness(chain, site, contract.address, study_id, who, visit_hash, bodies)
    box = open_outbox(chain.settings.home)
    with box.sender_lock(chain.journal_key, site.address):  # check to receipts, as records
        return _submit_once(chain, store, site, study, current, visit_hash, bodies, same,
                            batch, progress)  # fmt: skip


def _submit_once(
    chain: Chain, store: BlockStore, site: Signer, study: Study, current: Participation,
    visit_hash: bytes, bodies: Sequence[bytes], same: list[bytes], batch: bool,
    progress: Callable[[int], None] | None,
) -> Submission:  # fmt: skip
    study_id = study.id
    found = _submitted(chain, store, study_id, same)
    todo, skipped = to_write(same, found)
    if not todo:  # a re-run: every body is on chain already
        return Submission(tuple(found[key] for key in same), (), 0, skipped=skipped)
    made = _submit_new(
        chain, store, site, study, current, visit_hash,
        [bodies[i] for i in todo], [same[i] for i in todo], batch, progress,
    )  # fmt: skip
    by_key = {**found, **{same[i]: item for i, item in zip(todo, made.items, strict=True)}}
    return replace(made, items=tuple(by_key[key] for key in same), skipped=skipped)


def _sameness(
    chain: Chain, site: Signer, registry: str, study_id: int, who: str, visit: bytes,
    bodies: Sequence[bytes],
) -> list[bytes]:  # fmt: skip
    """Each body's sameness key (:mod:`medledger.crypto.sameness`) for this study, participant
    and visit, from this site's account."""
    secret = writer_secret(bytes(site.key))
    context = b"".join([
        b"trial-data", chain.chain_id.to_bytes(32, "big"), bytes.fromhex(registry[2:]),
        study_id.to_bytes(32, "big"), bytes.fromhex(who[2:]), visit,
    ])  # fmt: skip
    return [sameness_key(secret, context, body) for body in bodies]


def _submitted(
    chain: Chain, store: BlockStore, study_id: int, keys: Sequence[bytes]
) -> dict[bytes, DataItem]:
    """The data already on chain for these sameness keys (a re-run of a submission)."""
    found = {}
    for key, intent in open_outbox(chain.settings.home).intents(chain.journal_key, keys).items():
        try:
            found[key] = find_data(chain, store, study_id, intent.record)
        except PreconditionFailed:  # never landed: submitted again
            continue
    return found


def _submit_new(
    chain: Chain, store: BlockStore, site: Signer, study: Study, current: Participation,
    visit_hash: bytes, bodies: Sequence[bytes], same: Sequence[bytes], batch: bool,
    progress: Callable[[int], None] | None,
) -> Submission:  # fmt: skip
    study_id = study.id
    readers = _data_readers(chain, study, current, site)
    contract = trial_registry(chain)
    who = current.participant
    aad = data_context(chain.chain_id, contract.address, study_id, who, visit_hash)
    documents = [sealed.Document(body, aad, readers) for body in bodies]
    stored = sealed.seal_many(store, documents, progress)
    prepared = [
        data_id(chain.chain_id, contract.address, study_id, who, visit_hash,
                study.current_version, s.cid.digest, s.commitment)
        for s in stored
    ]  # fmt: skip
    box = open_outbox(chain.settings.home)
    box.stored(chain.journal_key, [str(s.cid) for s in stored])
    box.intend(chain.journal_key, [
        (k, Intent(i, None, str(s.cid), s.commitment, who))
        for k, i, s in zip(same, prepared, stored, strict=True)
    ])  # fmt: skip
    if not batch:
        calls = [
            contract.functions.submitData(study_id, who, visit_hash, s.cid.digest, s.commitment)
            for s in stored
        ]
        receipts = chain.send("submitting trial data", site, calls)
        items = [
            single_item(chain, study_id, e)
            for r in receipts
            for e in events.from_receipt(r, CONTRACT, "DataSubmitted", contract.address)
        ]
        if [i.id for i in items] != prepared:
            raise IntegrityError("the chain anchored other data ids than the ones prepared")
        return Submission(
            tuple(items),
            tuple(r.transaction_hash for r in receipts),
            sum(r.gas_used for r in receipts),
        )
    raw, manifest = batch_manifest(
        chain.chain_id, contract.address, current.site, study_id, who, visit_hash,
        study.current_version, [(s.cid, s.commitment) for s in stored],
    )  # fmt: skip
    manifest_cid = store.add_bytes(raw, pin=True)
    receipt = chain.transact(
        "submitting a trial data batch",
        site,
        contract.functions.submitDataBatch(
            study_id, who, visit_hash, manifest.root, manifest_cid.digest, manifest.tree.count
        ),
    )
    (event,) = events.from_receipt(receipt, CONTRACT, "DataBatchSubmitted", contract.address)
    items, problem = batch_items(chain, study_id, event, manifest)
    if problem is not None or [i.id for i in items] != prepared:
        raise IntegrityError(problem or "the chain anchored another batch than the one prepared")
    return Submission(
        tuple(items),
        (receipt.transaction_hash,),
        receipt.gas_used,
        batch=event["batchId"],
        manifest=manifest_cid,
    )


def single_item(chain: Chain, study_id: int, event: Log) -> DataItem:
    """The body a ``DataSubmitted`` event anchored."""
    return DataItem(
        id=event["dataId"],
        study_id=study_id,
        participant=event["participant"],
        visit=event["visit"],
        version=int(event["version"]),
        cid=Cid.from_digest_v0(event["cidDigest"]),
        commitment=event["commitment"],
        site=event["site"],
        submitted_at=event.time(chain),
        block=event.block,
        log_index=event.index,
        transaction_hash=event.transaction_hash,
    )


def data(
    chain: Chain, store: BlockStore, study_id: int, participant: str | None = None
) -> list[DataItem]:
    """Every anchored data body of a study (or one participant), oldest first.

    Batch leaves come from their manifests, each proven at its position against the anchored
    root and count; a batch whose manifest is missing or wrong is left out, and of a manifest
    that lists more bodies than its batch's count only the first ``count`` are anchored and
    listed (:func:`~medledger.trials.audit` names both).
    """
    get_study(chain, study_id)
    filters: dict[str, Any] = {"studyId": study_id}
    if participant:
        filters["participant"] = address(participant, "--participant")
    singles = events.logs(chain, CONTRACT, "DataSubmitted", filters)
    found = [single_item(chain, study_id, e) for e in singles]
    for e in events.logs(chain, CONTRACT, "DataBatchSubmitted", filters):
        try:
            items, _problem = manifest_items(chain, store, study_id, e)
        except MedLedgerError:
            continue
        found.extend(items)
    found.sort(key=lambda d: (d.block, d.log_index))
    return found


def find_data(chain: Chain, store: BlockStore, study_id: int, identifier: str | bytes) -> DataItem:
    """One data body by id: anchored alone, or a leaf of one of the study's batches."""
    wanted = _data_ref(identifier)
    single = events.logs(chain, CONTRACT, "DataSubmitted", {"studyId": study_id, "dataId": wanted})
    if single:
        return single_item(chain, study_id, single[0])
    for item in data(chain, store, study_id):
        if item.id == wanted:
            return item
    raise PreconditionFailed(f"0x{wanted.hex()} is not a data body of study {study_id}")


def _data_ref(identifier: str | bytes) -> bytes:
    if isinstance(identifier, bytes):
        raw = identifier
    else:
        try:
            raw = bytes(HexBytes(identifier.strip()))
        except (ValueError, binascii.Error):
            raw = b""
    if len(raw) != 32:
        raise ConfigurationError("DATA_ID", f"{identifier!r} is not a 0x-prefixed 32-byte id")
    return raw


def check_anchored(chain: Chain, item: DataItem) -> None:
    """Ask the contract itself whether a body is anchored: ``getDataPoint`` for a single body,
    ``verifyBatchData(..., index, proof)`` for a batched one (which proves positions below the
    batch's declared count only). Raise ``IntegrityError`` when the chain says no."""
    contract = trial_registry(chain)
    if item.position is None:
        study_id, version, submitted_at = chain.call(
            "reading the data point", contract.functions.getDataPoint(item.id)
        )
        if not submitted_at or (int(study_id), int(version)) != (item.study_id, item.version):
            raise IntegrityError(f"data {item.hex_id} is not anchored in study {item.study_id}")
        return
    where = item.position
    try:
        proven = chain.call(
            "verifying the batched body",
            contract.functions.verifyBatchData(
                item.study_id, item.participant, item.visit, where.root, item.cid.digest,
                item.commitment, where.index, list(where.proof),
            ),
        )  # fmt: skip
    except TransactionReverted as exc:
        if exc.error != "TrialDataNotInBatch":
            raise
        proven = ZERO
    if bytes(proven) != item.id:
        raise IntegrityError(
            f"data {item.hex_id} is not proven at position {where.index} of batch "
            f"0x{(item.batch or ZERO).hex()} (count {where.count})"
        )


def read_data(
    chain: Chain, store: BlockStore, reader: Signer, study_id: int, identifier: str | bytes
) -> bytes:
    """Fetch, verify and decrypt one data body (the chain's ``canRead`` decides who may; a
    batched body is proven on chain at its position first)."""
    item = find_data(chain, store, study_id, identifier)
    if item.position is not None:
        check_anchored(chain, item)
    contract = trial_registry(chain)
    allowed = chain.call(
        "checking access", contract.functions.canRead(study_id, item.participant, reader.address)
    )
    if not allowed:
        raise AccessRefused(
            item.hex_id,
            f"{reader.address} is not among its readers: the participant, their site and, as "
            "their consent allows, the sponsor and the study's monitors",
        )
    stored = store.cat(item.cid)  # every block checked against the CID
    aad = data_context(chain.chain_id, contract.address, study_id, item.participant, item.visit)
    try:
        return sealed.open_one(
            stored, aad, item.commitment, private_key=reader.key, what=f"data {item.hex_id}"
        )
    except NoKeyForReader:
        raise NoKeyForReader(
            f"data {item.hex_id} was not sealed for {reader.address} (its key was not published "
            "when the data was submitted)"
        ) from None
