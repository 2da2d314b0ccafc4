"""The trial audit: did the study run as registered? Re-checked from chain events, consent
transactions and stored bodies alone, trusting none of the contract's rules.

:func:`replay` walks versions, consents, withdrawals and data in chain order (protocol before
the first enrolment, every consent valid for the version in force, no data from a withdrawn or
stale participant); :func:`outcome_checks` replays the outcome definitions (none changed after
they froze at a version's first consent or data, no amendment switched the primary outcomes
once data collection had begun); :func:`audit` adds that every body is present and unaltered
and that each protocol's objectives hash to its registered outcomes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medledger import sealed
from medledger.chain import events
from medledger.errors import IntegrityError, MedLedgerError
from medledger.ipfs.cid import Cid
from medledger.trials.attested_enrolments import RULE as ATTESTED_RULE
from medledger.trials.attested_enrolments import check_attested_enrolments
from medledger.trials.batches import manifest_items
from medledger.trials.datapoints import single_item
from medledger.trials.enrolment import RecordedConsent, recorded_consents
from medledger.trials.ids import data_context
from medledger.trials.model import CONTRACT, Check, DataItem
from medledger.trials.protocols import open_protocol, outcomes_of, protocol_context
from medledger.trials.reading import get_study, trial_registry
from medledger.trials.signing import signer_of

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.events import Log
    from medledger.ipfs.blockstore import BlockStore

RULE_OUTCOMES_FROZEN = (
    "each version's outcome definitions frozen from its first consent or data, as its "
    "protocol states them"
)
RULE_NO_SWITCHING = (
    "no outcome switching: no version changed the previous version's primary outcomes after "
    "data collection began"
)


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
        """A JSON-friendly view: whether it passed, and each check with its own verdict."""
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
    signer = signer_of(chain_id, registry_address, c.request, c.signature)
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


def _steps(
    chain: Chain, logs: Sequence[Log], consents: Sequence[RecordedConsent]
) -> list[ReplayStep]:
    """The replay's steps from a study's events (in any order) and its recorded consents."""
    steps = [
        ReplayStep((c.block, c.log_index), "consent", participant=c.participant, version=c.version,
                   consent=c, block_time=chain.block_time(c.block))
        for c in consents
    ]  # fmt: skip
    for e in logs:
        where = (e.block, e.index)
        if e.event == "ProtocolVersionRegistered":
            steps.append(ReplayStep(where, "version", version=int(e["version"]),
                                    requires_reconsent=bool(e["requiresReconsent"])))  # fmt: skip
        elif e.event == "OutcomesDefined":
            steps.append(ReplayStep(where, "outcomes", version=int(e["version"]),
                                    label=e.transaction_hash,
                                    primary_outcomes=e["primaryOutcomes"]))  # fmt: skip
        elif e.event == "ParticipantWithdrawn":
            steps.append(ReplayStep(where, "withdrawal", participant=e["participant"]))
        elif e.event == "DataSubmitted":
            steps.append(ReplayStep(where, "data", participant=e["participant"],
                                    version=int(e["version"]),
                                    label=f"data 0x{e['dataId'].hex()}"))  # fmt: skip
        elif e.event == "DataBatchSubmitted":
            steps.append(ReplayStep(where, "data", participant=e["participant"],
                                    version=int(e["version"]),
                                    label=f"batch 0x{e['batchId'].hex()}"))  # fmt: skip
    return steps


AUDITED_EVENTS = (
    "ProtocolVersionRegistered", "OutcomesDefined", "ParticipantWithdrawn", "DataSubmitted",
    "DataBatchSubmitted", "ParticipantAttestationRequired",
)  # fmt: skip


def audit(
    chain: Chain, store: BlockStore, study_id: int, reader: Signer | None = None
) -> AuditReport:
    """Check from chain events, consent transactions and stored bodies that the study ran as
    registered: the rules of :func:`replay`, every body present and unaltered, and those of
    :func:`outcome_checks` (with each protocol document's objectives hashing to its version's
    registered outcomes). With a ``reader`` that can decrypt, the data commitments (and an
    encrypted protocol's objectives) are checked too."""
    get_study(chain, study_id)
    contract = trial_registry(chain)
    logs = events.many(chain, CONTRACT, AUDITED_EVENTS, {"studyId": study_id})
    consents = recorded_consents(chain, study_id)
    steps = _steps(chain, logs, consents)
    first, consent_check, data_check = replay(chain.chain_id, contract.address, steps)
    attested = Check(ATTESTED_RULE)
    check_attested_enrolments(chain, logs, consents, attested)
    bodies = _check_bodies(chain, store, study_id, logs, reader)
    frozen, switching = outcome_checks(steps)
    _check_protocols(chain, store, frozen, logs, reader)
    checks = [first, consent_check, data_check, bodies, frozen, switching, attested]
    return AuditReport(study_id, checks)


def _check_bodies(
    chain: Chain, store: BlockStore, study_id: int, logs: Sequence[Log], reader: Signer | None
) -> Check:
    check = Check("every anchored data body present and unaltered")
    items: list[DataItem] = [single_item(chain, study_id, e) for e in logs
                             if e.event == "DataSubmitted"]  # fmt: skip
    for e in logs:
        if e.event != "DataBatchSubmitted":
            continue
        check.checked += 1
        try:
            listed, problem = manifest_items(chain, store, study_id, e)
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
            stored = store.cat(item.cid)
        except MedLedgerError as exc:
            check.violations.append(f"data {item.hex_id}: {exc}")
            continue
        if reader is None:
            continue
        try:
            secret = sealed.secret_of(stored, reader.key)
        except MedLedgerError:
            continue  # not sealed for this reader: presence and block hashes were checked
        aad = data_context(chain.chain_id, registry_address, study_id, item.participant,
                           item.visit)  # fmt: skip
        try:
            sealed.open_one(stored, aad, item.commitment, secret=secret, what=f"data {item.hex_id}")
        except IntegrityError:
            check.violations.append(f"data {item.hex_id}: plaintext does not match its commitment")
            continue
        except MedLedgerError:
            check.violations.append(f"data {item.hex_id}: does not decrypt under its identity")
            continue
        opened += 1
    if reader is not None:
        check.notes.append(f"{opened} of {len(items)} bodies decrypted and matched to commitments")
    return check


def _check_protocols(
    chain: Chain, store: BlockStore, check: Check, logs: Sequence[Log], reader: Signer | None
) -> None:
    """Add to ``check`` every version whose protocol document's objectives do not hash to the
    outcomes last defined for it."""
    latest: dict[int, tuple[bytes, bytes]] = {}
    for e in logs:
        if e.event == "OutcomesDefined":
            latest[int(e["version"])] = (e["primaryOutcomes"], e["secondaryOutcomes"])
    aad = protocol_context(chain.chain_id, trial_registry(chain).address)
    for e in logs:
        if e.event != "ProtocolVersionRegistered":
            continue
        version = int(e["version"])
        cid = Cid.from_digest_v0(e["protocolDigest"])
        try:
            stored = store.cat(cid)
        except MedLedgerError as exc:
            check.violations.append(f"version {version}: protocol document {cid}: {exc}")
            continue
        body = stored
        if e["encrypted"]:
            try:
                opened = open_protocol(stored, aad, reader.key) if reader else None
            except MedLedgerError:
                opened = None
            if opened is None:
                check.notes.append(f"version {version}: encrypted protocol, objectives not checked")
                continue
            body = opened
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
