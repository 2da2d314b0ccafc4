"""Clinical trials: pre-registered protocols, signed and versioned consent, traceable data.

The TrialRegistry holds a study's protocol versions (by IPFS digest, with hashes of the outcome
definitions), its sites and monitors, each participant's consent history and the pointers of
their data. The protocol document is the study's FHIR R4 ``ResearchStudy`` resource, stored
public or sealed for the sponsor and the planned sites. Outcome definitions are its
``objective`` entries: those whose ``type`` has the code ``primary`` (R4
``research-study-objective-type``) hash to ``primaryOutcomes``, the others to
``secondaryOutcomes``: keccak256 of the canonical JSON (sorted keys, no spaces) of the list, in
document order. A protocol without a primary objective is refused: the primary outcome must be
fixed before anyone enrols.

Participants are pseudonymous: one fresh account per study, unrelated to their record address
(``ape accounts generate study-7``, or a key in an environment variable for ``env:VAR``). That
account signs consent and withdrawal (EIP-712) and never needs ETH: the enrolling site submits
the consent, and anyone may relay a signed withdrawal. The participant's public key is
recovered from their latest consent signature (read back from the consent transaction), so
data bodies are sealed for them without any registration. A participant who wants to show that
a study address and their record address are both theirs signs one statement with both keys
(:func:`link_proof`); anyone checks it with :func:`verify_link`, and nothing of it goes on
chain.

Each data body (any FHIR resource) is sealed under its own key for the participant, the site's
institution, the submitting account, the sponsor (reader bit 0) and every monitor with a
published key (reader bit 1) and anchored alone (``submitData``) or with the rest of a visit in
a Merkle batch (``submitDataBatch``) whose public manifest lists each body's CID and
commitment in tree order. The tree is positional (``merkle.IndexedTree``, the contract's
``IndexedMerkle``) and the declared count is the tree's: a batch proves its bodies at positions
``0 .. count - 1`` only (``verifyBatchData(..., index, proof)``), never more. Preconditions are
checked before anything is stored or sent, so a refused submission names the reason (withdrawn,
stale consent, not the enrolling site) instead of reverting.

A version's outcome definitions freeze at its first consent or its first data (the contract's
``outcomesFrozenAt``). :func:`audit` re-checks, from chain events, consent transactions and
stored bodies alone, that the trial ran as registered, trusting none of the contract's rules:
among them, that no outcome definition changed after it froze and that no amendment switched the
primary outcomes once data collection had begun.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

import coincurve
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError
from hexbytes import HexBytes
from web3.logs import DISCARD

from medledger import access, crypto, deployments, eip712, registry
from medledger.errors import (
    AccessRefused,
    ConfigurationError,
    CryptoError,
    FhirStructureError,
    IntegrityError,
    MedLedgerError,
    NoKeyForReader,
    PreconditionFailed,
    StudyNotFound,
    TransactionReverted,
)
from medledger.ipfs.cid import Cid
from medledger.labels import Labelled
from medledger.merkle import IndexedTree, verify_indexed

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract

    from medledger.chain import Chain
    from medledger.fhir import StudyFacts
    from medledger.ipfs.blockstore import BlockStore

ZERO = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20
CONSENT_KIND = "medledger/trial-consent"
WITHDRAWAL_KIND = "medledger/trial-withdrawal"
MANIFEST_KIND = "medledger/trial-batch"
MANIFEST_VERSION = 2  # v2: positional trees (bodies in tree order); v1 trees hashed sorted pairs
LINK_KIND = "medledger/trial-identity-link"
OBJECTIVE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-objective-type"
READER_SPONSOR = 1
READER_MONITORS = 2
MAX_REASON_LENGTH = 200
CARE_KINDS = (
    registry.InstitutionKind.HOSPITAL,
    registry.InstitutionKind.CLINIC,
    registry.InstitutionKind.LABORATORY,
)


class ConsentPurpose(Labelled):
    """What a participant's data may be used for (the contract's ``ConsentPurpose``)."""

    TRIAL_ONLY = 1
    TRIAL_AND_FUTURE_RESEARCH = 2

    @classmethod
    def parse(cls, text: str) -> ConsentPurpose:
        """Parse a command-line name."""
        return cls.lookup(text, "--purpose", "consent purpose")


class Standing(Enum):
    """Where a participant stands: data is accepted only while ``active``."""

    ACTIVE = "active"
    STALE = "stale"  # an amendment requires re-consent first
    WITHDRAWN = "withdrawn"


# --- models --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """A study as the chain holds it, with its sites and current monitors from its events."""

    id: int
    chain_id: int
    registry: str
    sponsor: str
    current_version: int
    reconsent_version: int
    participants: int
    registered_at: datetime
    first_enrolment_at: datetime | None
    data_count: int
    sites: tuple[str, ...] = ()
    monitors: tuple[str, ...] = ()
    summary: Cid | None = None

    @property
    def identifier(self) -> str:
        """The portable identifier ``eip155:<chain>/<TrialRegistry>/<id>``."""
        return f"eip155:{self.chain_id}/{self.registry}/{self.id}"

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "id": self.id,
            "identifier": self.identifier,
            "sponsor": self.sponsor,
            "current_version": self.current_version,
            "reconsent_version": self.reconsent_version,
            "participants": self.participants,
            "registered_at": self.registered_at.isoformat(),
            "first_enrolment_at": _iso(self.first_enrolment_at),
            "data_count": self.data_count,
            "sites": list(self.sites),
            "monitors": list(self.monitors),
            "summary": str(self.summary) if self.summary else None,
        }


@dataclass(frozen=True)
class ProtocolVersion:
    """One protocol version: its document, outcome hashes and why it came.

    ``outcomes_frozen_at`` is when its outcome definitions froze: its first consent or its
    first data, whichever came first (``None`` while they may still change).
    """

    study_id: int
    version: int
    protocol: Cid
    encrypted: bool
    primary_outcomes: bytes
    secondary_outcomes: bytes | None
    requires_reconsent: bool
    reason: str
    registered_at: datetime
    outcomes_frozen_at: datetime | None
    block: int

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "version": self.version,
            "protocol": str(self.protocol),
            "encrypted": self.encrypted,
            "primary_outcomes": "0x" + self.primary_outcomes.hex(),
            "secondary_outcomes": _hex(self.secondary_outcomes),
            "requires_reconsent": self.requires_reconsent,
            "reason": self.reason,
            "registered_at": self.registered_at.isoformat(),
            "outcomes_frozen_at": _iso(self.outcomes_frozen_at),
            "block": self.block,
        }


@dataclass(frozen=True)
class Participation:
    """A participant's standing in a study."""

    study_id: int
    participant: str
    site: str
    consented_version: int
    enrolled_at: datetime
    purpose: ConsentPurpose
    readers: int
    withdrawn_at: datetime | None
    delegate: str | None
    consents: int
    required_version: int

    @property
    def standing(self) -> Standing:
        """Active, stale (must re-consent) or withdrawn."""
        if self.withdrawn_at is not None:
            return Standing.WITHDRAWN
        if self.consented_version < self.required_version:
            return Standing.STALE
        return Standing.ACTIVE

    @property
    def sponsor_reads(self) -> bool:
        """Whether the participant lets the sponsor read their data."""
        return bool(self.readers & READER_SPONSOR)

    @property
    def monitors_read(self) -> bool:
        """Whether the participant lets the study's monitors read their data."""
        return bool(self.readers & READER_MONITORS)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "study": self.study_id,
            "participant": self.participant,
            "site": self.site,
            "standing": self.standing.value,
            "consented_version": self.consented_version,
            "required_version": self.required_version,
            "enrolled_at": self.enrolled_at.isoformat(),
            "purpose": self.purpose.label,
            "sponsor_reads": self.sponsor_reads,
            "monitors_read": self.monitors_read,
            "withdrawn_at": _iso(self.withdrawn_at),
            "delegate": self.delegate,
            "consents": self.consents,
        }


@dataclass(frozen=True)
class BatchPosition:
    """Where a batched body sits: its batch's root and declared count, its position in the
    positional tree and the sibling hashes that prove it there."""

    root: bytes
    count: int
    index: int
    proof: tuple[bytes, ...]

    def proves(self, item_id: bytes) -> bool:
        """Whether the proof puts ``item_id`` at this position (as ``verifyBatchData`` does)."""
        return verify_indexed(list(self.proof), self.root, item_id, self.index, self.count)


@dataclass(frozen=True)
class DataItem:
    """One anchored data body: submitted alone, or a leaf of a batch (``batch`` and
    ``position`` set)."""

    id: bytes
    study_id: int
    participant: str
    visit: bytes
    version: int
    cid: Cid
    commitment: bytes
    site: str
    submitted_at: datetime
    block: int
    log_index: int
    transaction_hash: str
    batch: bytes | None = None
    position: BatchPosition | None = None

    @property
    def hex_id(self) -> str:
        """The id as ``0x`` hex."""
        return "0x" + self.id.hex()

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "id": self.hex_id,
            "participant": self.participant,
            "visit": "0x" + self.visit.hex(),
            "version": self.version,
            "cid": str(self.cid),
            "commitment": "0x" + self.commitment.hex(),
            "site": self.site,
            "submitted_at": self.submitted_at.isoformat(),
            "block": self.block,
            "transaction": self.transaction_hash,
            "batch": _hex(self.batch),
            "index": self.position.index if self.position else None,
        }


@dataclass(frozen=True)
class Submission:
    """What one :func:`submit_data` call anchored, and what it cost."""

    items: tuple[DataItem, ...]
    transactions: tuple[str, ...]
    gas_used: int
    batch: bytes | None = None
    manifest: Cid | None = None

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "items": [i.as_dict() for i in self.items],
            "transactions": list(self.transactions),
            "gas_used": self.gas_used,
            "batch": _hex(self.batch),
            "manifest": str(self.manifest) if self.manifest else None,
        }


@dataclass(frozen=True)
class TrialEvent:
    """One step of a study's life, from its events, with its transaction's gas."""

    time: datetime
    block: int
    log_index: int
    event: str
    actor: str
    detail: str
    transaction_hash: str
    gas_used: int

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "time": self.time.isoformat(),
            "block": self.block,
            "event": self.event,
            "by": self.actor,
            "detail": self.detail,
            "transaction": self.transaction_hash,
            "gas": self.gas_used,
        }


