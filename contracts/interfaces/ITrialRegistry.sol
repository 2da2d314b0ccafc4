// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

/// @title ITrialRegistry
/// @notice Clinical trials whose conduct anyone can check: a research sponsor registers a
/// study's protocol (and its outcome definitions) before anyone enrols; amendments make new
/// protocol versions; participants consent by EIP-712 signature to the version in force at a
/// site, re-consent when an amendment requires it and withdraw at will; sites anchor trial data
/// (single bodies or Merkle batches) only for participants whose consent is current.
/// @dev Participants are pseudonymous: one address per study, unrelated to their record address
/// unless they link the two off chain (both keys sign one statement). Nothing personal is on
/// chain: protocols, outcome definitions and data bodies are referenced by digest. Invariants:
/// a version's outcome definitions never change after its first consent or its first data, and
/// a consent is accepted only for the exact protocol and outcomes it was signed for; data is accepted
/// only for an active participant whose consented version is at least the latest version that
/// required re-consent; withdrawal is final and only the participant or their delegate can do
/// it; every consent, re-consent and withdrawal is an event indexed by participant.
interface ITrialRegistry {
    // ------------------------------------------------------------------ types

    /// @notice What a participant consents their data to be used for.
    enum ConsentPurpose {
        None,
        TrialOnly,
        TrialAndFutureResearch
    }

    /// @notice A protocol version's content, all by digest.
    /// @param protocolDigest CIDv0 digest of the protocol document in IPFS.
    /// @param encrypted True when the document is encrypted (only key holders read it).
    /// @param primaryOutcomes keccak256 of the canonical primary outcome definitions.
    /// @param secondaryOutcomes keccak256 of the canonical secondary outcome definitions (or 0).
    struct Protocol {
        bytes32 protocolDigest;
        bool encrypted;
        bytes32 primaryOutcomes;
        bytes32 secondaryOutcomes;
    }

    /// @notice A study as stored (two slots).
    /// @param sponsor The verified research sponsor that registered it.
    /// @param currentVersion The protocol version in force (1 at registration).
    /// @param reconsentVersion The latest version that required re-consent (1 at registration).
    /// @param participants Participants ever enrolled.
    /// @param registeredAt When it was registered.
    /// @param firstEnrolmentAt When the first participant enrolled (zero before).
    /// @param dataCount Data bodies anchored (batched ones included).
    /// @param attestedParticipants True when each participant must be attested by the site
    /// that enrols them (see `requireAttestedParticipants`).
    struct Study {
        address sponsor;
        uint32 currentVersion;
        uint32 reconsentVersion;
        uint32 participants;
        uint40 registeredAt;
        uint40 firstEnrolmentAt;
        uint64 dataCount;
        bool attestedParticipants;
    }

    /// @notice One protocol version as stored.
    /// @param protocol Its content.
    /// @param registeredAt When it was registered (or amended in).
    /// @param outcomesFrozenAt When its outcome definitions were frozen: its first consent or
    /// its first data, whichever came first (zero before).
    /// @param requiresReconsent True when participants of earlier versions must re-consent.
    struct ProtocolVersion {
        Protocol protocol;
        uint40 registeredAt;
        uint40 outcomesFrozenAt;
        bool requiresReconsent;
    }

    /// @notice A participant's standing in a study (two slots).
    /// @param site The institution that enrolled them (and submits their data).
    /// @param consentedVersion The latest protocol version they consented to.
    /// @param enrolledAt When they first enrolled.
    /// @param purpose What they consented to.
    /// @param readers Who besides the participant and their site may read their data: bit 0
    /// the sponsor, bit 1 the study's monitors.
    /// @param withdrawnAt When they withdrew; zero while they take part.
    /// @param delegate An account that may withdraw for them (zero for none).
    /// @param consents How many consents (enrolment and re-consents) they gave.
    struct Participation {
        address site;
        uint32 consentedVersion;
        uint40 enrolledAt;
        ConsentPurpose purpose;
        uint8 readers;
        uint40 withdrawnAt;
        address delegate;
        uint16 consents;
    }

