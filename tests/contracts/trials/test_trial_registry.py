"""TrialRegistry: studies, amendments and outcomes (frozen at a version's first consent or
first data), sites and monitors, signed consent and re-consent, withdrawal (direct, by
delegate, signed), cancelled signatures, data (single and batched in positional
``IndexedMerkle`` trees whose declared count binds), read access, views and the EIP-712
digests.

Every test starts from the world of ``conftest.py`` (module-scoped, rolled back by Ape after
each test). ``study`` registers one study (sponsor ``sponsor``, sites ``hospital`` and
``clinic``); ``enrolled`` also enrols ``participant`` at the hospital (purpose TRIAL_ONLY,
both reader bits, no delegate).

Times: a transaction runs no earlier than the head block; deadlines are set an hour ahead and
moved past with ``advance_time``, as in the ConsentManager tests.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..support import (
    ZERO_ADDRESS,
    Kind,
    assert_events,
    call_reverts,
    digest,
    indexed_tree,
    reverts,
    reverts_without_data,
)
from .conftest import VISIT, Consented, Study, address_of
from .helpers import (
    CONSENT_TYPE,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    READER_MONITORS,
    READER_SPONSOR,
    READERS_ALL,
    SECP256K1_N,
    WITHDRAWAL_TYPE,
    ZERO32,
    ConsentPurpose,
    Protocol,
    as_dict,
    batch_id,
    data_id,
    hash_protocol,
    protocol_hash,
    signable_digest,
    tree_depth,
    typed_message,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI
    from eth_account.signers.local import LocalAccount

UNKNOWN_STUDY = 99


# ============================================================================ fixtures


@pytest.fixture
def study(register_study: Callable[..., Study]) -> Study:
    """A study of ``sponsor`` at the hospital and the clinic (protocol version 1)."""
    return register_study()


@pytest.fixture
def enrolled(study: Study, participant: LocalAccount, enrol: Callable[..., Consented]) -> Consented:
    """``participant`` enrolled in ``study`` at the hospital."""
    return enrol(study.id, participant)


@pytest.fixture
def amend(trial_registry: Any, sponsor: AccountAPI) -> Callable[..., tuple[ReceiptAPI, Protocol]]:
    """``amend(study_id, requires_reconsent, label=None, reason="dose")``: the sponsor amends."""
    counter = itertools.count()

    def amend_protocol(
        study_id: int, requires_reconsent: bool, label: str | None = None, reason: str = "dose"
    ) -> tuple[ReceiptAPI, Protocol]:
        protocol = Protocol.of(label or f"amendment-{next(counter)}")
        receipt = trial_registry.amendProtocol(
            study_id, protocol.args, requires_reconsent, reason, sender=sponsor
        )
        return receipt, protocol

    return amend_protocol


def participation(registry: Any, study_id: int, participant: Any) -> dict[str, Any]:
    return as_dict(registry.getParticipation(study_id, address_of(participant)))


def study_of(registry: Any, study_id: int) -> dict[str, Any]:
    return as_dict(registry.getStudy(study_id))


def version_of(registry: Any, study_id: int, version: int) -> dict[str, Any]:
    return as_dict(registry.getProtocolVersion(study_id, version))


def consent_event(registry: Any, consented: Consented, enrolment: bool) -> Any:
    request = consented.request
    return registry.ConsentRecorded(
        studyId=request["studyId"],
        participant=request["participant"],
        site=request["site"],
        version=request["version"],
        purpose=request["purpose"],
        readers=request["readers"],
        delegate=request["delegate"],
        enrolment=enrolment,
        signature=consented.signature,
    )


# ============================================================================ constants


def test_eip712_domain_type_hashes_and_reader_bits_are_the_documented_ones(
    chain: Any, trial_registry: Any
) -> None:
    domain = trial_registry.eip712Domain()
    assert (domain.name, domain.version) == (DOMAIN_NAME, DOMAIN_VERSION)
    assert (domain.chainId, domain.verifyingContract) == (chain.chain_id, trial_registry.address)
    assert HexBytes(trial_registry.CONSENT_TYPEHASH()) == HexBytes(keccak(text=CONSENT_TYPE))
    assert HexBytes(trial_registry.WITHDRAWAL_TYPEHASH()) == HexBytes(keccak(text=WITHDRAWAL_TYPE))
    assert CONSENT_TYPE == (
        "ConsentRequest(uint64 studyId,uint32 version,bytes32 protocolHash,address site,"
        "address participant,uint8 purpose,uint8 readers,address delegate,uint256 nonce,"
        "uint256 deadline)"
    )
    assert WITHDRAWAL_TYPE == (
        "WithdrawalRequest(uint64 studyId,address participant,uint256 nonce,uint256 deadline)"
    )
    assert (trial_registry.READER_SPONSOR(), trial_registry.READER_MONITORS()) == (1, 2)


# ============================================================================ registerStudy


@pytest.mark.parametrize("caller", ["sponsor", "practitioner"])
def test_register_study_stores_version_1_and_sites_and_emits_every_event(
    trial_registry: Any,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    block_time: Callable[[ReceiptAPI], int],
    caller: str,
) -> None:
    registry = trial_registry
    sender = sponsor if caller == "sponsor" else investigator
    protocol = Protocol.of("first", encrypted=True)
    summary = digest("summary")
    args = (protocol.args, [hospital, clinic], summary)
    assert registry.registerStudy.call(*args, sender=sender) == 1

    tx = registry.registerStudy(*args, sender=sender)

    assert_events(
        tx,
        registry.StudyRegistered(studyId=1, sponsor=sponsor, summaryDigest=summary),
        registry.ProtocolVersionRegistered(
            studyId=1,
            version=1,
            protocolDigest=protocol.protocol_digest,
            encrypted=True,
            requiresReconsent=False,
            reason="initial",
        ),
        registry.OutcomesDefined(
            studyId=1,
            version=1,
            primaryOutcomes=protocol.primary_outcomes,
            secondaryOutcomes=protocol.secondary_outcomes,
        ),
        registry.SiteAdded(studyId=1, site=hospital),
        registry.SiteAdded(studyId=1, site=clinic),
    )
    at = block_time(tx)
    assert study_of(registry, 1) == {
        "sponsor": sponsor.address,
        "currentVersion": 1,
        "reconsentVersion": 1,
        "participants": 0,
        "registeredAt": at,
        "firstEnrolmentAt": 0,
        "dataCount": 0,
        "attestedParticipants": False,
    }
    assert version_of(registry, 1, 1) == {
        "protocol": protocol.as_dict(),
        "registeredAt": at,
        "outcomesFrozenAt": 0,
        "requiresReconsent": False,
    }
    assert registry.isSite(1, hospital) and registry.isSite(1, clinic)


def test_register_study_numbers_studies_from_one_and_keeps_them_apart(
    trial_registry: Any,
    register_study: Callable[..., Study],
    hospital: AccountAPI,
    clinic: AccountAPI,
) -> None:
    first = register_study(sites=[hospital])
    second = register_study(sites=[clinic])
    assert (first.id, second.id) == (1, 2)
    assert trial_registry.isSite(1, hospital) and not trial_registry.isSite(1, clinic)
    assert trial_registry.isSite(2, clinic) and not trial_registry.isSite(2, hospital)


def test_register_study_without_sites_or_summary_emits_no_site(
    trial_registry: Any, register_study: Callable[..., Study], sponsor: AccountAPI
) -> None:
    registered = register_study(
        sites=[], summary=ZERO32, protocol=Protocol.of("x", secondary=False)
    )
    registry = trial_registry
    assert_events(
        registered.receipt,
        registry.StudyRegistered(studyId=registered.id, sponsor=sponsor, summaryDigest=ZERO32),
        registry.ProtocolVersionRegistered(
            studyId=registered.id,
            version=1,
            protocolDigest=registered.protocol.protocol_digest,
            encrypted=False,
            requiresReconsent=False,
            reason="initial",
        ),
        registry.OutcomesDefined(
            studyId=registered.id,
            version=1,
            primaryOutcomes=registered.protocol.primary_outcomes,
            secondaryOutcomes=ZERO32,
        ),
    )


@pytest.mark.parametrize(
    "caller",
    [
        "stranger",
        "hospital",
        "hospital-practitioner",
        "insurer",
        "suspended-sponsor",
        "practitioner-of-suspended-sponsor",
        "removed-practitioner",
        "practitioner-who-left",
        "invited-practitioner",
        "pending-sponsor",
    ],
)
def test_register_study_reverts_when_caller_is_not_a_verified_research_sponsor(
    accounts: Any,
    admin: AccountAPI,
    trial_registry: Any,
    provider_registry: Any,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    insurer: AccountAPI,
    stranger: AccountAPI,
    apply_institution: Callable[..., Any],
    suspend: Callable[..., Any],
    invite: Callable[..., AccountAPI],
    caller: str,
) -> None:
    account = {
        "stranger": stranger,
        "hospital": hospital,
        "hospital-practitioner": doctor,
        "insurer": insurer,
        "suspended-sponsor": sponsor,
        "practitioner-of-suspended-sponsor": investigator,
        "removed-practitioner": investigator,
        "practitioner-who-left": investigator,
    }.get(caller)
    if caller in ("suspended-sponsor", "practitioner-of-suspended-sponsor"):
        suspend(sponsor)
    if caller == "removed-practitioner":
        provider_registry.removePractitioner(investigator, sender=sponsor)
    if caller == "practitioner-who-left":
        provider_registry.removePractitioner(investigator, sender=investigator)
    if caller == "invited-practitioner":
        account = invite(sponsor)
    if caller == "pending-sponsor":
        account = accounts.generate_test_account()
        admin.transfer(account, 10**18)
        apply_institution(account, Kind.RESEARCH_SPONSOR)
    with reverts(trial_registry.TrialNotSponsor, caller=account):
        trial_registry.registerStudy(Protocol.of("p").args, [hospital], ZERO32, sender=account)


@pytest.mark.parametrize("missing", ["protocol-digest", "primary-outcomes", "both"])
def test_register_study_reverts_for_protocol_without_digest_or_primary_outcomes(
    trial_registry: Any, sponsor: AccountAPI, hospital: AccountAPI, missing: str
) -> None:
    good = Protocol.of("p")
    digest_, primary = good.protocol_digest, good.primary_outcomes
    if missing in ("protocol-digest", "both"):
        digest_ = ZERO32
    if missing in ("primary-outcomes", "both"):
        primary = ZERO32
    protocol = (digest_, False, primary, good.secondary_outcomes)
    with reverts(trial_registry.TrialInvalidProtocol):
        trial_registry.registerStudy(protocol, [hospital], ZERO32, sender=sponsor)


@pytest.mark.parametrize(
    "site",
    [
        "insurer",
        "research-sponsor",
        "emergency-service",
        "hospital-practitioner",
        "stranger",
        "zero-address",
        "suspended-hospital",
        "pending-clinic",
    ],
)
def test_register_study_reverts_for_site_that_is_not_a_verified_care_institution(
    accounts: Any,
    admin: AccountAPI,
    trial_registry: Any,
    sponsor: AccountAPI,
    other_sponsor: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    insurer: AccountAPI,
    stranger: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    apply_institution: Callable[..., Any],
    suspend: Callable[..., Any],
    site: str,
) -> None:
    account: Any = {
        "insurer": insurer,
        "research-sponsor": other_sponsor,
        "hospital-practitioner": doctor,
        "stranger": stranger,
        "zero-address": ZERO_ADDRESS,
        "suspended-hospital": hospital,
    }.get(site)
    if site in ("emergency-service", "pending-clinic"):
        account = accounts.generate_test_account()
        admin.transfer(account, 10**18)
        if site == "emergency-service":
            verified_institution(Kind.EMERGENCY_SERVICE, account=account)
        else:
            apply_institution(account, Kind.CLINIC)
    if site == "suspended-hospital":
        suspend(hospital)
    with reverts(trial_registry.TrialInvalidSite, site=account):
        trial_registry.registerStudy(Protocol.of("p").args, [account], ZERO32, sender=sponsor)


def test_register_study_accepts_a_laboratory_as_site(
    trial_registry: Any, register_study: Callable[..., Study], laboratory: AccountAPI
) -> None:
    registered = register_study(sites=[laboratory])
    assert trial_registry.isSite(registered.id, laboratory)


def test_register_study_reverts_for_a_site_listed_twice(
    trial_registry: Any, sponsor: AccountAPI, hospital: AccountAPI, clinic: AccountAPI
) -> None:
    with reverts(trial_registry.TrialSiteAlreadyAdded, studyId=1, site=hospital):
        trial_registry.registerStudy(
            Protocol.of("p").args, [hospital, clinic, hospital], ZERO32, sender=sponsor
        )


# ============================================================================ amendProtocol


@pytest.mark.parametrize("requires_reconsent", [False, True], ids=["no-reconsent", "reconsent"])
def test_amend_protocol_puts_a_new_version_in_force(
    trial_registry: Any,
    study: Study,
    sponsor: AccountAPI,
    block_time: Callable[[ReceiptAPI], int],
    requires_reconsent: bool,
) -> None:
    registry = trial_registry
    protocol = Protocol.of("v2", encrypted=True)
    args = (study.id, protocol.args, requires_reconsent, "dose-change")
    assert registry.amendProtocol.call(*args, sender=sponsor) == 2

    tx = registry.amendProtocol(*args, sender=sponsor)

    assert_events(
        tx,
        registry.ProtocolVersionRegistered(
            studyId=study.id,
            version=2,
            protocolDigest=protocol.protocol_digest,
            encrypted=True,
            requiresReconsent=requires_reconsent,
            reason="dose-change",
        ),
        registry.OutcomesDefined(
            studyId=study.id,
            version=2,
            primaryOutcomes=protocol.primary_outcomes,
            secondaryOutcomes=protocol.secondary_outcomes,
        ),
    )
    stored = study_of(registry, study.id)
    assert (stored["currentVersion"], stored["reconsentVersion"]) == (
        2,
        2 if requires_reconsent else 1,
    )
    assert version_of(registry, study.id, 2) == {
        "protocol": protocol.as_dict(),
        "registeredAt": block_time(tx),
        "outcomesFrozenAt": 0,
        "requiresReconsent": requires_reconsent,
    }
    assert version_of(registry, study.id, 1)["protocol"] == study.protocol.as_dict()


def test_amendment_without_reconsent_keeps_the_latest_reconsent_version(
    trial_registry: Any, study: Study, amend: Callable[..., Any]
) -> None:
    amend(study.id, True)
    amend(study.id, False)
    stored = study_of(trial_registry, study.id)
    assert (stored["currentVersion"], stored["reconsentVersion"]) == (3, 2)


def test_sponsor_practitioner_may_amend(
    trial_registry: Any, study: Study, investigator: AccountAPI
) -> None:
    trial_registry.amendProtocol(study.id, Protocol.of("v2").args, False, "x", sender=investigator)
    assert trial_registry.getStudy(study.id).currentVersion == 2


@pytest.mark.parametrize(
    "caller",
    [
        "other-sponsor",
        "site",
        "stranger",
        "removed-practitioner",
        "invited-practitioner",
        "suspended-sponsor",
    ],
)
@pytest.mark.parametrize(
    "function", ["amendProtocol", "setOutcomes", "publishSummary", "addSite", "setMonitor"]
)
def test_sponsor_functions_revert_when_caller_does_not_act_for_the_study_sponsor(
    trial_registry: Any,
    provider_registry: Any,
    study: Study,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    other_sponsor: AccountAPI,
    hospital: AccountAPI,
    laboratory: AccountAPI,
    monitor: AccountAPI,
    stranger: AccountAPI,
    suspend: Callable[..., Any],
    invite: Callable[..., AccountAPI],
    caller: str,
    function: str,
) -> None:
    account = (
        invite(sponsor)
        if caller == "invited-practitioner"
        else {
            "other-sponsor": other_sponsor,
            "site": hospital,
            "stranger": stranger,
            "removed-practitioner": investigator,
            "suspended-sponsor": sponsor,
        }[caller]
    )
    if caller == "removed-practitioner":
        provider_registry.removePractitioner(investigator, sender=sponsor)
    if caller == "suspended-sponsor":
        suspend(sponsor)
    args = {
        "amendProtocol": (study.id, Protocol.of("v2").args, True, "x"),
        "setOutcomes": (study.id, 1, digest("p"), digest("s")),
        "publishSummary": (study.id, digest("summary")),
        "addSite": (study.id, laboratory),
        "setMonitor": (study.id, monitor, True),
    }[function]
    with reverts(trial_registry.TrialNotStudySponsor, caller=account, studyId=study.id):
        getattr(trial_registry, function)(*args, sender=account)


def test_amend_protocol_reverts_without_a_reason(
    trial_registry: Any, study: Study, sponsor: AccountAPI
) -> None:
    with reverts(trial_registry.TrialReasonRequired):
        trial_registry.amendProtocol(study.id, Protocol.of("v2").args, True, "", sender=sponsor)


@pytest.mark.parametrize("missing", ["protocol-digest", "primary-outcomes"])
def test_amend_protocol_reverts_for_protocol_without_digest_or_primary_outcomes(
    trial_registry: Any, study: Study, sponsor: AccountAPI, missing: str
) -> None:
    good = Protocol.of("v2")
    protocol = (
        ZERO32 if missing == "protocol-digest" else good.protocol_digest,
        False,
        ZERO32 if missing == "primary-outcomes" else good.primary_outcomes,
        good.secondary_outcomes,
    )
    with reverts(trial_registry.TrialInvalidProtocol):
        trial_registry.amendProtocol(study.id, protocol, False, "x", sender=sponsor)


@pytest.mark.parametrize(
    "function",
    [
        "amendProtocol",
        "setOutcomes",
        "publishSummary",
        "addSite",
        "setMonitor",
        "withdraw",
        "submitData",
        "submitDataBatch",
        "getStudy",
        "getProtocolVersion",
        "protocolHashOf",
    ],
)
def test_functions_naming_a_study_revert_for_an_unknown_study(
    trial_registry: Any,
    study: Study,
    sponsor: AccountAPI,
    hospital: AccountAPI,
    laboratory: AccountAPI,
    monitor: AccountAPI,
    participant: LocalAccount,
    function: str,
) -> None:
    unknown = UNKNOWN_STUDY
    args, sender = {
        "amendProtocol": ((unknown, Protocol.of("v2").args, False, "x"), sponsor),
        "setOutcomes": ((unknown, 1, digest("p"), digest("s")), sponsor),
        "publishSummary": ((unknown, digest("summary")), sponsor),
        "addSite": ((unknown, laboratory), sponsor),
        "setMonitor": ((unknown, monitor, True), sponsor),
        "withdraw": ((unknown, hospital), hospital),
        "submitData": ((unknown, participant.address, VISIT, digest("c"), digest("m")), hospital),
        "submitDataBatch": (
            (unknown, participant.address, VISIT, digest("r"), digest("m"), 1),
            hospital,
        ),
        "getStudy": ((unknown,), sponsor),
        "getProtocolVersion": ((unknown, 1), sponsor),
        "protocolHashOf": ((unknown, 1), sponsor),
    }[function]
    with reverts(trial_registry.TrialUnknownStudy, studyId=unknown):
        getattr(trial_registry, function)(*args, sender=sender)


def test_signed_requests_revert_for_an_unknown_study_before_the_signature_is_checked(
    trial_registry: Any,
    hospital: AccountAPI,
    stranger: AccountAPI,
    participant: LocalAccount,
    consent_request: Callable[..., dict[str, Any]],
    withdrawal_request: Callable[..., dict[str, Any]],
) -> None:
    consent = consent_request(UNKNOWN_STUDY, participant, version=1)
    with reverts(trial_registry.TrialUnknownStudy, studyId=UNKNOWN_STUDY):
        trial_registry.consent(consent, b"", sender=hospital)
    withdrawal = withdrawal_request(UNKNOWN_STUDY, participant)
    with reverts(trial_registry.TrialUnknownStudy, studyId=UNKNOWN_STUDY):
        trial_registry.withdrawWithSignature(withdrawal, b"", sender=stranger)


# ============================================================================ setOutcomes


def test_set_outcomes_replaces_outcomes_before_the_first_enrolment(
    trial_registry: Any, study: Study, investigator: AccountAPI
) -> None:
    primary, secondary = digest("new-primary"), ZERO32
    tx = trial_registry.setOutcomes(study.id, 1, primary, secondary, sender=investigator)
    assert_events(
        tx,
        trial_registry.OutcomesDefined(
            studyId=study.id, version=1, primaryOutcomes=primary, secondaryOutcomes=secondary
        ),
    )
    stored = version_of(trial_registry, study.id, 1)["protocol"]
    assert stored == study.protocol.as_dict() | {
        "primaryOutcomes": primary,
        "secondaryOutcomes": secondary,
    }


def test_set_outcomes_reverts_once_the_version_has_an_enrolment(
    trial_registry: Any, study: Study, sponsor: AccountAPI, enrolled: Consented
) -> None:
    with reverts(trial_registry.TrialOutcomesFrozen, studyId=study.id, version=1):
        trial_registry.setOutcomes(study.id, 1, digest("p"), digest("s"), sender=sponsor)
    assert version_of(trial_registry, study.id, 1)["protocol"] == study.protocol.as_dict()


def test_outcomes_of_an_amendment_stay_editable_until_someone_consents_to_it(
    trial_registry: Any,
    study: Study,
    sponsor: AccountAPI,
    participant: LocalAccount,
    enrolled: Consented,
    amend: Callable[..., Any],
    enrol: Callable[..., Consented],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    amend(study.id, False)
    trial_registry.setOutcomes(study.id, 2, digest("p2"), ZERO32, sender=sponsor)
    again = enrol(study.id, participant)  # a re-consent, not an enrolment: it freezes version 2
    with reverts(trial_registry.TrialOutcomesFrozen, studyId=study.id, version=2):
        trial_registry.setOutcomes(study.id, 2, digest("p3"), ZERO32, sender=sponsor)
    assert trial_registry.getProtocolVersion(study.id, 2).outcomesFrozenAt == (
        block_time(again.receipt)
    )
    assert trial_registry.getStudy(study.id).participants == 1


@pytest.mark.parametrize("function", ["submitData", "submitDataBatch"])
def test_first_data_under_an_amendment_without_reconsent_freezes_its_outcomes(
    trial_registry: Any,
    study: Study,
    sponsor: AccountAPI,
    participant: LocalAccount,
    enrolled: Consented,
    amend: Callable[..., Any],
    submit_data: Callable[..., Any],
    submit_batch: Callable[..., Any],
    block_time: Callable[[ReceiptAPI], int],
    advance_time: Callable[[int], int],
    function: str,
) -> None:
    """Nobody consents to version 2 (no re-consent required), so only its data can freeze it:
    from the first body (or batch) on, its outcomes are the ones the data was collected under."""
    registry = trial_registry
    _, protocol = amend(study.id, False)
    assert registry.getProtocolVersion(study.id, 2).outcomesFrozenAt == 0
    advance_time(60)  # the freeze time is the data's, not the enrolment's or the amendment's
    submit = submit_data if function == "submitData" else submit_batch
    data = submit(study.id, participant)
    assert data.version == 2

    with reverts(registry.TrialOutcomesFrozen, studyId=study.id, version=2):
        registry.setOutcomes(study.id, 2, digest("switched"), ZERO32, sender=sponsor)

    frozen = version_of(registry, study.id, 2)
    assert frozen["protocol"] == protocol.as_dict(), "the outcomes the data was collected under"
    assert frozen["outcomesFrozenAt"] == block_time(data.receipt)
    assert version_of(registry, study.id, 1)["outcomesFrozenAt"] == block_time(enrolled.receipt)


@pytest.mark.parametrize("first", ["consent", "data", "batch"])
def test_outcomes_frozen_at_is_the_first_consent_or_data_and_never_changes(
    trial_registry: Any,
    study: Study,
    sponsor: AccountAPI,
    participants: list[LocalAccount],
    enrolled: Consented,
    amend: Callable[..., Any],
    enrol: Callable[..., Consented],
    submit_data: Callable[..., Any],
    submit_batch: Callable[..., Any],
    block_time: Callable[[ReceiptAPI], int],
    advance_time: Callable[[int], int],
    first: str,
) -> None:
    """Version 2 (no re-consent required) is frozen by whichever comes first: a re-consent, a
    body or a batch; every later consent, enrolment, body and batch (each in a later block,
    minutes apart) leaves ``outcomesFrozenAt`` where it was."""
    registry = trial_registry
    participant, newcomer = participants[0], participants[1]
    amend(study.id, False)
    advance_time(60)
    steps = {
        "consent": lambda: enrol(study.id, participant).receipt,
        "data": lambda: submit_data(study.id, participant).receipt,
        "batch": lambda: submit_batch(study.id, participant).receipt,
    }
    frozen_at = block_time(steps[first]())
    later = [
        *(step for name, step in steps.items() if name != first),
        lambda: enrol(study.id, newcomer).receipt,
        lambda: submit_data(study.id, newcomer).receipt,
        lambda: submit_batch(study.id, participant).receipt,
    ]
    for step in later:
        advance_time(600)
        assert block_time(step()) > frozen_at
        assert registry.getProtocolVersion(study.id, 2).outcomesFrozenAt == frozen_at
    with reverts(registry.TrialOutcomesFrozen, studyId=study.id, version=2):
        registry.setOutcomes(study.id, 2, digest("switched"), ZERO32, sender=sponsor)


def test_data_freezes_only_the_version_in_force(
    trial_registry: Any,
    study: Study,
    sponsor: AccountAPI,
    participant: LocalAccount,
    enrolled: Consented,
    amend: Callable[..., Any],
    submit_data: Callable[..., Any],
) -> None:
    """Data under version 2 freezes version 2; version 3, amended in later and without data or
    consent, stays editable, and so does an unconsented version 2 until its data."""
    registry = trial_registry
    amend(study.id, False)
    registry.setOutcomes(study.id, 2, digest("p2"), ZERO32, sender=sponsor)
    submit_data(study.id, participant)
    amend(study.id, False)
    tx = registry.setOutcomes(study.id, 3, digest("p3"), digest("s3"), sender=sponsor)
    assert_events(
        tx,
        registry.OutcomesDefined(
            studyId=study.id,
            version=3,
            primaryOutcomes=digest("p3"),
            secondaryOutcomes=digest("s3"),
        ),
    )
    assert registry.getProtocolVersion(study.id, 3).outcomesFrozenAt == 0
    for version in (1, 2):
        with reverts(registry.TrialOutcomesFrozen, studyId=study.id, version=version):
            registry.setOutcomes(study.id, version, digest("p"), ZERO32, sender=sponsor)


@pytest.mark.parametrize("function", ["submitData", "submitDataBatch"])
def test_refused_data_freezes_nothing(
    trial_registry: Any,
    study: Study,
    sponsor: AccountAPI,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
    amend: Callable[..., Any],
    function: str,
) -> None:
    """A stale participant's data is refused, so version 2 (which requires re-consent) has
    neither consent nor data and its outcomes may still change."""
    registry = trial_registry
    amend(study.id, True)
    with reverts(
        registry.TrialConsentStale,
        studyId=study.id,
        participant=participant.address,
        consentedVersion=1,
        requiredVersion=2,
    ):
        submit_call(registry, function, study.id, participant.address, hospital)
    assert registry.getProtocolVersion(study.id, 2).outcomesFrozenAt == 0
    registry.setOutcomes(study.id, 2, digest("p2"), ZERO32, sender=sponsor)


def test_set_outcomes_of_a_frozen_version_reverts_frozen_before_checking_the_outcome(
    trial_registry: Any, study: Study, sponsor: AccountAPI, enrolled: Consented
) -> None:
    """Order of refusals: frozen outcomes before a zero primary outcome."""
    with reverts(trial_registry.TrialOutcomesFrozen, studyId=study.id, version=1):
        trial_registry.setOutcomes(study.id, 1, ZERO32, digest("s"), sender=sponsor)


def test_set_outcomes_of_an_earlier_version_without_enrolments_is_allowed(
    trial_registry: Any, study: Study, sponsor: AccountAPI, amend: Callable[..., Any]
) -> None:
    amend(study.id, False)
    trial_registry.setOutcomes(study.id, 1, digest("p"), ZERO32, sender=sponsor)
    assert HexBytes(trial_registry.getProtocolVersion(study.id, 1).protocol.primaryOutcomes) == (
        digest("p")
    )


@pytest.mark.parametrize("version", [0, 2], ids=["zero", "after-current"])
def test_set_outcomes_reverts_for_an_unknown_version(
    trial_registry: Any, study: Study, sponsor: AccountAPI, version: int
) -> None:
    with reverts(trial_registry.TrialUnknownVersion, studyId=study.id, version=version):
        trial_registry.setOutcomes(study.id, version, digest("p"), ZERO32, sender=sponsor)
    with reverts(trial_registry.TrialUnknownVersion, studyId=study.id, version=version):
        trial_registry.getProtocolVersion(study.id, version)
    with reverts(trial_registry.TrialUnknownVersion, studyId=study.id, version=version):
        trial_registry.protocolHashOf(study.id, version)


def test_set_outcomes_reverts_for_zero_primary_outcomes(
    trial_registry: Any, study: Study, sponsor: AccountAPI
) -> None:
    with reverts(trial_registry.TrialInvalidProtocol):
        trial_registry.setOutcomes(study.id, 1, ZERO32, digest("s"), sender=sponsor)


# ============================================================================ summary, sites


def test_publish_summary_emits_the_pointer(
    trial_registry: Any, study: Study, investigator: AccountAPI
) -> None:
    summary = digest("results-summary")
    tx = trial_registry.publishSummary(study.id, summary, sender=investigator)
    assert_events(tx, trial_registry.SummaryPublished(studyId=study.id, summaryDigest=summary))


def test_add_site_adds_a_verified_laboratory(
    trial_registry: Any, study: Study, sponsor: AccountAPI, laboratory: AccountAPI
) -> None:
    assert not trial_registry.isSite(study.id, laboratory)
    tx = trial_registry.addSite(study.id, laboratory, sender=sponsor)
    assert_events(tx, trial_registry.SiteAdded(studyId=study.id, site=laboratory))
    assert trial_registry.isSite(study.id, laboratory)


def test_add_site_reverts_for_an_existing_site_or_an_insurer(
    trial_registry: Any, study: Study, sponsor: AccountAPI, clinic: AccountAPI, insurer: AccountAPI
) -> None:
    with reverts(trial_registry.TrialSiteAlreadyAdded, studyId=study.id, site=clinic):
        trial_registry.addSite(study.id, clinic, sender=sponsor)
    with reverts(trial_registry.TrialInvalidSite, site=insurer):
        trial_registry.addSite(study.id, insurer, sender=sponsor)


def test_set_monitor_adds_and_removes_a_monitor(
    trial_registry: Any, study: Study, sponsor: AccountAPI, monitor: AccountAPI
) -> None:
    tx = trial_registry.setMonitor(study.id, monitor, True, sender=sponsor)
    assert_events(
        tx, trial_registry.MonitorChanged(studyId=study.id, monitor=monitor, allowed=True)
    )
    assert trial_registry.isMonitor(study.id, monitor)
    tx = trial_registry.setMonitor(study.id, monitor, False, sender=sponsor)
    assert_events(
        tx, trial_registry.MonitorChanged(studyId=study.id, monitor=monitor, allowed=False)
    )
    assert not trial_registry.isMonitor(study.id, monitor)


# ============================================================================ consent: enrolment


@pytest.mark.parametrize("relayer", ["site", "site-practitioner"])
def test_site_relays_signed_consent_and_enrols_the_participant(
    chain: Any,
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    doctor: AccountAPI,
    monitor: AccountAPI,
    enrol: Callable[..., Consented],
    block_time: Callable[[ReceiptAPI], int],
    relayer: str,
) -> None:
    registry = trial_registry
    assert registry.nonces(participant.address) == 0
    assert not registry.isConsentCurrent(study.id, participant.address)

    consented = enrol(
        study.id,
        participant,
        sender=hospital if relayer == "site" else doctor,
        purpose=ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH,
        readers=READER_MONITORS,
        delegate=monitor,
    )

    assert_events(consented.receipt, consent_event(registry, consented, enrolment=True))
    at = block_time(consented.receipt)
    assert participation(registry, study.id, participant) == {
        "site": hospital.address,
        "consentedVersion": 1,
        "enrolledAt": at,
        "purpose": ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH,
        "readers": READER_MONITORS,
        "withdrawnAt": 0,
        "delegate": monitor.address,
        "consents": 1,
    }
    stored = study_of(registry, study.id)
    assert (stored["participants"], stored["firstEnrolmentAt"]) == (1, at)
    assert registry.getProtocolVersion(study.id, 1).outcomesFrozenAt == at
    assert registry.nonces(participant.address) == 1
    assert registry.isConsentCurrent(study.id, participant.address)
    # The event carries what anyone needs to re-check the consent.
    signable = typed_message(chain.chain_id, registry.address, "ConsentRequest", consented.request)
    (log,) = registry.ConsentRecorded.from_receipt(consented.receipt)
    assert Account.recover_message(signable, signature=log.signature) == participant.address


def test_later_enrolments_count_participants_and_keep_the_first_enrolment_time(
    trial_registry: Any,
    study: Study,
    participants: list[LocalAccount],
    clinic: AccountAPI,
    enrol: Callable[..., Consented],
    block_time: Callable[[ReceiptAPI], int],
    advance_time: Callable[[int], int],
) -> None:
    first = enrol(study.id, participants[0])
    advance_time(60)  # Anvil may put two transactions in one second
    second = enrol(study.id, participants[1], site=clinic)
    assert block_time(second.receipt) > block_time(first.receipt)
    stored = study_of(trial_registry, study.id)
    assert (stored["participants"], stored["firstEnrolmentAt"]) == (2, block_time(first.receipt))
    assert trial_registry.getParticipation(study.id, participants[1].address).site == clinic.address


def test_consent_reverts_after_its_deadline_and_keeps_the_nonce(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    request = consent_request(study.id, participant)
    signature = sign_consent(participant, request)
    advance_time(request["deadline"] + 1 - now())  # at the deadline itself it is still valid
    with reverts(trial_registry.TrialSignatureExpired, deadline=request["deadline"]):
        trial_registry.consent(request, signature, sender=hospital)
    assert trial_registry.nonces(participant.address) == 0


def test_consent_signature_cannot_be_replayed(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
) -> None:
    with reverts(
        trial_registry.TrialSignatureReplayed,
        participant=participant.address,
        nonce=0,
        expectedNonce=1,
    ):
        trial_registry.consent(enrolled.request, enrolled.signature, sender=hospital)


def test_consent_for_a_later_nonce_reverts(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
) -> None:
    request = consent_request(study.id, participant, nonce=3)
    with reverts(
        trial_registry.TrialSignatureReplayed,
        participant=participant.address,
        nonce=3,
        expectedNonce=0,
    ):
        trial_registry.consent(request, sign_consent(participant, request), sender=hospital)


@pytest.mark.parametrize("signer", ["other-participant", "site"])
def test_consent_signed_by_someone_else_reverts(
    trial_registry: Any,
    study: Study,
    participants: list[LocalAccount],
    hospital: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    signer: str,
) -> None:
    participant = participants[0]
    key: Any = participants[1] if signer == "other-participant" else hospital
    request = consent_request(study.id, participant)
    with reverts(
        trial_registry.TrialInvalidSignature,
        signer=address_of(key),
        participant=participant.address,
    ):
        trial_registry.consent(request, sign_consent(key, request), sender=hospital)
    assert trial_registry.getParticipation(study.id, participant.address).site == ZERO_ADDRESS


@pytest.mark.parametrize(
    "field", ["site", "readers", "purpose", "delegate", "studyId", "protocolHash"]
)
def test_consent_over_a_different_request_recovers_another_signer_and_reverts(
    chain: Any,
    trial_registry: Any,
    register_study: Callable[..., Study],
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    clinic: AccountAPI,
    monitor: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    field: str,
) -> None:
    other = register_study()
    request = consent_request(study.id, participant, readers=0)
    signature = sign_consent(participant, request)
    changes = {
        "site": clinic.address,
        "readers": READERS_ALL,
        "purpose": int(ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH),
        "delegate": monitor.address,
        "studyId": other.id,
        "protocolHash": other.protocol.hash,  # what a site would put after an outcome change
    }
    tampered = request | {field: changes[field]}
    recovered = Account.recover_message(
        typed_message(chain.chain_id, trial_registry.address, "ConsentRequest", tampered),
        signature=signature,
    )
    assert recovered != participant.address
    sender = clinic if field == "site" else hospital
    with reverts(
        trial_registry.TrialInvalidSignature, signer=recovered, participant=participant.address
    ):
        trial_registry.consent(tampered, signature, sender=sender)


@pytest.mark.parametrize("signature", ["empty", "64-bytes", "high-s-twin", "v-not-27-or-28"])
def test_malformed_consent_signature_reverts_with_zero_signer(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    signature: str,
) -> None:
    request = consent_request(study.id, participant)
    good = sign_consent(participant, request)
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    bad = {
        "empty": b"",
        "64-bytes": bytes(good[:64]),
        "high-s-twin": r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]),
        "v-not-27-or-28": r + good[32:64] + bytes([v + 2]),
    }[signature]
    with reverts(
        trial_registry.TrialInvalidSignature, signer=ZERO_ADDRESS, participant=participant.address
    ):
        trial_registry.consent(request, bad, sender=hospital)


@pytest.mark.parametrize(
    "relayer",
    [
        "another-study-site",
        "stranger",
        "sponsor",
        "removed-practitioner",
        "practitioner-who-left",
        "invited-practitioner",
        "suspended-site",
        "practitioner-of-suspended-site",
    ],
)
def test_consent_reverts_when_the_caller_does_not_act_for_the_named_site(
    trial_registry: Any,
    provider_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    sponsor: AccountAPI,
    stranger: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    suspend: Callable[..., Any],
    invite: Callable[..., AccountAPI],
    relayer: str,
) -> None:
    account = (
        invite(hospital)
        if relayer == "invited-practitioner"
        else {
            "another-study-site": clinic,
            "stranger": stranger,
            "sponsor": sponsor,
            "removed-practitioner": doctor,
            "practitioner-who-left": doctor,
            "suspended-site": hospital,
            "practitioner-of-suspended-site": doctor,
        }[relayer]
    )
    if relayer == "removed-practitioner":
        provider_registry.removePractitioner(doctor, sender=hospital)
    if relayer == "practitioner-who-left":
        provider_registry.removePractitioner(doctor, sender=doctor)
    if relayer in ("suspended-site", "practitioner-of-suspended-site"):
        suspend(hospital)
    request = consent_request(study.id, participant, site=hospital)
    with reverts(trial_registry.TrialNotStudySite, caller=account, studyId=study.id):
        trial_registry.consent(request, sign_consent(participant, request), sender=account)


def test_consent_reverts_when_the_named_site_is_not_a_site_of_the_study(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    laboratory: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
) -> None:
    request = consent_request(study.id, participant, site=laboratory)
    with reverts(trial_registry.TrialNotStudySite, caller=laboratory, studyId=study.id):
        trial_registry.consent(request, sign_consent(participant, request), sender=laboratory)


@pytest.mark.parametrize("version", [1, 3], ids=["superseded", "not-yet-registered"])
def test_consent_reverts_for_a_version_not_in_force(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    amend: Callable[..., Any],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    version: int,
) -> None:
    amend(study.id, False)
    request = consent_request(study.id, participant, version=version)
    with reverts(
        trial_registry.TrialVersionNotInForce, studyId=study.id, version=version, currentVersion=2
    ):
        trial_registry.consent(request, sign_consent(participant, request), sender=hospital)


@pytest.mark.parametrize(
    "terms",
    [
        {"purpose": ConsentPurpose.NONE},
        {"readers": 4},
        {"readers": 255},
    ],
    ids=["purpose-none", "readers-bit-2", "readers-all-bits"],
)
def test_consent_reverts_for_purpose_none_or_unknown_reader_bits(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    terms: dict[str, Any],
) -> None:
    request = consent_request(study.id, participant, **terms)
    with reverts(trial_registry.TrialInvalidConsent):
        trial_registry.consent(request, sign_consent(participant, request), sender=hospital)
    assert trial_registry.nonces(participant.address) == 0


@pytest.mark.networks  # an empty revert reads differently on each network
def test_consent_with_a_purpose_outside_the_enum_reverts_without_data(
    chain: Any,
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
) -> None:
    request = consent_request(study.id, participant, purpose=3)
    signable = typed_message(chain.chain_id, trial_registry.address, "ConsentRequest", request)
    signature = Account.sign_message(signable, participant.key).signature
    with reverts_without_data():
        trial_registry.consent(request, signature, sender=hospital)


# ======================================================================== consent: protocol hash


def outcomes_changed(protocol: Protocol, change: str) -> tuple[HexBytes, HexBytes]:
    """The (primary, secondary) outcomes after ``change``: ``primary``, ``secondary`` or
    ``both`` replaced by fresh digests."""
    primary, secondary = protocol.primary_outcomes, protocol.secondary_outcomes
    if change in ("primary", "both"):
        primary = digest(f"switched-primary-{protocol.protocol_digest.hex()}")
    if change in ("secondary", "both"):
        secondary = digest(f"switched-secondary-{protocol.protocol_digest.hex()}")
    return primary, secondary


@pytest.mark.parametrize("change", ["primary", "secondary", "both"])
def test_consent_signed_before_the_outcomes_changed_reverts_and_a_fresh_signature_enrols(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    sponsor: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    enrol: Callable[..., Consented],
    block_time: Callable[[ReceiptAPI], int],
    change: str,
) -> None:
    """The review's finding: the participant signs for version 1 as shown to them; before the
    site relays it (version 1 is not frozen yet), the sponsor redefines version 1's outcomes.
    The signed consent no longer counts; one signed for the new outcomes does."""
    registry = trial_registry
    request = consent_request(study.id, participant)
    assert request["protocolHash"] == study.protocol.hash == registry.protocolHashOf(study.id, 1)
    signature = sign_consent(participant, request)
    primary, secondary = outcomes_changed(study.protocol, change)
    registry.setOutcomes(study.id, 1, primary, secondary, sender=sponsor)
    current = hash_protocol(study.protocol.protocol_digest, primary, secondary)
    assert HexBytes(registry.protocolHashOf(study.id, 1)) == current != study.protocol.hash

    with reverts(
        registry.TrialProtocolChanged,
        studyId=study.id,
        version=1,
        signed=study.protocol.hash,
        current=current,
    ):
        registry.consent(request, signature, sender=hospital)
    assert participation(registry, study.id, participant)["site"] == ZERO_ADDRESS
    assert registry.nonces(participant.address) == 0, "the refused signature used no nonce"
    assert registry.getProtocolVersion(study.id, 1).outcomesFrozenAt == 0
    assert registry.getStudy(study.id).participants == 0

    fresh = enrol(study.id, participant)
    assert fresh.request["protocolHash"] == current and fresh.request["nonce"] == 0
    assert_events(fresh.receipt, consent_event(registry, fresh, enrolment=True))
    stored = version_of(registry, study.id, 1)
    assert (stored["protocol"]["primaryOutcomes"], stored["protocol"]["secondaryOutcomes"]) == (
        primary,
        secondary,
    )
    assert stored["outcomesFrozenAt"] == block_time(fresh.receipt)
    with reverts(registry.TrialOutcomesFrozen, studyId=study.id, version=1):
        registry.setOutcomes(study.id, 1, *outcomes_changed(study.protocol, "both"), sender=sponsor)


def test_reconsent_signed_before_the_amendments_outcomes_changed_reverts_and_a_fresh_one_counts(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    sponsor: AccountAPI,
    enrolled: Consented,
    amend: Callable[..., Any],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    enrol: Callable[..., Consented],
) -> None:
    """The same at a re-consent: version 2 (re-consent required) stays editable until someone
    consents to it or data is collected under it; a re-consent signed before its outcomes
    changed is refused and the participant stays stale until they sign again."""
    registry = trial_registry
    _, amended = amend(study.id, True)
    request = consent_request(study.id, participant)
    assert (request["version"], request["protocolHash"]) == (2, amended.hash)
    signature = sign_consent(participant, request)
    primary, secondary = outcomes_changed(amended, "primary")
    registry.setOutcomes(study.id, 2, primary, secondary, sender=sponsor)

    with reverts(
        registry.TrialProtocolChanged,
        studyId=study.id,
        version=2,
        signed=amended.hash,
        current=hash_protocol(amended.protocol_digest, primary, secondary),
    ):
        registry.consent(request, signature, sender=hospital)
    stored = participation(registry, study.id, participant)
    assert (stored["consentedVersion"], stored["consents"]) == (1, 1)
    assert not registry.isConsentCurrent(study.id, participant.address)
    assert registry.nonces(participant.address) == 1

    again = enrol(study.id, participant)
    assert_events(again.receipt, consent_event(registry, again, enrolment=False))
    assert registry.isConsentCurrent(study.id, participant.address)
    assert participation(registry, study.id, participant)["consentedVersion"] == 2


def test_consent_signed_before_outcomes_were_set_to_the_same_values_enrols(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    sponsor: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
) -> None:
    """The hash binds what the participant was shown, not whether ``setOutcomes`` was called:
    the sponsor re-sets version 1's outcomes to what they were and the consent still counts."""
    request = consent_request(study.id, participant)
    signature = sign_consent(participant, request)
    protocol = study.protocol
    trial_registry.setOutcomes(
        study.id, 1, protocol.primary_outcomes, protocol.secondary_outcomes, sender=sponsor
    )
    assert HexBytes(trial_registry.protocolHashOf(study.id, 1)) == protocol.hash
    trial_registry.consent(request, signature, sender=hospital)
    assert trial_registry.isConsentCurrent(study.id, participant.address)


