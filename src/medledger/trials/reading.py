"""Reading the TrialRegistry: the contract, its studies with their sites, monitors and summary,
protocol versions and participations (every event through :mod:`medledger.chain.events`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medledger.addresses import parse_address
from medledger.chain import deployments, events
from medledger.chain.events import moment
from medledger.errors import (
    PreconditionFailed,
    StudyNotFound,
    TransactionReverted,
)
from medledger.ipfs.cid import Cid
from medledger.trials.model import (
    CONTRACT,
    ZERO,
    ConsentPurpose,
    Participation,
    ProtocolVersion,
    Study,
    optional_time,
)

if TYPE_CHECKING:
    from medledger.chain import Chain
    from medledger.chain.contracts import Contract
    from medledger.chain.events import Log


def trial_registry(chain: Chain) -> Contract:
    """The deployed TrialRegistry."""
    return deployments.contract(chain, CONTRACT)


def address(text: str, what: str) -> str:
    """A checksummed address given on the command line (``what`` names the option)."""
    return parse_address(text, what)


def nonce(chain: Chain, participant: str) -> int:
    """The participant's next TrialRegistry nonce (one sequence for all their studies)."""
    return int(chain.call("reading the nonce", trial_registry(chain).functions.nonces(participant)))


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
    sponsor, current, reconsent, participants, registered_at, first, data_count, attested = raw
    by_study = {"studyId": study_id}
    sites = tuple(e["site"] for e in events.logs(chain, CONTRACT, "SiteAdded", by_study))
    monitors: dict[str, bool] = {}
    for e in events.logs(chain, CONTRACT, "MonitorChanged", by_study):
        monitors[e["monitor"]] = bool(e["allowed"])
    summary = ZERO
    for e in events.many(chain, CONTRACT, ("StudyRegistered", "SummaryPublished"), by_study):
        summary = e["summaryDigest"]
    return Study(
        id=study_id,
        chain_id=chain.chain_id,
        registry=contract.address,
        sponsor=to_checksum_address(sponsor),
        current_version=int(current),
        reconsent_version=int(reconsent),
        participants=int(participants),
        registered_at=moment(registered_at),
        first_enrolment_at=optional_time(first),
        data_count=int(data_count),
        attested_participants=bool(attested),
        sites=sites,
        monitors=tuple(m for m, allowed in monitors.items() if allowed),
        summary=Cid.from_digest_v0(summary) if summary != ZERO else None,
    )


def studies(chain: Chain, sponsor: str | None = None) -> list[Study]:
    """Every registered study (or those of one sponsor), oldest first."""
    filters = {"sponsor": address(sponsor, "--sponsor")} if sponsor else None
    return [
        get_study(chain, int(e["studyId"]))
        for e in events.logs(chain, CONTRACT, "StudyRegistered", filters)
    ]


def versions(chain: Chain, study_id: int) -> list[ProtocolVersion]:
    """Every protocol version of a study, oldest first."""
    get_study(chain, study_id)
    registered = events.logs(chain, CONTRACT, "ProtocolVersionRegistered", {"studyId": study_id})
    return [_version(chain, study_id, e) for e in registered]


def protocol_version(chain: Chain, study_id: int, version: int | None = None) -> ProtocolVersion:
    """One protocol version (default: the one in force)."""
    chosen = version if version is not None else get_study(chain, study_id).current_version
    found = events.logs(
        chain, CONTRACT, "ProtocolVersionRegistered", {"studyId": study_id, "version": chosen}
    )
    if not found:
        get_study(chain, study_id)  # an unknown study says so
        raise PreconditionFailed(f"study {study_id} has no protocol version {chosen}")
    return _version(chain, study_id, found[0])


def _version(chain: Chain, study_id: int, event: Log) -> ProtocolVersion:
    number = int(event["version"])
    (protocol, registered_at, frozen, reconsent) = chain.call(
        "reading the protocol version",
        trial_registry(chain).functions.getProtocolVersion(study_id, number),
    )
    _digest, encrypted, primary, secondary = protocol
    return ProtocolVersion(
        study_id=study_id,
        version=number,
        protocol=Cid.from_digest_v0(event["protocolDigest"]),
        encrypted=bool(encrypted),
        primary_outcomes=bytes(primary),
        secondary_outcomes=bytes(secondary) if bytes(secondary) != ZERO else None,
        requires_reconsent=bool(reconsent),
        reason=str(event["reason"]),
        registered_at=moment(registered_at),
        outcomes_frozen_at=optional_time(frozen),
        block=event.block,
    )


def participation(chain: Chain, study_id: int, participant: str) -> Participation:
    """A participant's standing (refused for one who never enrolled)."""
    return enrolled(chain, get_study(chain, study_id), address(participant, "participant"))


def enrolled(chain: Chain, study: Study, participant: str) -> Participation:
    """The participation of someone who must be enrolled in ``study``."""
    found = participation_or_none(chain, study, participant)
    if found is None:
        raise PreconditionFailed(f"{participant} is not enrolled in study {study.id}")
    return found


def participation_or_none(chain: Chain, study: Study, participant: str) -> Participation | None:
    """The participation of ``participant`` in ``study``, ``None`` when they never enrolled."""
    raw = chain.call(
        "reading the participation",
        trial_registry(chain).functions.getParticipation(study.id, participant),
    )
    site, version, enrolled_at, purpose, readers, withdrawn, delegate, consents = raw
    if int(site, 16) == 0:
        return None
    return Participation(
        study_id=study.id,
        participant=participant,
        site=to_checksum_address(site),
        consented_version=int(version),
        enrolled_at=moment(enrolled_at),
        purpose=ConsentPurpose(purpose),
        readers=int(readers),
        withdrawn_at=optional_time(withdrawn),
        delegate=None if int(delegate, 16) == 0 else to_checksum_address(delegate),
        consents=int(consents),
        required_version=study.reconsent_version,
    )


def participants(chain: Chain, study_id: int) -> list[Participation]:
    """Every participant of a study, in order of enrolment."""
    study = get_study(chain, study_id)
    consents = events.logs(chain, CONTRACT, "ConsentRecorded", {"studyId": study_id})
    return [enrolled(chain, study, p) for p in dict.fromkeys(e["participant"] for e in consents)]