    /// @notice A consent signed by the participant and submitted by the site (EIP-712).
    /// @param studyId The study.
    /// @param version The protocol version consented to (must be the one in force).
    /// @param protocolHash `protocolHashOf(studyId, version)` when the participant signed: the
    /// version's protocol digest and outcome definitions, so a consent never counts for
    /// outcomes the participant did not see.
    /// @param site The enrolling site.
    /// @param participant The participant's study address (the signer).
    /// @param purpose What the data may be used for.
    /// @param readers Reader bits (see `Participation.readers`).
    /// @param delegate Who may withdraw for them (zero for none).
    /// @param nonce The participant's next nonce (`nonces(participant)`).
    /// @param deadline The signature is refused after this time.
    struct ConsentRequest {
        uint64 studyId;
        uint32 version;
        bytes32 protocolHash;
        address site;
        address participant;
        ConsentPurpose purpose;
        uint8 readers;
        address delegate;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A withdrawal signed by the participant and submitted by anyone (EIP-712).
    /// @param studyId The study.
    /// @param participant The participant (the signer).
    /// @param nonce The participant's next nonce.
    /// @param deadline The signature is refused after this time.
    struct WithdrawalRequest {
        uint64 studyId;
        address participant;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A single anchored data body (one slot; the pointer is in the event).
    /// @param studyId The study.
    /// @param version The protocol version in force when it was submitted.
    /// @param submittedAt When.
    struct DataPoint {
        uint64 studyId;
        uint32 version;
        uint40 submittedAt;
    }

    /// @notice A batch of one participant's data from one visit, anchored by Merkle root.
    /// @param participant Whose data.
    /// @param studyId The study.
    /// @param version The protocol version in force when it was submitted.
    /// @param site The submitting site.
    /// @param submittedAt When.
    /// @param count Bodies in the batch (as the site declared it).
    struct DataBatch {
        address participant;
        uint64 studyId;
        uint32 version;
        address site;
        uint40 submittedAt;
        uint32 count;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when the caller is not a verified research sponsor (or its practitioner).
    error TrialNotSponsor(address caller);

    /// @notice Thrown when a study's enrolment rules change after its first enrolment.
    error TrialAlreadyEnrolling(uint64 studyId);

    /// @notice Thrown when the caller is not the study's sponsor.
    error TrialNotStudySponsor(address caller, uint64 studyId);

    /// @notice Thrown when a study id is unknown.
    error TrialUnknownStudy(uint64 studyId);

    /// @notice Thrown when a protocol version does not exist.
    error TrialUnknownVersion(uint64 studyId, uint32 version);

    /// @notice Thrown when a protocol has no document digest or no primary outcome.
    error TrialInvalidProtocol();

    /// @notice Thrown when an amendment carries no reason.
    error TrialReasonRequired();

    /// @notice Thrown when a consent was signed for other protocol content or outcome
    /// definitions than the version now holds.
    error TrialProtocolChanged(uint64 studyId, uint32 version, bytes32 signed, bytes32 current);

    /// @notice Thrown when outcome definitions of a version with a consent or data would change.
    error TrialOutcomesFrozen(uint64 studyId, uint32 version);

    /// @notice Thrown when the sponsor (or one of its practitioners) is named a monitor.
    error TrialInvalidMonitor(address monitor);

    /// @notice Thrown when a site is not a verified care institution (hospital, clinic, lab).
    error TrialInvalidSite(address site);

    /// @notice Thrown when a site is already one of the study's sites.
    error TrialSiteAlreadyAdded(uint64 studyId, address site);

    /// @notice Thrown when the caller does not act for a site of the study (or the named site).
    error TrialNotStudySite(address caller, uint64 studyId);