@dataclass
class Check:
    """One audit rule, how many things it looked at, and what broke it."""

    rule: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing broke the rule."""
        return not self.violations


@dataclass
class AuditReport:
    """The result of :func:`audit`: every rule with its violations."""

    study_id: int
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """True when every rule held."""
        return all(c.ok for c in self.checks)

    @property
    def violations(self) -> list[str]:
        """Every violation, each prefixed with its rule."""
        return [f"{c.rule}: {v}" for c in self.checks for v in c.violations]

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "study": self.study_id,
            "ok": self.ok,
            "checks": [
                {
                    "rule": c.rule,
                    "ok": c.ok,
                    "checked": c.checked,
                    "violations": c.violations,
                    "notes": c.notes,
                }
                for c in self.checks
            ],
        }


# --- signed requests -----------------------------------------------------------------------------

CONSENT_FIELDS = (
    ("studyId", "uint64"),
    ("version", "uint32"),
    ("protocolHash", "bytes32"),
    ("site", "address"),
    ("participant", "address"),
    ("purpose", "uint8"),
    ("readers", "uint8"),
    ("delegate", "address"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
"""``ConsentRequest``'s fields in the order of the contract's ``CONSENT_TYPEHASH``."""
WITHDRAWAL_FIELDS = (
    ("studyId", "uint64"),
    ("participant", "address"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
"""``WithdrawalRequest``'s fields in the order of the contract's ``WITHDRAWAL_TYPEHASH``."""


@dataclass(frozen=True)
class ConsentRequest:
    """A participant's consent as signed (the contract's ``ConsentRequest``).

    ``deadline`` stays the integer that was signed (seconds since the epoch), so a document
    read back signs to the same digest; :attr:`deadline_at` is its time.
    """

    study_id: int
    version: int
    protocol_hash: bytes
    site: str
    participant: str
    purpose: ConsentPurpose
    readers: int
    delegate: str | None
    nonce: int
    deadline: int

    @property
    def deadline_at(self) -> datetime:
        """When the signature stops being accepted."""
        return _deadline_time(self.deadline)

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (also the ``request`` of a consent document)."""
        return {
            "studyId": self.study_id,
            "version": self.version,
            "protocolHash": "0x" + self.protocol_hash.hex(),
            "site": self.site,
            "participant": self.participant,
            "purpose": int(self.purpose),
            "readers": self.readers,
            "delegate": self.delegate or ZERO_ADDRESS,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def args(self) -> tuple[Any, ...]:
        """The contract's struct argument."""
        message = self.message()
        return tuple(message[name] for name, _type in CONSENT_FIELDS)

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> ConsentRequest:
        """Read a request (from a document or a decoded transaction); refuse malformed ones."""
        if "protocolHash" not in data:
            raise ConfigurationError(
                "consent",
                "names no protocolHash (the protocol and outcomes it was signed for): the "
                "participant must sign again",
            )
        protocol = _bytes32(data["protocolHash"])
        if protocol is None:
            raise ConfigurationError("consent", "protocolHash is not 32 bytes in 0x hex")
        try:
            delegate = to_checksum_address(str(data["delegate"]))
            return cls(
                study_id=int(data["studyId"]),
                version=int(data["version"]),
                protocol_hash=protocol,
                site=to_checksum_address(str(data["site"])),
                participant=to_checksum_address(str(data["participant"])),
                purpose=ConsentPurpose(int(data["purpose"])),
                readers=int(data["readers"]),
                delegate=None if int(delegate, 16) == 0 else delegate,
                nonce=int(data["nonce"]),
                deadline=int(data["deadline"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ConfigurationError("consent", "is not a well-formed consent request") from None


@dataclass(frozen=True)
class WithdrawalRequest:
    """A participant's withdrawal as signed (the contract's ``WithdrawalRequest``)."""

    study_id: int
    participant: str
    nonce: int
    deadline: int

    @property
    def deadline_at(self) -> datetime:
        """When the signature stops being accepted."""
        return _deadline_time(self.deadline)

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (also the ``request`` of a withdrawal document)."""
        return {
            "studyId": self.study_id,
            "participant": self.participant,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def args(self) -> tuple[Any, ...]:
        """The contract's struct argument."""
        message = self.message()
        return tuple(message[name] for name, _type in WITHDRAWAL_FIELDS)

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> WithdrawalRequest:
        """Read a request from a document; refuse malformed ones."""
        try:
            return cls(
                study_id=int(data["studyId"]),
                participant=to_checksum_address(str(data["participant"])),
                nonce=int(data["nonce"]),
                deadline=int(data["deadline"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ConfigurationError(
                "withdrawal", "is not a well-formed withdrawal request"
            ) from None


def typed_data(
    chain_id: int, registry_address: str, request: ConsentRequest | WithdrawalRequest
) -> dict[str, Any]:
    """The EIP-712 typed data of a request (domain "MedLedger TrialRegistry", version "1")."""
    fields: Sequence[tuple[str, str]]
    if isinstance(request, ConsentRequest):
        primary, fields = "ConsentRequest", CONSENT_FIELDS
    else:
        primary, fields = "WithdrawalRequest", WITHDRAWAL_FIELDS
    return eip712.typed_data(
        "TrialRegistry", chain_id, to_checksum_address(registry_address), primary, fields,
        request.message(),
    )  # fmt: skip


def request_digest(
    chain_id: int, registry_address: str, request: ConsentRequest | WithdrawalRequest
) -> bytes:
    """The EIP-712 digest the participant signs (``consentDigest`` / ``withdrawalDigest``):
    eth-account's encoding of :func:`typed_data`, hashed with its ``0x19`` prefix, which is
    what a signature over it recovers from."""
    signable = encode_typed_data(full_message=typed_data(chain_id, registry_address, request))
    return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


def recover_public_key(digest: bytes, signature: bytes) -> bytes:
    """The signer's compressed secp256k1 public key, recovered from a 65-byte signature."""
    if len(signature) != 65:
        raise CryptoError(f"a signature is 65 bytes, not {len(signature)}")
    v = signature[64]
    recovery = v - 27 if v >= 27 else v
    if recovery not in (0, 1):
        raise CryptoError(f"signature has an invalid recovery byte {v}")
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([recovery]), digest, hasher=None
        )
    except ValueError:
        raise CryptoError("the signature recovers to no public key") from None
    return bytes(key.format(compressed=True))


def address_of_key(public_key: bytes) -> str:
    """The Ethereum address of a (compressed or uncompressed) secp256k1 public key."""
    uncompressed = coincurve.PublicKey(public_key).format(compressed=False)
    return to_checksum_address(keccak(uncompressed[1:])[-20:])


def _sign(chain: Chain, signer: LocalAccount, request: ConsentRequest | WithdrawalRequest) -> str:
    document = typed_data(chain.chain_id, trial_registry(chain).address, request)
    return "0x" + eip712.sign(signer.key, document).hex()


# --- contract and small helpers ------------------------------------------------------------------


def trial_registry(chain: Chain) -> Contract:
    """The deployed TrialRegistry."""
    return deployments.contract(chain, "TrialRegistry")


def _start(chain: Chain) -> int:
    return deployments.require(chain).contracts["TrialRegistry"].block


def _logs(chain: Chain, event: str, filters: dict[str, Any] | None = None) -> list[Any]:
    contract = trial_registry(chain)
    found = getattr(contract.events, event)().get_logs(
        from_block=_start(chain), argument_filters=filters or None
    )
    return sorted(found, key=_position)


def _position(event: Any) -> tuple[int, int]:
    return int(event["blockNumber"]), int(event["logIndex"])


def _tx(event: Any) -> str:
    return "0x" + bytes(event["transactionHash"]).hex()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _hex(value: bytes | None) -> str | None:
    return "0x" + value.hex() if value else None


def _bytes32(value: object) -> bytes | None:
    """32 bytes given as bytes (a decoded transaction) or as ``0x`` and 64 hex digits (a
    document); ``None`` for anything else."""
    if isinstance(value, bytes):
        return bytes(value) if len(value) == 32 else None
    if not isinstance(value, str) or len(value) != 66 or value[:2] != "0x":
        return None
    try:
        decoded = bytes.fromhex(value[2:])
    except ValueError:
        return None
    return decoded if len(decoded) == 32 else None  # fromhex skips spaces


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _opt_ts(value: int) -> datetime | None:
    return _ts(value) if value else None


def _deadline_time(deadline: int) -> datetime:
    try:
        return _ts(deadline)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC)


def _address(text: str, what: str) -> str:
    try:
        return to_checksum_address(text.strip())
    except (ValueError, TypeError, AttributeError):
        raise ConfigurationError(what, f"{text!r} is not an address") from None


# --- protocol documents --------------------------------------------------------------------------


def canonical(value: object) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): what outcome hashes are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _is_primary(objective: Mapping[str, Any]) -> bool:
    concept = objective.get("type") or {}
    codings = concept.get("coding") or [] if isinstance(concept, Mapping) else []
    return any(
        isinstance(c, Mapping)
        and c.get("code") == "primary"
        and c.get("system") in (None, OBJECTIVE_TYPE_SYSTEM)
        for c in codings
    )


def outcomes_of(research_study: Mapping[str, Any], source: str = "protocol") -> tuple[bytes, bytes]:
    """The ``(primaryOutcomes, secondaryOutcomes)`` hashes of a ResearchStudy's objectives.

    Each is keccak256 of the canonical JSON of the objectives of its kind, in document order;
    with no secondary objective the second is zero. No primary objective is an error.
    """
    objectives = research_study.get("objective") or []
    if not isinstance(objectives, list):
        raise FhirStructureError(source, "ResearchStudy.objective is not a list")
    primary = [o for o in objectives if isinstance(o, Mapping) and _is_primary(o)]
    secondary = [o for o in objectives if isinstance(o, Mapping) and not _is_primary(o)]
    if not primary:
        raise FhirStructureError(
            source,
            "the ResearchStudy defines no primary objective (an objective whose type has the "
            f"code 'primary' of {OBJECTIVE_TYPE_SYSTEM}): the primary outcome must be fixed "
            "before anyone enrols",
        )
    return keccak(canonical(primary)), keccak(canonical(secondary)) if secondary else ZERO


def parse_protocol(body: bytes, source: str = "protocol") -> dict[str, Any]:
    """Read a protocol document: a FHIR R4 ``ResearchStudy`` resource (anything else refused)."""
    from medledger import fhir

    ingest = fhir.load(body, source)
    if ingest.kind != "resource" or fhir.resource_type_of(body) != "ResearchStudy":
        raise FhirStructureError(source, "is not a FHIR ResearchStudy resource")
    document: dict[str, Any] = json.loads(body)
    return document


def _protocol_aad(chain_id: int, registry_address: str) -> bytes:
    return f"medledger/trial-protocol:{chain_id}:{registry_address}".encode()


def _store_protocol(
    chain: Chain, store: BlockStore, body: bytes, encrypt: bool, readers: Sequence[str]
) -> Cid:
    if not encrypt:
        return store.add_bytes(body, pin=True)
    keys = []
    for reader in readers:
        key = registry.participant(chain, reader).encryption_key
        if key is None:
            raise PreconditionFailed(
                f"{reader} has published no encryption key, so the protocol cannot be sealed "
                "for it (or register the study with a public protocol)"
            )
        keys.append(key)
    aad = _protocol_aad(chain.chain_id, trial_registry(chain).address)
    return store.add_bytes(crypto.seal(body, aad, keys, crypto.BodySecret.generate()), pin=True)


def read_protocol(
    chain: Chain,
    store: BlockStore,
    study_id: int,
    version: int | None = None,
    reader: LocalAccount | None = None,
) -> bytes:
    """The protocol document of a version (default: the one in force), decrypted if sealed."""
    chosen = protocol_version(chain, study_id, version)
    stored = store.cat(chosen.protocol)
    if not chosen.encrypted:
        return stored
    if reader is None:
        raise PreconditionFailed(
            f"version {chosen.version} of study {study_id}'s protocol is encrypted: read it with "
            "the sponsor's or a site's account"
        )
    try:
        secret = crypto.secret_for(stored, reader.key)
    except NoKeyForReader:
        raise PreconditionFailed(
            f"{reader.address} holds no key to version {chosen.version} of the protocol (only "
            "the sponsor and the sites it was sealed for do)"
        ) from None
    return crypto.open_sealed(
        stored, _protocol_aad(chain.chain_id, trial_registry(chain).address), secret
    )


# --- studies -------------------------------------------------------------------------------------


def register_study(
    chain: Chain,
    store: BlockStore,
    sponsor: LocalAccount,
    research_study: bytes,
    sites: Sequence[str],
    *,
    encrypt: bool = False,
    summary: bytes | None = None,
    source: str = "protocol",
) -> Study:
    """Register a study: its ResearchStudy protocol as version 1, its outcomes, its sites.

    The signer is a verified research sponsor or one of its practitioners. With ``encrypt``
    the protocol is sealed for the sponsor and the planned sites (sites added later get it
    from the sponsor); ``summary`` is a public summary document stored in IPFS.
    """
    institution = registry.verified_institution_of(chain, sponsor.address)
    kind = registry.participant(chain, institution).kind if institution else None
    if institution is None or kind is not registry.InstitutionKind.RESEARCH_SPONSOR:
        raise PreconditionFailed(
            f"{sponsor.address} is not a verified research sponsor (or a practitioner of one)"
        )
    planned = [_address(s, "--site") for s in sites]
    if len(set(planned)) != len(planned):
        raise ConfigurationError("--site", "a site is named twice")
    for site in planned:
        _require_care_site(chain, site)
    primary, secondary = outcomes_of(parse_protocol(research_study, source), source)
    cid = _store_protocol(chain, store, research_study, encrypt, [institution, *planned])
    summary_digest = store.add_bytes(summary, pin=True).digest if summary else ZERO
    contract = trial_registry(chain)
    receipt = chain.transact(
        "registering the study",
        sponsor,
        contract.functions.registerStudy(
            (cid.digest, encrypt, primary, secondary), planned, summary_digest
        ),
    )
    (event,) = contract.events.StudyRegistered().process_receipt(receipt, errors=DISCARD)
    return get_study(chain, int(event["args"]["studyId"]))


def _require_care_site(chain: Chain, site: str) -> None:
    entry = registry.participant(chain, site)
    if (
        entry.role is not registry.Role.INSTITUTION
        or entry.kind not in CARE_KINDS
        or entry.status is not registry.Status.VERIFIED
    ):
        raise PreconditionFailed(f"{site} is not a verified hospital, clinic or laboratory")


def _require_sponsor(chain: Chain, account: str, study: Study) -> None:
    if registry.verified_institution_of(chain, account) != study.sponsor:
        raise PreconditionFailed(
            f"{account} does not act for {study.sponsor}, the sponsor of study {study.id}"
        )


def amend(
    chain: Chain,
    store: BlockStore,
    sponsor: LocalAccount,
    study_id: int,
    research_study: bytes,
    *,
    requires_reconsent: bool,
    reason: str,
    encrypt: bool | None = None,
    source: str = "amendment",
) -> ProtocolVersion:
    """Amend the protocol: a new version comes into force at once.

    With ``requires_reconsent`` every participant's consent goes stale until they consent to
    the new version. ``reason`` is public (a short code or sentence, never personal data).
    ``encrypt`` defaults to what the version in force did.
    """
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    reason = reason.strip()
    if not reason:
        raise ConfigurationError("--reason", "an amendment needs a reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise ConfigurationError("--reason", f"keep it under {MAX_REASON_LENGTH} characters")
    primary, secondary = outcomes_of(parse_protocol(research_study, source), source)
    if encrypt is None:
        encrypt = protocol_version(chain, study_id).encrypted
    cid = _store_protocol(chain, store, research_study, encrypt, [study.sponsor, *study.sites])
    receipt = chain.transact(
        "amending the protocol",
        sponsor,
        trial_registry(chain).functions.amendProtocol(
            study_id, (cid.digest, encrypt, primary, secondary), requires_reconsent, reason
        ),
    )
    (event,) = (
        trial_registry(chain)
        .events.ProtocolVersionRegistered()
        .process_receipt(receipt, errors=DISCARD)
    )
    return protocol_version(chain, study_id, int(event["args"]["version"]))


def add_site(chain: Chain, sponsor: LocalAccount, study_id: int, site: str) -> Study:
    """Add a site (a verified hospital, clinic or laboratory) to a study."""
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    site = _address(site, "SITE")
    _require_care_site(chain, site)
    if site in study.sites:
        raise PreconditionFailed(f"{site} is already a site of study {study_id}")
    chain.transact(
        "adding a site", sponsor, trial_registry(chain).functions.addSite(study_id, site)
    )
    return get_study(chain, study_id)


def set_monitor(
    chain: Chain, sponsor: LocalAccount, study_id: int, monitor: str, allowed: bool = True
) -> Study:
    """Add (or remove) a monitor, who reads the data of participants that allow it.

    A monitor can decrypt only bodies sealed while it had a published encryption key.
    """
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    monitor = _address(monitor, "MONITOR")
    if allowed and study.sponsor in (monitor, registry.verified_institution_of(chain, monitor)):
        raise PreconditionFailed(
            f"{monitor} acts for the sponsor of study {study_id}: a monitor must be independent "
            "of the sponsor (the sponsor reads by its own consent bit)"
        )
    if allowed == (monitor in study.monitors):
        state = "already" if allowed else "not"
        raise PreconditionFailed(f"{monitor} is {state} a monitor of study {study_id}")
    chain.transact(
        "changing a monitor",
        sponsor,
        trial_registry(chain).functions.setMonitor(study_id, monitor, allowed),
    )
    return get_study(chain, study_id)


def publish_summary(
    chain: Chain, store: BlockStore, sponsor: LocalAccount, study_id: int, summary: bytes
) -> Cid:
    """Publish (or replace) the study's public summary document; return its CID."""
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    if not summary:
        raise ConfigurationError("summary", "the summary document is empty")
    cid = store.add_bytes(summary, pin=True)
    chain.transact(
        "publishing the summary",
        sponsor,
        trial_registry(chain).functions.publishSummary(study_id, cid.digest),
    )
    return cid


def protocol_hash(version: ProtocolVersion) -> bytes:
    """What a consent to ``version`` carries (``TrialRegistry.protocolHashOf``): keccak256 of
    the ABI encoding of its protocol digest and its primary and secondary outcome hashes as
    they stand (a participant's signature covers the outcomes they were shown)."""
    secondary = version.secondary_outcomes or ZERO
    fields = [version.protocol.digest, version.primary_outcomes, secondary]
    return keccak(abi_encode(["bytes32", "bytes32", "bytes32"], fields))


def get_study(chain: Chain, study_id: int) -> Study:
    """Read a study, with its sites, current monitors and summary from its events."""
    contract = trial_registry(chain)
    if not 0 < study_id < 2**64:
        raise StudyNotFound(study_id)
    try:
        raw = chain.call("reading the study", contract.functions.getStudy(study_id))
    except TransactionReverted as exc:
        if exc.error == "TrialUnknownStudy":
            raise StudyNotFound(study_id) from None
        raise
    sponsor, current, reconsent, participants, registered_at, first, data_count = raw
    by_study = {"studyId": study_id}
    sites = tuple(
        to_checksum_address(e["args"]["site"]) for e in _logs(chain, "SiteAdded", by_study)
    )
    monitors: dict[str, bool] = {}
    for e in _logs(chain, "MonitorChanged", by_study):
        monitors[to_checksum_address(e["args"]["monitor"])] = bool(e["args"]["allowed"])
    summary = ZERO
    for e in _logs(chain, "StudyRegistered", by_study):
        summary = bytes(e["args"]["summaryDigest"])
    for e in _logs(chain, "SummaryPublished", by_study):
        summary = bytes(e["args"]["summaryDigest"])
    return Study(
        id=study_id,
        chain_id=chain.chain_id,
        registry=contract.address,
        sponsor=to_checksum_address(sponsor),
        current_version=int(current),
        reconsent_version=int(reconsent),
        participants=int(participants),
        registered_at=_ts(registered_at),
        first_enrolment_at=_opt_ts(first),
        data_count=int(data_count),
        sites=sites,
        monitors=tuple(m for m, allowed in monitors.items() if allowed),
        summary=Cid.from_digest_v0(summary) if summary != ZERO else None,
    )


def studies(chain: Chain, sponsor: str | None = None) -> list[Study]:
    """Every registered study (or those of one sponsor), oldest first."""
    filters = {"sponsor": _address(sponsor, "--sponsor")} if sponsor else None
    return [
        get_study(chain, int(e["args"]["studyId"]))
        for e in _logs(chain, "StudyRegistered", filters)
    ]


def versions(chain: Chain, study_id: int) -> list[ProtocolVersion]:
    """Every protocol version of a study, oldest first."""
    get_study(chain, study_id)
    return [
        _version(chain, study_id, e)
        for e in _logs(chain, "ProtocolVersionRegistered", {"studyId": study_id})
    ]


def protocol_version(chain: Chain, study_id: int, version: int | None = None) -> ProtocolVersion:
    """One protocol version (default: the one in force)."""
    chosen = version if version is not None else get_study(chain, study_id).current_version
    events = _logs(chain, "ProtocolVersionRegistered", {"studyId": study_id, "version": chosen})
    if not events:
        get_study(chain, study_id)  # an unknown study says so
        raise PreconditionFailed(f"study {study_id} has no protocol version {chosen}")
    return _version(chain, study_id, events[0])


def _version(chain: Chain, study_id: int, event: Any) -> ProtocolVersion:
    a = event["args"]
    number = int(a["version"])
    (protocol, registered_at, frozen, reconsent) = chain.call(
        "reading the protocol version",
        trial_registry(chain).functions.getProtocolVersion(study_id, number),
    )
    _digest, encrypted, primary, secondary = protocol
    return ProtocolVersion(
        study_id=study_id,
        version=number,
        protocol=Cid.from_digest_v0(bytes(a["protocolDigest"])),
        encrypted=bool(encrypted),
        primary_outcomes=bytes(primary),
        secondary_outcomes=bytes(secondary) if bytes(secondary) != ZERO else None,
        requires_reconsent=bool(reconsent),
        reason=str(a["reason"]),
        registered_at=_ts(registered_at),
        outcomes_frozen_at=_opt_ts(frozen),
        block=int(event["blockNumber"]),
    )


def participation(chain: Chain, study_id: int, participant: str) -> Participation:
    """A participant's standing (refused for one who never enrolled)."""
    return _participation(chain, get_study(chain, study_id), _address(participant, "participant"))


def _participation(chain: Chain, study: Study, participant: str) -> Participation:
    found = _participation_or_none(chain, study, participant)
    if found is None:
        raise PreconditionFailed(f"{participant} is not enrolled in study {study.id}")
    return found


def _participation_or_none(chain: Chain, study: Study, participant: str) -> Participation | None:
    raw = chain.call(
        "reading the participation",
        trial_registry(chain).functions.getParticipation(study.id, participant),
    )
    site, version, enrolled, purpose, readers, withdrawn, delegate, consents = raw
    if int(site, 16) == 0:
        return None
    return Participation(
        study_id=study.id,
        participant=participant,
        site=to_checksum_address(site),
        consented_version=int(version),
        enrolled_at=_ts(enrolled),
        purpose=ConsentPurpose(purpose),
        readers=int(readers),
        withdrawn_at=_opt_ts(withdrawn),
        delegate=None if int(delegate, 16) == 0 else to_checksum_address(delegate),
        consents=int(consents),
        required_version=study.reconsent_version,
    )


def participants(chain: Chain, study_id: int) -> list[Participation]:
    """Every participant of a study, in order of enrolment."""
    study = get_study(chain, study_id)
    enrolled = dict.fromkeys(
        to_checksum_address(e["args"]["participant"])
        for e in _logs(chain, "ConsentRecorded", {"studyId": study_id})
    )
    return [_participation(chain, study, p) for p in enrolled]


def history(chain: Chain, study_id: int) -> list[TrialEvent]:
    """Every event of a study, oldest first, with the gas its transaction used."""
    get_study(chain, study_id)
    by_study = {"studyId": study_id}
    gas: dict[str, int] = {}
    senders: dict[str, str] = {}
    found: list[TrialEvent] = []

    def add(event: Any, name: str, detail: str, actor: str | None = None) -> None:
        tx = _tx(event)
        if tx not in gas:
            gas[tx] = int(chain.w3.eth.get_transaction_receipt(event["transactionHash"])["gasUsed"])
            senders[tx] = to_checksum_address(
                chain.w3.eth.get_transaction(event["transactionHash"])["from"]
            )
        when = chain.block_time(int(event["blockNumber"]))
        found.append(
            TrialEvent(when, int(event["blockNumber"]), int(event["logIndex"]), name,
                       actor or senders[tx], detail, tx, gas[tx])
        )  # fmt: skip

    for e in _logs(chain, "StudyRegistered", by_study):
        add(e, "study registered", f"sponsor {e['args']['sponsor']}")
    for e in _logs(chain, "ProtocolVersionRegistered", by_study):
        a = e["args"]
        reconsent = ", re-consent required" if a["requiresReconsent"] else ""
        add(e, f"protocol v{a['version']}", f"{a['reason']}{reconsent}")
    for e in _logs(chain, "OutcomesDefined", by_study):
        add(
            e,
            f"outcomes of v{e['args']['version']}",
            "0x" + bytes(e["args"]["primaryOutcomes"]).hex()[:16] + "...",
        )
    for e in _logs(chain, "SiteAdded", by_study):
        add(e, "site added", e["args"]["site"])
    for e in _logs(chain, "MonitorChanged", by_study):
        add(e, "monitor " + ("added" if e["args"]["allowed"] else "removed"), e["args"]["monitor"])
    for e in _logs(chain, "SummaryPublished", by_study):
        add(e, "summary published", str(Cid.from_digest_v0(bytes(e["args"]["summaryDigest"]))))
    for e in _logs(chain, "ConsentRecorded", by_study):
        a = e["args"]
        kind = "enrolment" if a["enrolment"] else "re-consent"
        add(e, kind, f"{a['participant']} to v{a['version']} at {a['site']}")
    for e in _logs(chain, "ParticipantWithdrawn", by_study):
        add(e, "withdrawal", f"{e['args']['participant']} (by {e['args']['by']})")
    for e in _logs(chain, "DataSubmitted", by_study):
        add(e, "data", f"0x{bytes(e['args']['dataId']).hex()} for {e['args']['participant']}")
    for e in _logs(chain, "DataBatchSubmitted", by_study):
        a = e["args"]
        add(e, "data batch", f"{a['count']} bodies for {a['participant']}")
    found.sort(key=lambda t: (t.block, t.log_index))
    return found


# --- consent and withdrawal ----------------------------------------------------------------------


def _readers_bits(sponsor_reads: bool, monitors_read: bool) -> int:
    return (READER_SPONSOR if sponsor_reads else 0) | (READER_MONITORS if monitors_read else 0)


def _nonce(chain: Chain, participant: str) -> int:
    return int(chain.call("reading the nonce", trial_registry(chain).functions.nonces(participant)))


def sign_consent(
    chain: Chain,
    participant: LocalAccount,
    study_id: int,
    site: str,
    *,
    purpose: ConsentPurpose = ConsentPurpose.TRIAL_ONLY,
    sponsor_reads: bool = True,
    monitors_read: bool = True,
    delegate: str | None = None,
    valid_for: timedelta = timedelta(days=7),
) -> dict[str, Any]:
    """Sign consent to the protocol version in force, at ``site`` (off chain, no ETH needed).

    Returns the document the site submits (:func:`submit_consent`). A first consent enrols;
    after an amendment that requires it, the same call re-consents (at the enrolling site).
    """
    study = get_study(chain, study_id)
    site = _address(site, "--site")
    if site not in study.sites:
        raise PreconditionFailed(f"{site} is not a site of study {study_id}")
    if valid_for <= timedelta(0):
        raise ConfigurationError("--valid-for", "must be positive")
    current = _participation_or_none(chain, study, participant.address)
    if current is not None:
        _require_reconsent_possible(current, site, study.current_version)
    request = ConsentRequest(
        study_id=study_id,
        version=study.current_version,
        protocol_hash=protocol_hash(protocol_version(chain, study_id, study.current_version)),
        site=site,
        participant=participant.address,
        purpose=purpose,
        readers=_readers_bits(sponsor_reads, monitors_read),
        delegate=_address(delegate, "--delegate") if delegate else None,
        nonce=_nonce(chain, participant.address),
        deadline=int((access.chain_now(chain) + valid_for).timestamp()),
    )
    return {
        "kind": CONSENT_KIND,
        "chain_id": chain.chain_id,
        "trial_registry": trial_registry(chain).address,
        "request": request.message(),
        "signature": _sign(chain, participant, request),
    }


def _require_reconsent_possible(current: Participation, site: str, version: int) -> None:
    if current.withdrawn_at is not None:
        raise PreconditionFailed(
            f"{current.participant} withdrew from study {current.study_id} on "
            f"{current.withdrawn_at:%F}: withdrawal is final"
        )
    if site != current.site:
        raise PreconditionFailed(
            f"{current.participant} enrolled at {current.site}: a re-consent is recorded by the "
            f"enrolling site, not {site}"
        )
    if current.consented_version >= version:
        raise PreconditionFailed(
            f"{current.participant} already consented to version {version} of study "
            f"{current.study_id}"
        )


def _document(
    chain: Chain, document: Mapping[str, Any], kind: str
) -> tuple[Mapping[str, Any], bytes]:
    try:
        if document.get("kind") != kind:
            raise KeyError("kind")
        request = document["request"]
        signature = bytes(HexBytes(document["signature"]))
        if not isinstance(request, Mapping):
            raise TypeError("request")
        chain_id = int(document["chain_id"])
        registry_address = to_checksum_address(str(document["trial_registry"]))
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        raise ConfigurationError("signed file", f"is not a MedLedger {kind} document") from None
    if chain_id != chain.chain_id or registry_address != trial_registry(chain).address:
        raise PreconditionFailed(
            f"the signed document is for chain {chain_id} and TrialRegistry {registry_address}, "
            "not this one"
        )
    return request, signature


def _check_signature(
    chain: Chain, request: ConsentRequest | WithdrawalRequest, signature: bytes
) -> None:
    """Refuse before sending what the contract would refuse: deadline, nonce, signer."""
    now = access.chain_now(chain)
    if now > request.deadline_at:
        raise PreconditionFailed(
            f"the signature expired at {request.deadline_at:%F %H:%M}Z: the participant must "
            "sign again"
        )
    expected = _nonce(chain, request.participant)
    if request.nonce != expected:
        raise PreconditionFailed(
            f"the signature uses nonce {request.nonce} of {request.participant}, whose next "
            f"nonce is {expected}: it was already used or superseded; sign again"
        )
    digest = request_digest(chain.chain_id, trial_registry(chain).address, request)
    try:
        signer = address_of_key(recover_public_key(digest, signature))
    except CryptoError:
        signer = "nobody"
    if signer != request.participant:
        raise PreconditionFailed(
            f"the signature was not made by {request.participant} (it recovers to {signer})"
        )


def submit_consent(chain: Chain, site: LocalAccount, document: Mapping[str, Any]) -> Participation:
    """Record a participant's signed consent (the site, or its practitioner, pays the gas)."""
    raw, signature = _document(chain, document, CONSENT_KIND)
    request = ConsentRequest.from_message(raw)
    study = get_study(chain, request.study_id)
    _check_signature(chain, request, signature)
    if registry.verified_institution_of(chain, site.address) != request.site:
        raise PreconditionFailed(
            f"{site.address} does not act for {request.site}, the site named in the consent"
        )
    if request.site not in study.sites:
        raise PreconditionFailed(f"{request.site} is not a site of study {study.id}")
    if request.version != study.current_version:
        raise PreconditionFailed(
            f"the consent is to protocol version {request.version}, but version "
            f"{study.current_version} is in force: the participant must sign again"
        )
    if request.protocol_hash != protocol_hash(protocol_version(chain, study.id, request.version)):
        raise PreconditionFailed(
            f"version {request.version}'s protocol or outcome definitions changed after the "
            "participant signed: the participant must sign again"
        )
    if request.readers & ~(READER_SPONSOR | READER_MONITORS):
        raise PreconditionFailed(f"reader bits {request.readers:#x} are not known")
    current = _participation_or_none(chain, study, request.participant)
    if current is not None:
        _require_reconsent_possible(current, request.site, request.version)
    chain.transact(
        "recording consent",
        site,
        trial_registry(chain).functions.consent(request.args(), signature),
    )
    return participation(chain, study.id, request.participant)


def sign_withdrawal(
    chain: Chain, participant: LocalAccount, study_id: int, valid_for: timedelta = timedelta(days=7)
) -> dict[str, Any]:
    """Sign a withdrawal that anyone can submit (the participant needs no ETH)."""
    current = participation(chain, study_id, participant.address)
    if current.withdrawn_at is not None:
        raise PreconditionFailed(f"{current.participant} has already withdrawn")
    if valid_for <= timedelta(0):
        raise ConfigurationError("--valid-for", "must be positive")
    request = WithdrawalRequest(
        study_id=study_id,
        participant=participant.address,
        nonce=_nonce(chain, participant.address),
        deadline=int((access.chain_now(chain) + valid_for).timestamp()),
    )
    return {
        "kind": WITHDRAWAL_KIND,
        "chain_id": chain.chain_id,
        "trial_registry": trial_registry(chain).address,
        "request": request.message(),
        "signature": _sign(chain, participant, request),
    }


def submit_withdrawal(
    chain: Chain, relayer: LocalAccount, document: Mapping[str, Any]
) -> Participation:
    """Submit a signed withdrawal (any account pays the gas); it takes effect at once."""
    raw, signature = _document(chain, document, WITHDRAWAL_KIND)
    request = WithdrawalRequest.from_message(raw)
    current = participation(chain, request.study_id, request.participant)
    if current.withdrawn_at is not None:
        raise PreconditionFailed(f"{current.participant} has already withdrawn")
    _check_signature(chain, request, signature)
    chain.transact(
        "withdrawing",
        relayer,
        trial_registry(chain).functions.withdrawWithSignature(request.args(), signature),
    )
    return participation(chain, current.study_id, current.participant)


def withdraw(chain: Chain, account: LocalAccount, study_id: int, participant: str) -> Participation:
    """Withdraw directly: the participant, or the delegate they named (both pay gas)."""
    current = participation(chain, study_id, participant)
    if account.address not in (current.participant, current.delegate):
        raise PreconditionFailed(
            f"{account.address} is neither {current.participant} nor their delegate"
        )
    if current.withdrawn_at is not None:
        raise PreconditionFailed(f"{current.participant} has already withdrawn")
    chain.transact(
        "withdrawing",
        account,
        trial_registry(chain).functions.withdraw(study_id, current.participant),
    )
    return participation(chain, study_id, current.participant)


def cancel_signatures(
    chain: Chain, participant: LocalAccount, document: Mapping[str, Any] | None = None
) -> int:
    """Burn the participant's next TrialRegistry nonce (``cancelSignatures``): a consent or a
    withdrawal they signed with it, and that nobody submitted yet, can never be used. The nonce
    sequence is one for all the participant's studies. Returns the cancelled nonce.

    With ``document`` (the signed consent or withdrawal to cancel), refuse unless it is the
    participant's and still usable: signed with exactly the next nonce and not expired. The
    participant sends this transaction themself, so their study account needs a little ETH.
    """
    nonce = _nonce(chain, participant.address)
    if document is not None:
        request = _signed_request(chain, document)
        what = "consent" if isinstance(request, ConsentRequest) else "withdrawal"
        if request.participant != participant.address:
            raise PreconditionFailed(
                f"the signed {what} is {request.participant}'s, not {participant.address}'s: "
                "only its signer can cancel it"
            )
        if request.nonce < nonce:
            raise PreconditionFailed(
                f"the signed {what} uses nonce {request.nonce}, which was already used or "
                "cancelled: there is nothing to cancel"
            )
        if request.nonce > nonce:
            raise PreconditionFailed(
                f"the signed {what} uses nonce {request.nonce}, but the next nonce of "
                f"{participant.address} is {nonce}: cancelling burns only nonce {nonce}"
            )
        if access.chain_now(chain) > request.deadline_at:
            raise PreconditionFailed(
                f"the signed {what} expired at {request.deadline_at:%F %H:%M}Z and can no "
                "longer be used: there is nothing to cancel"
            )
    if int(chain.w3.eth.get_balance(participant.address)) == 0:
        raise PreconditionFailed(
            f"{participant.address} has no ETH: cancelling is the participant's own transaction, "
            "so their study account needs a little to pay for it"
        )
    chain.transact(
        "cancelling signatures", participant, trial_registry(chain).functions.cancelSignatures()
    )
    return nonce


def _signed_request(
    chain: Chain, document: Mapping[str, Any]
) -> ConsentRequest | WithdrawalRequest:
    if document.get("kind") == CONSENT_KIND:
        raw, _signature = _document(chain, document, CONSENT_KIND)
        return ConsentRequest.from_message(raw)
    if document.get("kind") == WITHDRAWAL_KIND:
        raw, _signature = _document(chain, document, WITHDRAWAL_KIND)
        return WithdrawalRequest.from_message(raw)
    raise ConfigurationError("signed file", "is not a MedLedger trial consent or withdrawal")


@dataclass(frozen=True)
class RecordedConsent:
    """A ``ConsentRecorded`` event, with the signed request read back from its transaction.

    ``request`` is ``None`` (and ``problem`` says why) when the transaction is not a direct
    ``consent`` call whose request matches the event.
    """

    study_id: int
    participant: str
    site: str
    version: int
    purpose: int
    readers: int
    delegate: str | None
    enrolment: bool
    signature: bytes
    block: int
    log_index: int
    transaction_hash: str
    request: ConsentRequest | None
    problem: str | None = None


def recorded_consents(
    chain: Chain, study_id: int, participant: str | None = None
) -> list[RecordedConsent]:
    """Every consent of a study (or of one participant), oldest first, with its request."""
    filters: dict[str, Any] = {"studyId": study_id}
    if participant:
        filters["participant"] = _address(participant, "participant")
    return [_recorded(chain, e) for e in _logs(chain, "ConsentRecorded", filters)]


def _recorded(chain: Chain, event: Any) -> RecordedConsent:
    a = event["args"]
    delegate = to_checksum_address(a["delegate"])
    request, problem = _consent_from_transaction(chain, event)
    return RecordedConsent(
        study_id=int(a["studyId"]),
        participant=to_checksum_address(a["participant"]),
        site=to_checksum_address(a["site"]),
        version=int(a["version"]),
        purpose=int(a["purpose"]),
        readers=int(a["readers"]),
        delegate=None if int(delegate, 16) == 0 else delegate,
        enrolment=bool(a["enrolment"]),
        signature=bytes(a["signature"]),
        block=int(event["blockNumber"]),
        log_index=int(event["logIndex"]),
        transaction_hash=_tx(event),
        request=request,
        problem=problem,
    )


def _consent_from_transaction(chain: Chain, event: Any) -> tuple[ConsentRequest | None, str | None]:
    contract = trial_registry(chain)
    tx = chain.w3.eth.get_transaction(event["transactionHash"])
    if to_checksum_address(str(tx.get("to") or ZERO_ADDRESS)) != contract.address:
        return (
            None,
            "the consent was recorded through another contract: its request is not readable",
        )
    try:
        function, params = contract.decode_function_input(tx["input"])
        raw = params["request"]
        values = raw.values() if isinstance(raw, Mapping) else raw
        names = [name for name, _type in CONSENT_FIELDS]
        request = ConsentRequest.from_message(dict(zip(names, values, strict=True)))
        signature = bytes(params["signature"])
    except (ValueError, KeyError, TypeError, ConfigurationError):
        return None, "the consent transaction does not decode as a consent call"
    if function.fn_name != "consent":
        return None, f"the transaction calls {function.fn_name}, not consent"
    a = event["args"]
    if (
        request.participant != to_checksum_address(a["participant"])
        or request.site != to_checksum_address(a["site"])
        or request.study_id != int(a["studyId"])
        or int(request.purpose) != int(a["purpose"])
        or request.readers != int(a["readers"])
        or signature != bytes(a["signature"])
    ):
        return None, "the event and the signed request in its transaction disagree"
    return request, None


def participant_key(chain: Chain, study_id: int, participant: str) -> bytes:
    """The participant's compressed public key, recovered from their latest consent signature."""
    consents = recorded_consents(chain, study_id, participant)
    if not consents:
        raise PreconditionFailed(f"{participant} has no recorded consent in study {study_id}")
    latest = consents[-1]
    if latest.request is None:
        raise PreconditionFailed(f"the latest consent of {participant}: {latest.problem}")
    digest = request_digest(chain.chain_id, trial_registry(chain).address, latest.request)
    key = recover_public_key(digest, latest.signature)
    if address_of_key(key) != latest.participant:
        raise IntegrityError(f"the latest consent of {participant} was not signed by them")
    return key


# --- data ----------------------------------------------------------------------------------------


def visit_id(label: str) -> bytes:
    """A visit's on-chain id: keccak256 of its label text (``baseline``, ``week-4``...)."""
    if not label.strip():
        raise ConfigurationError("--visit", "a visit needs a label")
    return keccak(text=label.strip())


def data_id(
    chain_id: int,
    registry_address: str,
    study_id: int,
    participant: str,
    visit: bytes,
    version: int,
    cid_digest: bytes,
    commitment: bytes,
) -> bytes:
    """A data body's id, exactly as ``dataIdOf`` derives it on chain."""
    return keccak(
        abi_encode(
            ["uint256", "address", "uint64", "address", "bytes32", "uint32", "bytes32", "bytes32"],
            [
                chain_id,
                registry_address,
                study_id,
                participant,
                visit,
                version,
                cid_digest,
                commitment,
            ],
        )
    )


def batch_id(
    chain_id: int, registry_address: str, study_id: int, participant: str, visit: bytes, root: bytes
) -> bytes:
    """A batch's id, exactly as ``submitDataBatch`` derives it on chain."""
    return keccak(
        abi_encode(
            ["uint256", "address", "uint64", "address", "bytes32", "bytes32"],
            [chain_id, registry_address, study_id, participant, visit, root],
        )
    )


def _data_aad(
    chain_id: int, registry_address: str, study_id: int, participant: str, visit: bytes
) -> bytes:
    return (
        f"medledger/trial-data:{chain_id}:{registry_address}:{study_id}:{participant}:"
        f"0x{visit.hex()}"
    ).encode()


def _data_readers(
    chain: Chain, study: Study, current: Participation, submitter: LocalAccount
) -> list[bytes]:
    keys = [
        participant_key(chain, study.id, current.participant),
        registry.encryption_key(chain, current.site),
        crypto.public_key(submitter.key),
    ]
    if current.sponsor_reads:
        keys.append(registry.encryption_key(chain, study.sponsor))
    if current.monitors_read:
        for monitor in study.monitors:
            key = registry.participant(chain, monitor).encryption_key
            if key is not None:
                keys.append(key)
    return list(dict.fromkeys(keys))


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
    site: LocalAccount,
    study_id: int,
    participant: str,
    visit: str,
    bodies: Sequence[bytes],
    *,
    batch: bool = False,
) -> Submission:
    """Seal each FHIR body for the participant and the readers their consent allows, store it
    in IPFS and anchor it: one ``submitData`` per body, or one ``submitDataBatch`` (Merkle root
    of their ids, public manifest in IPFS) for the visit."""
    if not bodies:
        raise ConfigurationError("FILES", "give at least one data body")
    study = get_study(chain, study_id)
    current = _participation(chain, study, _address(participant, "--participant"))
    if registry.verified_institution_of(chain, site.address) != current.site:
        raise PreconditionFailed(
            f"{site.address} does not act for {current.site}, the participant's enrolling site"
        )
    _require_current(current)
    from medledger import fhir

    for index, body in enumerate(bodies):
        fhir.load(body, f"data body {index + 1}")  # FHIR only, refused before anything is stored
    readers = _data_readers(chain, study, current, site)
    visit_hash = visit_id(visit)
    contract = trial_registry(chain)
    aad = _data_aad(chain.chain_id, contract.address, study_id, current.participant, visit_hash)
    prepared: list[tuple[bytes, Cid, bytes]] = []
    with store.bulk():
        for body in bodies:
            secret = crypto.BodySecret.generate()
            cid = store.add_bytes(crypto.seal(body, aad, readers, secret), pin=True)
            commitment = crypto.commitment(secret.salt, body)
            identifier = data_id(
                chain.chain_id, contract.address, study_id, current.participant, visit_hash,
                study.current_version, cid.digest, commitment,
            )  # fmt: skip
            prepared.append((identifier, cid, commitment))
    if not batch:
        receipts = [
            chain.transact(
                "submitting trial data",
                site,
                contract.functions.submitData(
                    study_id, current.participant, visit_hash, cid.digest, commitment
                ),
            )
            for _, cid, commitment in prepared
        ]
        items = [
            _single_item(chain, study_id, e)
            for r in receipts
            for e in contract.events.DataSubmitted().process_receipt(r, errors=DISCARD)
        ]
        if [i.id for i in items] != [p[0] for p in prepared]:
            raise IntegrityError("the chain anchored other data ids than the ones prepared")
        return Submission(
            tuple(items),
            tuple("0x" + bytes(r["transactionHash"]).hex() for r in receipts),
            sum(int(r["gasUsed"]) for r in receipts),
        )
    manifest, tree = batch_manifest(
        chain.chain_id, contract.address, study_id, current.participant, visit_hash,
        study.current_version, [(cid, commitment) for _, cid, commitment in prepared],
    )  # fmt: skip
    manifest_cid = store.add_bytes(canonical(manifest), pin=True)
    receipt = chain.transact(
        "submitting a trial data batch",
        site,
        contract.functions.submitDataBatch(
            study_id, current.participant, visit_hash, tree.root, manifest_cid.digest, tree.count
        ),
    )
    (event,) = contract.events.DataBatchSubmitted().process_receipt(receipt, errors=DISCARD)
    items, problem = _batch_items(chain, study_id, event, manifest)
    if problem is not None or [i.id for i in items] != [p[0] for p in prepared]:
        raise IntegrityError(problem or "the chain anchored another batch than the one prepared")
    return Submission(
        tuple(items),
        ("0x" + bytes(receipt["transactionHash"]).hex(),),
        int(receipt["gasUsed"]),
        batch=bytes(event["args"]["batchId"]),
        manifest=manifest_cid,
    )


def _single_item(chain: Chain, study_id: int, event: Any) -> DataItem:
    a = event["args"]
    return DataItem(
        id=bytes(a["dataId"]),
        study_id=study_id,
        participant=to_checksum_address(a["participant"]),
        visit=bytes(a["visit"]),
        version=int(a["version"]),
        cid=Cid.from_digest_v0(bytes(a["cidDigest"])),
        commitment=bytes(a["commitment"]),
        site=to_checksum_address(a["site"]),
        submitted_at=chain.block_time(int(event["blockNumber"])),
        block=int(event["blockNumber"]),
        log_index=int(event["logIndex"]),
        transaction_hash=_tx(event),
    )


def batch_manifest(
    chain_id: int,
    registry_address: str,
    study_id: int,
    participant: str,
    visit: bytes,
    version: int,
    bodies: Sequence[tuple[Cid, bytes]],
) -> tuple[dict[str, Any], IndexedTree]:
    """The public manifest of a batch of ``(cid, commitment)`` bodies, listed in tree order,
    and the positional tree of their ids (whose ``count`` the site declares on chain)."""
    ids = [
        data_id(chain_id, registry_address, study_id, participant, visit, version, cid.digest,
                commitment)
        for cid, commitment in bodies
    ]  # fmt: skip
    tree = IndexedTree.build(ids)
    manifest = {
        "kind": MANIFEST_KIND,
        "v": MANIFEST_VERSION,
        "chain_id": chain_id,
        "trial_registry": registry_address,
        "study": study_id,
        "participant": participant,
        "visit": "0x" + visit.hex(),
        "version": version,
        "root": "0x" + tree.root.hex(),
        "items": [
            {"id": "0x" + i.hex(), "cid": str(cid), "commitment": "0x" + commitment.hex()}
            for i, (cid, commitment) in zip(ids, bodies, strict=True)
        ],
    }
    return manifest, tree


def _tree_for(ids: list[bytes], root: bytes, count: int) -> IndexedTree | None:
    """The positional tree, built from a manifest's ids, that proves the first ``count`` of
    them against ``root`` with the declared ``count`` (the ids up to ``count``, or every listed
    id when the site built its tree over more than it declared); ``None`` when neither does."""
    candidates = [ids[:count]] + ([ids] if len(ids) > count else [])
    for candidate in candidates:
        if not candidate:
            continue
        tree = IndexedTree.build(candidate)
        if tree.root == root and all(
            verify_indexed(tree.proof(i), root, candidate[i], i, count)
            for i in range(min(count, tree.count))
        ):
            return tree
    return None


def _batch_items(
    chain: Chain, study_id: int, event: Any, manifest: Mapping[str, Any]
) -> tuple[list[DataItem], str | None]:
    """The bodies a batch anchors, from its manifest: each listed id rebuilt from the event's
    fields, and those at positions ``0 .. count - 1`` proven against the anchored root under the
    declared count, exactly as ``verifyBatchData`` would prove them.

    Raise ``IntegrityError`` when the manifest is malformed or does not rebuild the root. With
    the items comes a problem when the manifest lists another number of bodies than the chain
    counts: bodies past ``count`` are not anchored (no proof of them verifies), and positions
    the manifest leaves empty hold nothing the chain counted.
    """
    a = event["args"]
    label = "0x" + bytes(a["batchId"]).hex()
    try:
        if manifest.get("kind") != MANIFEST_KIND:
            raise KeyError("kind")
        if manifest.get("v") != MANIFEST_VERSION:
            raise IntegrityError(
                f"batch {label}: its manifest is version {manifest.get('v')!r}, not "
                f"{MANIFEST_VERSION} (positional trees)"
            )
        entries = [
            (bytes(HexBytes(i["id"])), Cid.parse(str(i["cid"])), bytes(HexBytes(i["commitment"])))
            for i in manifest["items"]
        ]
    except IntegrityError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, MedLedgerError):
        raise IntegrityError(f"batch {label}: its manifest is not a trial batch manifest") from None
    participant = to_checksum_address(a["participant"])
    registry_address = trial_registry(chain).address
    for listed, cid, commitment in entries:
        identifier = data_id(
            chain.chain_id, registry_address, study_id, participant, bytes(a["visit"]),
            int(a["version"]), cid.digest, commitment,
        )  # fmt: skip
        if identifier != listed:
            raise IntegrityError(
                f"batch {label}: manifest entry 0x{listed.hex()} does not match its fields"
            )
    root, count = bytes(a["root"]), int(a["count"])
    tree = _tree_for([e[0] for e in entries], root, count)
    if tree is None:
        raise IntegrityError(f"batch {label}: its manifest does not rebuild the anchored root")
    when = chain.block_time(int(event["blockNumber"]))
    items = [
        DataItem(
            id=identifier, study_id=study_id, participant=participant,
            visit=bytes(a["visit"]), version=int(a["version"]), cid=cid,
            commitment=commitment, site=to_checksum_address(a["site"]), submitted_at=when,
            block=int(event["blockNumber"]), log_index=int(event["logIndex"]),
            transaction_hash=_tx(event), batch=bytes(a["batchId"]),
            position=BatchPosition(root, count, index, tuple(tree.proof(index))),
        )
        for index, (identifier, cid, commitment) in enumerate(entries[:count])
    ]  # fmt: skip
    problem = None
    if len(entries) > count:
        problem = (
            f"batch {label}: its manifest lists {len(entries)} bodies but the chain counts "
            f"{count}: the bodies past position {count - 1} are not anchored"
        )
    elif len(entries) < count:
        problem = (
            f"batch {label}: the chain counts {count} bodies but its manifest lists only "
            f"{len(entries)}"
        )
    return items, problem


def _manifest_items(
    chain: Chain, store: BlockStore, study_id: int, event: Any
) -> tuple[list[DataItem], str | None]:
    cid = Cid.from_digest_v0(bytes(event["args"]["manifestDigest"]))
    try:
        manifest = json.loads(store.cat(cid))
    except ValueError:
        raise IntegrityError(
            f"batch 0x{bytes(event['args']['batchId']).hex()}: manifest {cid} is not JSON"
        ) from None
    if not isinstance(manifest, Mapping):
        raise IntegrityError(f"batch 0x{bytes(event['args']['batchId']).hex()}: bad manifest")
    return _batch_items(chain, study_id, event, manifest)


def data(
    chain: Chain, store: BlockStore, study_id: int, participant: str | None = None
) -> list[DataItem]:
    """Every anchored data body of a study (or one participant), oldest first.

    Batch leaves come from their manifests, each proven at its position against the anchored
    root and count; a batch whose manifest is missing or wrong is left out, and of a manifest
    that lists more bodies than its batch's count only the first ``count`` are anchored and
    listed (:func:`audit` names both).
    """
    get_study(chain, study_id)
    filters: dict[str, Any] = {"studyId": study_id}
    if participant:
        filters["participant"] = _address(participant, "--participant")
    found = [_single_item(chain, study_id, e) for e in _logs(chain, "DataSubmitted", filters)]
    for e in _logs(chain, "DataBatchSubmitted", filters):
        try:
            items, _problem = _manifest_items(chain, store, study_id, e)
        except MedLedgerError:
            continue
        found.extend(items)
    found.sort(key=lambda d: (d.block, d.log_index))
    return found


def find_data(chain: Chain, store: BlockStore, study_id: int, identifier: str | bytes) -> DataItem:
    """One data body by id: anchored alone, or a leaf of one of the study's batches."""
    wanted = _data_ref(identifier)
    single = _logs(chain, "DataSubmitted", {"studyId": study_id, "dataId": wanted})
    if single:
        return _single_item(chain, study_id, single[0])
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
    chain: Chain, store: BlockStore, reader: LocalAccount, study_id: int, identifier: str | bytes
) -> bytes:
    """Fetch, verify and decrypt one data body (the chain's ``canRead`` decides who may; a
    batched body is proven on chain at its position first)."""
    item = find_data(chain, store, study_id, identifier)
    if item.position is not None:
        check_anchored(chain, item)
    allowed = chain.call(
        "checking access",
        trial_registry(chain).functions.canRead(study_id, item.participant, reader.address),
    )
    if not allowed:
        raise AccessRefused(
            item.hex_id,
            f"{reader.address} is not among its readers: the participant, their site and, as "
            "their consent allows, the sponsor and the study's monitors",
        )
    sealed = store.cat(item.cid)  # every block checked against the CID
    try:
        secret = crypto.secret_for(sealed, reader.key)
    except NoKeyForReader:
        raise NoKeyForReader(
            f"data {item.hex_id} was not sealed for {reader.address} (its key was not published "
            "when the data was submitted)"
        ) from None
    registry_address = trial_registry(chain).address
    aad = _data_aad(chain.chain_id, registry_address, study_id, item.participant, item.visit)
    body = crypto.open_sealed(sealed, aad, secret)
    if crypto.commitment(secret.salt, body) != item.commitment:
        raise IntegrityError(f"data {item.hex_id} does not match its anchored commitment")
    return body


# --- audit ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayStep:
    """One event of a study's history as :func:`replay` sees it."""

    position: tuple[int, int]
    kind: str  # version | outcomes | consent | withdrawal | data
    participant: str = ""
    version: int = 0
    requires_reconsent: bool = False
    label: str = ""
    consent: RecordedConsent | None = None
    block_time: datetime | None = None
    primary_outcomes: bytes = b""  # of an ``outcomes`` step (an OutcomesDefined event)


RULE_OUTCOMES_FROZEN = (
    "each version's outcome definitions frozen from its first consent or data, as its "
    "protocol states them"
)
RULE_NO_SWITCHING = (
    "no outcome switching: no version changed the previous version's primary outcomes after "
    "data collection began"
)


def replay(
    chain_id: int, registry_address: str, steps: Sequence[ReplayStep]
) -> tuple[Check, Check, Check]:
    """Replay a study's versions, consents, withdrawals and data in chain order.

    Returns the checks "protocol registered before the first enrolment", "every consent valid
    for the version in force" and "no data from a withdrawn or stale participant".
    """
    first = Check("protocol version 1 registered before the first enrolment", checked=1)
    consents = Check("every consent signed by the participant for the version in force")
    submissions = Check("no data from a withdrawn, stale or unknown participant")
    in_force, required = 0, 0
    consented: dict[str, int] = {}
    withdrawn: set[str] = set()
    for step in sorted(steps, key=lambda s: s.position):
        if step.kind == "version":
            in_force = step.version
            if step.requires_reconsent or step.version == 1:
                required = step.version
        elif step.kind == "consent" and step.consent is not None:
            consents.checked += 1
            c = step.consent
            if in_force == 0 and first.ok:
                first.violations.append(
                    f"{c.participant} enrolled (block {c.block}) before protocol version 1"
                )
            problems = _consent_problems(chain_id, registry_address, c, in_force, step)
            if c.participant in withdrawn:
                problems.append("recorded after the participant withdrew")
            if problems:
                consents.violations.append(f"consent of {c.participant} in {c.transaction_hash}: "
                                           + "; ".join(problems))  # fmt: skip
            consented[c.participant] = c.version
        elif step.kind == "withdrawal":
            withdrawn.add(step.participant)
        elif step.kind == "data":
            submissions.checked += 1
            who = step.participant
            if who in withdrawn:
                submissions.violations.append(f"{step.label} from {who} after they withdrew")
            elif who not in consented:
                submissions.violations.append(f"{step.label} from {who}, who never enrolled")
            elif consented[who] < required:
                submissions.violations.append(
                    f"{step.label} from {who}, whose consent to version {consented[who]} was "
                    f"stale (version {required} required re-consent)"
                )
            if step.version != in_force:
                submissions.violations.append(
                    f"{step.label} is marked version {step.version} while {in_force} was in force"
                )
    return first, consents, submissions


def _consent_problems(
    chain_id: int, registry_address: str, c: RecordedConsent, in_force: int, step: ReplayStep
) -> list[str]:
    if c.request is None:
        return [c.problem or "its signed request could not be read"]
    problems = []
    try:
        digest = request_digest(chain_id, registry_address, c.request)
        signer = address_of_key(recover_public_key(digest, c.signature))
    except CryptoError:
        signer = "nobody"
    if signer != c.participant:
        problems.append(f"the signature recovers to {signer}, not the participant")
    if c.request.version != in_force or c.version != in_force:
        problems.append(f"consents to version {c.request.version} while {in_force} was in force")
    if step.block_time is not None and c.request.deadline < step.block_time.timestamp():
        problems.append(f"recorded after its deadline {c.request.deadline_at:%F %H:%M}Z")
    return problems


def outcome_checks(steps: Sequence[ReplayStep]) -> tuple[Check, Check]:
    """Replay a study's outcome definitions against its consents and data, in chain order.

    Returns two checks. The first: no ``outcomes`` step (an ``OutcomesDefined`` event) for a
    version after that version's first consent or first data, when its definitions froze. The
    second: once any data was collected, no version's primary outcomes (at its amendment or set
    later) differ from the previous version's; a change before any data is a note. Neither
    trusts that the contract refused what it should have.
    """
    frozen = Check(RULE_OUTCOMES_FROZEN)
    switching = Check(RULE_NO_SWITCHING)
    froze: dict[int, ReplayStep] = {}
    primary: dict[int, bytes] = {}
    first_data: ReplayStep | None = None
    for step in sorted(steps, key=lambda s: s.position):
        if step.kind in ("consent", "data"):
            froze.setdefault(step.version, step)
            if step.kind == "data" and first_data is None:
                first_data = step
        if step.kind != "outcomes":
            continue
        frozen.checked += 1
        version = step.version
        if version in froze:
            cause = froze[version]
            what = "consent" if cause.kind == "consent" else f"data ({cause.label})"
            frozen.violations.append(
                f"version {version}'s outcomes were redefined in {step.label}, after its first "
                f"{what} in block {cause.position[0]} froze them"
            )
        previous = primary.get(version - 1)
        if version > 1:
            switching.checked += 1
        if previous is not None and step.primary_outcomes != previous:
            change = (
                f"version {version} ({step.label}) has other primary outcomes than version "
                f"{version - 1}"
            )
            if first_data is not None:
                switching.violations.append(
                    f"{change}, defined after data collection began ({first_data.label} in "
                    f"block {first_data.position[0]})"
                )
            else:
                switching.notes.append(f"{change}, defined before any data was collected")
        primary[version] = step.primary_outcomes
    return frozen, switching


def audit(
    chain: Chain, store: BlockStore, study_id: int, reader: LocalAccount | None = None
) -> AuditReport:
    """Check from chain events, consent transactions and stored bodies that the study ran as
    registered: the rules of :func:`replay`, every body present and unaltered, and those of
    :func:`outcome_checks` (with each protocol document's objectives hashing to its version's
    registered outcomes). With a ``reader`` that can decrypt, the data commitments (and an
    encrypted protocol's objectives) are checked too."""
    get_study(chain, study_id)
    contract = trial_registry(chain)
    by_study = {"studyId": study_id}
    registered = _logs(chain, "ProtocolVersionRegistered", by_study)
    defined = _logs(chain, "OutcomesDefined", by_study)
    consents = recorded_consents(chain, study_id)
    singles = _logs(chain, "DataSubmitted", by_study)
    batches = _logs(chain, "DataBatchSubmitted", by_study)
    steps = [
        ReplayStep(_position(e), "version", version=int(e["args"]["version"]),
              requires_reconsent=bool(e["args"]["requiresReconsent"]))
        for e in registered
    ]  # fmt: skip
    steps += [
        ReplayStep(_position(e), "outcomes", version=int(e["args"]["version"]), label=_tx(e),
                   primary_outcomes=bytes(e["args"]["primaryOutcomes"]))
        for e in defined
    ]  # fmt: skip
    steps += [
        ReplayStep((c.block, c.log_index), "consent", participant=c.participant, version=c.version,
              consent=c, block_time=chain.block_time(c.block))
        for c in consents
    ]  # fmt: skip
    steps += [
        ReplayStep(
            _position(e), "withdrawal", participant=to_checksum_address(e["args"]["participant"])
        )
        for e in _logs(chain, "ParticipantWithdrawn", by_study)
    ]
    steps += [
        ReplayStep(_position(e), "data", participant=to_checksum_address(e["args"]["participant"]),
              version=int(e["args"]["version"]), label=f"data 0x{bytes(e['args']['dataId']).hex()}")
        for e in singles
    ]  # fmt: skip
    steps += [
        ReplayStep(_position(e), "data", participant=to_checksum_address(e["args"]["participant"]),
              version=int(e["args"]["version"]),
              label=f"batch 0x{bytes(e['args']['batchId']).hex()}")
        for e in batches
    ]  # fmt: skip
    first, consent_check, data_check = replay(chain.chain_id, contract.address, steps)
    bodies = _check_bodies(chain, store, study_id, singles, batches, reader)
    frozen, switching = outcome_checks(steps)
    _check_protocols(chain, store, frozen, registered, defined, reader)
    return AuditReport(study_id, [first, consent_check, data_check, bodies, frozen, switching])


def _check_bodies(
    chain: Chain,
    store: BlockStore,
    study_id: int,
    singles: list[Any],
    batches: list[Any],
    reader: LocalAccount | None,
) -> Check:
    check = Check("every anchored data body present and unaltered")
    items = [_single_item(chain, study_id, e) for e in singles]
    for e in batches:
        check.checked += 1
        try:
            listed, problem = _manifest_items(chain, store, study_id, e)
        except MedLedgerError as exc:
            check.violations.append(str(exc))
            continue
        items.extend(listed)
        if problem is not None:
            check.violations.append(problem)
    registry_address = trial_registry(chain).address
    opened = 0
    for item in sorted(items, key=lambda d: (d.block, d.log_index)):
        check.checked += 1
        try:
            sealed = store.cat(item.cid)
        except MedLedgerError as exc:
            check.violations.append(f"data {item.hex_id}: {exc}")
            continue
        if reader is None:
            continue
        try:
            secret = crypto.secret_for(sealed, reader.key)
        except MedLedgerError:
            continue  # not sealed for this reader: presence and block hashes were checked
        aad = _data_aad(chain.chain_id, registry_address, study_id, item.participant, item.visit)
        try:
            body = crypto.open_sealed(sealed, aad, secret)
        except MedLedgerError:
            check.violations.append(f"data {item.hex_id}: does not decrypt under its identity")
            continue
        opened += 1
        if crypto.commitment(secret.salt, body) != item.commitment:
            check.violations.append(f"data {item.hex_id}: plaintext does not match its commitment")
    if reader is not None:
        check.notes.append(f"{opened} of {len(items)} bodies decrypted and matched to commitments")
    return check


def _check_protocols(
    chain: Chain,
    store: BlockStore,
    check: Check,
    registered: list[Any],
    defined: list[Any],
    reader: LocalAccount | None,
) -> None:
    """Add to ``check`` every version whose protocol document's objectives do not hash to the
    outcomes last defined for it."""
    latest: dict[int, tuple[bytes, bytes]] = {}
    for e in defined:
        latest[int(e["args"]["version"])] = (
            bytes(e["args"]["primaryOutcomes"]),
            bytes(e["args"]["secondaryOutcomes"]),
        )
    registry_address = trial_registry(chain).address
    for e in registered:
        a = e["args"]
        version = int(a["version"])
        cid = Cid.from_digest_v0(bytes(a["protocolDigest"]))
        try:
            stored = store.cat(cid)
        except MedLedgerError as exc:
            check.violations.append(f"version {version}: protocol document {cid}: {exc}")
            continue
        if a["encrypted"]:
            try:
                secret = crypto.secret_for(stored, reader.key) if reader else None
                body = (
                    crypto.open_sealed(
                        stored, _protocol_aad(chain.chain_id, registry_address), secret
                    )
                    if secret
                    else None
                )
            except MedLedgerError:
                body = None
            if body is None:
                check.notes.append(f"version {version}: encrypted protocol, objectives not checked")
                continue
        else:
            body = stored
        try:
            hashes = outcomes_of(json.loads(body), f"protocol v{version}")
        except (ValueError, MedLedgerError) as exc:
            check.violations.append(f"version {version}: protocol document unusable: {exc}")
            continue
        if latest.get(version) != hashes:
            check.violations.append(
                f"version {version}: the protocol's objectives do not hash to the registered "
                "outcomes"
            )


# --- identity link -------------------------------------------------------------------------------


def _link_statement(chain_id: int, registry_address: str, study_id: int, participant: str,
                    record_address: str) -> str:  # fmt: skip
    return (
        f"MedLedger identity link: in study {study_id} of TrialRegistry {registry_address} on "
        f"chain {chain_id}, participant {participant} and record address {record_address} "
        "belong to the same person."
    )


def link_proof(
    chain: Chain, study_id: int, participant: LocalAccount, record_account: LocalAccount
) -> dict[str, Any]:
    """A statement that the study address and the record address are one person's, signed
    (EIP-191 ``personal_sign``) with both keys. Nothing goes on chain: the participant hands it
    to whoever should know."""
    if participant.address == record_account.address:
        raise ConfigurationError("--record-account", "is the participant's own study account")
    registry_address = trial_registry(chain).address
    text = _link_statement(
        chain.chain_id, registry_address, study_id, participant.address, record_account.address
    )
    message = encode_defunct(text=text)
    return {
        "kind": LINK_KIND,
        "statement": text,
        "chain_id": chain.chain_id,
        "trial_registry": registry_address,
        "study": study_id,
        "participant": participant.address,
        "record_address": record_account.address,
        "participant_signature": "0x"
        + bytes(Account.sign_message(message, participant.key).signature).hex(),
        "record_signature": "0x"
        + bytes(Account.sign_message(message, record_account.key).signature).hex(),
    }


def verify_link(document: Mapping[str, Any]) -> bool:
    """True when both signatures are over the statement, by the two addresses it names."""
    try:
        participant = to_checksum_address(str(document["participant"]))
        record_address = to_checksum_address(str(document["record_address"]))
        text = _link_statement(
            int(document["chain_id"]),
            to_checksum_address(str(document["trial_registry"])),
            int(document["study"]),
            participant,
            record_address,
        )
        if document.get("kind") != LINK_KIND or document.get("statement") != text:
            return False
        message = encode_defunct(text=text)
        first = Account.recover_message(
            message, signature=HexBytes(document["participant_signature"])
        )
        second = Account.recover_message(message, signature=HexBytes(document["record_signature"]))
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error, ValidationError,
            BadSignature):  # fmt: skip
        return False
    return bool(first == participant and second == record_address and first != second)


# --- FHIR ----------------------------------------------------------------------------------------


def research_study(
    chain: Chain, store: BlockStore, study: Study, reader: LocalAccount | None = None
) -> bytes:
    """The study as a FHIR ``ResearchStudy``: the protocol in force (when public, or readable by
    ``reader``) with the chain's view laid over it (identifier, version, sponsor, sites)."""
    from medledger import fhir

    try:
        protocol = json.loads(read_protocol(chain, store, study.id, reader=reader))
    except (MedLedgerError, ValueError):
        protocol = None
    return fhir.research_study(_study_facts(study), protocol)


def research_subject(chain: Chain, current: Participation) -> bytes:
    """A participation as a FHIR ``ResearchSubject`` (the individual is the study address)."""
    from medledger import fhir

    study = get_study(chain, current.study_id)
    return fhir.research_subject(
        fhir.SubjectFacts(
            study=_study_facts(study).ref,
            participant=current.participant,
            site=current.site,
            withdrawn=current.withdrawn_at is not None,
            start=current.enrolled_at,
            end=current.withdrawn_at,
            consented_version=current.consented_version,
            reconsent_required=current.standing is Standing.STALE,
        )
    )


def _study_facts(study: Study) -> StudyFacts:
    from medledger import fhir

    return fhir.StudyFacts(
        ref=fhir.StudyRef(study.chain_id, study.registry, study.id),
        sponsor=study.sponsor,
        sites=study.sites,
        protocol_version=study.current_version,
        registered_at=study.registered_at,
    )