@pytest.mark.parametrize("signed_for", ["zero", "previous-version", "other-study", "outcomes-only"])
def test_consent_for_another_protocol_hash_reverts_with_both_hashes(
    trial_registry: Any,
    register_study: Callable[..., Study],
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    amend: Callable[..., Any],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    signed_for: str,
) -> None:
    """A participant's own valid signature over a hash that is not the version's as stored:
    none, version 1's (after version 2 came in force), another study's with the same
    outcomes, or one over the outcomes without the protocol digest."""
    _, amended = amend(study.id, False)
    twin = register_study(
        protocol=Protocol(
            digest("another-protocol"), False, amended.primary_outcomes, amended.secondary_outcomes
        )
    )
    wrong = {
        "zero": ZERO32,
        "previous-version": study.protocol.hash,
        "other-study": twin.protocol.hash,
        "outcomes-only": HexBytes(keccak(amended.primary_outcomes + amended.secondary_outcomes)),
    }[signed_for]
    request = consent_request(study.id, participant, protocolHash=wrong)
    with reverts(
        trial_registry.TrialProtocolChanged,
        studyId=study.id,
        version=2,
        signed=wrong,
        current=amended.hash,
    ):
        trial_registry.consent(request, sign_consent(participant, request), sender=hospital)
    assert trial_registry.nonces(participant.address) == 0


