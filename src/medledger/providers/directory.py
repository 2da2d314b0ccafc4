"""Institutions, practitioners, patients, delegates and care relationships in the
ProviderRegistry.

Each function checks its preconditions (role held, status allows it) before sending, so the
user gets a clear error instead of a revert. Every participant's published encryption key is
the compressed public key of its own account, so any Ethereum account can read what is wrapped
for it without extra key material; the proof that it holds the key is the account's EIP-712
signature of ``EncryptionKey(account, key)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.logs import DISCARD

from medledger import crypto
from medledger.chain import deployments
from medledger.crypto import eip712
from medledger.errors import (
    ConfigurationError,
    InstitutionNotFound,
    PatientNotFound,
    PreconditionFailed,
)
from medledger.labels import Labelled

if TYPE_CHECKING:
    from datetime import datetime

    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.types import TxReceipt

    from medledger.chain import Chain

REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")
UNTIL_REVOKED = 2**40 - 1
"""A care relationship's end when it has none (the contract's ``type(uint40).max``)."""
CARE_FIELDS = (
    ("patient", "address"),
    ("institution", "address"),
    ("until", "uint40"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
KEY_FIELDS = (("account", "address"), ("key", "bytes"))
CARE_KINDS = frozenset({1, 2, 3, 6})  # hospital, clinic, laboratory, emergency service


class InstitutionKind(Labelled):
    """Kinds of institution (the contract's ``InstitutionKind``)."""

    HOSPITAL = 1
    CLINIC = 2
    LABORATORY = 3
    INSURER = 4
    RESEARCH_SPONSOR = 5
    EMERGENCY_SERVICE = 6

    @classmethod
    def parse(cls, text: str) -> InstitutionKind:
        """Parse a command-line name."""
        return cls.lookup(text, "--kind", "kind")


class Status(IntEnum):
    """An institution's status (the contract's ``InstitutionStatus``)."""

    NONE = 0
    PENDING = 1
    VERIFIED = 2
    SUSPENDED = 3


class Role(IntEnum):
    """An account's role (the contract's ``Role``)."""

    NONE = 0
    PATIENT = 1
    INSTITUTION = 2
    PRACTITIONER = 3


@dataclass(frozen=True)
class Participant:
    """What the registry holds about one account."""

    address: str
    role: Role
    kind: InstitutionKind | None
    status: Status
    approvals: int
    threshold: int
    employer: str | None
    number: int
    encryption_key: bytes | None

    @property
    def is_care_provider(self) -> bool:
        """True for hospitals, clinics, laboratories and emergency services."""
        return self.kind is not None and int(self.kind) in CARE_KINDS

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-friendly view."""
        return {
            "address": self.address,
            "role": self.role.name.lower(),
            "kind": self.kind.label if self.kind else None,
            "status": self.status.name.lower(),
            "approvals": self.approvals,
            "threshold": self.threshold,
            "employer": self.employer,
            "number": self.number or None,
            "encryption_key": "0x" + self.encryption_key.hex() if self.encryption_key else None,
        }


@dataclass(frozen=True)
class Care:
    """A care relationship: the institution may write the patient's records while live."""

    patient: str
    institution: str
    since: int
    until: int

    def live(self, now: int) -> bool:
        """True when ``since <= now < until``."""
        return self.since != 0 and self.since <= now < self.until

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-friendly view (times as Unix seconds; ``until`` None: until revoked)."""
        return {
            "patient": self.patient,
            "institution": self.institution,
            "since": self.since or None,
            "until": None if self.until == UNTIL_REVOKED else self.until,
        }


def _registry(chain: Chain) -> Contract:
    return deployments.contract(chain, "ProviderRegistry")


def participant(chain: Chain, address: str) -> Participant:
    """Read an account's entry (role ``NONE`` for an unknown account)."""
    registry = _registry(chain)
    account = to_checksum_address(address)
    role, kind, status, _prefix, _round, employer, number = chain.call(
        "reading the registry", registry.functions.participant(account)
    )
    key = bytes(chain.call("reading the registry", registry.functions.encryptionKey(account)))
    threshold = chain.call("reading the registry", registry.functions.approvalThreshold())
    approvals = (
        chain.call("reading the registry", registry.functions.approvalsOf(account))
        if role == Role.INSTITUTION
        else 0
    )
    zero = "0x" + "00" * 20
    return Participant(
        address=account,
        role=Role(role),
        kind=InstitutionKind(kind) if kind else None,
        status=Status(status),
        approvals=int(approvals),
        threshold=int(threshold),
        employer=to_checksum_address(employer) if employer.lower() != zero else None,
        number=int(number),
        encryption_key=key or None,
    )


def verified_institution_of(chain: Chain, account: str) -> str | None:
    """The verified institution ``account`` acts for (itself, or its employer), or None."""
    found = chain.call(
        "reading the registry", _registry(chain).functions.verifiedInstitutionOf(account)
    )
    return None if int(found, 16) == 0 else to_checksum_address(found)


def encryption_key(chain: Chain, address: str) -> bytes:
    """Return an account's published encryption key, or raise ``PatientNotFound``."""
    entry = participant(chain, address)
    if entry.encryption_key is None:
        raise PatientNotFound(entry.address)
    return entry.encryption_key


def key_proof(chain: Chain, account: LocalAccount) -> tuple[bytes, bytes]:
    """The account's own encryption key and its proof of possession (its signature of
    ``EncryptionKey(account, key)`` in the registry's EIP-712 domain)."""
    key = crypto.public_key(account.key)
    document = eip712.typed_data(
        "ProviderRegistry", chain.chain_id, _registry(chain).address, "EncryptionKey",
        KEY_FIELDS, {"account": account.address, "key": key},
    )  # fmt: skip
    return key, eip712.sign(account.key, document)


def apply_institution(
    chain: Chain, account: LocalAccount, kind: InstitutionKind, name: str
) -> TxReceipt:
    """Apply as an institution, publishing the account's own encryption key."""
    _require_no_role(chain, account.address)
    if not name.strip():
        raise ConfigurationError("--name", "an institution needs a name")
    key, proof = key_proof(chain, account)
    return chain.transact(
        "applying as an institution",
        account,
        _registry(chain).functions.applyAsInstitution(int(kind), name, key, proof),
    )


def approve_institution(chain: Chain, registrar: LocalAccount, institution: str) -> bool:
    """Cast a registrar's approval; return True when it verified (or reinstated) the institution."""
    entry = _require_institution(chain, institution)
    _require_registrar(chain, registrar.address)
    if entry.status not in (Status.PENDING, Status.SUSPENDED):
        raise PreconditionFailed(
            f"{entry.address} is {entry.status.name.lower()}: only pending or suspended "
            "institutions can be approved"
        )
    if registrar.address in (entry.address, participant(chain, registrar.address).employer):
        raise PreconditionFailed(f"{registrar.address} may not approve its own institution")
    registry = _registry(chain)
    receipt = chain.transact(
        "approving the institution", registrar, registry.functions.approveInstitution(entry.address)
    )
    verified = registry.events.InstitutionVerified().process_receipt(receipt, errors=DISCARD)
    reinstated = registry.events.InstitutionReinstated().process_receipt(receipt, errors=DISCARD)
    return bool(verified or reinstated)


def suspend_institution(
    chain: Chain, registrar: LocalAccount, institution: str, reason: str
) -> TxReceipt:
    """Suspend a verified institution at once."""
    entry = _require_institution(chain, institution)
    _require_registrar(chain, registrar.address)
    if entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{entry.address} is {entry.status.name.lower()}, not verified")
    code = reason.encode()
    if len(code) > 32:
        raise ConfigurationError("--reason", "a reason code is at most 32 bytes")
    return chain.transact(
        "suspending the institution",
        registrar,
        _registry(chain).functions.suspendInstitution(entry.address, code.ljust(32, b"\0")),
    )


def vote_registrar(chain: Chain, registrar: LocalAccount, account: str, add: bool) -> bool:
    """Vote to add or remove a registrar; return True when this vote made the change."""
    _require_registrar(chain, registrar.address)
    account = to_checksum_address(account)
    registry = _registry(chain)
    holds = chain.call("reading roles", registry.functions.hasRole(REGISTRAR_ROLE, account))
    if holds == add:
        raise PreconditionFailed(f"{account} is {'already' if add else 'not'} a registrar")
    receipt = chain.transact(
        "voting on a registrar", registrar, registry.functions.voteRegistrar(account, add)
    )
    (event,) = registry.events.RegistrarVoted().process_receipt(receipt, errors=DISCARD)
    return bool(event["args"]["votes"] >= event["args"]["threshold"])


def vote_threshold(chain: Chain, registrar: LocalAccount, threshold: int) -> bool:
    """Vote for a new approval threshold; return True when this vote changed it."""
    _require_registrar(chain, registrar.address)
    registry = _registry(chain)
    receipt = chain.transact(
        "voting on the threshold", registrar, registry.functions.voteThreshold(threshold)
    )
    (event,) = registry.events.ThresholdVoted().process_receipt(receipt, errors=DISCARD)
    return bool(event["args"]["votes"] >= event["args"]["needed"])


def add_practitioner(chain: Chain, institution: LocalAccount, practitioner: str) -> TxReceipt:
    """Invite an account to work for the caller's (verified) institution; it must accept."""
    entry = _require_institution(chain, institution.address)
    if entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{entry.address} must be verified to add practitioners")
    _require_no_role(chain, practitioner)
    return chain.transact(
        "inviting the practitioner",
        institution,
        _registry(chain).functions.addPractitioner(to_checksum_address(practitioner)),
    )


def accept_practitioner(chain: Chain, practitioner: LocalAccount, institution: str) -> TxReceipt:
    """Accept an institution's invitation: the account becomes its practitioner."""
    institution = to_checksum_address(institution)
    registry = _registry(chain)
    invited = chain.call(
        "reading invitations", registry.functions.isInvited(institution, practitioner.address)
    )
    if not invited:
        raise PreconditionFailed(f"{institution} has not invited {practitioner.address}")
    entry = _require_institution(chain, institution)
    if entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{institution} is {entry.status.name.lower()}, not verified")
    _require_no_role(chain, practitioner.address)
    return chain.transact(
        "accepting the invitation", practitioner, registry.functions.acceptPractitioner(institution)
    )


def remove_practitioner(chain: Chain, signer: LocalAccount, practitioner: str) -> TxReceipt:
    """End a practitioner's work (by its institution or itself), or withdraw an invitation."""
    entry = participant(chain, practitioner)
    registry = _registry(chain)
    employs = entry.role is Role.PRACTITIONER and signer.address in (entry.employer, entry.address)
    invited = chain.call(
        "reading invitations", registry.functions.isInvited(signer.address, entry.address)
    )
    if not (employs or invited):
        raise PreconditionFailed(f"{entry.address} is not a practitioner (or invitee) of yours")
    return chain.transact(
        "removing the practitioner", signer, registry.functions.removePractitioner(entry.address)
    )


def publish_key(chain: Chain, account: LocalAccount) -> TxReceipt:
    """Publish (or rotate to) the account's own encryption key."""
    if participant(chain, account.address).role is Role.NONE:
        raise PreconditionFailed(f"{account.address} has no role in the registry")
    key, proof = key_proof(chain, account)
    return chain.transact(
        "publishing the encryption key",
        account,
        _registry(chain).functions.publishEncryptionKey(key, proof),
    )


def register_patient(chain: Chain, account: LocalAccount) -> TxReceipt:
    """Register the account as a patient with its own encryption key."""
    _require_no_role(chain, account.address)
    key, proof = key_proof(chain, account)
    return chain.transact(
        "registering the patient",
        account,
        _registry(chain).functions.registerPatient(key, proof),
    )


# --- who acts for a patient, and who writes for them --------------------------------------------


def set_delegate(chain: Chain, patient: LocalAccount, delegate: str, allowed: bool) -> None:
    """Name (or drop) a guardian or proxy who may act for the patient."""
    if participant(chain, patient.address).role is not Role.PATIENT:
        raise PreconditionFailed(f"{patient.address} is not a registered patient")
    delegate = to_checksum_address(delegate)
    if delegate == patient.address:
        raise PreconditionFailed("a patient cannot be their own delegate")
    chain.transact(
        "changing the delegate",
        patient,
        _registry(chain).functions.setDelegate(delegate, allowed),
    )


def acts_for(chain: Chain, account: str, patient: str) -> bool:
    """True when ``account`` is the patient or one of their delegates."""
    return bool(
        chain.call(
            "reading delegates",
            _registry(chain).functions.actsFor(
                to_checksum_address(account), to_checksum_address(patient)
            ),
        )
    )


def require_acts_for(chain: Chain, account: str, patient: str) -> None:
    """Raise unless ``account`` is the patient or one of their delegates."""
    if not acts_for(chain, account, patient):
        raise PreconditionFailed(
            f"{account} is neither patient {patient} nor one of their delegates"
        )


def care_of(chain: Chain, patient: str, institution: str) -> Care:
    """The care relationship between a patient and an institution (all zero when none)."""
    patient, institution = to_checksum_address(patient), to_checksum_address(institution)
    since, until = chain.call(
        "reading care relationships", _registry(chain).functions.careOf(patient, institution)
    )
    return Care(patient, institution, int(since), int(until))


def writer_number(chain: Chain, account: str) -> int:
    """The writer number records written by ``account`` carry: its care institution's number,
    0 for a patient (or for an account that may not write at all)."""
    _may, writer = chain.call(
        "reading the registry", _registry(chain).functions.writerOf(to_checksum_address(account))
    )
    return int(writer)


def may_write_for(chain: Chain, issuer: str, patient: str) -> bool:
    """True when ``issuer`` may write a record for ``patient`` now."""
    allowed, _writer = chain.call(
        "reading the registry",
        _registry(chain).functions.mayWriteFor(
            to_checksum_address(issuer), to_checksum_address(patient)
        ),
    )
    return bool(allowed)


def require_writer(chain: Chain, issuer: str, patient: str) -> None:
    """Raise a clear error unless ``issuer`` may write ``patient``'s records now."""
    issuer, patient = to_checksum_address(issuer), to_checksum_address(patient)
    if may_write_for(chain, issuer, patient):
        return
    if issuer == patient:
        raise PatientNotFound(patient)
    if participant(chain, patient).role is not Role.PATIENT:
        raise PatientNotFound(patient)
    institution = verified_institution_of(chain, issuer)
    if institution is None:
        raise PreconditionFailed(
            f"{issuer} does not act for a verified institution and cannot write {patient}'s records"
        )
    if not participant(chain, institution).is_care_provider:
        raise PreconditionFailed(
            f"{institution} is not a care provider: only hospitals, clinics, laboratories and "
            "emergency services write records"
        )
    raise PreconditionFailed(
        f"patient {patient} has no live care relationship with {institution} "
        f"(the patient runs: medledger care authorize {institution})"
    )


def _care_target(chain: Chain, patient: str, institution: str) -> tuple[str, str]:
    patient, institution = to_checksum_address(patient), to_checksum_address(institution)
    if participant(chain, patient).role is not Role.PATIENT:
        raise PatientNotFound(patient)
    entry = participant(chain, institution)
    if entry.role is not Role.INSTITUTION or entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{institution} is not a verified institution")
    if not entry.is_care_provider:
        raise PreconditionFailed(
            f"{institution} is a {entry.kind.label if entry.kind else '?'}: only hospitals, "
            "clinics, laboratories and emergency services write records"
        )
    return patient, institution


def _until(chain: Chain, until: datetime | None) -> int:
    if until is None:
        return UNTIL_REVOKED
    seconds = int(until.timestamp())
    if seconds <= chain_time(chain):
        raise ConfigurationError("--until", "a care relationship must end in the future")
    if seconds >= UNTIL_REVOKED:
        raise ConfigurationError("--until", "is too far in the future")
    return seconds


def authorize_care(
    chain: Chain, signer: LocalAccount, patient: str, institution: str, until: datetime | None
) -> Care:
    """Let a care institution write the patient's records (signer: the patient or a delegate)."""
    patient, institution = _care_target(chain, patient, institution)
    require_acts_for(chain, signer.address, patient)
    chain.transact(
        "opening the care relationship",
        signer,
        _registry(chain).functions.authorizeCare(patient, institution, _until(chain, until)),
    )
    return care_of(chain, patient, institution)


def sign_care(
    chain: Chain,
    signer: LocalAccount,
    patient: str,
    institution: str,
    until: datetime | None,
    valid_for: int = 7 * 86400,
) -> dict[str, Any]:
    """Sign a care relationship off chain (EIP-712) for the institution to submit."""
    patient, institution = _care_target(chain, patient, institution)
    require_acts_for(chain, signer.address, patient)
    registry = _registry(chain)
    request = {
        "patient": patient,
        "institution": institution,
        "until": _until(chain, until),
        "nonce": int(chain.call("reading the nonce", registry.functions.nonces(patient))),
        "deadline": chain_time(chain) + valid_for,
    }
    document = eip712.typed_data(
        "ProviderRegistry", chain.chain_id, registry.address, "CareRequest", CARE_FIELDS, request
    )
    return {
        "kind": "medledger/signed-care",
        "chain_id": chain.chain_id,
        "provider_registry": registry.address,
        "request": request,
        "signature": "0x" + eip712.sign(signer.key, document).hex(),
    }


def submit_signed_care(chain: Chain, relayer: LocalAccount, document: dict[str, Any]) -> Care:
    """Submit a care relationship a patient (or delegate) signed; any account pays the gas."""
    registry = _registry(chain)
    try:
        if document.get("kind") != "medledger/signed-care":
            raise KeyError("kind")
        request = document["request"]
        signature = bytes.fromhex(str(document["signature"]).removeprefix("0x"))
        args = tuple(request[name] for name, _type in CARE_FIELDS)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ConfigurationError(
            "signature file", "is not a MedLedger signed care relationship"
        ) from None
    if (
        document.get("chain_id") != chain.chain_id
        or document.get("provider_registry") != registry.address
    ):
        raise PreconditionFailed("the signed care relationship is for another chain or registry")
    if int(request["deadline"]) < chain_time(chain):
        raise PreconditionFailed("the signed care relationship's deadline has passed")
    chain.transact(
        "submitting the signed care relationship",
        relayer,
        registry.functions.authorizeCareWithSignature(args, signature),
    )
    return care_of(chain, request["patient"], request["institution"])


def revoke_care(chain: Chain, signer: LocalAccount, patient: str, institution: str) -> None:
    """End a live care relationship (the patient, a delegate or the institution)."""
    current = care_of(chain, patient, institution)
    if signer.address != current.institution:
        require_acts_for(chain, signer.address, current.patient)
    if not current.live(chain_time(chain)):
        raise PreconditionFailed(
            f"{current.institution} has no live care relationship with {current.patient}"
        )
    chain.transact(
        "ending the care relationship",
        signer,
        _registry(chain).functions.revokeCare(current.patient, current.institution),
    )


def cancel_care_signatures(chain: Chain, signer: LocalAccount, patient: str) -> int:
    """Burn the patient's next registry nonce (cancelling a signed, unsubmitted care request)."""
    patient = to_checksum_address(patient)
    require_acts_for(chain, signer.address, patient)
    registry = _registry(chain)
    nonce = int(chain.call("reading the nonce", registry.functions.nonces(patient)))
    chain.transact("cancelling signatures", signer, registry.functions.cancelSignatures(patient))
    return nonce


def chain_time(chain: Chain) -> int:
    """The latest block's timestamp in seconds (what the contracts compare times with)."""
    return int(chain.now().timestamp())


def _require_no_role(chain: Chain, address: str) -> None:
    entry = participant(chain, address)
    if entry.role is not Role.NONE:
        raise PreconditionFailed(
            f"{entry.address} is already registered as {entry.role.name.lower()}"
        )


def _require_institution(chain: Chain, address: str) -> Participant:
    entry = participant(chain, address)
    if entry.role is not Role.INSTITUTION:
        raise InstitutionNotFound(entry.address)
    return entry


def _require_registrar(chain: Chain, address: str) -> None:
    registry = _registry(chain)
    holds = chain.call(
        "reading roles", registry.functions.hasRole(REGISTRAR_ROLE, to_checksum_address(address))
    )
    if not holds:
        raise PreconditionFailed(f"{address} is not a registrar")
