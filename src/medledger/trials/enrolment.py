"""Consent and withdrawal: a participant signs (off chain, no ETH needed), a site records the
consent, anyone relays the withdrawal; cancelling unused signatures; every recorded consent
read back with its signed request, and the participant's key recovered from it.

Preconditions are checked before anything is sent, so a refused consent or withdrawal names
the reason (expired, nonce used, wrong signer, stale protocol...) instead of reverting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from eth_typing import HexStr
from eth_utils.address import to_checksum_address

from medledger import identity, providers
from medledger.chain import events
from medledger.errors import ConfigurationError, IntegrityError, PreconditionFailed
from medledger.trials.model import (
    CONTRACT,
    READER_MONITORS,
    READER_SPONSOR,
    ZERO_ADDRESS,
    ConsentPurpose,
    Participation,
)
from medledger.trials.reading import (
    address,
    get_study,
    nonce,
    participation,
    participation_or_none,
    protocol_version,
    trial_registry,
)
from medledger.trials.signing import (
    CONSENT_FIELDS,
    CONSENT_KIND,
    WITHDRAWAL_KIND,
    ConsentRequest,
    WithdrawalRequest,
    address_of_key,
    protocol_hash,
    read_document,
    read_signed_request,
    recover_public_key,
    request_digest,
    signed_document,
    signer_of,
)

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.events import Log


def _readers_bits(sponsor_reads: bool, monitors_read: bool) -> int:
    return (READER_SPONSOR if sponsor_reads else 0) | (READER_MONITORS if monitors_read else 0)


def sign_consent(
    chain: Chain,
    participant: Signer,
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
    site = address(site, "--site")
    if site not in study.sites:
        raise PreconditionFailed(f"{site} is not a site of study {study_id}")
    if valid_for <= timedelta(0):
        raise ConfigurationError("--valid-for", "must be positive")
    current = participation_or_none(chain, study, participant.address)
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
        delegate=address(delegate, "--delegate") if delegate else None,
        nonce=nonce(chain, participant.address),
        deadline=int((chain.now() + valid_for).timestamp()),
    )
    return signed_document(chain.chain_id, trial_registry(chain).address, participant, request)


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


def _check_signature(
    chain: Chain, request: ConsentRequest | WithdrawalRequest, signature: bytes
) -> None:
    """Refuse before sending what the contract would refuse: deadline, nonce, signer."""
    if chain.now() > request.deadline_at:
        raise PreconditionFailed(
            f"the signature expired at {request.deadline_at:%F %H:%M}Z: the participant must "
            "sign again"
        )
    expected = nonce(chain, request.participant)
    if request.nonce != expected:
        raise PreconditionFailed(
            f"the signature uses nonce {request.nonce} of {request.participant}, whose next "
            f"nonce is {expected}: it was already used or superseded; sign again"
        )
    signer = signer_of(chain.chain_id, trial_registry(chain).address, request, signature)
    if signer != request.participant:
        raise PreconditionFailed(
            f"the signature was not made by {request.participant} (it recovers to {signer})"
        )


def submit_consent(chain: Chain, site: Signer, document: Mapping[str, Any]) -> Participation:
    """Record a participant's signed consent (the site, or its practitioner, pays the gas)."""
    contract = trial_registry(chain)
    raw, signature = read_document(document, CONSENT_KIND, chain.chain_id, contract.address)
    request = ConsentRequest.from_message(raw)
    study = get_study(chain, request.study_id)
    _check_signature(chain, request, signature)
    if providers.verified_institution_of(chain, site.address) != request.site:
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
    current = participation_or_none(chain, study, request.participant)
    if current is not None:
        _require_reconsent_possible(current, request.site, request.version)
    elif study.attested_participants:
        _require_attested_by_site(chain, study.id, request.participant, request.site)
    chain.transact("recording consent", site, contract.functions.consent(request.args(), signature))
    return participation(chain, study.id, request.participant)


def sign_withdrawal(
    chain: Chain, participant: Signer, study_id: int, valid_for: timedelta = timedelta(days=7)
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
        nonce=nonce(chain, participant.address),
        deadline=int((chain.now() + valid_for).timestamp()),
    )
    return signed_document(chain.chain_id, trial_registry(chain).address, participant, request)


