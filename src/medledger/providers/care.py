"""Care relationships: which institution may write a patient's records, and until when.

The patient (or a delegate) opens one directly or signs it off chain (EIP-712) for the
institution to submit; the patient, a delegate or the institution ends it. Only a live
relationship with a verified care provider (hospital, clinic, laboratory, emergency service)
lets an institution, or its practitioners, write the patient's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medledger import documents
from medledger.accounts import sign_typed_data
from medledger.addresses import parse_address
from medledger.crypto import eip712
from medledger.deadlines import require_unexpired
from medledger.errors import ConfigurationError, PatientNotFound, PreconditionFailed
from medledger.providers.participants import (
    Role,
    Status,
    chain_time,
    participant,
    registry,
    verified_institution_of,
)
from medledger.providers.patients import require_acts_for

if TYPE_CHECKING:
    from datetime import datetime

    from medledger.accounts import Signer
    from medledger.chain import Chain

UNTIL_REVOKED = 2**40 - 1
"""A care relationship's end when it has none (the contract's ``type(uint40).max``)."""
CARE_FIELDS = (
    ("patient", "address"),
    ("institution", "address"),
    ("until", "uint40"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
SIGNED_CARE_KIND = "medledger/signed-care"


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
        data: dict[str, object] = documents.to_data(self)
        data["since"] = self.since or None
        data["until"] = None if self.until == UNTIL_REVOKED else self.until
        return data


def care_of(chain: Chain, patient: str, institution: str) -> Care:
    """The care relationship between a patient and an institution (all zero when none)."""
    patient, institution = parse_address(patient), parse_address(institution)
    since, until = chain.call(
        "reading care relationships", registry(chain).functions.careOf(patient, institution)
    )
    return Care(patient, institution, int(since), int(until))


def writer_number(chain: Chain, account: str) -> int:
    """The writer number records written by ``account`` carry: its care institution's number,
    0 for a patient (or for an account that may not write at all)."""
    _may, writer = chain.call(
        "reading the registry", registry(chain).functions.writerOf(parse_address(account))
    )
    return int(writer)


def may_write_for(chain: Chain, issuer: str, patient: str) -> bool:
    """True when ``issuer`` may write a record for ``patient`` now."""
    allowed, _writer = chain.call(
        "reading the registry",
        registry(chain).functions.mayWriteFor(parse_address(issuer), parse_address(patient)),
    )
    return bool(allowed)


def require_writer(chain: Chain, issuer: str, patient: str) -> None:
    """Raise a clear error unless ``issuer`` may write ``patient``'s records now."""
    issuer, patient = parse_address(issuer), parse_address(patient)
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


def authorize_care(
    chain: Chain, signer: Signer, patient: str, institution: str, until: datetime | None
) -> Care:
    """Let a care institution write the patient's records (signer: the patient or a delegate)."""
    patient, institution = _care_target(chain, patient, institution)
    require_acts_for(chain, signer.address, patient)
    chain.transact(
        "opening the care relationship",
        signer,
        registry(chain).functions.authorizeCare(patient, institution, _until(chain, until)),
    )
    return care_of(chain, patient, institution)


def sign_care(
    chain: Chain,
    signer: Signer,
    patient: str,
    institution: str,
    until: datetime | None,
    valid_for: int = 7 * 86400,
) -> dict[str, Any]:
    """Sign a care relationship off chain (EIP-712) for the institution to submit."""
    patient, institution = _care_target(chain, patient, institution)
    require_acts_for(chain, signer.address, patient)
    contract = registry(chain)
    request = {
        "patient": patient,
        "institution": institution,
        "until": _until(chain, until),
        "nonce": int(chain.call("reading the nonce", contract.functions.nonces(patient))),
        "deadline": chain_time(chain) + valid_for,
    }
    document = eip712.typed_data(
        "ProviderRegistry", chain.chain_id, contract.address, "CareRequest", CARE_FIELDS, request
    )
    return {
        "kind": SIGNED_CARE_KIND,
        "chain_id": chain.chain_id,
        "provider_registry": contract.address,
        "request": request,
        "signature": "0x" + sign_typed_data(signer, document).hex(),
    }


def submit_signed_care(chain: Chain, relayer: Signer, document: dict[str, Any]) -> Care:
    """Submit a care relationship a patient (or delegate) signed; any account pays the gas."""
    contract = registry(chain)
    try:
        if document.get("kind") != SIGNED_CARE_KIND:
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
        or document.get("provider_registry") != contract.address
    ):
        raise PreconditionFailed("the signed care relationship is for another chain or registry")
    require_unexpired(chain, request["deadline"], "care relationship")
    chain.transact(
        "submitting the signed care relationship",
        relayer,
        contract.functions.authorizeCareWithSignature(args, signature),
    )
    return care_of(chain, request["patient"], request["institution"])


def revoke_care(chain: Chain, signer: Signer, patient: str, institution: str) -> None:
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
        registry(chain).functions.revokeCare(current.patient, current.institution),
    )


def cancel_care_signatures(chain: Chain, signer: Signer, patient: str) -> int:
    """Burn the patient's next registry nonce (cancelling a signed, unsubmitted care request)."""
    patient = parse_address(patient)
    require_acts_for(chain, signer.address, patient)
    contract = registry(chain)
    nonce = int(chain.call("reading the nonce", contract.functions.nonces(patient)))
    chain.transact("cancelling signatures", signer, contract.functions.cancelSignatures(patient))
    return nonce


def _care_target(chain: Chain, patient: str, institution: str) -> tuple[str, str]:
    patient, institution = parse_address(patient), parse_address(institution)
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