    /// @notice Thrown when a consent names a version that is not in force.
    error TrialVersionNotInForce(uint64 studyId, uint32 version, uint32 currentVersion);

    /// @notice Thrown when a consent's purpose is `None` or its reader bits are unknown.
    error TrialInvalidConsent();

    /// @notice Thrown when a signature's deadline has passed.
    error TrialSignatureExpired(uint256 deadline);

    /// @notice Thrown when a signature's nonce is not the participant's next one.
    error TrialSignatureReplayed(address participant, uint256 nonce, uint256 expectedNonce);

    /// @notice Thrown when a signature was not made by the participant.
    error TrialInvalidSignature(address signer, address participant);

    /// @notice Thrown when a re-consent is for a version the participant already consented to.
    error TrialAlreadyConsented(uint64 studyId, address participant, uint32 version);

    /// @notice Thrown when a re-consent comes from a different site than the enrolling one.
    error TrialSiteMismatch(address site, address enrollingSite);

    /// @notice Thrown when the participant is not enrolled in the study.
    error TrialNotEnrolled(uint64 studyId, address participant);

    /// @notice Thrown when the participant has withdrawn.
    error TrialParticipantWithdrawn(uint64 studyId, address participant, uint40 withdrawnAt);

    /// @notice Thrown when data arrives for a participant whose consent predates the latest
    /// version that required re-consent.
    error TrialConsentStale(uint64 studyId, address participant, uint32 consentedVersion, uint32 requiredVersion);

    /// @notice Thrown when the caller is neither the participant nor their delegate.
    error TrialNotParticipantOrDelegate(address caller, address participant);

    /// @notice Thrown when the caller does not act for the participant's enrolling site.
    error TrialNotParticipantSite(address caller, address site);

    /// @notice Thrown when a data pointer or batch is empty.
    error TrialInvalidData();

    /// @notice Thrown when the same data body (or batch) is anchored twice.
    error TrialDataAlreadySubmitted(bytes32 id);

    /// @notice Thrown when a batch is unknown or a body is not in it.
    error TrialDataNotInBatch(bytes32 batchId, bytes32 dataId);

    // ------------------------------------------------------------------ events

    /// @notice Emitted when a sponsor registers a study (protocol version 1).
    event StudyRegistered(uint64 indexed studyId, address indexed sponsor, bytes32 summaryDigest);

    /// @notice Emitted for each protocol version: at registration (version 1) and amendment.
    event ProtocolVersionRegistered(
        uint64 indexed studyId,
        uint32 indexed version,
        bytes32 protocolDigest,
        bool encrypted,
        bool requiresReconsent,
        string reason
    );

    /// @notice Emitted whenever a version's outcome definitions are set (at registration,
    /// amendment, and any change before that version's first consent or data).
    event OutcomesDefined(
        uint64 indexed studyId, uint32 indexed version, bytes32 primaryOutcomes, bytes32 secondaryOutcomes
    );

    /// @notice Emitted when the sponsor publishes (or replaces) the public summary pointer.
    event SummaryPublished(uint64 indexed studyId, bytes32 summaryDigest);

    /// @notice Emitted when a site joins a study.
    event SiteAdded(uint64 indexed studyId, address indexed site);

    /// @notice Emitted when a study starts requiring each participant to be attested by the site
    /// that enrols them.
    event ParticipantAttestationRequired(uint64 indexed studyId);

    /// @notice Emitted when the sponsor adds or removes a monitor.
    event MonitorChanged(uint64 indexed studyId, address indexed monitor, bool allowed);

    /// @notice Emitted when a participant consents: `enrolment` is true the first time, false
    /// for a re-consent. The signature lets anyone re-check the consent (and recover the
    /// participant's public key to wrap data keys for them).
    event ConsentRecorded(
        uint64 indexed studyId,
        address indexed participant,
        address indexed site,
        uint32 version,
        ConsentPurpose purpose,
        uint8 readers,
        address delegate,
        bool enrolment,
        bytes signature
    );