def test_protocol_hash_of_follows_each_versions_outcomes_and_ignores_the_encrypted_flag(
    trial_registry: Any,
    register_study: Callable[..., Study],
    sponsor: AccountAPI,
    participant: LocalAccount,
    enrol: Callable[..., Consented],
) -> None:
    """Each version has its own hash; ``setOutcomes`` moves only that version's; the
    ``encrypted`` flag (how the document is stored, not what it says) is not part of it."""
    public = Protocol.of("hashing")
    sealed = Protocol(
        public.protocol_digest, True, public.primary_outcomes, public.secondary_outcomes
    )
    first, second = register_study(protocol=public), register_study(protocol=sealed)
    assert HexBytes(trial_registry.protocolHashOf(first.id, 1)) == public.hash
    assert HexBytes(trial_registry.protocolHashOf(second.id, 1)) == public.hash
    amended = Protocol.of("hashing-v2", secondary=False)
    trial_registry.amendProtocol(first.id, amended.args, False, "dose", sender=sponsor)
    assert HexBytes(trial_registry.protocolHashOf(first.id, 2)) == amended.hash
    trial_registry.setOutcomes(first.id, 1, digest("p1"), ZERO32, sender=sponsor)
    assert HexBytes(trial_registry.protocolHashOf(first.id, 1)) == hash_protocol(
        public.protocol_digest, digest("p1"), ZERO32
    )
    assert HexBytes(trial_registry.protocolHashOf(first.id, 2)) == amended.hash
    assert HexBytes(trial_registry.protocolHashOf(second.id, 1)) == public.hash
    enrol(first.id, participant)  # freezes version 2: its hash stays
    assert HexBytes(trial_registry.protocolHashOf(first.id, 2)) == amended.hash


