"""Patient-controlled access: grants, signed grants, delegates, emergency access, key delivery.

Access is decided on chain by the ConsentManager (``hasAccess``); keys travel off chain. When a
patient grants, the client unwraps the keys of the records in scope (the patient is a reader of
every record of theirs), wraps them for the grantee's registered public key, and stores that
*key envelope* in IPFS; its CID digest goes in the grant's event. A reader's client looks for
its key in the sealed body's own header (first readers), then in the envelopes of its live
grants, and refuses to decrypt without a live grant on chain.

Revocation cannot take back a key already delivered: a revoked party that kept a copy of a
body and of its key can still read that copy. What revocation does guarantee is the future:
the chain refuses the party from then on, honest clients stop decrypting, and every record or
version written after the revocation has a fresh key that is wrapped only for parties with a
live grant at writing time (``readers_for``), so the revoked party never receives it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from medledger import crypto, records
from medledger import providers as registry
from medledger.chain import deployments
from medledger.crypto import eip712
from medledger.errors import (
    AccessRefused,
    ConfigurationError,
    CryptoError,
    MedLedgerError,
    NoKeyForReader,
    PatientNotFound,
    PreconditionFailed,
)
from medledger.ipfs.cid import Cid
from medledger.labels import Labelled
from medledger.records.batches import ensure_registered
from medledger.records.categories import Category

if TYPE_CHECKING:
    from collections.abc import Iterable

    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.types import TxReceipt

    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

ZERO = bytes(32)
ENVELOPE_KIND = "medledger/key-envelope"


class Purpose(Labelled):
    """Why access is granted (the contract's ``Purpose``)."""

    TREATMENT = 1
    PAYMENT = 2
    RESEARCH = 3
    OPERATIONS = 4
    PATIENT_REQUEST = 5
    EMERGENCY = 6

    @classmethod
    def choices(cls) -> list[Purpose]:
        """Emergency access has its own verb, so it is never a grant's purpose."""
        return [p for p in cls if p is not cls.EMERGENCY]

    @classmethod
    def parse(cls, text: str) -> Purpose:
        """Parse a command-line name."""
        return cls.lookup(text, "--purpose", "purpose")


class ScopeKind(IntEnum):
    """What a grant covers (the contract's ``ScopeKind``)."""

    RECORD = 0
    CATEGORY = 1
    ALL = 2


@dataclass(frozen=True)
class Scope:
    """A grant's scope: one record, one category, or all records of the patient."""

    kind: ScopeKind
    record: bytes | None = None
    category: Category | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse ``record:ID``, ``category:NAME`` or ``all``."""
        head, _, rest = text.strip().partition(":")
        if head == "all" and not rest:
            return cls(ScopeKind.ALL)
        if head == "record" and rest:
            return cls(ScopeKind.RECORD, record=records.RecordRef.parse(rest).id)
        if head == "category" and rest:
            return cls(ScopeKind.CATEGORY, category=Category.parse(rest))
        raise ConfigurationError("--scope", f"{text!r} is not record:ID, category:NAME or all")

    @classmethod
    def covering(cls, record: records.Record) -> tuple[Scope, ...]:
        """Every scope that includes ``record``: itself, its category, all records."""
        scopes = [cls(ScopeKind.RECORD, record=record.id), cls(ScopeKind.ALL)]
        if isinstance(record.category, Category):
            scopes.append(cls(ScopeKind.CATEGORY, category=record.category))
        return tuple(scopes)

    @property
    def value(self) -> bytes:
        """The contract's ``bytes32 scope``."""
        if self.kind is ScopeKind.RECORD and self.record is not None:
            return self.record
        if self.kind is ScopeKind.CATEGORY and self.category is not None:
            return int(self.category).to_bytes(32, "big")
        return ZERO

    @property
    def label(self) -> str:
        """The command-line form."""
        if self.kind is ScopeKind.RECORD and self.record is not None:
            return f"record:0x{self.record.hex()}"
        if self.kind is ScopeKind.CATEGORY and self.category is not None:
            return f"category:{self.category.label}"
        return "all"

    def covers(self, record: records.Record) -> bool:
        """Whether the scope includes ``record``."""
        if self.kind is ScopeKind.ALL:
            return True
        if self.kind is ScopeKind.RECORD:
            return record.id == self.record
        return int(record.category) == int(self.category or 0)

    @classmethod
    def from_chain(cls, kind: int, value: bytes) -> Scope:
        """Rebuild a scope from event fields."""
        scope_kind = ScopeKind(kind)
        if scope_kind is ScopeKind.RECORD:
            return cls(scope_kind, record=bytes(value))
        if scope_kind is ScopeKind.CATEGORY:
            number = int.from_bytes(bytes(value), "big")
            try:
                return cls(scope_kind, category=Category(number))
            except ValueError:
                return cls(scope_kind)
        return cls(scope_kind)


@dataclass(frozen=True)
class GrantState:
    """A grant as it stands now."""

    patient: str
    grantee: str
    scope: Scope
    purpose: Purpose
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    envelopes: tuple[Cid, ...]

    def live(self, now: datetime) -> bool:
        """Whether the grant gives access at ``now``."""
        return self.revoked_at is None and self.expires_at > now

    def status(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > now else "expired"

    def as_dict(self, now: datetime) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "patient": self.patient,
            "grantee": self.grantee,
            "scope": self.scope.label,
            "purpose": self.purpose.label,
            "granted_at": self.granted_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "status": self.status(now),
            "envelopes": [str(c) for c in self.envelopes],
        }


GRANT_FIELDS = (
    ("patient", "address"),
    ("grantee", "address"),
    ("scopeKind", "uint8"),
    ("scope", "bytes32"),
    ("purpose", "uint8"),
    ("expiresAt", "uint40"),
    ("envelopeDigest", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)


def consent_contract(chain: Chain) -> Contract:
    """The deployed ConsentManager."""
    return deployments.contract(chain, "ConsentManager")


def chain_now(chain: Chain) -> datetime:
    """The latest block's time (see :meth:`Chain.now`)."""
    return chain.now()


# --- key envelopes ---------------------------------------------------------------------------


def build_envelope(
    chain: Chain,
    store: BlockStore,
    holder: LocalAccount,
    patient: str,
    grantee_key: bytes,
    in_scope: list[records.Record],
) -> Cid | None:
    """Wrap the keys of ``in_scope`` (that ``holder`` can open) for a grantee; store; return CID.

    Records whose keys the holder does not have are skipped (a delegate, for example, has no
    keys: the patient or an issuer delivers them later with ``deliver_keys``).
    """
    keys: dict[str, str] = {}
    consent = consent_contract(chain)
    for record in in_scope:
        if chain.call("reading consent", consent.functions.isErased(record.id)):
            continue  # an erased record's key is never wrapped again
        try:
            secret = secret_of(chain, store, holder, record)
        except (NoKeyForReader, CryptoError, MedLedgerError):
            continue
        keys[record.hex_id] = base64.b64encode(crypto.wrap(secret, grantee_key)).decode()
    if not keys:
        return None
    document = {
        "v": 1,
        "kind": ENVELOPE_KIND,
        "chain": chain.chain_id,
        "patient": patient,
        "grantee_key": grantee_key.hex(),
        "keys": keys,
    }
    return store.add_bytes(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())


def _envelope_keys(store: BlockStore, cid: Cid) -> dict[str, bytes]:
    try:
        document = json.loads(store.cat(cid))
        if document.get("kind") != ENVELOPE_KIND:
            return {}
        return {k: base64.b64decode(v) for k, v in document["keys"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}
    except MedLedgerError:
        return {}  # an envelope that is gone (erased) or unreachable holds no key for us


def secret_of(
    chain: Chain, store: BlockStore, reader: LocalAccount, record: records.Record
) -> crypto.BodySecret:
    """Find the reader's key for a record: the body's header first, then the envelopes of its
    live grants, then (for an emergency service's account) those delivered for its opening."""
    sealed = store.cat(record.cid)
    try:
        return crypto.secret_for(sealed, reader.key)
    except NoKeyForReader:
        pass
    now = chain_now(chain)
    candidates = [
        envelope
        for grant in grants(chain, record.patient, reader.address, Scope.covering(record))
        if grant.live(now)
        for envelope in reversed(grant.envelopes)
    ]
    service = registry.verified_institution_of(chain, reader.address)
    opening = emergency_of(chain, record.patient, service) if service else None
    if opening is not None and opening.live(now):
        candidates.extend(reversed(_delivered(chain, record.patient, reader.address)))
    for envelope in candidates:
        wrapped = _envelope_keys(store, envelope).get(record.hex_id)
        if wrapped is None:
            continue
        # A key counts only if it opens the body, so a bogus envelope cannot block the reader.
        try:
            secret = crypto.unwrap(wrapped, reader.key)
            records.open_with(chain, record, sealed, secret)
        except MedLedgerError:
            continue
        return secret
    raise NoKeyForReader(
        "no key for your account was delivered for this record (ask the patient or the issuer "
        "to deliver keys)"
    )


def _delivered(chain: Chain, patient: str, grantee: str) -> list[Cid]:
    """Envelopes delivered to ``grantee`` under scope ``all`` (a grant's, or an emergency
    opening's), oldest first."""
    start = deployments.require(chain).contracts["ConsentManager"].block
    filters = {"patient": patient, "grantee": grantee, "scopeKey": _scope_key(Scope(ScopeKind.ALL))}
    events = consent_contract(chain).events.KeysDelivered().get_logs(
        from_block=start, argument_filters=filters
    )
    return [Cid.from_digest_v0(bytes(e["args"]["envelopeDigest"])) for e in events]


# --- grants ------------------------------------------------------------------------------------


def grant(
    chain: Chain,
    store: BlockStore,
    signer: LocalAccount,
    patient: str,
    grantee: str,
    scope: Scope,
    purpose: Purpose,
    expires: timedelta,
) -> GrantState:
    """Grant access (the signer is the patient or a delegate) and deliver the keys in scope."""
    patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
    contract = consent_contract(chain)
    registry.require_acts_for(chain, signer.address, patient)
    grantee_key = _grantee_key(chain, patient, grantee)
    in_scope = _records_in_scope(chain, store, patient, scope)
    if scope.kind is ScopeKind.RECORD:
        in_scope = [ensure_registered(chain, store, signer, r) for r in in_scope]
    envelope = build_envelope(chain, store, signer, patient, grantee_key, in_scope)
    expires_at = int((chain_now(chain) + expires).timestamp())
    chain.transact(
        "granting access",
        signer,
        contract.functions.grant(
            patient, grantee, int(scope.kind), scope.value, int(purpose), expires_at,
            envelope.digest if envelope else ZERO,
        ),
    )  # fmt: skip
    return _state(chain, patient, grantee, scope, (envelope,) if envelope else ())


def sign_grant(
    chain: Chain,
    store: BlockStore,
    signer: LocalAccount,
    patient: str,
    grantee: str,
    scope: Scope,
    purpose: Purpose,
    expires: timedelta,
    valid_for: timedelta = timedelta(days=7),
) -> dict[str, Any]:
    """Sign a grant off chain (EIP-712); return the document any relayer can submit.

    The document carries the key envelope itself, so the relayer can put it in its own store.
    """
    patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
    contract = consent_contract(chain)
    registry.require_acts_for(chain, signer.address, patient)
    grantee_key = _grantee_key(chain, patient, grantee)
    envelope = build_envelope(
        chain, store, signer, patient, grantee_key, _records_in_scope(chain, store, patient, scope)
    )
    now = chain_now(chain)
    request = {
        "patient": patient,
        "grantee": grantee,
        "scopeKind": int(scope.kind),
        "scope": "0x" + scope.value.hex(),
        "purpose": int(purpose),
        "expiresAt": int((now + expires).timestamp()),
        "envelopeDigest": "0x" + (envelope.digest if envelope else ZERO).hex(),
        "nonce": int(chain.call("reading the nonce", contract.functions.nonces(patient))),
        "deadline": int((now + valid_for).timestamp()),
    }
    typed = eip712.typed_data(
        "ConsentManager", chain.chain_id, contract.address, "GrantRequest", GRANT_FIELDS, request
    )
    signature = eip712.sign(signer.key, typed)
    return {
        "kind": "medledger/signed-grant",
        "chain_id": chain.chain_id,
        "consent_manager": contract.address,
        "request": request,
        "signature": "0x" + bytes(signature).hex(),
        "envelope": base64.b64encode(store.cat(envelope)).decode() if envelope else None,
    }


def submit_signed_grant(
    chain: Chain, store: BlockStore, relayer: LocalAccount, document: dict[str, Any]
) -> GrantState:
    """Submit a signed grant (any account pays the gas); the patient needs no ETH."""
    contract = consent_contract(chain)
    try:
        request = document["request"]
        signature = HexBytes(document["signature"])
        if document.get("kind") != "medledger/signed-grant":
            raise KeyError("kind")
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError("signature file", "is not a MedLedger signed grant") from None
    if (
        document.get("chain_id") != chain.chain_id
        or document.get("consent_manager") != contract.address
    ):
        raise PreconditionFailed("the signed grant is for another chain or ConsentManager")
    if document.get("envelope"):
        from medledger.ipfs.unixfs import hash_bytes

        envelope = base64.b64decode(document["envelope"])
        if "0x" + hash_bytes(envelope).digest.hex() != request["envelopeDigest"]:
            raise PreconditionFailed("the envelope in the file does not match the signed digest")
        store.add_bytes(envelope)  # stored only once it is known to be the signed one
    scope = Scope.from_chain(request["scopeKind"], bytes(HexBytes(request["scope"])))
    if scope.kind is ScopeKind.RECORD and scope.record is not None:
        ensure_registered(chain, store, relayer, records.get(chain, scope.record, store))
    args = (
        request["patient"], request["grantee"], request["scopeKind"],
        HexBytes(request["scope"]), request["purpose"], request["expiresAt"],
        HexBytes(request["envelopeDigest"]), request["nonce"], request["deadline"],
    )  # fmt: skip
    chain.transact(
        "submitting the signed grant",
        relayer,
        contract.functions.grantWithSignature(args, signature),
    )
    return _state(chain, request["patient"], request["grantee"], scope)


def revoke(chain: Chain, signer: LocalAccount, patient: str, grantee: str, scope: Scope) -> None:
    """Revoke a grant at once (the signer is the patient or a delegate)."""
    patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
    contract = consent_contract(chain)
    registry.require_acts_for(chain, signer.address, patient)
    current = _state(chain, patient, grantee, scope)
    status = current.status(chain_now(chain))
    if status != "active":
        raise PreconditionFailed(
            f"{grantee} has no live {scope.label} grant from {patient} ({status})"
        )
    chain.transact(
        "revoking access",
        signer,
        contract.functions.revoke(patient, grantee, int(scope.kind), scope.value),
    )


def cancel_signatures(chain: Chain, signer: LocalAccount, patient: str) -> int:
    """Burn the patient's next ConsentManager nonce: a signed grant carrying it (not yet
    submitted) can never be used. Returns the cancelled nonce."""
    patient = to_checksum_address(patient)
    registry.require_acts_for(chain, signer.address, patient)
    contract = consent_contract(chain)
    nonce = int(chain.call("reading the nonce", contract.functions.nonces(patient)))
    chain.transact("cancelling signatures", signer, contract.functions.cancelSignatures(patient))
    return nonce


@dataclass(frozen=True)
class EmergencyState:
    """An emergency service's last break-glass opening for a patient."""

    patient: str
    institution: str
    opened_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    superseded: bool = False
    """True once the service was suspended after opening it (the opening then never counts
    again, even if the service is reinstated)."""

    def live(self, now: datetime) -> bool:
        """True while neither expired, closed nor ended by a suspension."""
        return self.closed_at is None and not self.superseded and self.expires_at > now

    @property
    def ended_at(self) -> datetime:
        """When it ended (or will end)."""
        return self.closed_at or self.expires_at

    def status(self, now: datetime) -> str:
        """``active``, ``closed``, ``ended`` (by a suspension) or ``expired``."""
        if self.closed_at is not None:
            return "closed"
        if self.superseded:
            return "ended"
        return "active" if self.expires_at > now else "expired"

    def as_dict(self, now: datetime) -> dict[str, object]:
        """A JSON-friendly view, shaped like a grant's (scope all, purpose emergency)."""
        return {
            "patient": self.patient,
            "grantee": self.institution,
            "scope": "all",
            "purpose": "emergency",
            "granted_at": self.opened_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": self.closed_at.isoformat() if self.closed_at else None,
            "status": self.status(now),
            "envelopes": [],
        }


#: Seconds after an opening ends before the same service may open again (the contract's
#: ``EMERGENCY_COOLDOWN``).
EMERGENCY_COOLDOWN = timedelta(days=7)


def emergency_of(chain: Chain, patient: str, institution: str) -> EmergencyState | None:
    """The last emergency opening of ``institution`` for ``patient``, or None."""
    opened, expires, closed, opened_in = chain.call(
        "reading emergency access",
        consent_contract(chain).functions.emergencyOf(
            to_checksum_address(patient), to_checksum_address(institution)
        ),
    )
    if not opened:
        return None
    _service, round_now = chain.call(
        "reading the registry",
        deployments.contract(chain, "ProviderRegistry").functions.actingInstitution(
            to_checksum_address(institution)
        ),
    )

    def when(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, tz=UTC)

    return EmergencyState(
        to_checksum_address(patient),
        to_checksum_address(institution),
        when(opened),
        when(expires),
        when(closed) if closed else None,
        superseded=int(round_now) != int(opened_in),
    )


def emergencies(chain: Chain, patient: str) -> list[EmergencyState]:
    """The last emergency opening of every service that ever opened one for ``patient``."""
    patient = to_checksum_address(patient)
    start = deployments.require(chain).contracts["ConsentManager"].block
    services = dict.fromkeys(
        to_checksum_address(e["args"]["institution"])
        for e in consent_contract(chain).events.EmergencyAccessOpened().get_logs(
            from_block=start, argument_filters={"patient": patient}
        )
    )
    found = (emergency_of(chain, patient, service) for service in services)
    return [state for state in found if state is not None]


def open_emergency_access(
    chain: Chain, opener: LocalAccount, patient: str, duration: timedelta, reason: str
) -> datetime:
    """Open break-glass access (a verified emergency service); return when it ends."""
    institution = registry.verified_institution_of(chain, opener.address)
    kind = registry.participant(chain, institution).kind if institution else None
    if institution is None or kind is not registry.InstitutionKind.EMERGENCY_SERVICE:
        raise PreconditionFailed(f"{opener.address} does not act for a verified emergency service")
    if not reason.strip():
        raise ConfigurationError("--reason", "emergency access needs a stated reason")
    if not timedelta(0) < duration <= timedelta(hours=24):
        raise ConfigurationError("--duration", "emergency access lasts at most 24 hours")
    if registry.participant(chain, patient).role is not registry.Role.PATIENT:
        raise PatientNotFound(to_checksum_address(patient))
    last = emergency_of(chain, patient, institution)
    if last is not None and chain_now(chain) < last.ended_at + EMERGENCY_COOLDOWN:
        state = "is still open" if last.live(chain_now(chain)) else "ended less than 7 days ago"
        raise PreconditionFailed(
            f"{institution}'s last emergency opening for {patient} {state}: it may open again "
            f"from {last.ended_at + EMERGENCY_COOLDOWN:%Y-%m-%d %H:%M}Z"
        )
    seconds = int(duration.total_seconds())
    chain.transact(
        "opening emergency access",
        opener,
        consent_contract(chain).functions.openEmergencyAccess(
            to_checksum_address(patient), seconds, reason
        ),
    )
    return chain_now(chain) + timedelta(seconds=seconds)


def close_emergency_access(
    chain: Chain, signer: LocalAccount, patient: str, institution: str
) -> None:
    """End a live emergency opening at once (the patient or a delegate)."""
    patient, institution = to_checksum_address(patient), to_checksum_address(institution)
    registry.require_acts_for(chain, signer.address, patient)
    last = emergency_of(chain, patient, institution)
    if last is None or not last.live(chain_now(chain)):
        raise PreconditionFailed(f"{institution} has no live emergency opening for {patient}")
    chain.transact(
        "closing emergency access",
        signer,
        consent_contract(chain).functions.closeEmergencyAccess(patient, institution),
    )


def deliver_keys(
    chain: Chain, store: BlockStore, holder: LocalAccount, patient: str, grantee: str, scope: Scope
) -> Cid | None:
    """Wrap the keys the holder has, for a live grant (or, with scope ``all``, a live emergency
    opening of the grantee's service), and publish the envelope."""
    patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
    if not registry.acts_for(chain, holder.address, patient) and not registry.may_write_for(
        chain, holder.address, patient
    ):
        raise PreconditionFailed(
            f"{holder.address} holds no keys of {patient}'s records: only the patient, a delegate "
            "or a care provider writing for them delivers keys"
        )
    current = _state(chain, patient, grantee, scope)
    now = chain_now(chain)
    service = registry.verified_institution_of(chain, grantee)
    emergency = emergency_of(chain, patient, service) if service else None
    by_emergency = scope.kind is ScopeKind.ALL and emergency is not None and emergency.live(now)
    if not current.live(now) and not by_emergency:
        raise PreconditionFailed(f"{grantee} has no live {scope.label} grant from {patient}")
    key = _grantee_key(chain, patient, grantee)
    envelope = build_envelope(
        chain, store, holder, patient, key, _records_in_scope(chain, store, patient, scope)
    )
    if envelope is None:
        return None
    chain.transact(
        "delivering keys",
        holder,
        consent_contract(chain).functions.deliverKeys(
            patient, grantee, int(scope.kind), scope.value, envelope.digest
        ),
    )
    return envelope


def grants(
    chain: Chain,
    patient: str,
    grantee: str | None = None,
    scopes: Iterable[Scope] | None = None,
) -> list[GrantState]:
    """Every grant a patient ever gave (optionally to one grantee, optionally only of the
    given ``scopes``), as it stands now.

    Callers that need only some scopes name them: the events are then filtered by their
    indexed scope key on the node, and only those grants are read. Listing every grant made a
    read by a reader holding 10,000 record grants from one patient decode 10,000 events and
    make 10,000 calls (found by the growth benchmark).
    """
    contract = consent_contract(chain)
    filters: dict[str, Any] = {"patient": to_checksum_address(patient)}
    if grantee:
        filters["grantee"] = to_checksum_address(grantee)
    wanted = None if scopes is None else list(scopes)
    if wanted is not None:
        filters["scopeKey"] = [_scope_key(scope) for scope in wanted]
    start = deployments.require(chain).contracts["ConsentManager"].block
    seen: dict[tuple[str, bytes], Scope] = {}
    envelopes: dict[tuple[str, bytes], list[Cid]] = {}
    for event in contract.events.AccessGranted().get_logs(
        from_block=start, argument_filters=filters
    ):
        args = event["args"]
        key = (args["grantee"], bytes(args["scopeKey"]))
        seen[key] = Scope.from_chain(args["scopeKind"], bytes(args["scope"]))
        if bytes(args["envelopeDigest"]) != ZERO:
            envelopes.setdefault(key, []).append(Cid.from_digest_v0(bytes(args["envelopeDigest"])))
    for event in contract.events.KeysDelivered().get_logs(
        from_block=start, argument_filters=filters
    ):
        args = event["args"]
        key = (args["grantee"], bytes(args["scopeKey"]))
        envelopes.setdefault(key, []).append(Cid.from_digest_v0(bytes(args["envelopeDigest"])))
    return [
        _state(chain, filters["patient"], g, scope, tuple(envelopes.get((g, k), ())))
        for (g, k), scope in seen.items()
    ]


def readers_for(chain: Chain, patient: str, category: Category) -> list[bytes]:
    """Public keys of grantees whose live grants cover a new record of ``category``."""
    try:
        consent_contract(chain)
    except MedLedgerError:
        return []
    now = chain_now(chain)
    keys: list[bytes] = []
    wide = (Scope(ScopeKind.ALL), Scope(ScopeKind.CATEGORY, category=category))
    for state in grants(chain, patient, scopes=wide):  # a record grant never covers a new record
        if state.live(now) and state.purpose is not Purpose.EMERGENCY:
            key = registry.participant(chain, state.grantee).encryption_key
            if key:
                keys.append(key)
    return keys


# --- reading under consent --------------------------------------------------------------------


def refusal_reason(chain: Chain, reader: str, record: records.Record) -> str:
    """Say why ``reader`` has no access: erased, revoked, expired or no grant."""
    contract = consent_contract(chain)
    if chain.call("reading consent", contract.functions.isErased(record.id)):
        return "the patient erased this record"
    now = chain_now(chain)
    states = grants(chain, record.patient, reader, Scope.covering(record))
    service = registry.verified_institution_of(chain, reader)
    opening = emergency_of(chain, record.patient, service) if service else None
    if not states and opening is not None:
        ended = "was closed" if opening.closed_at else "expired"
        return f"the emergency access of {service} {ended} on {opening.ended_at:%Y-%m-%d %H:%M}Z"
    if not states:
        return f"no grant from patient {record.patient} covers this record"
    latest = max(states, key=lambda g: g.granted_at)
    if latest.revoked_at is not None:
        return f"the patient revoked the grant on {latest.revoked_at:%Y-%m-%d %H:%M}Z"
    return (
        f"the grant expired on {latest.expires_at:%Y-%m-%d %H:%M}Z"
        if latest.expires_at <= now
        else "no live grant"
    )


def read(
    chain: Chain, store: BlockStore, reader: LocalAccount, record_id: bytes | str, log: bool = True
) -> bytes:
    """Read a record under consent: refuse without live access, log the use on chain.

    The patient and the record's author read without a grant. A grantee reading a record that
    is only in a batch registers it on chain first (it pays that gas), so that the chain can
    judge its grant.
    """
    record = records.get(chain, record_id, store)
    contract = consent_contract(chain)
    own = reader.address == record.patient
    author = reader.address == record.issuer or _employer(chain, record.issuer) == reader.address
    if not (record.registered or own or author):
        record = ensure_registered(chain, store, reader, record)
    allowed = own or chain.call(
        "checking access", contract.functions.hasAccess(reader.address, record.id)
    )
    erased = chain.call("reading consent", contract.functions.isErased(record.id))
    if erased or not (allowed or author):
        raise AccessRefused(record.hex_id, refusal_reason(chain, reader.address, record))
    secret = secret_of(chain, store, reader, record)
    sealed = store.cat(record.cid)
    body = records.open_with(chain, record, sealed, secret)
    if log and allowed and not own:
        chain.transact("logging the read", reader, contract.functions.logAccess([record.id]))
    return body


def log_reads(chain: Chain, reader: LocalAccount, record_ids: list[bytes]) -> TxReceipt:
    """Log many reads in one transaction."""
    return chain.transact(
        "logging reads", reader, consent_contract(chain).functions.logAccess(record_ids)
    )


def erase(chain: Chain, store: BlockStore, signer: LocalAccount, record_id: bytes | str) -> int:
    """Crypto-shred a record: mark it erased, unpin its body and the envelopes holding its key.

    Returns how many blocks the store's garbage collection removed. Envelopes that also held
    keys of other records are re-issued without the erased record for the grants still live.
    """
    record = ensure_registered(chain, store, signer, records.get(chain, record_id, store))
    contract = consent_contract(chain)
    registry.require_acts_for(chain, signer.address, record.patient)
    chain.transact("erasing the record", signer, contract.functions.eraseRecord(record.id))
    now = chain_now(chain)
    store.unpin(record.cid)
    for state in grants(chain, record.patient, scopes=Scope.covering(record)):
        for envelope in state.envelopes:
            held = _envelope_keys(store, envelope)
            if record.hex_id in held:
                store.unpin(envelope)
                if state.live(now) and len(held) > 1 and signer.address == record.patient:
                    deliver_keys(chain, store, signer, record.patient, state.grantee, state.scope)
    return store.gc()


# --- helpers ---------------------------------------------------------------------------------


def _employer(chain: Chain, account: str) -> str | None:
    return registry.participant(chain, account).employer


def _scope_key(scope: Scope) -> bytes:
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    return keccak(encode(["uint8", "bytes32"], [int(scope.kind), scope.value]))


def _state(
    chain: Chain, patient: str, grantee: str, scope: Scope, envelopes: tuple[Cid, ...] = ()
) -> GrantState:
    granted_at, expires_at, revoked_at, purpose = chain.call(
        "reading the grant",
        consent_contract(chain).functions.getGrant(patient, grantee, _scope_key(scope)),
    )
    return GrantState(
        patient=to_checksum_address(patient),
        grantee=to_checksum_address(grantee),
        scope=scope,
        purpose=Purpose(purpose) if purpose else Purpose.TREATMENT,
        granted_at=datetime.fromtimestamp(granted_at, tz=UTC),
        expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
        revoked_at=datetime.fromtimestamp(revoked_at, tz=UTC) if revoked_at else None,
        envelopes=envelopes,
    )


def _records_in_scope(
    chain: Chain, store: BlockStore, patient: str, scope: Scope
) -> list[records.Record]:
    if scope.kind is ScopeKind.RECORD and scope.record is not None:
        record = records.get(chain, scope.record, store)
        if record.patient != patient:
            raise PreconditionFailed(f"record {record.hex_id} belongs to another patient")
        return [record]
    return [r for r in records.for_patient(chain, patient, store) if scope.covers(r)]


def _grantee_key(chain: Chain, patient: str, grantee: str) -> bytes:
    if grantee == patient:
        raise PreconditionFailed("a patient does not need a grant to read their own records")
    key = registry.participant(chain, grantee).encryption_key
    if key is None:
        raise PreconditionFailed(f"{grantee} has published no encryption key in the registry")
    return key


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``12h``, ``90m``, ``45s`` or ``2w``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    try:
        amount = float(text[:-1])
        seconds = amount * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise ConfigurationError("duration", f"{text!r} is not like 30d, 12h, 90m or 2w") from None
    if seconds <= 0:
        raise ConfigurationError("duration", "must be positive")
    return timedelta(seconds=seconds)
