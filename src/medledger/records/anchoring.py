"""Records: seal a FHIR body, store it in IPFS, anchor its pointer; read, verify, walk history.

A record on chain is one storage slot (patient, time, category, superseded flag) plus the
``RecordAnchored`` event holding the issuer, the CID digest of the sealed body, the salted
commitment and the previous version. The record id is a hash of all of those (see
``contracts/libraries/RecordIds.sol``), so every field read back from an event is checked
against the id: a swapped pointer or commitment is detected, whichever node served the log.

Record URIs name chain, registry and id, so a record can be cited outside this chain::

    medledger://eip155:<chain id>/<RecordRegistry address>/<0x record id>
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medledger import crypto
from medledger import providers as registry
from medledger import sealed as sealing
from medledger.chain import deployments
from medledger.chain.pipeline import Pipeline, calldata
from medledger.errors import (
    DecryptionFailed,
    IntegrityError,
    InvalidRecordId,
    NoKeyForReader,
    PreconditionFailed,
    RecordNotFound,
    StoreError,
)
from medledger.ipfs.cid import Cid
from medledger.records.categories import Category

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract

    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt
    from medledger.ipfs.blockstore import BlockStore

ZERO_ID = bytes(32)
ANCHOR_SIGNATURE = "anchor(address,bytes32,bytes32,uint8,bytes32)"
RECORD_ANCHORED_TOPIC = (
    "0x"
    + keccak(text="RecordAnchored(bytes32,address,address,bytes32,bytes32,bytes32,uint8)").hex()
)
ANCHOR_GAS_LIMIT = 150_000
_URI = re.compile(r"^medledger://eip155:(\d+)/(0x[0-9a-fA-F]{40})/(0x[0-9a-fA-F]{64})$")
_HEX_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class RecordRef:
    """A parsed record id, with the chain and registry when it came as a URI."""

    id: bytes
    chain_id: int | None = None
    registry: str | None = None

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        """Parse ``0x<64 hex>`` or a ``medledger://`` URI."""
        text = text.strip()
        if _HEX_ID.match(text):
            return cls(bytes.fromhex(text[2:]))
        match = _URI.match(text)
        if match is None:
            raise InvalidRecordId(text)
        return cls(bytes.fromhex(match[3][2:]), int(match[1]), to_checksum_address(match[2]))


@dataclass(frozen=True)
class Record:
    """An anchored record, as the chain holds it."""

    id: bytes
    patient: str
    issuer: str
    previous: bytes | None
    cid: Cid
    commitment: bytes
    category: Category | int
    anchored_at: datetime
    block: int
    transaction_hash: str
    superseded: bool
    chain_id: int
    registry: str
    batch: bytes | None = None
    registered: bool = True

    @property
    def hex_id(self) -> str:
        """The id as ``0x`` hex."""
        return "0x" + self.id.hex()

    @property
    def uri(self) -> str:
        """The portable URI of the record."""
        return f"medledger://eip155:{self.chain_id}/{self.registry}/{self.hex_id}"

    @property
    def category_label(self) -> str:
        """The category's command-line name (or its number when unknown to this version)."""
        return self.category.label if isinstance(self.category, Category) else str(self.category)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "id": self.hex_id,
            "uri": self.uri,
            "patient": self.patient,
            "issuer": self.issuer,
            "previous": "0x" + self.previous.hex() if self.previous else None,
            "cid": str(self.cid),
            "commitment": "0x" + self.commitment.hex(),
            "category": self.category_label,
            "anchored_at": self.anchored_at.isoformat(),
            "block": self.block,
            "transaction": self.transaction_hash,
            "superseded": self.superseded,
            "batch": "0x" + self.batch.hex() if self.batch else None,
            "registered": self.registered,
        }


