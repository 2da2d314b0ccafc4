"""Clinical trials: pre-registered protocols, signed and versioned consent, traceable data.

The TrialRegistry holds a study's protocol versions (by IPFS digest, with hashes of the outcome
definitions), its sites and monitors, each participant's consent history and the pointers of
their data. The protocol document is the study's FHIR ``ResearchStudy`` resource, public or
sealed for the sponsor and sites. Outcome definitions are the ``objective`` entries: those of
type ``primary`` hash to ``primaryOutcomes``, the others to ``secondaryOutcomes`` (keccak256 of
their canonical JSON), unless an explicit outcomes document is given.

Participants are pseudonymous: one fresh account per study (``ape accounts generate
study-7``, or ``env:VAR``), which signs consent (EIP-712) and never needs ETH: the site submits
it. Its public key is recovered from that signature, so data bodies can be sealed for the
participant without any registration. A participant who wants to show that a study address and
their record address are both theirs signs one statement with both keys (:func:`link_proof`);
anyone checks it with :func:`verify_link`, and nothing of it goes on chain.

:func:`audit` re-checks, from chain events and stored bodies alone, that the trial ran as
registered.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_keys.datatypes import PublicKey, Signature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.logs import DISCARD

from medledger import access, crypto, deployments, registry
from medledger.errors import (
    AccessRefused,
    ConfigurationError,
    FhirStructureError,
    MedLedgerError,
    PreconditionFailed,
    StudyNotFound,
)
from medledger.ipfs.cid import Cid
from medledger.labels import Labelled
from medledger.merkle import MerkleTree, verify

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract

    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

ZERO = bytes(32)
CONSENT_KIND = "medledger/trial-consent"
WITHDRAWAL_KIND = "medledger/trial-withdrawal"
MANIFEST_KIND = "medledger/trial-batch"
LINK_KIND = "medledger/trial-identity-link"
READER_SPONSOR, READER_MONITORS = 1, 2
CARE = (
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


# --- models --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """A study as the chain holds it."""

    id: int
    sponsor: str
    current_version: int
    reconsent_version: int
    participants: int
    registered_at: datetime
    first_enrolment_at: datetime | None
    data_count: int
    sites: tuple[str, ...] = ()
    monitors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "id": self.id,
            "sponsor": self.sponsor,
            "current_version": self.current_version,
            "reconsent_version": self.reconsent_version,
            "participants": self.participants,
            "registered_at": self.registered_at.isoformat(),
            "first_enrolment_at": _iso(self.first_enrolment_at),
            "data_count": self.data_count,
            "sites": list(self.sites),
            "monitors": list(self.monitors),
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
    def status(self) -> str:
        """``active``, ``stale`` (must re-consent) or ``withdrawn``."""
        if self.withdrawn_at is not None:
            return "withdrawn"
        return "stale" if self.consented_version < self.required_version else "active"

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "study": self.study_id,
            "participant": self.participant,
            "site": self.site,
            "status": self.status,
            "consented_version": self.consented_version,
            "required_version": self.required_version,
            "enrolled_at": self.enrolled_at.isoformat(),
            "purpose": self.purpose.label,
            "sponsor_reads": bool(self.readers & READER_SPONSOR),
            "monitors_read": bool(self.readers & READER_MONITORS),
            "withdrawn_at": _iso(self.withdrawn_at),
            "delegate": self.delegate,
            "consents": self.consents,
        }


@dataclass(frozen=True)
class DataItem:
    """One anchored data body: single, or a leaf of a batch."""

    id: bytes
    study_id: int
    participant: str
    visit: bytes
    version: int
    cid: Cid
    commitment: bytes
    site: str
    block: int
    log_index: int
    transaction_hash: str
    batch: bytes | None = None

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "id": "0x" + self.id.hex(),
            "participant": self.participant,
            "visit": "0x" + self.visit.hex(),
            "version": self.version,
            "cid": str(self.cid),
            "commitment": "0x" + self.commitment.hex(),
            "site": self.site,
            "block": self.block,
            "transaction": self.transaction_hash,
            "batch": "0x" + self.batch.hex() if self.batch else None,
        }


@dataclass
class Check:
    """One audit rule and what broke it."""

    rule: str
    violations: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing broke the rule."""
        return not self.violations