    /// @notice Emitted when a participant withdraws (`by` is the participant, their delegate,
    /// or the relayer of their signed withdrawal).
    event ParticipantWithdrawn(uint64 indexed studyId, address indexed participant, address by);

    /// @notice Emitted when a site anchors one data body.
    event DataSubmitted(
        uint64 indexed studyId,
        address indexed participant,
        bytes32 indexed dataId,
        bytes32 visit,
        uint32 version,
        bytes32 cidDigest,
        bytes32 commitment,
        address site
    );

    /// @notice Emitted when a participant burns a nonce, cancelling every request signed with it.
    event SignaturesCancelled(address indexed participant, uint256 nonce);

    /// @notice Emitted when a site anchors a batch of one participant's data from one visit.
    event DataBatchSubmitted(
        uint64 indexed studyId,
        address indexed participant,
        bytes32 indexed batchId,
        bytes32 visit,
        uint32 version,
        bytes32 root,
        bytes32 manifestDigest,
        uint32 count,
        address site
    );

    // ------------------------------------------------------------------ functions

    /// @notice Registers a study with protocol version 1 and its planned sites.
    /// @dev Callable by a verified research sponsor or one of its practitioners; the sponsor
    /// is the institution.
    /// @param protocol Version 1 of the protocol.
    /// @param sites Planned sites (verified care institutions); more can be added later.
    /// @param summaryDigest CIDv0 digest of a public summary, or zero.
    /// @return studyId The new study's id (1, 2, ...).
    function registerStudy(Protocol calldata protocol, address[] calldata sites, bytes32 summaryDigest)
        external
        returns (uint64 studyId);

    /// @notice Amends the protocol: a new version comes into force at once.
    /// @dev Callable by the study's sponsor. With `requiresReconsent`, every participant must
    /// consent to this version before more of their data is accepted.
    /// @param studyId The study.
    /// @param protocol The new version.
    /// @param requiresReconsent Whether earlier consents go stale.
    /// @param reason Why (public: a short code or sentence, never personal data).
    /// @return version The new version number.
    function amendProtocol(uint64 studyId, Protocol calldata protocol, bool requiresReconsent, string calldata reason)
        external
        returns (uint32 version);

    /// @notice Changes a version's outcome definitions before anyone consented to it or any
    /// data was recorded under it.
    /// @dev Callable by the study's sponsor; reverts once the version's outcomes are frozen.
    /// @param studyId The study.
    /// @param version The version.
    /// @param primaryOutcomes New primary outcome hash (non-zero).
    /// @param secondaryOutcomes New secondary outcome hash.
    function setOutcomes(uint64 studyId, uint32 version, bytes32 primaryOutcomes, bytes32 secondaryOutcomes)
        external;

    /// @notice Publishes (or replaces) the study's public summary pointer.
    /// @dev Callable by the study's sponsor.
    /// @param studyId The study.
    /// @param summaryDigest CIDv0 digest of the summary.
    function publishSummary(uint64 studyId, bytes32 summaryDigest) external;

    /// @notice Adds a site to a study.
    /// @dev Callable by the study's sponsor; the site must be a verified care institution.
    /// @param studyId The study.
    /// @param site The institution.
    function addSite(uint64 studyId, address site) external;

    /// @notice From now on, a participant enrols only if the enrolling site attests their study
    /// account (`IIdentityRegistry.attestPseudonym`): a person the site identified, whose link
    /// to their patient address stays off chain. Re-consents are not re-checked.
    /// @dev Callable by the study's sponsor, before the study's first enrolment (so that every
    /// participant was enrolled under the same rule). Enrolment then reverts with
    /// `IIdentityRegistry.IdentityNotAttestedBy` for an unattested participant.
    /// @param studyId The study.
    function requireAttestedParticipants(uint64 studyId) external;