@dataclass(frozen=True)
class Draft:
    """A body to anchor, with its category."""

    body: bytes
    category: Category
    label: str = ""


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one record."""

    record_id: str
    ok: bool
    checks: tuple[str, ...]
    problem: str | None = None


def derive_id(
    chain_id: int,
    registry_address: str,
    patient: str,
    issuer: str,
    cid_digest: bytes,
    commitment: bytes,
    category: int,
    previous: bytes | None,
) -> bytes:
    """Compute a record id exactly as ``RecordIds.derive`` does on chain."""
    ctx = sealing.Context(chain_id, registry_address, issuer)
    return sealing.derive_id(ctx, patient, cid_digest, commitment, category, previous)


def associated_data(
    chain_id: int,
    registry_address: str,
    patient: str,
    issuer: str,
    category: int,
    previous: bytes | None,
) -> bytes:
    """The AES-GCM associated data that binds a body to its record's identity."""
    ctx = sealing.Context(chain_id, registry_address, issuer)
    return sealing.associated_data(ctx, patient, category, previous)


def _registry(chain: Chain) -> Contract:
    return deployments.contract(chain, "RecordRegistry")


def anchor(
    chain: Chain,
    store: BlockStore,
    issuer: LocalAccount,
    patient: str,
    drafts: Iterable[Draft],
    previous: bytes | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Record]:
    """Seal, store and anchor each draft for ``patient``; return the anchored records.

    Preconditions (patient registered, issuer allowed to write, previous version current) are
    checked once before anything is stored or sent. All transactions are signed locally with
    consecutive nonces and sent before any receipt is awaited.
    """
    contract = _registry(chain)
    patient = to_checksum_address(patient)
    registry.require_writer(chain, issuer.address, patient)
    drafts = list(drafts)
    if previous is not None and len(drafts) != 1:
        raise PreconditionFailed("an update anchors exactly one new version")
    if previous is not None:
        old = get(chain, previous)
        if old.superseded:
            raise PreconditionFailed(f"{old.hex_id} already has a newer version")
        if old.patient != patient:
            raise PreconditionFailed(f"{old.hex_id} belongs to another patient")
        if writer_of(chain, old.id) != registry.writer_number(chain, issuer.address):
            raise PreconditionFailed(
                f"{old.hex_id} was written by another writer: only its writer (the same "
                "institution, or the patient for their own records) writes its next version"
            )

    readers = Readers(chain, issuer)
    ctx = sealing.Context(chain.chain_id, contract.address, issuer.address)
    prepared = sealing.seal_all(ctx, store, [
        sealing.Job(patient, d.body, int(d.category), previous, readers.of(patient, d.category))
        for d in drafts
    ])  # fmt: skip

    payloads = [
        calldata(
            ANCHOR_SIGNATURE,
            ["address", "bytes32", "bytes32", "uint8", "bytes32"],
            [patient, p.cid.digest, p.commitment, int(d.category), previous or ZERO_ID],
        )
        for d, p in zip(drafts, prepared, strict=True)
    ]
    if payloads:  # dry-run the first: a revert is decoded before anything is sent
        chain.dry_run("anchoring records", issuer, contract.address, payloads[0])
    receipts = Pipeline(chain, issuer).send(
        "anchoring records", contract.address, payloads, ANCHOR_GAS_LIMIT, progress
    )
    return [
        _anchored(chain, contract.address, issuer.address, patient, d, p, previous, r)
        for d, p, r in zip(drafts, prepared, receipts, strict=True)
    ]


def _anchored(
    chain: Chain,
    registry_address: str,
    issuer: str,
    patient: str,
    draft: Draft,
    prepared: sealing.Sealed,
    previous: bytes | None,
    receipt: Receipt,
) -> Record:
    """The record a receipt confirms, after checking the receipt's event names its id."""
    emitted = {
        bytes.fromhex(log["topics"][1][2:])
        for log in receipt.logs
        if log["topics"] and log["topics"][0] == RECORD_ANCHORED_TOPIC
    }
    if prepared.id not in emitted:
        raise IntegrityError(f"transaction {receipt.transaction_hash} anchored another record")
    when = (
        datetime.fromtimestamp(receipt.block_timestamp, tz=UTC)
        if receipt.block_timestamp is not None
        else chain.block_time(receipt.block_number)
    )
    return Record(
        id=prepared.id, patient=patient, issuer=issuer, previous=previous, cid=prepared.cid,
        commitment=prepared.commitment, category=draft.category, anchored_at=when,
        block=receipt.block_number, transaction_hash=receipt.transaction_hash, superseded=False,
        chain_id=chain.chain_id, registry=registry_address,
    )  # fmt: skip