@dataclass
class AuditReport:
    """The result of :func:`audit`."""

    study_id: int
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """True when every rule held."""
        return all(c.ok for c in self.checks)

    @property
    def violations(self) -> list[str]:
        """Every violation, prefixed with its rule."""
        return [f"{c.rule}: {v}" for c in self.checks for v in c.violations]

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "study": self.study_id,
            "ok": self.ok,
            "checks": [
                {"rule": c.rule, "ok": c.ok, "checked": c.checked, "violations": c.violations}
                for c in self.checks
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _opt_ts(value: int) -> datetime | None:
    return _ts(value) if value else None


# --- contract and helpers ------------------------------------------------------------------------


def trial_registry(chain: Chain) -> Contract:
    """The deployed TrialRegistry."""
    return deployments.contract(chain, "TrialRegistry")


def _start(chain: Chain) -> int:
    return deployments.require(chain).contracts["TrialRegistry"].block


def _logs(chain: Chain, event: str, filters: dict[str, Any] | None = None) -> list[Any]:
    contract = trial_registry(chain)
    return list(
        getattr(contract.events, event)().get_logs(
            from_block=_start(chain), argument_filters=filters or {}
        )
    )


def _institution(chain: Chain, account: str) -> str | None:
    found = chain.call(
        "reading the registry",
        deployments.contract(chain, "ProviderRegistry").functions.verifiedInstitutionOf(account),
    )
    return None if int(found, 16) == 0 else to_checksum_address(found)


def canonical(value: object) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): what outcome hashes are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def outcomes_of(research_study: dict[str, Any]) -> tuple[bytes, bytes]:
    """The (primary, secondary) outcome hashes of a ResearchStudy's objectives."""
    primary: list[Any] = []
    secondary: list[Any] = []
    for objective in research_study.get("objective") or []:
        codes = {c.get("code") for c in ((objective.get("type") or {}).get("coding") or [])}
        (primary if "primary" in codes else secondary).append(objective)
    if not primary:
        raise FhirStructureError(
            "ResearchStudy",
            "defines no objective of type primary (research-study-objective-type): the primary "
            "outcome must be fixed before enrolment",
        )
    return keccak(canonical(primary)), keccak(canonical(secondary)) if secondary else ZERO


def _protocol(body: bytes, source: str) -> dict[str, Any]:
    from medledger import fhir

    ingest = fhir.load(body, source)
    if ingest.kind != "resource" or fhir.resource_type_of(body) != "ResearchStudy":
        raise FhirStructureError(source, "is not a FHIR ResearchStudy resource")
    document: dict[str, Any] = json.loads(body)
    return document


def _protocol_aad(chain: Chain) -> bytes:
    return f"medledger/trial-protocol:{chain.chain_id}:{trial_registry(chain).address}".encode()


def _store_protocol(
    chain: Chain, store: BlockStore, body: bytes, encrypt: bool, readers: list[str]
) -> Cid:
    if not encrypt:
        return store.add_bytes(body, pin=True)
    keys = [registry.encryption_key(chain, r) for r in readers]
    sealed = crypto.seal(body, _protocol_aad(chain), keys, crypto.BodySecret.generate())
    return store.add_bytes(sealed, pin=True)


# --- studies -------------------------------------------------------------------------------------


def register_study(
    chain: Chain,
    store: BlockStore,
    sponsor: LocalAccount,
    research_study: bytes,
    sites: list[str],
    *,
    encrypt: bool = False,
    summary: bytes | None = None,
    source: str = "protocol",
) -> Study:
    """Register a study: its ResearchStudy protocol (version 1), outcomes and planned sites."""
    institution = _institution(chain, sponsor.address)
    kind = registry.participant(chain, institution).kind if institution else None
    if institution is None or kind is not registry.InstitutionKind.RESEARCH_SPONSOR:
        raise PreconditionFailed(f"{sponsor.address} is not a verified research sponsor")
    sites = [to_checksum_address(s) for s in sites]
    for site in sites:
        _require_site(chain, site)
    document = _protocol(research_study, source)
    primary, secondary = outcomes_of(document)
    cid = _store_protocol(chain, store, research_study, encrypt, [institution, *sites])
    summary_digest = store.add_bytes(summary, pin=True).digest if summary else ZERO
    receipt = chain.transact(
        "registering the study",
        sponsor,
        trial_registry(chain).functions.registerStudy(
            (cid.digest, encrypt, primary, secondary), sites, summary_digest
        ),
    )
    (event,) = (
        trial_registry(chain).events.StudyRegistered().process_receipt(receipt, errors=DISCARD)
    )
    return get_study(chain, int(event["args"]["studyId"]))


def _require_site(chain: Chain, site: str) -> None:
    entry = registry.participant(chain, site)
    if (
        entry.role is not registry.Role.INSTITUTION
        or entry.kind not in CARE
        or (entry.status is not registry.Status.VERIFIED)
    ):
        raise PreconditionFailed(f"{site} is not a verified hospital, clinic or laboratory")


def _require_sponsor(chain: Chain, account: str, study: Study) -> None:
    if _institution(chain, account) != study.sponsor:
        raise PreconditionFailed(f"{account} does not act for {study.sponsor}, the sponsor")


def amend(
    chain: Chain,
    store: BlockStore,
    sponsor: LocalAccount,
    study_id: int,
    research_study: bytes,
    *,
    requires_reconsent: bool,
    reason: str,
    encrypt: bool = False,
) -> Study:
    """Amend the protocol: a new version comes into force (optionally requiring re-consent)."""
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    if not reason.strip():
        raise ConfigurationError("--reason", "an amendment needs a reason")
    primary, secondary = outcomes_of(_protocol(research_study, "amendment"))
    cid = _store_protocol(chain, store, research_study, encrypt, [study.sponsor, *study.sites])
    chain.transact(
        "amending the protocol",
        sponsor,
        trial_registry(chain).functions.amendProtocol(
            study_id, (cid.digest, encrypt, primary, secondary), requires_reconsent, reason
        ),
    )
    return get_study(chain, study_id)


