"""Key envelopes: how a record's key reaches a reader that was not among its first readers.

A record's body is sealed for its first readers (the patient, the issuer, the grantees whose
live grants covered it at writing time). When a patient grants access to records already
written, the client finds the secrets of the records in scope (the patient is a reader of every
record of theirs), writes them into a JSON *key envelope*, and seals that envelope for the
grantee (and the patient) as a sealed document (:mod:`medledger.sealed`) whose context names
the chain, the ConsentManager, the patient and the grantee, so an envelope moved to another
grant does not open. Its CID digest goes in the grant's event (or a ``KeysDelivered`` event).

A reader's client looks for its key in the sealed body's own header first, then in the
envelopes of its live grants (and, for an emergency service's account, in those delivered for
its opening). A delivered key counts only if it opens the body, so a bogus envelope cannot
block the reader. Bodies open through :func:`medledger.records.open_with` (a sealed document
checked against the record's commitment).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from eth_abi.abi import encode

from medledger import crypto, documents, providers, records, sealed
from medledger.addresses import parse_address
from medledger.chain import events
from medledger.consent.contract import CONTRACT, consent_contract
from medledger.consent.emergency import emergency_of
from medledger.consent.grants import grant_state, grantee_key, grants
from medledger.consent.scopes import ALL_RECORDS, Scope, ScopeKind
from medledger.errors import IntegrityError, MedLedgerError, NoKeyForReader, PreconditionFailed
from medledger.ipfs.cid import Cid
from medledger.providers import recovery

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

ENVELOPE_KIND = "medledger/key-envelope"
ENVELOPE_VERSION = 2
CONTEXT_PREFIX = b"medledger/key-envelope/v2"


# --- the envelope ------------------------------------------------------------------------------


def context(chain: Chain, patient: str, grantee: str) -> bytes:
    """The associated data a key envelope is sealed with: it names the chain, the
    ConsentManager, the patient and the grantee (ABI words)."""
    return CONTEXT_PREFIX + encode(
        ["uint256", "address", "address", "address"],
        [
            chain.chain_id,
            consent_contract(chain).address,
            parse_address(patient),
            parse_address(grantee),
        ],
    )


def document(
    chain: Chain,
    patient: str,
    grantee: str,
    readers: Sequence[bytes],
    secrets: Mapping[str, crypto.BodySecret],
) -> sealed.Document:
    """The sealed document of a key envelope carrying ``secrets`` (by ``0x`` record id) for
    ``grantee``, readable by ``readers`` (public keys)."""
    body = {
        "v": ENVELOPE_VERSION,
        "kind": ENVELOPE_KIND,
        "keys": {record_id: "0x" + secret.pack().hex() for record_id, secret in secrets.items()},
    }
    return sealed.Document(
        json.dumps(body, separators=(",", ":"), sort_keys=True).encode(),
        context(chain, patient, grantee),
        tuple(dict.fromkeys(readers)),
    )


def build(
    chain: Chain,
    store: BlockStore,
    holder: Signer,
    patient: str,
    grantee: str,
    key: bytes,
    in_scope: list[records.Record],
) -> tuple[Cid | None, tuple[str, ...]]:
    """Seal the secrets of ``in_scope`` that ``holder`` can open for ``grantee`` (public key
    ``key``) and the patient; store the envelope. Returns its CID (None when it holds none)
    and the ids of the records in scope whose keys the holder does not have.

    Erased records are left out (their keys are never wrapped again). A delegate, for example,
    holds no keys: the patient or an issuer delivers them later with ``deliver_keys``.
    """
    secrets: dict[str, crypto.BodySecret] = {}
    missing: list[str] = []
    consent = consent_contract(chain)
    for record in in_scope:
        if chain.call("reading consent", consent.functions.isErased(record.id)):
            continue  # an erased record's key is never wrapped again
        try:
            secrets[record.hex_id] = secret_of(chain, store, holder, record)
        except MedLedgerError:
            missing.append(record.hex_id)
    if not secrets:
        return None, tuple(missing)
    readers = (key, providers.encryption_key(chain, patient))
    sealed_cid = sealed.seal_one(store, document(chain, patient, grantee, readers, secrets)).cid
    return sealed_cid, tuple(missing)


def no_keys_held(holder: str, patient: str, grantee: str, missing: Sequence[str]) -> str:
    """Why keys were not delivered: the holder does not hold them (a delegate holds none)."""
    return (
        f"{holder} does not hold the keys of {len(missing)} record(s) of {patient} in scope "
        "(a delegate holds none): the patient, or the institution that wrote them, runs: "
        f"medledger deliver-keys {grantee} --patient {patient}"
    )


def open_envelope(
    chain: Chain, store: BlockStore, cid: Cid, patient: str, grantee: str, private_key: bytes
) -> dict[str, crypto.BodySecret]:
    """The secrets a key envelope for ``grantee`` carries, by ``0x`` record id, opened with
    ``private_key`` (the grantee's or the patient's).

    Raises ``NoKeyForReader`` when the key is not among its readers, ``DecryptionFailed`` when
    it was sealed for another grant, ``IntegrityError`` when it is not a key envelope, and a
    ``StoreError`` when it is gone."""
    where = f"key envelope {cid}"
    plaintext = sealed.open_one(
        store.cat(cid), context(chain, patient, grantee), None, private_key=private_key, what=where
    )
    try:
        body = documents.parse_object(plaintext, where)
        if body.get("kind") != ENVELOPE_KIND or body.get("v") != ENVELOPE_VERSION:
            raise ValueError(body.get("kind"))
        return {
            str(record_id): crypto.BodySecret.unpack(bytes.fromhex(str(packed)[2:]))
            for record_id, packed in body["keys"].items()
        }
    except (MedLedgerError, ValueError, KeyError, TypeError, AttributeError):
        raise IntegrityError(f"{where} is not a MedLedger key envelope") from None


def _keys(
    chain: Chain, store: BlockStore, cid: Cid, patient: str, grantee: str, private_key: bytes
) -> dict[str, crypto.BodySecret]:
    try:
        return open_envelope(chain, store, cid, patient, grantee, private_key)
    except MedLedgerError:
        return {}  # gone (erased), unreachable, or not for us: it holds no key for us


def delivered(chain: Chain, patient: str, grantee: str) -> list[Cid]:
    """Envelopes delivered to ``grantee`` under scope ``all`` (a grant's, or an emergency
    opening's), oldest first."""
    filters = {"patient": patient, "grantee": grantee, "scopeKey": ALL_RECORDS.key}
    found = events.logs(chain, CONTRACT, "KeysDelivered", filters)
    return [Cid.from_digest_v0(log["envelopeDigest"]) for log in found]


# --- a reader's key ----------------------------------------------------------------------------


def secret_of(
    chain: Chain, store: BlockStore, reader: Signer, record: records.Record,
    ring: Keyring | None = None,
) -> crypto.BodySecret:  # fmt: skip
    """Find the reader's key for a record: the body's header first, then the envelopes of its
    live grants, then (for an emergency service's account) those delivered for its opening.

    ``ring`` keeps what was found for the next records of a batch of reads (an export);
    without one, only the grants that cover this record are looked up."""
    body = store.cat(record.cid)
    try:
        return sealed.secret_of(body, reader.key)
    except NoKeyForReader:
        pass
    ring = ring or Keyring(chain, store, reader, Scope.covering(record))
    for envelope in ring.candidates(record):
        secret = ring.keys(envelope, record.patient).get(record.hex_id)
        if secret is None:
            continue
        # A key counts only if it opens the body, so a bogus envelope cannot block the reader.
        try:
            records.open_with(chain, record, body, secret)
        except MedLedgerError:
            continue
        return secret
    raise NoKeyForReader(
        "no key for your account was delivered for this record (ask the patient or the issuer "
        "to deliver keys)"
    )


class Keyring:
    """Where a reader's delivered keys are: the envelopes of its live grants per patient (only
    of ``scopes`` when given, else all) and of a live emergency opening, each found and opened
    once. It sees the chain as it was when it first looked: make one per batch of reads."""

    def __init__(
        self, chain: Chain, store: BlockStore, reader: Signer, scopes: tuple[Scope, ...] | None
    ) -> None:
        self._chain, self._store, self._reader, self._scopes = chain, store, reader, scopes
        self._now = chain.now()
        self._grants: dict[str, list[tuple[Scope, tuple[Cid, ...]]]] = {}
        self._opened: dict[Cid, dict[str, crypto.BodySecret]] = {}
        self._emergency: dict[str, list[Cid]] = {}
        self._recovery: dict[str, list[Cid]] = {}

    def candidates(self, record: records.Record) -> list[Cid]:
        """The envelopes that may hold the key of ``record``, newest grant envelope first."""
        covering = Scope.covering(record)
        found = [
            envelope
            for scope, envelopes in self._live_grants(record.patient)
            if scope in covering
            for envelope in reversed(envelopes)
        ]
        return found + self._opening(record.patient) + self._recovered(record.patient)

    def keys(self, envelope: Cid, patient: str) -> dict[str, crypto.BodySecret]:
        """The keys an envelope holds for the reader (none when it cannot be opened)."""
        if envelope not in self._opened:
            self._opened[envelope] = _keys(
                self._chain, self._store, envelope, patient, self._reader.address,
                self._reader.key,
            )  # fmt: skip
        return self._opened[envelope]

    def _live_grants(self, patient: str) -> list[tuple[Scope, tuple[Cid, ...]]]:
        if patient not in self._grants:
            states = grants(self._chain, patient, self._reader.address, self._scopes)
            self._grants[patient] = [(g.scope, g.envelopes) for g in states if g.live(self._now)]
        return self._grants[patient]

    def _recovered(self, patient: str) -> list[Cid]:
        """For the patient's controller after a recovery: the envelopes the key holders
        re-wrapped for it (:mod:`medledger.consent.recovery_keys`), newest first."""
        if patient not in self._recovery:
            reader = self._reader.address
            found: list[Cid] = []
            if reader != patient and recovery.controller_of(self._chain, patient) == reader:
                filters = {"patient": patient, "controller": reader}
                logs = events.logs(self._chain, recovery.CONTRACT, "RecoveryKeysDelivered", filters)
                found = [Cid.from_digest_v0(log["envelopeDigest"]) for log in reversed(logs)]
            self._recovery[patient] = found
        return self._recovery[patient]

    def _opening(self, patient: str) -> list[Cid]:
        if patient not in self._emergency:
            chain, reader = self._chain, self._reader.address
            service = providers.verified_institution_of(chain, reader)
            opening = emergency_of(chain, patient, service) if service else None
            live = opening is not None and opening.live(self._now)
            self._emergency[patient] = (
                list(reversed(delivered(chain, patient, reader))) if live else []
            )
        return self._emergency[patient]


# --- delivering keys ---------------------------------------------------------------------------


def records_in_scope(
    chain: Chain, store: BlockStore, patient: str, scope: Scope
) -> list[records.Record]:
    """The patient's records a scope covers (a record scope: that record, if it is theirs)."""
    if scope.kind is ScopeKind.RECORD and scope.record is not None:
        record = records.get(chain, scope.record, store)
        if record.patient != patient:
            raise PreconditionFailed(f"record {record.hex_id} belongs to another patient")
        return [record]
    return [r for r in records.for_patient(chain, patient, store) if scope.covers(r)]


def deliver_keys(
    chain: Chain, store: BlockStore, holder: Signer, patient: str, grantee: str, scope: Scope
) -> Cid | None:
    """Seal the keys the holder has, for a live grant (or, with scope ``all``, a live emergency
    opening of the grantee's service), and publish the envelope (None: no record in scope).

    Raises ``PreconditionFailed`` when the holder has none of the keys in scope."""
    envelope, missing = _deliver(chain, store, holder, patient, grantee, scope)
    if envelope is None and missing:
        raise PreconditionFailed(no_keys_held(holder.address, patient, grantee, missing))
    return envelope


def deliver_keys_for_live_grants(
    chain: Chain, store: BlockStore, holder: Signer, patient: str, grantee: str
) -> list[tuple[Scope, Cid]]:
    """Deliver keys for every live grant the grantee holds from the patient (and, for an
    emergency service's account, its live opening): what ``deliver-keys`` does by default.
    Returns the envelopes published, by scope (none: no record in any scope).

    Raises ``PreconditionFailed`` without a live grant, or when the holder has none of the
    keys in scope."""
    patient, grantee = parse_address(patient), parse_address(grantee)
    now = chain.now()
    scopes = [g.scope for g in grants(chain, patient, grantee) if g.live(now)]
    service = providers.verified_institution_of(chain, grantee)
    opening = emergency_of(chain, patient, service) if service else None
    if opening is not None and opening.live(now) and ALL_RECORDS not in scopes:
        scopes.append(ALL_RECORDS)
    if not scopes:
        raise PreconditionFailed(f"{grantee} has no live grant from {patient}: no keys to deliver")
    delivered: list[tuple[Scope, Cid]] = []
    missing: list[str] = []
    for scope in scopes:
        envelope, lacking = _deliver(chain, store, holder, patient, grantee, scope)
        if envelope is not None:
            delivered.append((scope, envelope))
        missing.extend(lacking)
    if not delivered and missing:
        raise PreconditionFailed(
            no_keys_held(holder.address, patient, grantee, sorted(set(missing)))
        )
    return delivered


def _deliver(
    chain: Chain, store: BlockStore, holder: Signer, patient: str, grantee: str, scope: Scope
) -> tuple[Cid | None, tuple[str, ...]]:
    patient, grantee = parse_address(patient), parse_address(grantee)
    if not providers.acts_for(chain, holder.address, patient) and not providers.may_write_for(
        chain, holder.address, patient
    ):
        raise PreconditionFailed(
            f"{holder.address} holds no keys of {patient}'s records: only the patient, a delegate "
            "or a care provider writing for them delivers keys"
        )
    current = grant_state(chain, patient, grantee, scope)
    now = chain.now()
    service = providers.verified_institution_of(chain, grantee)
    emergency = emergency_of(chain, patient, service) if service else None
    by_emergency = scope.kind is ScopeKind.ALL and emergency is not None and emergency.live(now)
    if not current.live(now) and not by_emergency:
        raise PreconditionFailed(f"{grantee} has no live {scope.label} grant from {patient}")
    key = grantee_key(chain, patient, grantee)
    in_scope = records_in_scope(chain, store, patient, scope)
    envelope, missing = build(chain, store, holder, patient, grantee, key, in_scope)
    if envelope is None:
        return None, missing
    chain.transact(
        "delivering keys",
        holder,
        consent_contract(chain).functions.deliverKeys(
            patient, grantee, int(scope.kind), scope.value, envelope.digest
        ),
    )
    return envelope, missing