    /// @notice Adds or removes a monitor who may read data of participants that allow it.
    /// @dev Callable by the study's sponsor; neither the sponsor nor its practitioners can be
    /// monitors. Monitors are the sponsor's appointees: a participant who refuses the sponsor
    /// should refuse monitors too unless they trust the sponsor's choice of monitors.
    /// @param studyId The study.
    /// @param monitor The monitor's account.
    /// @param allowed True to add, false to remove.
    function setMonitor(uint64 studyId, address monitor, bool allowed) external;

    /// @notice Records a participant's signed consent: their enrolment, or a re-consent to the
    /// version in force.
    /// @dev Callable by the named site (or one of its practitioners), which must be a site of
    /// the study and still verified; so participants need no ETH.
    /// @param request The consent.
    /// @param signature The participant's 65-byte signature over its EIP-712 digest.
    function consent(ConsentRequest calldata request, bytes calldata signature) external;

    /// @notice Withdraws a participant at once; final.
    /// @dev Callable by the participant or their delegate.
    /// @param studyId The study.
    /// @param participant The participant.
    function withdraw(uint64 studyId, address participant) external;

    /// @notice Withdraws a participant with their signature, submitted by anyone.
    /// @param request The withdrawal.
    /// @param signature The participant's signature over its EIP-712 digest.
    function withdrawWithSignature(WithdrawalRequest calldata request, bytes calldata signature) external;

    /// @notice Anchors one encrypted data body for a participant and visit.
    /// @dev Callable by the participant's enrolling site (or its practitioners) while the
    /// participant is active and their consent is current. Freezes the outcomes of the version
    /// in force.
    /// @param studyId The study.
    /// @param participant The participant.
    /// @param visit The visit (for example keccak256 of the protocol's visit label).
    /// @param cidDigest sha2-256 digest of the encrypted body's root block (CIDv0).
    /// @param commitment Salted commitment to the plaintext.
    /// @return dataId `dataIdOf(...)` of the body.
    function submitData(uint64 studyId, address participant, bytes32 visit, bytes32 cidDigest, bytes32 commitment)
        external
        returns (bytes32 dataId);

    /// @notice Anchors a batch of one participant's data bodies from one visit by Merkle root.
    /// @dev Same rules as `submitData`. An `IndexedMerkle` tree of `count` leaves
    /// `keccak256(bytes.concat(keccak256(abi.encode(dataId))))` over the bodies' `dataIdOf`
    /// under the version in force, so that no more than `count` bodies can be proven.
    /// @param studyId The study.
    /// @param participant The participant.
    /// @param visit The visit.
    /// @param root The Merkle root.
    /// @param manifestDigest CIDv0 digest of the batch manifest in IPFS (the leaves' pointers).
    /// @param count Bodies in the batch.
    /// @return batchId `keccak256(abi.encode(block.chainid, this, studyId, participant, visit, root))`.
    function submitDataBatch(
        uint64 studyId,
        address participant,
        bytes32 visit,
        bytes32 root,
        bytes32 manifestDigest,
        uint32 count
    ) external returns (bytes32 batchId);

    /// @notice Returns a study.
    /// @param studyId The study.
    /// @return study The study (reverts when unknown).
    function getStudy(uint64 studyId) external view returns (Study memory study);

    /// @notice Returns one protocol version.
    /// @param studyId The study.
    /// @param version The version.
    /// @return protocolVersion The version (reverts when unknown).
    function getProtocolVersion(uint64 studyId, uint32 version)
        external
        view
        returns (ProtocolVersion memory protocolVersion);

    /// @notice Returns a participant's standing.
    /// @param studyId The study.
    /// @param participant The participant.
    /// @return participation All zero when never enrolled.
    function getParticipation(uint64 studyId, address participant)
        external
        view
        returns (Participation memory participation);

