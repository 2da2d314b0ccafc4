"""What a sponsor does to a study: register it (protocol version 1, its outcomes, its sites),
amend its protocol, add sites and monitors, require attested participants, publish its summary;
and its history of events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_typing import HexStr
from eth_utils.address import to_checksum_address

from medledger import providers
from medledger.chain import events
from medledger.errors import ConfigurationError, PreconditionFailed
from medledger.ipfs.cid import Cid
from medledger.trials.model import CONTRACT, ZERO, ProtocolVersion, Study, TrialEvent
from medledger.trials.protocols import outcomes_of, parse_protocol, store_protocol
from medledger.trials.reading import address, get_study, protocol_version, trial_registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.events import Log
    from medledger.ipfs.blockstore import BlockStore

MAX_REASON_LENGTH = 200
CARE_KINDS = (
    providers.InstitutionKind.HOSPITAL,
    providers.InstitutionKind.CLINIC,
    providers.InstitutionKind.LABORATORY,
)


def register_study(
    chain: Chain,
    store: BlockStore,
    sponsor: Signer,
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
    planned = [address(s, "--site") for s in sites]  # the inputs first, then the chain
    if len(set(planned)) != len(planned):
        raise ConfigurationError("--site", "a site is named twice")
    primary, secondary = outcomes_of(parse_protocol(research_study, source), source)
    institution = providers.verified_institution_of(chain, sponsor.address)
    kind = providers.participant(chain, institution).kind if institution else None
    if institution is None or kind is not providers.InstitutionKind.RESEARCH_SPONSOR:
        raise PreconditionFailed(
            f"{sponsor.address} is not a verified research sponsor (or a practitioner of one)"
        )
    for site in planned:
        _require_care_site(chain, site)
    cid = store_protocol(chain, store, research_study, encrypt, [institution, *planned])
    summary_digest = store.add_bytes(summary, pin=True).digest if summary else ZERO
    contract = trial_registry(chain)
    receipt = chain.transact(
        "registering the study",
        sponsor,
        contract.functions.registerStudy(
            (cid.digest, encrypt, primary, secondary), planned, summary_digest
        ),
    )
    (event,) = events.from_receipt(receipt, CONTRACT, "StudyRegistered", contract.address)
    return get_study(chain, int(event["studyId"]))


def _require_care_site(chain: Chain, site: str) -> None:
    entry = providers.participant(chain, site)
    if (
        entry.role is not providers.Role.INSTITUTION
        or entry.kind not in CARE_KINDS
        or entry.status is not providers.Status.VERIFIED
    ):
        raise PreconditionFailed(f"{site} is not a verified hospital, clinic or laboratory")


def _require_sponsor(chain: Chain, account: str, study: Study) -> None:
    if providers.verified_institution_of(chain, account) != study.sponsor:
        raise PreconditionFailed(
            f"{account} does not act for {study.sponsor}, the sponsor of study {study.id}"
        )


def amend(
    chain: Chain,
    store: BlockStore,
    sponsor: Signer,
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
    cid = store_protocol(chain, store, research_study, encrypt, [study.sponsor, *study.sites])
    contract = trial_registry(chain)
    receipt = chain.transact(
        "amending the protocol",
        sponsor,
        contract.functions.amendProtocol(
            study_id, (cid.digest, encrypt, primary, secondary), requires_reconsent, reason
        ),
    )
    (event,) = events.from_receipt(receipt, CONTRACT, "ProtocolVersionRegistered", contract.address)
    return protocol_version(chain, study_id, int(event["version"]))


def add_site(chain: Chain, sponsor: Signer, study_id: int, site: str) -> Study:
    """Add a site (a verified hospital, clinic or laboratory) to a study."""
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    site = address(site, "SITE")
    _require_care_site(chain, site)
    if site in study.sites:
        raise PreconditionFailed(f"{site} is already a site of study {study_id}")
    chain.transact(
        "adding a site", sponsor, trial_registry(chain).functions.addSite(study_id, site)
    )
    return get_study(chain, study_id)


def require_attested_participants(chain: Chain, sponsor: Signer, study_id: int) -> Study:
    """From now on, a participant enrols only if the enrolling site attests their study account
    (:func:`medledger.identity.attest_study_account`). Only before the first enrolment: the rule
    is part of how the study recruits, and never changes for people already enrolled."""
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    if study.attested_participants:
        raise PreconditionFailed(f"study {study_id} already requires attested participants")
    if study.first_enrolment_at is not None:
        raise PreconditionFailed(
            f"study {study_id} has enrolled participants since {study.first_enrolment_at:%F}: "
            "attested participants can be required only before the first enrolment"
        )
    chain.transact(
        "requiring attested participants",
        sponsor,
        trial_registry(chain).functions.requireAttestedParticipants(study_id),
    )
    return get_study(chain, study_id)


def set_monitor(
    chain: Chain, sponsor: Signer, study_id: int, monitor: str, allowed: bool = True
) -> Study:
    """Add (or remove) a monitor, who reads the data of participants that allow it.

    A monitor can decrypt only bodies sealed while it had a published encryption key.
    """
    study = get_study(chain, study_id)
    _require_sponsor(chain, sponsor.address, study)
    monitor = address(monitor, "MONITOR")
    if allowed and study.sponsor in (monitor, providers.verified_institution_of(chain, monitor)):
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
    chain: Chain, store: BlockStore, sponsor: Signer, study_id: int, summary: bytes
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


def _describe(log: Log) -> tuple[str, str]:
    """A study event as the history shows it: what happened and its detail."""
    name = log.event
    if name == "StudyRegistered":
        return "study registered", f"sponsor {log['sponsor']}"
    if name == "ProtocolVersionRegistered":
        reconsent = ", re-consent required" if log["requiresReconsent"] else ""
        return f"protocol v{log['version']}", f"{log['reason']}{reconsent}"
    if name == "OutcomesDefined":
        return f"outcomes of v{log['version']}", "0x" + log["primaryOutcomes"].hex()[:16] + "..."
    if name == "SiteAdded":
        return "site added", log["site"]
    if name == "ParticipantAttestationRequired":
        return "attested participants", "each enrolling site attests its participants"
    if name == "MonitorChanged":
        return "monitor " + ("added" if log["allowed"] else "removed"), log["monitor"]
    if name == "SummaryPublished":
        return "summary published", str(Cid.from_digest_v0(log["summaryDigest"]))
    if name == "ConsentRecorded":
        kind = "enrolment" if log["enrolment"] else "re-consent"
        return kind, f"{log['participant']} to v{log['version']} at {log['site']}"
    if name == "ParticipantWithdrawn":
        return "withdrawal", f"{log['participant']} (by {log['by']})"
    if name == "DataSubmitted":
        return "data", f"0x{log['dataId'].hex()} for {log['participant']}"
    return "data batch", f"{log['count']} bodies for {log['participant']}"


HISTORY_EVENTS = (
    "StudyRegistered", "ProtocolVersionRegistered", "OutcomesDefined", "SiteAdded",
    "MonitorChanged", "ParticipantAttestationRequired", "SummaryPublished", "ConsentRecorded",
    "ParticipantWithdrawn", "DataSubmitted", "DataBatchSubmitted",
)  # fmt: skip
"""The events of a study's history (every TrialRegistry event that names a study)."""


def history(chain: Chain, study_id: int) -> list[TrialEvent]:
    """Every event of a study, oldest first, with the gas its transaction used."""
    get_study(chain, study_id)
    gas: dict[str, int] = {}
    senders: dict[str, str] = {}
    found: list[TrialEvent] = []
    for log in events.many(chain, CONTRACT, HISTORY_EVENTS, {"studyId": study_id}):
        tx = log.transaction_hash
        if tx not in gas:
            gas[tx] = int(chain.w3.eth.get_transaction_receipt(HexStr(tx))["gasUsed"])
            senders[tx] = to_checksum_address(chain.w3.eth.get_transaction(HexStr(tx))["from"])
        event, detail = _describe(log)
        found.append(
            TrialEvent(log.time(chain), log.block, log.index, event, senders[tx], detail, tx,
                       gas[tx])
        )  # fmt: skip
    return found