class Readers:
    """Who gets a new record's key: the patient, the issuer, the issuer's institution (for a
    practitioner), and every grantee whose live grant covers the record's category (key
    delivery on write; a revoked party is never among them, so it never gets a new key)."""

    def __init__(self, chain: Chain, issuer: LocalAccount) -> None:
        self._chain = chain
        employer = registry.participant(chain, issuer.address).employer
        self._own = [crypto.public_key(issuer.key)]
        if employer is not None:
            self._own.append(registry.encryption_key(chain, employer))
        self._cache: dict[tuple[str, int], tuple[bytes, ...]] = {}

    def of(self, patient: str, category: Category) -> tuple[bytes, ...]:
        """The public keys a new record of ``patient`` in ``category`` is wrapped for."""
        key = (patient, int(category))
        if key not in self._cache:
            from medledger.consent import readers_for  # access builds on records

            patient_key = registry.encryption_key(self._chain, patient)
            grantees = readers_for(self._chain, patient, category)
            self._cache[key] = tuple(dict.fromkeys((patient_key, *self._own, *grantees)))
        return self._cache[key]


def get(chain: Chain, record_id: bytes | str, store: BlockStore | None = None) -> Record:
    """Return an anchored record, checking its event (or batch manifest) against its id.

    With a ``store``, a record anchored in a batch and not yet registered on its own is found
    through the batch manifests.
    """
    ref = RecordRef.parse(record_id) if isinstance(record_id, str) else RecordRef(record_id)
    contract = _registry(chain)
    if ref.chain_id is not None and ref.chain_id != chain.chain_id:
        raise PreconditionFailed(f"the record is on chain {ref.chain_id}, not {chain.chain_id}")
    if ref.registry is not None and ref.registry != contract.address:
        raise PreconditionFailed(f"the record belongs to registry {ref.registry}")
    if not chain.call("reading the record", contract.functions.exists(ref.id)):
        if store is not None:
            from medledger.records.batches import find  # batches builds on records: imported here

            batched = find(chain, store, ref.id)
            if batched is not None:
                return batched
        raise RecordNotFound("0x" + ref.id.hex())
    _patient, _at, _category, superseded, _writer = chain.call(
        "reading the record", contract.functions.getRecord(ref.id)
    )
    events = _logs(chain, contract, "RecordAnchored", {"id": ref.id})
    if not events:
        raise IntegrityError(f"record 0x{ref.id.hex()} is on chain but its event was not served")
    record = _from_event(chain, contract, events[0], superseded=bool(superseded))
    check_pointer(chain, record)
    return record


def for_patient(chain: Chain, patient: str, store: BlockStore | None = None) -> list[Record]:
    """Return every record anchored for a patient, oldest first (with a store: batched too)."""
    contract = _registry(chain)
    events = _logs(chain, contract, "RecordAnchored", {"patient": to_checksum_address(patient)})
    superseded = {
        bytes(e["args"]["previous"]) for e in _logs(chain, contract, "RecordSuperseded", {})
    }
    found = [
        _from_event(chain, contract, e, superseded=bytes(e["args"]["id"]) in superseded)
        for e in events
    ]
    if store is not None:
        from medledger.records.batches import in_batches_for

        known = {r.id for r in found}
        found.extend(r for r in in_batches_for(chain, store, patient) if r.id not in known)
        found.sort(key=lambda r: (r.block, r.anchored_at))
    return found


def writer_of(chain: Chain, record_id: bytes) -> int:
    """Who wrote a registered record: its institution's directory number, 0 for the patient.

    Raises ``RecordNotFound`` for a record that is not registered on its own (register a
    batched record first)."""
    _patient, _at, _category, _superseded, writer = chain.call(
        "reading the record", _registry(chain).functions.lookup(record_id)
    )
    if int(_patient, 16) == 0:
        raise RecordNotFound("0x" + record_id.hex())
    return int(writer)