    /// @notice Tells whether data for the participant would be accepted now.
    /// @param studyId The study.
    /// @param participant The participant.
    /// @return current True when enrolled, not withdrawn and not stale.
    function isConsentCurrent(uint64 studyId, address participant) external view returns (bool current);

    /// @notice Tells whether `reader` may read the participant's trial data: the participant,
    /// their enrolling site, and (as their consent allows) the sponsor and monitors, both only
    /// while the sponsor is verified.
    /// @param studyId The study.
    /// @param participant The participant.
    /// @param reader The reader (an institution's practitioners count as the institution).
    /// @return allowed True when allowed.
    function canRead(uint64 studyId, address participant, address reader) external view returns (bool allowed);

    /// @notice Tells whether an account is a site of a study.
    /// @param studyId The study.
    /// @param site The institution.
    /// @return isSite True when added.
    function isSite(uint64 studyId, address site) external view returns (bool isSite);

    /// @notice Tells whether an account is a monitor of a study.
    /// @param studyId The study.
    /// @param monitor The account.
    /// @return isMonitor True when added and not removed.
    function isMonitor(uint64 studyId, address monitor) external view returns (bool isMonitor);

    /// @notice Returns a single data body's record, or all zero when unknown.
    /// @param dataId The id.
    /// @return point The data point.
    function getDataPoint(bytes32 dataId) external view returns (DataPoint memory point);

    /// @notice Returns a batch.
    /// @param batchId The batch id.
    /// @return batch The batch (reverts when unknown).
    function getDataBatch(bytes32 batchId) external view returns (DataBatch memory batch);

    /// @notice Proves a body belongs to a batch.
    /// @param studyId The study.
    /// @param participant The participant.
    /// @param visit The visit.
    /// @param root The batch's root.
    /// @param cidDigest The body's CID digest.
    /// @param commitment The body's commitment.
    /// @param index The body's position in the batch.
    /// @param proof The Merkle proof of its leaf.
    /// @return dataId The body's id (reverts with `TrialDataNotInBatch` when not proven).
    function verifyBatchData(
        uint64 studyId,
        address participant,
        bytes32 visit,
        bytes32 root,
        bytes32 cidDigest,
        bytes32 commitment,
        uint256 index,
        bytes32[] calldata proof
    ) external view returns (bytes32 dataId);

    /// @notice Burns the caller's next nonce, so that a consent or withdrawal signed with it
    /// (and not yet submitted) can never be used.
    function cancelSignatures() external;

    /// @notice Computes a data body's id.
    /// @param studyId The study.
    /// @param participant The participant.
    /// @param visit The visit.
    /// @param version The protocol version in force at submission.
    /// @param cidDigest The CID digest.
    /// @param commitment The commitment.
    /// @return dataId `keccak256(abi.encode(block.chainid, this, studyId, participant, visit,
    /// version, cidDigest, commitment))`.
    function dataIdOf(
        uint64 studyId,
        address participant,
        bytes32 visit,
        uint32 version,
        bytes32 cidDigest,
        bytes32 commitment
    ) external view returns (bytes32 dataId);

    /// @notice Returns the EIP-712 digest a participant signs to consent.
    /// @param request The consent.
    /// @return digest The digest.
    function consentDigest(ConsentRequest calldata request) external view returns (bytes32 digest);

    /// @notice What a consent to a version must carry as its `protocolHash`.
    /// @param studyId The study.
    /// @param version The version.
    /// @return protocolHash `keccak256(abi.encode(protocolDigest, primaryOutcomes,
    /// secondaryOutcomes))` of the version as stored now.
    function protocolHashOf(uint64 studyId, uint32 version) external view returns (bytes32 protocolHash);

    /// @notice Returns the EIP-712 digest a participant signs to withdraw.
    /// @param request The withdrawal.
    /// @return digest The digest.
    function withdrawalDigest(WithdrawalRequest calldata request) external view returns (bytes32 digest);
}