# ============================================================================ consent: re-consent


def test_reconsent_after_an_amendment_makes_a_stale_participant_current_again(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    monitor: AccountAPI,
    enrolled: Consented,
    amend: Callable[..., Any],
    enrol: Callable[..., Consented],
    submit_data: Callable[..., Any],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    registry = trial_registry
    submit_data(study.id, participant)
    amend(study.id, True)
    assert not registry.isConsentCurrent(study.id, participant.address)
    with reverts(
        registry.TrialConsentStale,
        studyId=study.id,
        participant=participant.address,
        consentedVersion=1,
        requiredVersion=2,
    ):
        registry.submitData(
            study.id, participant.address, VISIT, digest("c"), digest("m"), sender=hospital
        )

    again = enrol(study.id, participant, readers=READER_SPONSOR, delegate=monitor)

    assert_events(again.receipt, consent_event(registry, again, enrolment=False))
    assert participation(registry, study.id, participant) == {
        "site": hospital.address,
        "consentedVersion": 2,
        "enrolledAt": block_time(enrolled.receipt),
        "purpose": ConsentPurpose.TRIAL_ONLY,
        "readers": READER_SPONSOR,
        "withdrawnAt": 0,
        "delegate": monitor.address,
        "consents": 2,
    }
    assert registry.getStudy(study.id).participants == 1, "a re-consent is no new participant"
    assert registry.isConsentCurrent(study.id, participant.address)
    assert submit_data(study.id, participant).version == 2


def test_reconsent_to_an_amendment_without_requirement_changes_the_terms(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    enrolled: Consented,
    amend: Callable[..., Any],
    enrol: Callable[..., Consented],
) -> None:
    amend(study.id, False)
    assert trial_registry.isConsentCurrent(study.id, participant.address), "no re-consent needed"
    again = enrol(
        study.id, participant, readers=0, purpose=ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH
    )
    assert_events(again.receipt, consent_event(trial_registry, again, enrolment=False))
    stored = participation(trial_registry, study.id, participant)
    assert (stored["consentedVersion"], stored["readers"], stored["purpose"]) == (
        2,
        0,
        ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH,
    )


def test_reconsent_reverts_for_the_version_already_consented_to(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
) -> None:
    request = consent_request(study.id, participant, readers=0)
    with reverts(
        trial_registry.TrialAlreadyConsented,
        studyId=study.id,
        participant=participant.address,
        version=1,
    ):
        trial_registry.consent(request, sign_consent(participant, request), sender=hospital)


def test_reconsent_reverts_from_another_site_of_the_study(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    clinic: AccountAPI,
    enrolled: Consented,
    amend: Callable[..., Any],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
) -> None:
    amend(study.id, True)
    request = consent_request(study.id, participant, site=clinic)
    with reverts(trial_registry.TrialSiteMismatch, site=clinic, enrollingSite=hospital):
        trial_registry.consent(request, sign_consent(participant, request), sender=clinic)


def test_withdrawn_participant_can_neither_reconsent_nor_enrol_again(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    clinic: AccountAPI,
    enrolled: Consented,
    amend: Callable[..., Any],
    wallet: Callable[..., AccountAPI],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    withdrawn = trial_registry.withdraw(study.id, participant.address, sender=wallet(participant))
    amend(study.id, True)
    for site in (hospital, clinic):  # withdrawal is checked first: the site does not matter
        request = consent_request(study.id, participant, site=site)
        with reverts(
            trial_registry.TrialParticipantWithdrawn,
            studyId=study.id,
            participant=participant.address,
            withdrawnAt=block_time(withdrawn),
        ):
            trial_registry.consent(request, sign_consent(participant, request), sender=site)


# ============================================================================ withdraw


def test_participant_withdraws_and_their_data_stays_readable(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    sponsor: AccountAPI,
    enrolled: Consented,
    wallet: Callable[..., AccountAPI],
    submit_data: Callable[..., Any],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    registry = trial_registry
    submitted = submit_data(study.id, participant)
    own = wallet(participant)

    tx = registry.withdraw(study.id, participant.address, sender=own)

    assert_events(
        tx,
        registry.ParticipantWithdrawn(studyId=study.id, participant=participant.address, by=own),
    )
    assert registry.getParticipation(study.id, participant.address).withdrawnAt == block_time(tx)
    assert not registry.isConsentCurrent(study.id, participant.address)
    assert registry.getStudy(study.id).participants == 1
    assert registry.getDataPoint(submitted.id).submittedAt == block_time(submitted.receipt)
    assert registry.canRead(study.id, participant.address, sponsor), "collected data stays"
    assert registry.canRead(study.id, participant.address, hospital)


def test_delegate_withdraws_the_participant(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    monitor: AccountAPI,
    enrol: Callable[..., Consented],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    enrol(study.id, participant, delegate=monitor)
    tx = trial_registry.withdraw(study.id, participant.address, sender=monitor)
    assert_events(
        tx,
        trial_registry.ParticipantWithdrawn(
            studyId=study.id, participant=participant.address, by=monitor
        ),
    )
    assert trial_registry.getParticipation(study.id, participant.address).withdrawnAt == (
        block_time(tx)
    )


@pytest.mark.parametrize(
    "caller",
    ["stranger", "enrolling-site", "sponsor", "other-participants-delegate", "former-delegate"],
)
def test_withdraw_reverts_when_caller_is_neither_participant_nor_delegate(
    trial_registry: Any,
    study: Study,
    participants: list[LocalAccount],
    hospital: AccountAPI,
    sponsor: AccountAPI,
    monitor: AccountAPI,
    stranger: AccountAPI,
    amend: Callable[..., Any],
    enrol: Callable[..., Consented],
    caller: str,
) -> None:
    participant, other = participants[0], participants[1]
    enrol(study.id, participant, delegate=monitor if caller == "former-delegate" else ZERO_ADDRESS)
    enrol(study.id, other, delegate=monitor)
    if caller == "former-delegate":
        amend(study.id, False)
        enrol(study.id, participant, delegate=stranger)  # re-consent names a new delegate
    account = {
        "stranger": stranger,
        "enrolling-site": hospital,
        "sponsor": sponsor,
        "other-participants-delegate": monitor,
        "former-delegate": monitor,
    }[caller]
    with reverts(
        trial_registry.TrialNotParticipantOrDelegate,
        caller=account,
        participant=participant.address,
    ):
        trial_registry.withdraw(study.id, participant.address, sender=account)


def test_withdraw_reverts_when_the_participant_never_enrolled(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    wallet: Callable[..., AccountAPI],
) -> None:
    with reverts(
        trial_registry.TrialNotEnrolled, studyId=study.id, participant=participant.address
    ):
        trial_registry.withdraw(study.id, participant.address, sender=wallet(participant))


def test_withdraw_reverts_when_already_withdrawn(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    monitor: AccountAPI,
    enrol: Callable[..., Consented],
    wallet: Callable[..., AccountAPI],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    enrol(study.id, participant, delegate=monitor)
    first = trial_registry.withdraw(study.id, participant.address, sender=monitor)
    for sender in (monitor, wallet(participant)):
        with reverts(
            trial_registry.TrialParticipantWithdrawn,
            studyId=study.id,
            participant=participant.address,
            withdrawnAt=block_time(first),
        ):
            trial_registry.withdraw(study.id, participant.address, sender=sender)


def test_signed_withdrawal_is_relayed_by_anyone_and_uses_the_next_nonce(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    stranger: AccountAPI,
    enrolled: Consented,
    withdrawal_request: Callable[..., dict[str, Any]],
    sign_withdrawal: Callable[..., HexBytes],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    request = withdrawal_request(study.id, participant)
    assert request["nonce"] == 1, "the enrolment used nonce 0"

    tx = trial_registry.withdrawWithSignature(
        request, sign_withdrawal(participant, request), sender=stranger
    )

    assert_events(
        tx,
        trial_registry.ParticipantWithdrawn(
            studyId=study.id, participant=participant.address, by=stranger
        ),
    )
    assert trial_registry.nonces(participant.address) == 2
    assert trial_registry.getParticipation(study.id, participant.address).withdrawnAt == (
        block_time(tx)
    )


def test_signed_withdrawal_reverts_after_deadline_on_replay_and_for_another_signer(
    trial_registry: Any,
    register_study: Callable[..., Study],
    study: Study,
    participants: list[LocalAccount],
    stranger: AccountAPI,
    enrolled: Consented,
    withdrawal_request: Callable[..., dict[str, Any]],
    sign_withdrawal: Callable[..., HexBytes],
    now: Callable[[], int],
    advance_time: Callable[[int], int],
    chain: Any,
) -> None:
    registry, participant = trial_registry, participants[0]
    # Someone else's key.
    request = withdrawal_request(study.id, participant)
    with reverts(
        registry.TrialInvalidSignature,
        signer=participants[1].address,
        participant=participant.address,
    ):
        registry.withdrawWithSignature(
            request, sign_withdrawal(participants[1], request), sender=stranger
        )
    # The participant's signature for another study does not withdraw them from this one.
    other = register_study()
    elsewhere = withdrawal_request(other.id, participant)
    signature = sign_withdrawal(participant, elsewhere)
    moved = elsewhere | {"studyId": study.id}
    recovered = Account.recover_message(
        typed_message(chain.chain_id, registry.address, "WithdrawalRequest", moved),
        signature=signature,
    )
    with reverts(registry.TrialInvalidSignature, signer=recovered, participant=participant.address):
        registry.withdrawWithSignature(moved, signature, sender=stranger)
    # A later nonce.
    ahead = withdrawal_request(study.id, participant, nonce=7)
    with reverts(
        registry.TrialSignatureReplayed, participant=participant.address, nonce=7, expectedNonce=1
    ):
        registry.withdrawWithSignature(ahead, sign_withdrawal(participant, ahead), sender=stranger)
    # Past the deadline.
    signed = sign_withdrawal(participant, request)
    advance_time(request["deadline"] + 1 - now())
    with reverts(registry.TrialSignatureExpired, deadline=request["deadline"]):
        registry.withdrawWithSignature(request, signed, sender=stranger)
    assert registry.isConsentCurrent(study.id, participant.address)
    assert registry.nonces(participant.address) == 1


def test_signed_withdrawal_replay_reverts(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    stranger: AccountAPI,
    enrolled: Consented,
    withdrawal_request: Callable[..., dict[str, Any]],
    sign_withdrawal: Callable[..., HexBytes],
) -> None:
    request = withdrawal_request(study.id, participant)
    signature = sign_withdrawal(participant, request)
    trial_registry.withdrawWithSignature(request, signature, sender=stranger)
    with reverts(
        trial_registry.TrialSignatureReplayed,
        participant=participant.address,
        nonce=1,
        expectedNonce=2,
    ):
        trial_registry.withdrawWithSignature(request, signature, sender=stranger)


def test_signed_withdrawal_reverts_when_not_enrolled_or_already_withdrawn(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    stranger: AccountAPI,
    monitor: AccountAPI,
    enrol: Callable[..., Consented],
    withdrawal_request: Callable[..., dict[str, Any]],
    sign_withdrawal: Callable[..., HexBytes],
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    request = withdrawal_request(study.id, participant)
    with reverts(
        trial_registry.TrialNotEnrolled, studyId=study.id, participant=participant.address
    ):
        trial_registry.withdrawWithSignature(
            request, sign_withdrawal(participant, request), sender=stranger
        )
    enrol(study.id, participant, delegate=monitor)
    by_delegate = trial_registry.withdraw(study.id, participant.address, sender=monitor)
    request = withdrawal_request(study.id, participant)
    with reverts(
        trial_registry.TrialParticipantWithdrawn,
        studyId=study.id,
        participant=participant.address,
        withdrawnAt=block_time(by_delegate),
    ):
        trial_registry.withdrawWithSignature(
            request, sign_withdrawal(participant, request), sender=stranger
        )


# ============================================================================ cancelSignatures


def test_cancel_signatures_burns_the_next_nonce_so_a_signed_consent_is_never_used(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    wallet: Callable[..., AccountAPI],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
) -> None:
    """A participant who signed a consent and changed their mind before the site relayed it
    burns the nonce: the signature is dead; a consent signed afterwards (next nonce) works."""
    registry = trial_registry
    request = consent_request(study.id, participant)
    signature = sign_consent(participant, request)
    assert request["nonce"] == 0

    tx = registry.cancelSignatures(sender=wallet(participant))

    assert_events(tx, registry.SignaturesCancelled(participant=participant.address, nonce=0))
    assert registry.nonces(participant.address) == 1
    with reverts(
        registry.TrialSignatureReplayed, participant=participant.address, nonce=0, expectedNonce=1
    ):
        registry.consent(request, signature, sender=hospital)
    assert registry.getParticipation(study.id, participant.address).site == ZERO_ADDRESS
    fresh = consent_request(study.id, participant)
    assert fresh["nonce"] == 1
    registry.consent(fresh, sign_consent(participant, fresh), sender=hospital)
    assert registry.isConsentCurrent(study.id, participant.address)


def test_cancel_signatures_burns_a_signed_withdrawal(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    stranger: AccountAPI,
    enrolled: Consented,
    wallet: Callable[..., AccountAPI],
    withdrawal_request: Callable[..., dict[str, Any]],
    sign_withdrawal: Callable[..., HexBytes],
) -> None:
    registry = trial_registry
    request = withdrawal_request(study.id, participant)
    signature = sign_withdrawal(participant, request)
    assert request["nonce"] == 1, "the enrolment used nonce 0"

    tx = registry.cancelSignatures(sender=wallet(participant))

    assert_events(tx, registry.SignaturesCancelled(participant=participant.address, nonce=1))
    with reverts(
        registry.TrialSignatureReplayed, participant=participant.address, nonce=1, expectedNonce=2
    ):
        registry.withdrawWithSignature(request, signature, sender=stranger)
    assert registry.isConsentCurrent(study.id, participant.address), "still taking part"


def test_cancel_signatures_burns_one_nonce_shared_by_every_study(
    trial_registry: Any,
    register_study: Callable[..., Study],
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    wallet: Callable[..., AccountAPI],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[..., HexBytes],
) -> None:
    """Two consents signed with nonce 0 (to two studies) and one with nonce 1: two
    cancellations burn nonces 0 and 1, each with its event, and all three are dead."""
    registry = trial_registry
    other = register_study()
    signed = [
        (request, sign_consent(participant, request))
        for request in (
            consent_request(study.id, participant),
            consent_request(other.id, participant),
            consent_request(study.id, participant, nonce=1),
        )
    ]
    own = wallet(participant)
    for nonce in (0, 1):
        tx = registry.cancelSignatures(sender=own)
        assert_events(
            tx, registry.SignaturesCancelled(participant=participant.address, nonce=nonce)
        )
    assert registry.nonces(participant.address) == 2
    for request, signature in signed:
        with reverts(
            registry.TrialSignatureReplayed,
            participant=participant.address,
            nonce=request["nonce"],
            expectedNonce=2,
        ):
            registry.consent(request, signature, sender=hospital)


@pytest.mark.parametrize("caller", ["delegate", "site", "sponsor", "other-participant"])
def test_cancel_signatures_burns_only_the_callers_own_nonce(
    trial_registry: Any,
    study: Study,
    participants: list[LocalAccount],
    hospital: AccountAPI,
    sponsor: AccountAPI,
    monitor: AccountAPI,
    stranger: AccountAPI,
    enrol: Callable[..., Consented],
    wallet: Callable[..., AccountAPI],
    withdrawal_request: Callable[..., dict[str, Any]],
    sign_withdrawal: Callable[..., HexBytes],
    block_time: Callable[[ReceiptAPI], int],
    caller: str,
) -> None:
    """Nobody cancels a participant's signature for them, not even their delegate (who may
    withdraw them directly instead): the caller burns its own nonce, and the participant's
    signed withdrawal still goes through."""
    registry = trial_registry
    participant, other = participants[0], participants[1]
    enrol(study.id, participant, delegate=monitor)
    enrol(study.id, other)
    request = withdrawal_request(study.id, participant)
    signature = sign_withdrawal(participant, request)
    account = (
        wallet(other)
        if caller == "other-participant"
        else {"delegate": monitor, "site": hospital, "sponsor": sponsor}[caller]
    )
    before = int(registry.nonces(account))

    tx = registry.cancelSignatures(sender=account)

    assert_events(tx, registry.SignaturesCancelled(participant=account, nonce=before))
    assert registry.nonces(account) == before + 1
    assert registry.nonces(participant.address) == 1
    withdrawn = registry.withdrawWithSignature(request, signature, sender=stranger)
    assert registry.getParticipation(study.id, participant.address).withdrawnAt == (
        block_time(withdrawn)
    )


# ============================================================================ submitData


@pytest.mark.parametrize("submitter", ["site", "site-practitioner"])
def test_enrolling_site_submits_data_for_a_current_participant(
    chain: Any,
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    doctor: AccountAPI,
    enrolled: Consented,
    block_time: Callable[[ReceiptAPI], int],
    submitter: str,
) -> None:
    registry = trial_registry
    sender = hospital if submitter == "site" else doctor
    cid, salted = digest("body-cid"), digest("body-salt")
    args = (study.id, participant.address, VISIT, cid, salted)
    expected = data_id(
        chain.chain_id, registry.address, study.id, participant.address, VISIT, 1, cid, salted
    )
    assert HexBytes(registry.dataIdOf(study.id, participant.address, VISIT, 1, cid, salted)) == (
        expected
    )
    assert HexBytes(registry.submitData.call(*args, sender=sender)) == expected

    tx = registry.submitData(*args, sender=sender)

    assert_events(
        tx,
        registry.DataSubmitted(
            studyId=study.id,
            participant=participant.address,
            dataId=expected,
            visit=VISIT,
            version=1,
            cidDigest=cid,
            commitment=salted,
            site=hospital,
        ),
    )
    assert as_dict(registry.getDataPoint(expected)) == {
        "studyId": study.id,
        "version": 1,
        "submittedAt": block_time(tx),
    }
    assert registry.getStudy(study.id).dataCount == 1


@pytest.mark.parametrize(
    "submitter",
    [
        "another-study-site",
        "stranger",
        "sponsor",
        "removed-practitioner",
        "invited-practitioner",
        "practitioner-moved-to-another-site",
        "suspended-site",
        "practitioner-of-suspended-site",
    ],
)
@pytest.mark.parametrize("function", ["submitData", "submitDataBatch"])
def test_submission_reverts_when_caller_does_not_act_for_the_enrolling_site(
    trial_registry: Any,
    provider_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    sponsor: AccountAPI,
    stranger: AccountAPI,
    enrolled: Consented,
    suspend: Callable[..., Any],
    invite: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    submitter: str,
    function: str,
) -> None:
    account = (
        invite(hospital)
        if submitter == "invited-practitioner"
        else {
            "another-study-site": clinic,
            "stranger": stranger,
            "sponsor": sponsor,
            "removed-practitioner": doctor,
            "practitioner-moved-to-another-site": doctor,
            "suspended-site": hospital,
            "practitioner-of-suspended-site": doctor,
        }[submitter]
    )
    if submitter == "removed-practitioner":
        provider_registry.removePractitioner(doctor, sender=hospital)
    if submitter == "practitioner-moved-to-another-site":  # left the hospital, joined the clinic
        provider_registry.removePractitioner(doctor, sender=doctor)
        add_practitioner(clinic, doctor)
        assert provider_registry.verifiedInstitutionOf(doctor) == clinic.address
    if submitter in ("suspended-site", "practitioner-of-suspended-site"):
        suspend(hospital)
    with reverts(trial_registry.TrialNotParticipantSite, caller=account, site=hospital):
        submit_call(trial_registry, function, study.id, participant.address, account)


def submit_call(registry: Any, function: str, study_id: int, participant: str, sender: Any) -> Any:
    """One valid-looking submission of either kind."""
    if function == "submitData":
        return registry.submitData(
            study_id, participant, VISIT, digest("c"), digest("m"), sender=sender
        )
    return registry.submitDataBatch(
        study_id, participant, VISIT, digest("root"), digest("manifest"), 3, sender=sender
    )


@pytest.mark.parametrize("function", ["submitData", "submitDataBatch"])
@pytest.mark.parametrize("sender", ["site", "stranger"])
def test_submission_reverts_for_a_participant_who_never_enrolled(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    stranger: AccountAPI,
    function: str,
    sender: str,
) -> None:
    account = hospital if sender == "site" else stranger
    with reverts(
        trial_registry.TrialNotEnrolled, studyId=study.id, participant=participant.address
    ):
        submit_call(trial_registry, function, study.id, participant.address, account)


@pytest.mark.parametrize("function", ["submitData", "submitDataBatch"])
def test_submission_reverts_after_withdrawal(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    monitor: AccountAPI,
    enrol: Callable[..., Consented],
    block_time: Callable[[ReceiptAPI], int],
    function: str,
) -> None:
    enrol(study.id, participant, delegate=monitor)
    withdrawn = trial_registry.withdraw(study.id, participant.address, sender=monitor)
    with reverts(
        trial_registry.TrialParticipantWithdrawn,
        studyId=study.id,
        participant=participant.address,
        withdrawnAt=block_time(withdrawn),
    ):
        submit_call(trial_registry, function, study.id, participant.address, hospital)


@pytest.mark.parametrize("function", ["submitData", "submitDataBatch"])
def test_submission_reverts_while_consent_is_stale_even_after_later_amendments(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
    amend: Callable[..., Any],
    function: str,
) -> None:
    amend(study.id, True)
    amend(study.id, False)  # version 3 needs no re-consent, but version 2 still does
    with reverts(
        trial_registry.TrialConsentStale,
        studyId=study.id,
        participant=participant.address,
        consentedVersion=1,
        requiredVersion=2,
    ):
        submit_call(trial_registry, function, study.id, participant.address, hospital)


def test_participant_enrolled_after_a_reconsent_amendment_is_current(
    trial_registry: Any,
    study: Study,
    participants: list[LocalAccount],
    amend: Callable[..., Any],
    enrol: Callable[..., Consented],
    submit_data: Callable[..., Any],
) -> None:
    amend(study.id, True)
    amend(study.id, False)
    enrol(study.id, participants[1])
    assert trial_registry.isConsentCurrent(study.id, participants[1].address)
    assert submit_data(study.id, participants[1]).version == 3


@pytest.mark.parametrize("zero", ["cid", "commitment"])
def test_submit_data_reverts_for_zero_pointer_or_commitment(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
    zero: str,
) -> None:
    cid = ZERO32 if zero == "cid" else digest("c")
    salted = ZERO32 if zero == "commitment" else digest("m")
    with reverts(trial_registry.TrialInvalidData):
        trial_registry.submitData(
            study.id, participant.address, VISIT, cid, salted, sender=hospital
        )


def test_submit_data_reverts_for_the_same_body_twice_under_one_version(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    doctor: AccountAPI,
    enrolled: Consented,
    submit_data: Callable[..., Any],
) -> None:
    first = submit_data(study.id, participant)
    with reverts(trial_registry.TrialDataAlreadySubmitted, id=first.id):
        submit_data(
            study.id, participant, sender=doctor, cid=first.cid_digest, commitment=first.commitment
        )


def test_the_same_body_after_an_amendment_is_a_new_data_point(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    enrolled: Consented,
    amend: Callable[..., Any],
    submit_data: Callable[..., Any],
) -> None:
    first = submit_data(study.id, participant)
    amend(study.id, False)
    again = submit_data(study.id, participant, cid=first.cid_digest, commitment=first.commitment)
    assert again.id != first.id and again.version == 2
    assert trial_registry.getStudy(study.id).dataCount == 2


# ============================================================================ submitDataBatch


@pytest.mark.parametrize("size", [1, 2, 7])
def test_enrolling_site_submits_a_batch_and_every_body_is_proven(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
    submit_batch: Callable[..., Any],
    submit_data: Callable[..., Any],
    block_time: Callable[[ReceiptAPI], int],
    size: int,
) -> None:
    registry = trial_registry
    submit_data(study.id, participant)

    batch = submit_batch(study.id, participant, size=size)

    assert_events(
        batch.receipt,
        registry.DataBatchSubmitted(
            studyId=study.id,
            participant=participant.address,
            batchId=batch.id,
            visit=VISIT,
            version=1,
            root=batch.root,
            manifestDigest=batch.manifest,
            count=size,
            site=hospital,
        ),
    )
    assert as_dict(registry.getDataBatch(batch.id)) == {
        "participant": participant.address,
        "studyId": study.id,
        "version": 1,
        "site": hospital.address,
        "submittedAt": block_time(batch.receipt),
        "count": size,
    }
    assert registry.getStudy(study.id).dataCount == 1 + size
    for body in batch.bodies:
        assert len(body.proof) == tree_depth(size)
        proven = registry.verifyBatchData(
            study.id, participant.address, VISIT, batch.root, body.cid_digest, body.commitment,
            body.index, body.proof,
        )  # fmt: skip
        assert HexBytes(proven) == body.id


def test_verify_batch_data_reverts_for_a_body_not_in_the_batch_or_a_wrong_proof(
    chain: Any,
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    enrolled: Consented,
    submit_batch: Callable[..., Any],
) -> None:
    registry = trial_registry
    batch = submit_batch(study.id, participant, size=4)
    first, second = batch.bodies[0], batch.bodies[1]
    stray = data_id(
        chain.chain_id, registry.address, study.id, participant.address, VISIT, 1,
        digest("stray"), digest("stray-salt"),
    )  # fmt: skip
    cases = [
        (digest("stray"), digest("stray-salt"), 0, first.proof, stray),
        (first.cid_digest, first.commitment, 0, second.proof, first.id),
        (first.cid_digest, first.commitment, 0, [], first.id),
    ]
    for cid, salted, index, proof, expected_id in cases:
        with reverts(registry.TrialDataNotInBatch, batchId=batch.id, dataId=expected_id):
            registry.verifyBatchData(
                study.id, participant.address, VISIT, batch.root, cid, salted, index, proof
            )


@pytest.mark.parametrize(
    "tamper",
    [
        "index-of-another-body",
        "index-at-count",
        "index-far-beyond-count",
        "index-plus-tree-width",
        "proof-one-short",
        "proof-one-long",
        "proof-with-a-zero-sibling-appended",
    ],
)
def test_verify_batch_data_proves_a_body_only_at_its_own_position_with_a_proof_of_tree_depth(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    enrolled: Consented,
    submit_batch: Callable[..., Any],
    tamper: str,
) -> None:
    """A 5-body batch is a tree of depth 3 (8 positions, 5 used). Each body verifies at its own
    position with its 3-hash proof, and at no other position, with no other proof length, and
    not at an index that names the same path modulo the tree's width."""
    registry = trial_registry
    batch = submit_batch(study.id, participant, size=5)
    body = batch.bodies[1]
    assert (body.index, len(body.proof)) == (1, 3)
    index, proof = {
        "index-of-another-body": (2, body.proof),
        "index-at-count": (5, body.proof),
        "index-far-beyond-count": (2**255 + 1, body.proof),
        "index-plus-tree-width": (1 + 8, body.proof),
        "proof-one-short": (1, body.proof[:-1]),
        "proof-one-long": (1, [*body.proof, batch.root]),
        "proof-with-a-zero-sibling-appended": (1, [*body.proof, ZERO32]),
    }[tamper]
    args = (study.id, participant.address, VISIT, batch.root, body.cid_digest, body.commitment)
    assert HexBytes(registry.verifyBatchData(*args, body.index, body.proof)) == body.id
    with reverts(registry.TrialDataNotInBatch, batchId=batch.id, dataId=body.id):
        registry.verifyBatchData(*args, index, proof)


@pytest.mark.parametrize(
    ("leaves", "declared"),
    [(4, 3), (8, 5), (5, 3), (2, 1), (3, 4)],
    ids=["4-declared-3", "8-declared-5", "5-declared-3", "2-declared-1", "3-declared-4"],
)
def test_a_batch_proves_only_positions_below_its_declared_count(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    enrolled: Consented,
    submit_batch: Callable[..., Any],
    leaves: int,
    declared: int,
) -> None:
    """A site that builds its tree over more bodies than it declares cannot prove the extra
    ones: positions at or beyond ``count`` never verify, and a tree deeper than ``count``
    needs proves nothing at all (every proof has the wrong length). Declaring more than the
    tree holds only adds positions holding zero leaves, which no body hashes to."""
    registry = trial_registry
    batch = submit_batch(study.id, participant, size=leaves, count=declared)
    assert registry.getDataBatch(batch.id).count == declared
    assert registry.getStudy(study.id).dataCount == declared, "the declared count is counted"
    same_depth = tree_depth(leaves) == tree_depth(declared)
    for body in batch.bodies:
        args = (
            study.id, participant.address, VISIT, batch.root, body.cid_digest, body.commitment,
            body.index, body.proof,
        )  # fmt: skip
        if same_depth and body.index < declared:
            assert HexBytes(registry.verifyBatchData(*args)) == body.id
        else:
            with reverts(registry.TrialDataNotInBatch, batchId=batch.id, dataId=body.id):
                registry.verifyBatchData(*args)


def test_unknown_batch_reverts_in_get_and_verify(
    chain: Any, trial_registry: Any, study: Study, participant: LocalAccount
) -> None:
    registry = trial_registry
    root, cid, salted = digest("root"), digest("c"), digest("m")
    unknown = batch_id(chain.chain_id, registry.address, study.id, participant.address, VISIT, root)
    with reverts(registry.TrialDataNotInBatch, batchId=unknown, dataId=ZERO32):
        registry.getDataBatch(unknown)
    at_version_0 = data_id(
        chain.chain_id, registry.address, study.id, participant.address, VISIT, 0, cid, salted
    )
    with reverts(registry.TrialDataNotInBatch, batchId=unknown, dataId=at_version_0):
        registry.verifyBatchData(study.id, participant.address, VISIT, root, cid, salted, 0, [])


def test_batch_proofs_use_the_version_in_force_at_submission(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
    amend: Callable[..., Any],
    build_batch: Callable[..., Any],
) -> None:
    """A batch built for version 1 but anchored after an amendment records version 2, so its
    version-1 proofs no longer prove anything: sites must build after the version they read."""
    registry = trial_registry
    root, bodies = build_batch(study.id, participant, 3, 1)
    amend(study.id, False)
    tx = registry.submitDataBatch(
        study.id, participant.address, VISIT, root, digest("manifest"), 3, sender=hospital
    )
    (log,) = registry.DataBatchSubmitted.from_receipt(tx)
    assert log.version == 2
    body = bodies[0]
    with reverts(
        registry.TrialDataNotInBatch,
        batchId=HexBytes(log.batchId),
        dataId=(
            HexBytes(
                registry.dataIdOf(
                    study.id, participant.address, VISIT, 2, body.cid_digest, body.commitment
                )
            )
        ),
    ):
        registry.verifyBatchData(
            study.id, participant.address, VISIT, root, body.cid_digest, body.commitment,
            body.index, body.proof,
        )  # fmt: skip


@pytest.mark.parametrize("zero", ["root", "manifest", "count"])
def test_submit_batch_reverts_for_zero_root_manifest_or_count(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
    zero: str,
) -> None:
    root = ZERO32 if zero == "root" else digest("root")
    manifest = ZERO32 if zero == "manifest" else digest("manifest")
    count = 0 if zero == "count" else 3
    with reverts(trial_registry.TrialInvalidData):
        trial_registry.submitDataBatch(
            study.id, participant.address, VISIT, root, manifest, count, sender=hospital
        )


def test_submit_batch_reverts_for_the_same_root_and_visit_twice(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    doctor: AccountAPI,
    enrolled: Consented,
    amend: Callable[..., Any],
    submit_batch: Callable[..., Any],
) -> None:
    batch = submit_batch(study.id, participant)
    amend(study.id, False)  # the batch id has no version: a later version does not help
    with reverts(trial_registry.TrialDataAlreadySubmitted, id=batch.id):
        trial_registry.submitDataBatch(
            study.id, participant.address, VISIT, batch.root, digest("other-manifest"), 1,
            sender=doctor,
        )  # fmt: skip
    other_visit = digest("visit-week-4")
    trial_registry.submitDataBatch(
        study.id, participant.address, other_visit, batch.root, batch.manifest, 3, sender=doctor
    )


@pytest.mark.networks  # call_reverts: eth-tester raises where Anvil answers with an error
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    bodies=st.lists(
        st.tuples(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32)),
        min_size=1,
        max_size=24,
        unique=True,
    ),
    visit=st.binary(min_size=32, max_size=32),
    declared=st.integers(1, 32),
)
def test_python_indexed_proofs_of_a_batch_verify_on_chain_only_below_the_declared_count(
    chain: Any,
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    enrolled: Consented,
    isolated: Callable[[], Any],
    bodies: list[tuple[bytes, bytes]],
    visit: bytes,
    declared: int,
) -> None:
    """Trees from ``support.indexed_tree`` (written apart from the contract and the package):
    every body verifies at its own position when the site declared at least that many bodies
    in a tree of the same depth, and never at its sibling's position; otherwise it never
    verifies (refusals are checked by ``eth_call``, as the stateful tests do)."""
    registry = trial_registry
    holder = participant.address
    ids = [
        data_id(chain.chain_id, registry.address, study.id, holder, visit, 1, c, m)
        for c, m in bodies
    ]
    root, proofs = indexed_tree(ids)
    batch = batch_id(chain.chain_id, registry.address, study.id, holder, visit, root)
    same_depth = tree_depth(len(ids)) == tree_depth(declared)
    with isolated():
        registry.submitDataBatch(
            study.id, holder, visit, root, digest("manifest"), declared, sender=hospital
        )
        for index, ((cid, salted), body_id) in enumerate(zip(bodies, ids, strict=True)):
            args = (study.id, holder, visit, root, cid, salted)
            if same_depth and index < declared:
                proven = registry.verifyBatchData(*args, index, proofs[index])
                assert HexBytes(proven) == body_id
            else:
                call_reverts(
                    registry.verifyBatchData, *args, index, proofs[index], sender=hospital,
                    error=registry.TrialDataNotInBatch, batchId=batch, dataId=body_id,
                )  # fmt: skip
            call_reverts(
                registry.verifyBatchData, *args, index ^ 1, proofs[index], sender=hospital,
                error=registry.TrialDataNotInBatch, batchId=batch, dataId=body_id,
            )  # fmt: skip


# ============================================================================ canRead


READER_ROLES = [
    "participant",
    "enrolling-site",
    "site-practitioner",
    "other-study-site",
    "sponsor",
    "sponsor-practitioner",
    "monitor",
    "other-sponsor",
    "stranger",
]


def expected_read(role: str, readers: int) -> bool:
    """Who may read, as ``canRead`` documents it."""
    if role in ("participant", "enrolling-site", "site-practitioner"):
        return True
    if role in ("sponsor", "sponsor-practitioner"):
        return bool(readers & READER_SPONSOR)
    if role == "monitor":
        return bool(readers & READER_MONITORS)
    return False


@pytest.mark.parametrize("readers", [0, 1, 2, 3], ids=["none", "sponsor", "monitors", "both"])
def test_can_read_follows_the_reader_bits_and_is_unchanged_by_withdrawal(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    monitor: AccountAPI,
    other_sponsor: AccountAPI,
    stranger: AccountAPI,
    enrol: Callable[..., Consented],
    readers: int,
) -> None:
    registry = trial_registry
    registry.setMonitor(study.id, monitor, True, sender=sponsor)
    enrol(study.id, participant, readers=readers, delegate=stranger)
    accounts = {
        "participant": participant.address,
        "enrolling-site": hospital,
        "site-practitioner": doctor,
        "other-study-site": clinic,
        "sponsor": sponsor,
        "sponsor-practitioner": investigator,
        "monitor": monitor,
        "other-sponsor": other_sponsor,
        "stranger": stranger,
    }

    def matrix() -> dict[str, bool]:
        return {
            role: registry.canRead(study.id, participant.address, a) for role, a in accounts.items()
        }

    expected = {role: expected_read(role, readers) for role in READER_ROLES}
    assert matrix() == expected
    registry.withdraw(study.id, participant.address, sender=stranger)  # the delegate
    assert matrix() == expected, "withdrawal keeps access to the data already collected"


def test_can_read_follows_monitor_removal_and_the_standing_of_institutions(
    trial_registry: Any,
    provider_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    doctor: AccountAPI,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    monitor: AccountAPI,
    enrolled: Consented,
    suspend: Callable[..., Any],
) -> None:
    registry = trial_registry

    def can(reader: Any) -> bool:
        return bool(registry.canRead(study.id, participant.address, reader))

    registry.setMonitor(study.id, monitor, True, sender=sponsor)
    assert can(monitor)
    registry.setMonitor(study.id, monitor, False, sender=sponsor)
    assert not can(monitor)
    provider_registry.removePractitioner(investigator, sender=sponsor)
    assert can(sponsor) and not can(investigator)
    suspend(sponsor)
    assert not can(sponsor), "a suspended sponsor reads nothing"
    suspend(hospital)
    assert can(hospital), "the site keeps reading what it collected"
    assert not can(doctor), "but its practitioners act for it only while it is verified"


def test_can_read_is_false_for_everyone_when_the_participant_never_enrolled(
    trial_registry: Any,
    study: Study,
    participant: LocalAccount,
    hospital: AccountAPI,
    sponsor: AccountAPI,
) -> None:
    for reader in (participant.address, hospital, sponsor):
        assert not trial_registry.canRead(study.id, participant.address, reader)
    assert not trial_registry.canRead(UNKNOWN_STUDY, participant.address, participant.address)


# ============================================================================ views


def test_views_are_empty_for_unknown_participants_data_sites_and_monitors(
    trial_registry: Any, study: Study, participant: LocalAccount, laboratory: AccountAPI
) -> None:
    registry = trial_registry
    assert participation(registry, study.id, participant) == {
        "site": ZERO_ADDRESS,
        "consentedVersion": 0,
        "enrolledAt": 0,
        "purpose": ConsentPurpose.NONE,
        "readers": 0,
        "withdrawnAt": 0,
        "delegate": ZERO_ADDRESS,
        "consents": 0,
    }
    assert as_dict(registry.getDataPoint(digest("unknown"))) == {
        "studyId": 0,
        "version": 0,
        "submittedAt": 0,
    }
    assert not registry.isSite(study.id, laboratory)
    assert not registry.isMonitor(study.id, laboratory)
    assert not registry.isConsentCurrent(study.id, participant.address)
    assert registry.nonces(participant.address) == 0


# ============================================================================ digests and ids


addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
words = st.binary(min_size=32, max_size=32)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    study_id=st.integers(0, 2**64 - 1),
    version=st.integers(0, 2**32 - 1),
    protocol=words,
    site=addresses,
    participant=addresses,
    purpose=st.sampled_from(ConsentPurpose),
    readers=st.integers(0, 255),
    delegate=addresses,
    nonce=st.integers(0, 2**256 - 1),
    deadline=st.integers(0, 2**256 - 1),
)
def test_python_eip712_digest_equals_consent_digest(
    chain: Any,
    trial_registry: Any,
    study_id: int,
    version: int,
    protocol: bytes,
    site: str,
    participant: str,
    purpose: ConsentPurpose,
    readers: int,
    delegate: str,
    nonce: int,
    deadline: int,
) -> None:
    request = {
        "studyId": study_id,
        "version": version,
        "protocolHash": protocol,
        "site": site,
        "participant": participant,
        "purpose": int(purpose),
        "readers": readers,
        "delegate": delegate,
        "nonce": nonce,
        "deadline": deadline,
    }
    signable = typed_message(chain.chain_id, trial_registry.address, "ConsentRequest", request)
    assert HexBytes(trial_registry.consentDigest(request)) == signable_digest(signable)


nonzero_words = words.filter(any).map(HexBytes)
protocols = st.builds(Protocol, nonzero_words, st.booleans(), nonzero_words, words.map(HexBytes))


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=protocols,
    amended=protocols,
    edited=st.sampled_from([1, 2]),
    primary=nonzero_words,
    secondary=words.map(HexBytes),
)
def test_protocol_hash_of_equals_the_documented_derivation(
    trial_registry: Any,
    sponsor: AccountAPI,
    register_study: Callable[..., Study],
    first: Protocol,
    amended: Protocol,
    edited: int,
    primary: HexBytes,
    secondary: HexBytes,
) -> None:
    """``protocolHashOf`` is ``keccak256(abi.encode(protocolDigest, primaryOutcomes,
    secondaryOutcomes))`` of each version as stored: random protocols (zero secondary outcomes
    and either ``encrypted`` flag included), an amendment, then new outcomes for one of them;
    computed here from the values chosen, and from ``getProtocolVersion`` as the tests'
    consents do."""
    study = register_study(protocol=first)
    trial_registry.amendProtocol(study.id, amended.args, False, "amendment", sender=sponsor)
    trial_registry.setOutcomes(study.id, edited, primary, secondary, sender=sponsor)
    stored = {1: first, 2: amended}
    stored[edited] = Protocol(
        stored[edited].protocol_digest, stored[edited].encrypted, primary, secondary
    )
    for version, protocol in stored.items():
        expected = HexBytes(
            keccak(
                protocol.protocol_digest + protocol.primary_outcomes + protocol.secondary_outcomes
            )
        )
        assert HexBytes(trial_registry.protocolHashOf(study.id, version)) == expected, version
        assert protocol.hash == expected == protocol_hash(trial_registry, study.id, version)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    study_id=st.integers(0, 2**64 - 1),
    participant=addresses,
    nonce=st.integers(0, 2**256 - 1),
    deadline=st.integers(0, 2**256 - 1),
)
def test_python_eip712_digest_equals_withdrawal_digest(
    chain: Any, trial_registry: Any, study_id: int, participant: str, nonce: int, deadline: int
) -> None:
    request = {
        "studyId": study_id,
        "participant": participant,
        "nonce": nonce,
        "deadline": deadline,
    }
    signable = typed_message(chain.chain_id, trial_registry.address, "WithdrawalRequest", request)
    assert HexBytes(trial_registry.withdrawalDigest(request)) == signable_digest(signable)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    study_id=st.integers(0, 2**64 - 1),
    participant=addresses,
    visit=words,
    version=st.integers(0, 2**32 - 1),
    cid=words,
    salted=words,
)
def test_data_id_of_equals_the_documented_derivation(
    chain: Any,
    trial_registry: Any,
    study_id: int,
    participant: str,
    visit: bytes,
    version: int,
    cid: bytes,
    salted: bytes,
) -> None:
    expected = data_id(
        chain.chain_id, trial_registry.address, study_id, participant, visit, version, cid, salted
    )
    got = trial_registry.dataIdOf(study_id, participant, visit, version, cid, salted)
    assert HexBytes(got) == expected