def _require_attested_by_site(chain: Chain, study_id: int, participant: str, site: str) -> None:
    """A study that requires attested participants enrols only those the site attests now."""
    if not identity.is_attested(chain, participant, providers.participant(chain, site).number):
        raise PreconditionFailed(
            f"study {study_id} requires participants attested by the enrolling site: {site} has "
            f"not attested {participant} (medledger trial attest-participant --link FILE)"
        )


def submit_withdrawal(chain: Chain, relayer: Signer, document: Mapping[str, Any]) -> Participation:
    """Submit a signed withdrawal (any account pays the gas); it takes effect at once."""
    contract = trial_registry(chain)
    raw, signature = read_document(document, WITHDRAWAL_KIND, chain.chain_id, contract.address)
    request = WithdrawalRequest.from_message(raw)
    current = participation(chain, request.study_id, request.participant)
    if current.withdrawn_at is not None:
        raise PreconditionFailed(f"{current.participant} has already withdrawn")
    _check_signature(chain, request, signature)
    chain.transact(
        "withdrawing", relayer, contract.functions.withdrawWithSignature(request.args(), signature)
    )
    return participation(chain, current.study_id, current.participant)


def withdraw(chain: Chain, account: Signer, study_id: int, participant: str) -> Participation:
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
    chain: Chain, participant: Signer, document: Mapping[str, Any] | None = None
) -> int:
    """Burn the participant's next TrialRegistry nonce (``cancelSignatures``): a consent or a
    withdrawal they signed with it, and that nobody submitted yet, can never be used. The nonce
    sequence is one for all the participant's studies. Returns the cancelled nonce.

    With ``document`` (the signed consent or withdrawal to cancel), refuse unless it is the
    participant's and still usable: signed with exactly the next nonce and not expired. The
    participant sends this transaction themself, so their study account needs a little ETH.
    """
    contract = trial_registry(chain)
    next_nonce = nonce(chain, participant.address)
    if document is not None:
        request = read_signed_request(document, chain.chain_id, contract.address)
        what = "consent" if isinstance(request, ConsentRequest) else "withdrawal"
        if request.participant != participant.address:
            raise PreconditionFailed(
                f"the signed {what} is {request.participant}'s, not {participant.address}'s: "
                "only its signer can cancel it"
            )
        if request.nonce < next_nonce:
            raise PreconditionFailed(
                f"the signed {what} uses nonce {request.nonce}, which was already used or "
                "cancelled: there is nothing to cancel"
            )
        if request.nonce > next_nonce:
            raise PreconditionFailed(
                f"the signed {what} uses nonce {request.nonce}, but the next nonce of "
                f"{participant.address} is {next_nonce}: cancelling burns only nonce {next_nonce}"
            )
        if chain.now() > request.deadline_at:
            raise PreconditionFailed(
                f"the signed {what} expired at {request.deadline_at:%F %H:%M}Z and can no "
                "longer be used: there is nothing to cancel"
            )
    if int(chain.request("eth_getBalance", [participant.address, "latest"]), 16) == 0:
        raise PreconditionFailed(
            f"{participant.address} has no ETH: cancelling is the participant's own transaction, "
            "so their study account needs a little to pay for it"
        )
    chain.transact("cancelling signatures", participant, contract.functions.cancelSignatures())
    return next_nonce


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
        filters["participant"] = address(participant, "participant")
    return [_recorded(chain, e) for e in events.logs(chain, CONTRACT, "ConsentRecorded", filters)]


def _recorded(chain: Chain, event: Log) -> RecordedConsent:
    delegate = event["delegate"]
    request, problem = _consent_from_transaction(chain, event)
    return RecordedConsent(
        study_id=int(event["studyId"]),
        participant=event["participant"],
        site=event["site"],
        version=int(event["version"]),
        purpose=int(event["purpose"]),
        readers=int(event["readers"]),
        delegate=None if int(delegate, 16) == 0 else delegate,
        enrolment=bool(event["enrolment"]),
        signature=bytes(event["signature"]),
        block=event.block,
        log_index=event.index,
        transaction_hash=event.transaction_hash,
        request=request,
        problem=problem,
    )


def _consent_from_transaction(chain: Chain, event: Log) -> tuple[ConsentRequest | None, str | None]:
    contract = trial_registry(chain)
    tx = chain.w3.eth.get_transaction(HexStr(event.transaction_hash))
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
    if (
        request.participant != event["participant"]
        or request.site != event["site"]
        or request.study_id != int(event["studyId"])
        or int(request.purpose) != int(event["purpose"])
        or request.readers != int(event["readers"])
        or signature != bytes(event["signature"])
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
