"""Clinical trials: the client of the TrialRegistry (pre-registered protocols, signed and
versioned consent, traceable data, the trial audit).

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
chain. A study may require attested participants (:func:`require_attested_participants`): a
participant then enrols only if the enrolling site attested their study account
(:func:`medledger.identity.attest_study_account`, which commits to the link).

Each data body (any FHIR resource) is sealed under its own key for the participant, the site's
institution, the submitting account, the sponsor (reader bit 0) and every monitor with a
published key (reader bit 1) and anchored alone (``submitData``, many sent together through the
transaction pipeline) or with the rest of a visit in a Merkle batch (``submitDataBatch``) whose
public manifest (the one batch manifest format of :mod:`medledger.sealed.manifest`) lists each
body's CID and commitment in tree order. The tree is positional (``merkle.IndexedTree``, the
contract's ``IndexedMerkle``) and the declared count is the tree's: a batch proves its bodies
at positions ``0 .. count - 1`` only (``verifyBatchData(..., index, proof)``), never more.
Preconditions are checked before anything is stored or sent, so a refused submission names the
reason (withdrawn, stale consent, not the enrolling site) instead of reverting.

A version's outcome definitions freeze at its first consent or its first data (the contract's
``outcomesFrozenAt``). :func:`audit` re-checks, from chain events, consent transactions and
stored bodies alone, that the trial ran as registered, trusting none of the contract's rules:
among them, that no outcome definition changed after it froze and that no amendment switched the
primary outcomes once data collection had begun.

Modules (none named like a function, so ``trials.audit`` is always the function):
:mod:`~medledger.trials.model` (the models), :mod:`~medledger.trials.signing` (requests,
EIP-712, signed documents), :mod:`~medledger.trials.reading` (studies, versions and
participations as the chain holds them), :mod:`~medledger.trials.protocols` (protocol documents
and outcome hashes), :mod:`~medledger.trials.sponsoring` (what a sponsor does),
:mod:`~medledger.trials.enrolment` (consent and withdrawal), :mod:`~medledger.trials.ids` and
:mod:`~medledger.trials.batches` (data ids, batch manifests),
:mod:`~medledger.trials.datapoints` (submitting and reading data),
:mod:`~medledger.trials.auditing` (the audit),
:mod:`~medledger.trials.attested_enrolments` (its check of attested enrolments),
:mod:`~medledger.trials.resources` (FHIR ResearchStudy and ResearchSubject) and
:mod:`~medledger.trials.fhir_views` (them as the FHIR server serves them, with their ids).
"""

from medledger.documents import canonical
from medledger.identity.links import LINK_KIND, link_proof, verify_link
from medledger.trials.auditing import (
    RULE_NO_SWITCHING,
    RULE_OUTCOMES_FROZEN,
    AuditReport,
    ReplayStep,
    audit,
    outcome_checks,
    replay,
)
from medledger.trials.batches import batch_manifest
from medledger.trials.datapoints import check_anchored, data, find_data, read_data, submit_data
from medledger.trials.enrolment import (
    RecordedConsent,
    cancel_signatures,
    participant_key,
    recorded_consents,
    sign_consent,
    sign_withdrawal,
    submit_consent,
    submit_withdrawal,
    withdraw,
)
from medledger.trials.fhir_views import study_resources, subject_resource, subject_resources
from medledger.trials.ids import batch_id, data_id, visit_id
from medledger.trials.model import (
    READER_MONITORS,
    READER_SPONSOR,
    BatchPosition,
    Check,
    ConsentPurpose,
    DataItem,
    Participation,
    ProtocolVersion,
    Standing,
    Study,
    Submission,
    TrialEvent,
)
from medledger.trials.protocols import (
    OBJECTIVE_TYPE_SYSTEM,
    outcomes_of,
    parse_protocol,
    read_protocol,
)
from medledger.trials.reading import (
    get_study,
    participants,
    participation,
    protocol_version,
    studies,
    trial_registry,
    versions,
)
from medledger.trials.resources import research_study, research_subject
from medledger.trials.signing import (
    CONSENT_FIELDS,
    CONSENT_KIND,
    WITHDRAWAL_FIELDS,
    WITHDRAWAL_KIND,
    ConsentRequest,
    WithdrawalRequest,
    address_of_key,
    protocol_hash,
    recover_public_key,
    request_digest,
    typed_data,
)
from medledger.trials.sponsoring import (
    MAX_REASON_LENGTH,
    add_site,
    amend,
    history,
    publish_summary,
    register_study,
    require_attested_participants,
    set_monitor,
)

__all__ = [
    "CONSENT_FIELDS",
    "CONSENT_KIND",
    "LINK_KIND",
    "MAX_REASON_LENGTH",
    "OBJECTIVE_TYPE_SYSTEM",
    "READER_MONITORS",
    "READER_SPONSOR",
    "RULE_NO_SWITCHING",
    "RULE_OUTCOMES_FROZEN",
    "WITHDRAWAL_FIELDS",
    "WITHDRAWAL_KIND",
    "AuditReport",
    "BatchPosition",
    "Check",
    "ConsentPurpose",
    "ConsentRequest",
    "DataItem",
    "Participation",
    "ProtocolVersion",
    "RecordedConsent",
    "ReplayStep",
    "Standing",
    "Study",
    "Submission",
    "TrialEvent",
    "WithdrawalRequest",
    "add_site",
    "address_of_key",
    "amend",
    "audit",
    "batch_id",
    "batch_manifest",
    "cancel_signatures",
    "canonical",
    "check_anchored",
    "data",
    "data_id",
    "find_data",
    "get_study",
    "history",
    "link_proof",
    "outcome_checks",
    "outcomes_of",
    "parse_protocol",
    "participant_key",
    "participants",
    "participation",
    "protocol_hash",
    "protocol_version",
    "publish_summary",
    "read_data",
    "read_protocol",
    "recorded_consents",
    "recover_public_key",
    "register_study",
    "replay",
    "request_digest",
    "require_attested_participants",
    "research_study",
    "research_subject",
    "set_monitor",
    "sign_consent",
    "sign_withdrawal",
    "studies",
    "study_resources",
    "subject_resource",
    "subject_resources",
    "submit_consent",
    "submit_data",
    "submit_withdrawal",
    "trial_registry",
    "typed_data",
    "verify_link",
    "versions",
    "visit_id",
    "withdraw",
]