def add_site(chain: Chain, sponsor: LocalAccount, study_id: int, site: str) -> Study:
    """Add a site (a verified care institution) to a study."""
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    site = to_checksum_address(site)
    _require_site(chain, site)
    if site in study.sites:
        raise PreconditionFailed(f"{site} is already a site of study {study_id}")
    chain.transact(
        "adding a site", sponsor, trial_registry(chain).functions.addSite(study_id, site)
    )
    return get_study(chain, study_id)


def set_monitor(
    chain: Chain, sponsor: LocalAccount, study_id: int, monitor: str, allowed: bool = True
) -> Study:
    """Add (or remove) a monitor who reads the data of participants that allow it."""
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    chain.transact(
        "changing a monitor",
        sponsor,
        trial_registry(chain).functions.setMonitor(study_id, to_checksum_address(monitor), allowed),
    )
    return get_study(chain, study_id)


def get_study(chain: Chain, study_id: int) -> Study:
    """Read a study with its sites and current monitors."""
    contract = trial_registry(chain)
    registered = _logs(chain, "StudyRegistered", {"studyId": study_id})
    if not registered:
        raise StudyNotFound(study_id)
    s = chain.call("reading the study", contract.functions.getStudy(study_id))
    sponsor, current, reconsent, participants, registered_at, first, data_count = s
    sites = tuple(
        to_checksum_address(e["args"]["site"])
        for e in _logs(chain, "SiteAdded", {"studyId": study_id})
    )
    monitors: dict[str, bool] = {}
    for e in _logs(chain, "MonitorChanged", {"studyId": study_id}):
        monitors[to_checksum_address(e["args"]["monitor"])] = bool(e["args"]["allowed"])
    return Study(
        id=study_id,
        sponsor=to_checksum_address(sponsor),
        current_version=int(current),
        reconsent_version=int(reconsent),
        participants=int(participants),
        registered_at=_ts(registered_at),
        first_enrolment_at=_opt_ts(first),
        data_count=int(data_count),
        sites=sites,
        monitors=tuple(m for m, allowed in monitors.items() if allowed),
    )


def studies(chain: Chain) -> list[Study]:
    """Every registered study."""
    return [get_study(chain, int(e["args"]["studyId"])) for e in _logs(chain, "StudyRegistered")]


def versions(chain: Chain, study_id: int) -> list[dict[str, object]]:
    """Every protocol version: document CID, outcome hashes, re-consent flag, reason."""
    outcomes = {
        int(e["args"]["version"]): e["args"]
        for e in _logs(chain, "OutcomesDefined", {"studyId": study_id})
    }
    found = []
    for e in _logs(chain, "ProtocolVersionRegistered", {"studyId": study_id}):
        a = e["args"]
        o = outcomes.get(int(a["version"]))
        found.append(
            {
                "version": int(a["version"]),
                "protocol": str(Cid.from_digest_v0(bytes(a["protocolDigest"]))),
                "encrypted": bool(a["encrypted"]),
                "requires_reconsent": bool(a["requiresReconsent"]),
                "reason": a["reason"],
                "primary_outcomes": "0x" + bytes(o["primaryOutcomes"]).hex() if o else None,
                "secondary_outcomes": "0x" + bytes(o["secondaryOutcomes"]).hex() if o else None,
                "block": int(e["blockNumber"]),
            }
        )
    return found