def check_pointer(chain: Chain, record: Record) -> None:
    """Raise ``IntegrityError`` unless the record's fields hash to its id (pointer intact)."""
    expected = derive_id(
        chain.chain_id, record.registry, record.patient, record.issuer, record.cid.digest,
        record.commitment, int(record.category), record.previous,
    )  # fmt: skip
    if expected != record.id:
        raise IntegrityError(
            f"record {record.hex_id}: its pointer or commitment does not match its id "
            f"(CID {record.cid} was not the one anchored)"
        )


def read(chain: Chain, store: BlockStore, reader: LocalAccount, record_id: bytes | str) -> bytes:
    """Fetch, verify and decrypt a record's body with a key wrapped for the reader."""
    record = get(chain, record_id, store)
    sealed = store.cat(record.cid)  # every block is checked against its CID
    return open_body(chain, record, sealed, reader.key)


def open_body(chain: Chain, record: Record, sealed: bytes, private_key: bytes) -> bytes:
    """Decrypt a sealed body with a key wrapped in its header; check it against its commitment."""
    return open_with(chain, record, sealed, crypto.secret_for(sealed, private_key))


def open_with(chain: Chain, record: Record, sealed: bytes, secret: crypto.BodySecret) -> bytes:
    """Decrypt a sealed body of ``record`` with its secret and check it against its commitment."""
    aad = associated_data(
        chain.chain_id, record.registry, record.patient, record.issuer, int(record.category),
        record.previous,
    )  # fmt: skip
    plaintext = crypto.open_sealed(sealed, aad, secret)
    if crypto.commitment(secret.salt, plaintext) != record.commitment:
        raise IntegrityError(
            f"record {record.hex_id}: decrypted body does not match its commitment"
        )
    return plaintext


def verify(
    chain: Chain, store: BlockStore, record_id: bytes | str, reader: LocalAccount | None
) -> Verification:
    """Check a record's pointer, its stored blocks and, with a reader key, its commitment."""
    label = record_id if isinstance(record_id, str) else "0x" + record_id.hex()
    checks: list[str] = []
    try:
        record = get(chain, record_id, store)
        label = record.hex_id
        checks.append("pointer matches id")
        sealed = store.cat(record.cid)
        checks.append("body matches CID")
        if reader is not None:
            try:
                open_body(chain, record, sealed, reader.key)
                checks.append("plaintext matches commitment")
            except (DecryptionFailed, NoKeyForReader):
                checks.append("commitment not checked (no key for this account)")
    except (IntegrityError, StoreError, RecordNotFound) as exc:
        return Verification(label, False, tuple(checks), str(exc))
    return Verification(label, True, tuple(checks))


def history(chain: Chain, record_id: bytes | str) -> list[Record]:
    """Return every version of a record, oldest first, whichever version is named."""
    start = get(chain, record_id)
    contract = _registry(chain)
    versions = [start]
    while versions[0].previous is not None:
        versions.insert(0, get(chain, versions[0].previous))
    while versions[-1].superseded:
        nexts = _logs(chain, contract, "RecordSuperseded", {"previous": versions[-1].id})
        if not nexts:
            break
        versions.append(get(chain, bytes(nexts[0]["args"]["next"])))
    return versions


def _logs(chain: Chain, contract: Contract, event: str, filters: dict[str, Any]) -> list[Any]:
    start = deployments.require(chain).contracts["RecordRegistry"].block
    entries = getattr(contract.events, event)().get_logs(
        from_block=start, argument_filters=filters or None
    )
    return list(entries)


def _from_event(chain: Chain, contract: Contract, event: Any, superseded: bool) -> Record:
    args = event["args"]
    previous = bytes(args["previous"])
    try:
        category: Category | int = Category(args["category"])
    except ValueError:
        category = int(args["category"])
    return Record(
        id=bytes(args["id"]),
        patient=to_checksum_address(args["patient"]),
        issuer=to_checksum_address(args["issuer"]),
        previous=None if previous == ZERO_ID else previous,
        cid=Cid.from_digest_v0(bytes(args["cidDigest"])),
        commitment=bytes(args["commitment"]),
        category=category,
        anchored_at=chain.block_time(int(event["blockNumber"])),
        block=int(event["blockNumber"]),
        transaction_hash="0x" + bytes(event["transactionHash"]).hex(),
        superseded=superseded,
        chain_id=chain.chain_id,
        registry=contract.address,
    )