def participation(chain: Chain, study_id: int, participant: str) -> Participation:
    """A participant's standing (refuses one who never enrolled)."""
    participant = to_checksum_address(participant)
    study = get_study(chain, study_id)
    p = chain.call(
        "reading the participation",
        trial_registry(chain).functions.getParticipation(study_id, participant),
    )
    site, version, enrolled, purpose, readers, withdrawn, delegate, consents = p
    if int(enrolled) == 0:
        raise PreconditionFailed(f"{participant} is not enrolled in study {study_id}")
    return Participation(
        study_id=study_id,
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
    """Every participant of a study."""
    seen = dict.fromkeys(
        to_checksum_address(e["args"]["participant"])
        for e in _logs(chain, "ConsentRecorded", {"studyId": study_id})
    )
    return [participation(chain, study_id, p) for p in seen]


# --- consent and withdrawal ----------------------------------------------------------------------


def _domain(chain: Chain) -> dict[str, Any]:
    return {
        "name": "MedLedger TrialRegistry",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": trial_registry(chain).address,
    }


CONSENT_TYPE = [
    {"name": "studyId", "type": "uint64"},
    {"name": "version", "type": "uint32"},
    {"name": "site", "type": "address"},
    {"name": "participant", "type": "address"},
    {"name": "purpose", "type": "uint8"},
    {"name": "readers", "type": "uint8"},
    {"name": "delegate", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
WITHDRAWAL_TYPE = [
    {"name": "studyId", "type": "uint64"},
    {"name": "participant", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _typed(chain: Chain, primary: str, message: dict[str, Any]) -> dict[str, Any]:
    fields = CONSENT_TYPE if primary == "ConsentRequest" else WITHDRAWAL_TYPE
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, primary: fields},
        "primaryType": primary,
        "domain": _domain(chain),
        "message": message,
    }


def consent_digest(chain: Chain, request: dict[str, Any]) -> bytes:
    """The EIP-712 digest of a consent request, computed off chain."""
    signable = encode_typed_data(full_message=_typed(chain, "ConsentRequest", request))
    return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


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
    """Sign consent to the protocol version in force (the participant needs no ETH)."""
    study = get_study(chain, study_id)
    site = to_checksum_address(site)
    if site not in study.sites:
        raise PreconditionFailed(f"{site} is not a site of study {study_id}")
    contract = trial_registry(chain)
    request = {
        "studyId": study_id,
        "version": study.current_version,
        "site": site,
        "participant": participant.address,
        "purpose": int(purpose),
        "readers": (READER_SPONSOR if sponsor_reads else 0)
        | (READER_MONITORS if monitors_read else 0),
        "delegate": to_checksum_address(delegate) if delegate else "0x" + "00" * 20,
        "nonce": int(
            chain.call("reading the nonce", contract.functions.nonces(participant.address))
        ),
        "deadline": int((access.chain_now(chain) + valid_for).timestamp()),
    }
    typed = _typed(chain, "ConsentRequest", request)
    signature = Account.sign_message(encode_typed_data(full_message=typed), participant.key)
    return {
        "kind": CONSENT_KIND,
        "chain_id": chain.chain_id,
        "trial_registry": contract.address,
        "request": request,
        "signature": "0x" + bytes(signature.signature).hex(),
    }


def _document(chain: Chain, document: dict[str, Any], kind: str) -> tuple[dict[str, Any], bytes]:
    try:
        if document.get("kind") != kind:
            raise KeyError("kind")
        request = dict(document["request"])
        signature = bytes(HexBytes(document["signature"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ConfigurationError("signature file", f"is not a MedLedger {kind} document") from None
    if (
        document.get("chain_id") != chain.chain_id
        or document.get("trial_registry") != trial_registry(chain).address
    ):
        raise PreconditionFailed("the signed document is for another chain or TrialRegistry")
    return request, signature


def submit_consent(chain: Chain, site: LocalAccount, document: dict[str, Any]) -> Participation:
    """Submit a participant's signed consent (the site pays the gas)."""
    request, signature = _document(chain, document, CONSENT_KIND)
    study = get_study(chain, int(request["studyId"]))
    if _institution(chain, site.address) != to_checksum_address(request["site"]):
        raise PreconditionFailed(f"{site.address} does not act for {request['site']}")
    if int(request["version"]) != study.current_version:
        raise PreconditionFailed(
            f"the consent is to protocol version {request['version']}, but version "
            f"{study.current_version} is in force: the participant must sign again"
        )
    args = tuple(request[f["name"]] for f in CONSENT_TYPE)
    chain.transact(
        "recording consent", site, trial_registry(chain).functions.consent(args, signature)
    )
    return participation(chain, study.id, request["participant"])


def sign_withdrawal(
    chain: Chain, participant: LocalAccount, study_id: int, valid_for: timedelta = timedelta(days=7)
) -> dict[str, Any]:
    """Sign a withdrawal anyone can submit (the participant needs no ETH)."""
    participation(chain, study_id, participant.address)
    contract = trial_registry(chain)
    request = {
        "studyId": study_id,
        "participant": participant.address,
        "nonce": int(
            chain.call("reading the nonce", contract.functions.nonces(participant.address))
        ),
        "deadline": int((access.chain_now(chain) + valid_for).timestamp()),
    }
    typed = _typed(chain, "WithdrawalRequest", request)
    signature = Account.sign_message(encode_typed_data(full_message=typed), participant.key)
    return {
        "kind": WITHDRAWAL_KIND,
        "chain_id": chain.chain_id,
        "trial_registry": contract.address,
        "request": request,
        "signature": "0x" + bytes(signature.signature).hex(),
    }


def submit_withdrawal(
    chain: Chain, relayer: LocalAccount, document: dict[str, Any]
) -> Participation:
    """Submit a signed withdrawal; it takes effect at once."""
    request, signature = _document(chain, document, WITHDRAWAL_KIND)
    current = participation(chain, int(request["studyId"]), request["participant"])
    if current.withdrawn_at is not None:
        raise PreconditionFailed(f"{current.participant} has already withdrawn")
    args = tuple(request[f["name"]] for f in WITHDRAWAL_TYPE)
    chain.transact(
        "withdrawing",
        relayer,
        trial_registry(chain).functions.withdrawWithSignature(args, signature),
    )
    return participation(chain, current.study_id, current.participant)


def withdraw(chain: Chain, account: LocalAccount, study_id: int, participant: str) -> Participation:
    """Withdraw directly (the participant, or their delegate)."""
    current = participation(chain, study_id, participant)
    if account.address not in (current.participant, current.delegate):
        raise PreconditionFailed(f"{account.address} is neither the participant nor their delegate")
    if current.withdrawn_at is not None:
        raise PreconditionFailed(f"{current.participant} has already withdrawn")
    chain.transact(
        "withdrawing",
        account,
        trial_registry(chain).functions.withdraw(study_id, current.participant),
    )
    return participation(chain, study_id, current.participant)


@dataclass(frozen=True)
class RecordedConsent:
    """A ConsentRecorded event with the full request decoded from its transaction."""

    event: Any
    request: dict[str, Any]
    signature: bytes


def recorded_consents(
    chain: Chain, study_id: int, participant: str | None = None
) -> list[RecordedConsent]:
    """Every consent of a study, with the signed request read back from the transaction."""
    contract = trial_registry(chain)
    filters: dict[str, Any] = {"studyId": study_id}
    if participant:
        filters["participant"] = to_checksum_address(participant)
    found = []
    for event in _logs(chain, "ConsentRecorded", filters):
        tx = chain.w3.eth.get_transaction(event["transactionHash"])
        _, params = contract.decode_function_input(tx["input"])
        raw = params["request"]
        names = [f["name"] for f in CONSENT_TYPE]
        values = raw.values() if isinstance(raw, dict) else raw
        request = dict(zip(names, values, strict=True))
        request["site"] = to_checksum_address(request["site"])
        request["participant"] = to_checksum_address(request["participant"])
        request["delegate"] = to_checksum_address(request["delegate"])
        found.append(RecordedConsent(event, request, bytes(params["signature"])))
    return found


def participant_key(chain: Chain, study_id: int, participant: str) -> bytes:
    """The participant's compressed public key, recovered from their latest consent signature."""
    consents = recorded_consents(chain, study_id, participant)
    if not consents:
        raise PreconditionFailed(f"{participant} has no recorded consent in study {study_id}")
    latest = consents[-1]
    return bytes(_recover(chain, latest.request, latest.signature).to_compressed_bytes())


def _recover(chain: Chain, request: dict[str, Any], signature: bytes) -> PublicKey:
    digest = consent_digest(chain, request)
    v = signature[64]
    sig = Signature(signature[:64] + bytes([v - 27 if v >= 27 else v]))
    return sig.recover_public_key_from_msg_hash(digest)


# --- data ----------------------------------------------------------------------------------------


def visit_id(label: str) -> bytes:
    """A visit's on-chain id: keccak256 of its label (``baseline``, ``week-4``...)."""
    if not label.strip():
        raise ConfigurationError("--visit", "a visit needs a label")
    return keccak(text=label.strip())


def data_id(
    chain: Chain,
    study_id: int,
    participant: str,
    visit: bytes,
    version: int,
    cid_digest: bytes,
    commitment: bytes,
) -> bytes:
    """A data body's id, exactly as ``dataIdOf`` derives it."""
    return keccak(
        abi_encode(
            ["uint256", "address", "uint64", "address", "bytes32", "uint32", "bytes32", "bytes32"],
            [
                chain.chain_id,
                trial_registry(chain).address,
                study_id,
                participant,
                visit,
                version,
                cid_digest,
                commitment,
            ],
        )
    )


def _data_aad(chain: Chain, study_id: int, participant: str, visit: bytes) -> bytes:
    return (
        f"medledger/trial-data:{chain.chain_id}:{trial_registry(chain).address}:{study_id}:"
        f"{participant}:0x{visit.hex()}"
    ).encode()


def _readers(chain: Chain, study: Study, current: Participation) -> list[bytes]:
    keys = [
        participant_key(chain, study.id, current.participant),
        registry.encryption_key(chain, current.site),
    ]
    if current.readers & READER_SPONSOR:
        keys.append(registry.encryption_key(chain, study.sponsor))
    if current.readers & READER_MONITORS:
        for monitor in study.monitors:
            if registry.participant(chain, monitor).encryption_key is not None:
                keys.append(registry.encryption_key(chain, monitor))
    return keys


def submit_data(
    chain: Chain,
    store: BlockStore,
    site: LocalAccount,
    study_id: int,
    participant: str,
    visit: str,
    bodies: list[bytes],
    *,
    batch: bool = False,
) -> list[DataItem]:
    """Seal each body for the participant and the readers their consent allows, store it in
    IPFS and anchor it (one transaction per body, or one Merkle batch for the visit)."""
    if not bodies:
        raise ConfigurationError("FILES", "give at least one data body")
    study = get_study(chain, study_id)
    current = participation(chain, study_id, participant)
    if _institution(chain, site.address) != current.site:
        raise PreconditionFailed(
            f"{site.address} does not act for {current.site}, the participant's enrolling site"
        )
    if current.status == "withdrawn":
        raise PreconditionFailed(
            f"{current.participant} withdrew on {current.withdrawn_at:%F}: no more data is accepted"
        )
    if current.status == "stale":
        raise PreconditionFailed(
            f"{current.participant} consented to version {current.consented_version}, but "
            f"version {current.required_version} requires re-consent first"
        )
    from medledger import fhir

    for index, body in enumerate(bodies):
        fhir.load(body, f"data body {index + 1}")  # FHIR resources only, refused before storing
    readers = _readers(chain, study, current)
    visit_hash = visit_id(visit)
    aad = _data_aad(chain, study_id, current.participant, visit_hash)
    prepared = []
    with store.bulk():
        for body in bodies:
            secret = crypto.BodySecret.generate()
            cid = store.add_bytes(crypto.seal(body, aad, readers, secret), pin=True)
            commitment = crypto.commitment(secret.salt, body)
            identifier = data_id(
                chain,
                study_id,
                current.participant,
                visit_hash,
                study.current_version,
                cid.digest,
                commitment,
            )
            prepared.append((identifier, cid, commitment))
    contract = trial_registry(chain)
    if not batch:
        for _, cid, commitment in prepared:
            chain.transact(
                "submitting trial data",
                site,
                contract.functions.submitData(
                    study_id, current.participant, visit_hash, cid.digest, commitment
                ),
            )
    else:
        tree = MerkleTree.build([p[0] for p in prepared])
        manifest = {
            "kind": MANIFEST_KIND,
            "v": 1,
            "chain": chain.chain_id,
            "registry": contract.address,
            "study": study_id,
            "participant": current.participant,
            "visit": visit,
            "version": study.current_version,
            "items": [
                {"id": "0x" + i.hex(), "cid": str(c), "commitment": "0x" + m.hex()}
                for i, c, m in prepared
            ],
        }
        manifest_cid = store.add_bytes(canonical(manifest), pin=True)
        chain.transact(
            "submitting a trial data batch",
            site,
            contract.functions.submitDataBatch(
                study_id,
                current.participant,
                visit_hash,
                tree.root,
                manifest_cid.digest,
                len(prepared),
            ),
        )
    ids = {p[0] for p in prepared}
    return [d for d in data(chain, store, study_id) if d.id in ids]


def data(chain: Chain, store: BlockStore | None, study_id: int) -> list[DataItem]:
    """Every anchored data body of a study (batch leaves read from their manifests)."""
    found: list[DataItem] = []
    for e in _logs(chain, "DataSubmitted", {"studyId": study_id}):
        a = e["args"]
        found.append(
            DataItem(
                bytes(a["dataId"]),
                study_id,
                to_checksum_address(a["participant"]),
                bytes(a["visit"]),
                int(a["version"]),
                Cid.from_digest_v0(bytes(a["cidDigest"])),
                bytes(a["commitment"]),
                to_checksum_address(a["site"]),
                int(e["blockNumber"]),
                int(e["logIndex"]),
                "0x" + bytes(e["transactionHash"]).hex(),
            )
        )
    if store is not None:
        for e in _logs(chain, "DataBatchSubmitted", {"studyId": study_id}):
            a = e["args"]
            try:
                manifest = json.loads(store.cat(Cid.from_digest_v0(bytes(a["manifestDigest"]))))
                items = manifest["items"]
            except (MedLedgerError, ValueError, KeyError):
                continue  # the audit names a missing manifest
            for item in items:
                found.append(
                    DataItem(
                        bytes(HexBytes(item["id"])),
                        study_id,
                        to_checksum_address(a["participant"]),
                        bytes(a["visit"]),
                        int(a["version"]),
                        Cid.parse(item["cid"]),
                        bytes(HexBytes(item["commitment"])),
                        to_checksum_address(a["site"]),
                        int(e["blockNumber"]),
                        int(e["logIndex"]),
                        "0x" + bytes(e["transactionHash"]).hex(),
                        bytes(a["batchId"]),
                    )
                )
    found.sort(key=lambda d: (d.block, d.log_index))
    return found


def read_data(
    chain: Chain, store: BlockStore, reader: LocalAccount, study_id: int, data_hex: str
) -> bytes:
    """Fetch, verify and decrypt one data body (the chain decides who may read)."""
    wanted = bytes(HexBytes(data_hex))
    item = next((d for d in data(chain, store, study_id) if d.id == wanted), None)
    if item is None:
        raise PreconditionFailed(f"{data_hex} is not a data body of study {study_id}")
    allowed = chain.call(
        "checking access",
        trial_registry(chain).functions.canRead(study_id, item.participant, reader.address),
    )
    if not allowed:
        raise AccessRefused(
            data_hex,
            "only the participant, their site and (as their consent "
            "allows) the sponsor and monitors read trial data",
        )
    sealed = store.cat(item.cid)
    secret = crypto.secret_for(sealed, reader.key)
    body = crypto.open_sealed(
        sealed, _data_aad(chain, study_id, item.participant, item.visit), secret
    )
    if crypto.commitment(secret.salt, body) != item.commitment:
        from medledger.errors import IntegrityError

        raise IntegrityError(f"data {data_hex} does not match its anchored commitment")
    return body


# --- audit ---------------------------------------------------------------------------------------


def audit(
    chain: Chain, store: BlockStore, study_id: int, reader: LocalAccount | None = None
) -> AuditReport:
    """Check from chain events and stored bodies that the study ran as registered."""
    get_study(chain, study_id)
    by_study = {"studyId": study_id}
    registered = [e for e in _logs(chain, "ProtocolVersionRegistered", by_study)]
    consents = recorded_consents(chain, study_id)
    withdrawals = _logs(chain, "ParticipantWithdrawn", by_study)
    outcome_events = _logs(chain, "OutcomesDefined", by_study)
    items = data(chain, store, study_id)
    batches = _logs(chain, "DataBatchSubmitted", by_study)

    def pos(e: Any) -> tuple[int, int]:
        return int(e["blockNumber"]), int(e["logIndex"])

    first_protocol = Check("protocol registered before the first enrolment", checked=1)
    v1 = [e for e in registered if int(e["args"]["version"]) == 1]
    if consents and (not v1 or pos(v1[0]) > pos(consents[0].event)):
        first_protocol.violations.append("a participant enrolled before protocol version 1")

    # Replay the study's history in order: versions in force, re-consent requirements.
    timeline: list[tuple[tuple[int, int], str, Any]] = (
        [(pos(e), "version", e) for e in registered]
        + [(pos(c.event), "consent", c) for c in consents]
        + [(pos(e), "withdrawal", e) for e in withdrawals]
        + [((d.block, d.log_index), "data", d) for d in items]
    )
    timeline.sort(key=lambda t: t[0])
    consent_check = Check("every enrolment backed by a valid consent to the version in force")
    data_check = Check("no data from a withdrawn or stale participant")
    current_version, required = 0, 0
    consented: dict[str, int] = {}
    withdrawn: set[str] = set()
    for _, kind, value in timeline:
        if kind == "version":
            current_version = int(value["args"]["version"])
            if value["args"]["requiresReconsent"] or current_version == 1:
                required = current_version
        elif kind == "consent":
            consent_check.checked += 1
            a, request = value.event["args"], value.request
            who = to_checksum_address(a["participant"])
            problems = []
            signer: str = "nobody"
            with contextlib.suppress(Exception):
                signer = _recover(chain, request, value.signature).to_checksum_address()
            if signer != who:
                problems.append(f"signature recovers to {signer}")
            if int(request["version"]) != current_version:
                problems.append(
                    f"consents to version {request['version']} while {current_version} was in force"
                )
            block_time = chain.block_time(int(value.event["blockNumber"]))
            if int(request["deadline"]) < block_time.timestamp():
                problems.append("submitted after its deadline")
            if (
                int(a["version"]) != int(request["version"])
                or to_checksum_address(a["site"]) != request["site"]
            ):
                problems.append("event and signed request disagree")
            if who in withdrawn:
                problems.append("consent recorded after withdrawal")
            if problems:
                consent_check.violations.append(f"consent of {who}: {'; '.join(problems)}")
            consented[who] = int(request["version"])
        elif kind == "withdrawal":
            withdrawn.add(to_checksum_address(value["args"]["participant"]))
        else:
            data_check.checked += 1
            who = value.participant
            if who in withdrawn:
                data_check.violations.append(f"data 0x{value.id.hex()} after {who} withdrew")
            elif consented.get(who, 0) < max(required, 1):
                data_check.violations.append(
                    f"data 0x{value.id.hex()} from {who}, whose consent (version "
                    f"{consented.get(who, 0)}) predates required version {required}"
                )

    bodies = Check("every anchored data body present and unaltered")
    for e in batches:
        a = e["args"]
        bodies.checked += 1
        leaves = [d for d in items if d.batch == bytes(a["batchId"])]
        if not leaves:
            bodies.violations.append(f"batch 0x{bytes(a['batchId']).hex()}: manifest missing")
            continue
        tree = MerkleTree.build([d.id for d in leaves])
        if tree.root != bytes(a["root"]) or len(leaves) != int(a["count"]):
            bodies.violations.append(
                f"batch 0x{bytes(a['batchId']).hex()}: manifest does not "
                "rebuild the anchored root and count"
            )
        for d in leaves:
            expected = data_id(
                chain, study_id, d.participant, d.visit, d.version, d.cid.digest, d.commitment
            )
            if expected != d.id or not verify(tree.proof(d.id), bytes(a["root"]), d.id):
                bodies.violations.append(
                    f"data 0x{d.id.hex()}: manifest entry does not match its id"
                )
    for d in items:
        bodies.checked += 1
        try:
            sealed = store.cat(d.cid)
        except MedLedgerError as exc:
            bodies.violations.append(f"data 0x{d.id.hex()}: body {d.cid} {exc}")
            continue
        if reader is not None:
            try:
                secret = crypto.secret_for(sealed, reader.key)
                body = crypto.open_sealed(
                    sealed, _data_aad(chain, study_id, d.participant, d.visit), secret
                )
            except MedLedgerError:
                continue  # not a reader of this body: presence and hashes were checked
            if crypto.commitment(secret.salt, body) != d.commitment:
                bodies.violations.append(
                    f"data 0x{d.id.hex()}: plaintext does not match its commitment"
                )

    outcomes = Check("outcome definitions unchanged after enrolment")
    first_by_version: dict[int, tuple[int, int]] = {}
    for c in consents:
        first_by_version.setdefault(int(c.request["version"]), pos(c.event))
    for e in outcome_events:
        outcomes.checked += 1
        version = int(e["args"]["version"])
        if version in first_by_version and pos(e) > first_by_version[version]:
            outcomes.violations.append(
                f"version {version}'s outcomes were redefined after its first enrolment"
            )
    latest = {int(e["args"]["version"]): e["args"] for e in outcome_events}
    for e in registered:
        a = e["args"]
        if a["encrypted"]:
            continue  # only key holders can compare an encrypted protocol
        try:
            body = store.cat(Cid.from_digest_v0(bytes(a["protocolDigest"])))
            primary, secondary = outcomes_of(json.loads(body))
        except (MedLedgerError, ValueError):
            outcomes.violations.append(
                f"version {a['version']}: protocol document missing or unreadable"
            )
            continue
        o = latest.get(int(a["version"]))
        if o is None or (primary, secondary) != (
            bytes(o["primaryOutcomes"]),
            bytes(o["secondaryOutcomes"]),
        ):
            outcomes.violations.append(
                f"version {a['version']}: the protocol's objectives do not "
                "hash to the registered outcomes"
            )
    return AuditReport(study_id, [first_protocol, consent_check, data_check, bodies, outcomes])


# --- identity link -------------------------------------------------------------------------------


def _link_statement(study_id: int, participant: str, record_address: str, chain_id: int) -> str:
    return (
        f"MedLedger: on chain {chain_id}, study {study_id} participant {participant} and "
        f"record address {record_address} belong to the same person."
    )


def link_proof(
    chain: Chain, study_id: int, participant: LocalAccount, record_account: LocalAccount
) -> dict[str, Any]:
    """A statement that both addresses are one person's, signed (EIP-191) with both keys."""
    text = _link_statement(study_id, participant.address, record_account.address, chain.chain_id)
    message = encode_defunct(text=text)
    return {
        "kind": LINK_KIND,
        "statement": text,
        "study": study_id,
        "chain_id": chain.chain_id,
        "participant": participant.address,
        "record_address": record_account.address,
        "participant_signature": "0x"
        + bytes(Account.sign_message(message, participant.key).signature).hex(),
        "record_signature": "0x"
        + bytes(Account.sign_message(message, record_account.key).signature).hex(),
    }


def verify_link(document: dict[str, Any]) -> bool:
    """True when both signatures are over the statement by the two named addresses."""
    try:
        text = _link_statement(
            int(document["study"]),
            document["participant"],
            document["record_address"],
            int(document["chain_id"]),
        )
        if document.get("kind") != LINK_KIND or document.get("statement") != text:
            return False
        message = encode_defunct(text=text)
        first = Account.recover_message(
            message, signature=HexBytes(document["participant_signature"])
        )
        second = Account.recover_message(message, signature=HexBytes(document["record_signature"]))
        return bool(first == document["participant"] and second == document["record_address"])
    except (KeyError, TypeError, ValueError):
        return False


# --- FHIR ----------------------------------------------------------------------------------------

STUDY_SYSTEM = "urn:medledger:study"
PARTICIPANT_SYSTEM = "urn:medledger:participant"


def study_identifier(chain: Chain, study_id: int) -> str:
    """The portable identifier of a study: ``eip155:<chain>/<TrialRegistry>/<id>``."""
    return f"eip155:{chain.chain_id}/{trial_registry(chain).address}/{study_id}"


def study_id_from_fhir(resource: dict[str, Any]) -> int:
    """The study id named by a ResearchStudy's identifier or a ResearchSubject's ``study``."""
    candidates = list(resource.get("identifier") or [])
    study = resource.get("study") or {}
    if study.get("identifier"):
        candidates.append(study["identifier"])
    for identifier in candidates:
        if identifier.get("system") == STUDY_SYSTEM:
            try:
                return int(str(identifier["value"]).rsplit("/", 1)[1])
            except (IndexError, ValueError):
                break
    raise FhirStructureError("resource", f"names no {STUDY_SYSTEM} study identifier")


def research_study(chain: Chain, store: BlockStore, study: Study) -> bytes:
    """The study as a FHIR ``ResearchStudy``: the registered protocol (when public) with the
    chain's view (identifier, status, sites) laid over it."""
    current = versions(chain, study.id)[-1]
    base: dict[str, Any] = {}
    if not current["encrypted"]:
        try:
            base = json.loads(store.cat(Cid.parse(str(current["protocol"]))))
        except (MedLedgerError, ValueError):
            base = {}
    resource = {
        **base,
        "resourceType": "ResearchStudy",
        "identifier": [
            *[i for i in base.get("identifier", []) if i.get("system") != STUDY_SYSTEM],
            {"system": STUDY_SYSTEM, "value": study_identifier(chain, study.id)},
        ],
        "status": base.get("status", "active"),
        "site": [
            {"identifier": {"system": "urn:medledger:institution", "value": s}} for s in study.sites
        ],
        "sponsor": {"identifier": {"system": "urn:medledger:institution", "value": study.sponsor}},
        "protocol": base.get("protocol", []),
        "extension": [
            {"url": "urn:medledger:protocol-version", "valueInteger": study.current_version}
        ],
    }
    if not resource["protocol"]:
        resource.pop("protocol")
    return json.dumps(resource, indent=2).encode()


def research_subject(chain: Chain, current: Participation) -> bytes:
    """A participation as a FHIR ``ResearchSubject`` (the individual is the study address)."""
    period: dict[str, str] = {"start": current.enrolled_at.isoformat()}
    if current.withdrawn_at:
        period["end"] = current.withdrawn_at.isoformat()
    resource = {
        "resourceType": "ResearchSubject",
        "identifier": [{"system": PARTICIPANT_SYSTEM, "value": current.participant}],
        "status": {
            "active": "on-study",
            "stale": "on-study-intervention",
            "withdrawn": "withdrawn",
        }[current.status],
        "period": period,
        "study": {
            "identifier": {
                "system": STUDY_SYSTEM,
                "value": study_identifier(chain, current.study_id),
            }
        },
        "individual": {
            "identifier": {"system": PARTICIPANT_SYSTEM, "value": current.participant},
            "display": "pseudonymous trial participant",
        },
        "extension": [
            {
                "url": "urn:medledger:consented-protocol-version",
                "valueInteger": current.consented_version,
            }
        ],
    }
    return json.dumps(resource, indent=2).encode()
