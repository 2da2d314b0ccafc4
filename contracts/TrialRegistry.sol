// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {ITrialRegistry} from "./interfaces/ITrialRegistry.sol";
import {IndexedMerkle} from "./libraries/IndexedMerkle.sol";

/// @title TrialRegistry
/// @notice Clinical trials on chain: registered protocols and outcome definitions, versioned
/// amendments, participants' signed consent, re-consent and withdrawal, and data anchored by
/// sites only while a participant's consent is current.
/// @dev Invariants (beyond those of `ITrialRegistry`):
/// - a study's sponsor never changes; only callers whose verified institution is the sponsor
///   amend, set outcomes, publish summaries, add sites and set monitors;
/// - a participant's enrolling site never changes, and only callers acting for it (the site or
///   its active practitioners, while the site is verified) record their re-consents and data;
/// - a version's outcomes are frozen from its first consent (enrolment or re-consent alike) or
///   its first data, whichever comes first, so nobody ever consented to, and no data was ever
///   collected under, outcome definitions that later changed;
/// - every signature is used once: it names the participant's next nonce, consumed on success
///   (one nonce sequence per participant, shared by consents and withdrawals of every study);
/// - `dataCount` only grows, by one per body and by the declared `count` per batch.
/// Refusal order, where several rules fail at once: unknown study; then, for signed requests,
/// deadline, nonce, signature; then caller; then state. For a re-consent, withdrawal is checked
/// before the site and the version; for data, enrolment before the caller (so that a caller
/// learns "not enrolled" instead of "not the site" of a participant who has no site).
contract TrialRegistry is ITrialRegistry, EIP712, Nonces {
    // ------------------------------------------------------------------ types

    /// @dev `ProtocolVersion` as stored: the `encrypted` flag shares the times' slot (four
    /// slots instead of the five that the nested `Protocol` struct would take).
    struct StoredVersion {
        bytes32 protocolDigest;
        bytes32 primaryOutcomes;
        bytes32 secondaryOutcomes;
        uint40 registeredAt;
        uint40 outcomesFrozenAt;
        bool encrypted;
        bool requiresReconsent;
    }

    // ------------------------------------------------------------------ constants

    /// @notice EIP-712 type hash of `ConsentRequest`.
    bytes32 public constant CONSENT_TYPEHASH = keccak256(
        "ConsentRequest(uint64 studyId,uint32 version,bytes32 protocolHash,address site,"
        "address participant,uint8 purpose,uint8 readers,address delegate,uint256 nonce,uint256 deadline)"
    );

    /// @notice EIP-712 type hash of `WithdrawalRequest`.
    bytes32 public constant WITHDRAWAL_TYPEHASH =
        keccak256("WithdrawalRequest(uint64 studyId,address participant,uint256 nonce,uint256 deadline)");

    /// @notice Reader bit: the study's sponsor may read the participant's data.
    uint8 public constant READER_SPONSOR = 1;

    /// @notice Reader bit: the study's monitors may read the participant's data.
    uint8 public constant READER_MONITORS = 2;

    uint8 private constant _READERS_ALL = READER_SPONSOR | READER_MONITORS;
    string private constant _INITIAL_REASON = "initial";

    IProviderRegistry private immutable _PROVIDERS;

    // ------------------------------------------------------------------ storage

    uint64 private _studyCount;
    mapping(uint64 studyId => Study) private _studies;
    mapping(uint64 studyId => mapping(uint32 version => StoredVersion)) private _versions;
    mapping(uint64 studyId => mapping(address site => bool)) private _sites;
    mapping(uint64 studyId => mapping(address monitor => bool)) private _monitors;
    mapping(uint64 studyId => mapping(address participant => Participation)) private _participations;
    mapping(bytes32 dataId => DataPoint) private _dataPoints;
    mapping(bytes32 batchId => DataBatch) private _batches;

    // ------------------------------------------------------------------ modifiers

    /// @dev The caller acts for the study's sponsor: the sponsor institution itself or an
    /// active practitioner of it, while the sponsor is verified. Reverts for unknown studies.
    modifier onlyStudySponsor(uint64 studyId) {
        _checkStudySponsor(studyId);
        _;
    }

    // ------------------------------------------------------------------ constructor

    /// @param providers The registry that says which institutions are verified, of which kind,
    /// and whom their practitioners act for.
    constructor(IProviderRegistry providers) EIP712("MedLedger TrialRegistry", "1") {
        _PROVIDERS = providers;
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc ITrialRegistry
    /// @dev The sponsor is the caller's verified institution, which must be a research sponsor.
    function registerStudy(Protocol calldata protocol, address[] calldata sites, bytes32 summaryDigest)
        external
        returns (uint64 studyId)
    {
        address sponsor = _PROVIDERS.verifiedInstitutionOf(msg.sender);
        if (
            sponsor == address(0)
                || _PROVIDERS.participant(sponsor).kind != IProviderRegistry.InstitutionKind.ResearchSponsor
        ) revert TrialNotSponsor(msg.sender);
        _checkProtocol(protocol);
        studyId = ++_studyCount;
        uint40 now_ = uint40(block.timestamp);
        _studies[studyId] = Study({
            sponsor: sponsor,
            currentVersion: 1,
            reconsentVersion: 1,
            participants: 0,
            registeredAt: now_,
            firstEnrolmentAt: 0,
            dataCount: 0,
            attestedParticipants: false
        });
        emit StudyRegistered(studyId, sponsor, summaryDigest);
        _storeVersion(studyId, 1, protocol, false, _INITIAL_REASON);
        for (uint256 i = 0; i < sites.length; ++i) {
            _addSite(studyId, sites[i]);
        }
    }

    /// @inheritdoc ITrialRegistry
    function amendProtocol(uint64 studyId, Protocol calldata protocol, bool requiresReconsent, string calldata reason)
        external
        onlyStudySponsor(studyId)
        returns (uint32 version)
    {
        if (bytes(reason).length == 0) revert TrialReasonRequired();
        _checkProtocol(protocol);
        Study storage study = _studies[studyId];
        version = study.currentVersion + 1;
        study.currentVersion = version;
        if (requiresReconsent) study.reconsentVersion = version;
        _storeVersion(studyId, version, protocol, requiresReconsent, reason);
    }

    /// @inheritdoc ITrialRegistry
    /// @dev Order of refusals: sponsor, unknown version, frozen outcomes, zero primary outcome.
    function setOutcomes(uint64 studyId, uint32 version, bytes32 primaryOutcomes, bytes32 secondaryOutcomes)
        external
        onlyStudySponsor(studyId)
    {
        StoredVersion storage stored = _version(studyId, version);
        if (stored.outcomesFrozenAt != 0) revert TrialOutcomesFrozen(studyId, version);
        if (primaryOutcomes == bytes32(0)) revert TrialInvalidProtocol();
        stored.primaryOutcomes = primaryOutcomes;
        stored.secondaryOutcomes = secondaryOutcomes;
        emit OutcomesDefined(studyId, version, primaryOutcomes, secondaryOutcomes);
    }

    /// @inheritdoc ITrialRegistry
    /// @dev The pointer lives in the event only; zero withdraws the summary.
    function publishSummary(uint64 studyId, bytes32 summaryDigest) external onlyStudySponsor(studyId) {
        emit SummaryPublished(studyId, summaryDigest);
    }

    /// @inheritdoc ITrialRegistry
    function addSite(uint64 studyId, address site) external onlyStudySponsor(studyId) {
        _addSite(studyId, site);
    }

    /// @inheritdoc ITrialRegistry
    function requireAttestedParticipants(uint64 studyId) external onlyStudySponsor(studyId) {
        Study storage study = _studies[studyId];
        if (study.participants != 0) revert TrialAlreadyEnrolling(studyId);
        study.attestedParticipants = true;
        emit ParticipantAttestationRequired(studyId);
    }

    /// @inheritdoc ITrialRegistry
    /// @dev Idempotent: setting the current value again still emits `MonitorChanged`. The
    /// sponsor and its practitioners cannot be monitors (they read by the sponsor bit).
    function setMonitor(uint64 studyId, address monitor, bool allowed) external onlyStudySponsor(studyId) {
        address sponsor = _studies[studyId].sponsor;
        if (allowed && (monitor == sponsor || _PROVIDERS.verifiedInstitutionOf(monitor) == sponsor)) {
            revert TrialInvalidMonitor(monitor);
        }
        _monitors[studyId][monitor] = allowed;
        emit MonitorChanged(studyId, monitor, allowed);
    }

    /// @inheritdoc ITrialRegistry
    /// @dev Refusals in order: unknown study; deadline, nonce, signature; the caller acting for
    /// `request.site`, a site of the study; the version in force; purpose and reader bits; then,
    /// for a re-consent, withdrawal, the enrolling site, a version newer than the consented one.
    /// Any consent freezes the outcomes of the version consented to.
    function consent(ConsentRequest calldata request, bytes calldata signature) external {
        uint32 version = _checkConsent(request, signature);
        bool enrolment = _recordConsent(request, version);
        emit ConsentRecorded(
            request.studyId,
            request.participant,
            request.site,
            version,
            request.purpose,
            request.readers,
            request.delegate,
            enrolment,
            signature
        );
    }

    /// @inheritdoc ITrialRegistry
    /// @dev Refusals in order: unknown study, caller, not enrolled, already withdrawn. Access to
    /// data collected before the withdrawal stays as it was (see `canRead`).
    function withdraw(uint64 studyId, address participant) external {
        _study(studyId);
        Participation storage p = _participations[studyId][participant];
        // The delegate first: its withdrawal asks the registry nothing.
        if (msg.sender != p.delegate && msg.sender != _PROVIDERS.controllerOf(participant)) {
            revert TrialNotParticipantOrDelegate(msg.sender, participant);
        }
        _withdraw(studyId, participant, p);
    }

    /// @inheritdoc ITrialRegistry
    /// @dev Callable by anyone. Refusals in order: unknown study; deadline, nonce, signature;
    /// not enrolled, already withdrawn.
    function withdrawWithSignature(WithdrawalRequest calldata request, bytes calldata signature) external {
        uint64 studyId = request.studyId;
        _study(studyId);
        address participant = request.participant;
        _useSignature(_withdrawalDigest(request), participant, request.nonce, request.deadline, signature);
        _withdraw(studyId, participant, _participations[studyId][participant]);
    }

    /// @inheritdoc ITrialRegistry
    /// @dev Refusals in order: unknown study, not enrolled, caller not acting for the enrolling
    /// site, withdrawn, stale consent, zero pointer or commitment, already submitted (the id
    /// includes the version in force, so the same body may be anchored again under a later one).
    function submitData(uint64 studyId, address participant, bytes32 visit, bytes32 cidDigest, bytes32 commitment)
        external
        returns (bytes32 dataId)
    {
        Study storage study = _study(studyId);
        address site = _checkSubmission(studyId, study, participant);
        if (cidDigest == bytes32(0) || commitment == bytes32(0)) revert TrialInvalidData();
        uint32 version = study.currentVersion;
        dataId = _dataId(studyId, participant, visit, version, cidDigest, commitment);
        DataPoint storage point = _dataPoints[dataId];
        if (point.submittedAt != 0) revert TrialDataAlreadySubmitted(dataId);
        point.studyId = studyId;
        point.version = version;
        point.submittedAt = uint40(block.timestamp);
        study.dataCount += 1;
        _freezeOutcomes(studyId, version);
        emit DataSubmitted(studyId, participant, dataId, visit, version, cidDigest, commitment, site);
    }

    /// @inheritdoc ITrialRegistry
    /// @dev Refusals as for `submitData`, with zero root, manifest or count as `TrialInvalidData`.
    /// `count` binds: `verifyBatchData` proves positions `0 .. count - 1` only.
    function submitDataBatch(
        uint64 studyId,
        address participant,
        bytes32 visit,
        bytes32 root,
        bytes32 manifestDigest,
        uint32 count
    ) external returns (bytes32 batchId) {
        Study storage study = _study(studyId);
        address site = _checkSubmission(studyId, study, participant);
        if (root == bytes32(0) || manifestDigest == bytes32(0) || count == 0) revert TrialInvalidData();
        batchId = _batchId(studyId, participant, visit, root);
        DataBatch storage batch = _batches[batchId];
        if (batch.submittedAt != 0) revert TrialDataAlreadySubmitted(batchId);
        uint32 version = study.currentVersion;
        _batches[batchId] = DataBatch({
            participant: participant,
            studyId: studyId,
            version: version,
            site: site,
            submittedAt: uint40(block.timestamp),
            count: count
        });
        study.dataCount += count;
        _freezeOutcomes(studyId, version);
        emit DataBatchSubmitted(studyId, participant, batchId, visit, version, root, manifestDigest, count, site);
    }

    /// @inheritdoc ITrialRegistry
    function protocolHashOf(uint64 studyId, uint32 version) external view returns (bytes32 protocolHash) {
        _study(studyId);
        return _protocolHash(_version(studyId, version));
    }

    /// @inheritdoc ITrialRegistry
    function cancelSignatures() external {
        emit SignaturesCancelled(msg.sender, _useNonce(msg.sender));
    }

    /// @inheritdoc ITrialRegistry
    function getStudy(uint64 studyId) external view returns (Study memory study) {
        return _study(studyId);
    }

    /// @inheritdoc ITrialRegistry
    function getProtocolVersion(uint64 studyId, uint32 version)
        external
        view
        returns (ProtocolVersion memory protocolVersion)
    {
        _study(studyId);
        StoredVersion storage stored = _version(studyId, version);
        return ProtocolVersion({
            protocol: Protocol({
                protocolDigest: stored.protocolDigest,
                encrypted: stored.encrypted,
                primaryOutcomes: stored.primaryOutcomes,
                secondaryOutcomes: stored.secondaryOutcomes
            }),
            registeredAt: stored.registeredAt,
            outcomesFrozenAt: stored.outcomesFrozenAt,
            requiresReconsent: stored.requiresReconsent
        });
    }

    /// @inheritdoc ITrialRegistry
    function getParticipation(uint64 studyId, address participant)
        external
        view
        returns (Participation memory participation)
    {
        return _participations[studyId][participant];
    }

    /// @inheritdoc ITrialRegistry
    /// @dev Does not look at the site's standing: a suspended site's participants are still
    /// current, though nobody can submit their data until the site is reinstated.
    function isConsentCurrent(uint64 studyId, address participant) external view returns (bool current) {
        Participation storage p = _participations[studyId][participant];
        return p.site != address(0) && p.withdrawnAt == 0
            && p.consentedVersion >= _studies[studyId].reconsentVersion;
    }

    /// @inheritdoc ITrialRegistry
    /// @dev False for a participant who never enrolled. Withdrawal does not change the answer:
    /// it stops new data, and the data already collected stays readable by whoever the
    /// participant's last consent allowed (a trial must be able to analyse it; keys already
    /// delivered could not be taken back anyway). The enrolling site reads through its own
    /// account whatever its standing (it holds the data it collected) and through its
    /// practitioners while it is verified; the sponsor (reader bit `READER_SPONSOR`) only
    /// while verified; monitors (bit `READER_MONITORS`) while the sponsor keeps them and stays
    /// verified. The sponsor's own accounts are judged by the sponsor bit alone, whatever
    /// monitor list they are on, so a sponsor cannot read past a refusal by naming itself.
    function canRead(uint64 studyId, address participant, address reader) external view returns (bool allowed) {
        Participation storage p = _participations[studyId][participant];
        address site = p.site;
        if (site == address(0)) return false;
        if (reader == site || reader == _PROVIDERS.controllerOf(participant)) return true;
        uint8 readers = p.readers;
        address sponsor = _studies[studyId].sponsor;
        address institution = _PROVIDERS.verifiedInstitutionOf(reader);
        if (institution == site) return true;
        if (institution == sponsor || reader == sponsor) {
            return institution == sponsor && readers & READER_SPONSOR != 0;
        }
        return readers & READER_MONITORS != 0 && _monitors[studyId][reader]
            && _PROVIDERS.verifiedInstitutionOf(sponsor) == sponsor;
    }

    /// @inheritdoc ITrialRegistry
    function isSite(uint64 studyId, address site) external view returns (bool) {
        return _sites[studyId][site];
    }

    /// @inheritdoc ITrialRegistry
    function isMonitor(uint64 studyId, address monitor) external view returns (bool) {
        return _monitors[studyId][monitor];
    }

    /// @inheritdoc ITrialRegistry
    function getDataPoint(bytes32 dataId) external view returns (DataPoint memory point) {
        return _dataPoints[dataId];
    }

    /// @inheritdoc ITrialRegistry
    /// @dev An unknown batch reverts with `TrialDataNotInBatch(batchId, 0)`.
    function getDataBatch(bytes32 batchId) external view returns (DataBatch memory batch) {
        batch = _batches[batchId];
        if (batch.submittedAt == 0) revert TrialDataNotInBatch(batchId, bytes32(0));
    }

    /// @inheritdoc ITrialRegistry
    /// @dev The body's id uses the batch's version. For an unknown batch the error names the id
    /// the body would have under version 0.
    function verifyBatchData(
        uint64 studyId,
        address participant,
        bytes32 visit,
        bytes32 root,
        bytes32 cidDigest,
        bytes32 commitment,
        uint256 index,
        bytes32[] calldata proof
    ) external view returns (bytes32 dataId) {
        bytes32 batchId = _batchId(studyId, participant, visit, root);
        DataBatch storage batch = _batches[batchId];
        dataId = _dataId(studyId, participant, visit, batch.version, cidDigest, commitment);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(dataId))));
        if (batch.submittedAt == 0 || !IndexedMerkle.verifyCalldata(proof, root, leaf, index, batch.count)) {
            revert TrialDataNotInBatch(batchId, dataId);
        }
    }

    /// @inheritdoc ITrialRegistry
    function dataIdOf(
        uint64 studyId,
        address participant,
        bytes32 visit,
        uint32 version,
        bytes32 cidDigest,
        bytes32 commitment
    ) external view returns (bytes32 dataId) {
        return _dataId(studyId, participant, visit, version, cidDigest, commitment);
    }

    /// @inheritdoc ITrialRegistry
    function consentDigest(ConsentRequest calldata request) external view returns (bytes32 digest) {
        return _consentDigest(request);
    }

    /// @inheritdoc ITrialRegistry
    function withdrawalDigest(WithdrawalRequest calldata request) external view returns (bytes32 digest) {
        return _withdrawalDigest(request);
    }

    // ------------------------------------------------------------------ private

    function _storeVersion(
        uint64 studyId,
        uint32 version,
        Protocol calldata protocol,
        bool requiresReconsent,
        string memory reason
    ) private {
        _versions[studyId][version] = StoredVersion({
            protocolDigest: protocol.protocolDigest,
            primaryOutcomes: protocol.primaryOutcomes,
            secondaryOutcomes: protocol.secondaryOutcomes,
            registeredAt: uint40(block.timestamp),
            outcomesFrozenAt: 0,
            encrypted: protocol.encrypted,
            requiresReconsent: requiresReconsent
        });
        emit ProtocolVersionRegistered(
            studyId, version, protocol.protocolDigest, protocol.encrypted, requiresReconsent, reason
        );
        emit OutcomesDefined(studyId, version, protocol.primaryOutcomes, protocol.secondaryOutcomes);
    }

    function _addSite(uint64 studyId, address site) private {
        IProviderRegistry.Participant memory p = _PROVIDERS.participant(site);
        IProviderRegistry.InstitutionKind kind = p.kind;
        if (
            p.role != IProviderRegistry.Role.Institution || p.status != IProviderRegistry.InstitutionStatus.Verified
                || (
                    kind != IProviderRegistry.InstitutionKind.Hospital && kind != IProviderRegistry.InstitutionKind.Clinic
                        && kind != IProviderRegistry.InstitutionKind.Laboratory
                )
        ) revert TrialInvalidSite(site);
        if (_sites[studyId][site]) revert TrialSiteAlreadyAdded(studyId, site);
        _sites[studyId][site] = true;
        emit SiteAdded(studyId, site);
    }

    /// @dev Checks the deadline, the nonce and the signer, then consumes the nonce.
    function _useSignature(
        bytes32 digest,
        address participant,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (block.timestamp > deadline) revert TrialSignatureExpired(deadline);
        uint256 expected = nonces(participant);
        if (nonce != expected) revert TrialSignatureReplayed(participant, nonce, expected);
        (address signer, ECDSA.RecoverError failure,) = ECDSA.tryRecoverCalldata(digest, signature);
        // The participant's controller: the account itself, unless it is a recovered patient.
        if (failure != ECDSA.RecoverError.NoError || signer != _PROVIDERS.controllerOf(participant)) {
            revert TrialInvalidSignature(signer, participant);
        }
        _useNonce(participant);
    }

    /// @dev Checks everything about a consent that does not depend on the participant's
    /// standing, consumes the nonce and returns the version in force.
    function _checkConsent(ConsentRequest calldata request, bytes calldata signature)
        private
        returns (uint32 version)
    {
        uint64 studyId = request.studyId;
        Study storage study = _study(studyId);
        _useSignature(_consentDigest(request), request.participant, request.nonce, request.deadline, signature);
        address site = request.site;
        if (_PROVIDERS.verifiedInstitutionOf(msg.sender) != site || !_sites[studyId][site]) {
            revert TrialNotStudySite(msg.sender, studyId);
        }
        version = study.currentVersion;
        if (request.version != version) revert TrialVersionNotInForce(studyId, request.version, version);
        bytes32 current = _protocolHash(_versions[studyId][version]);
        if (request.protocolHash != current) {
            revert TrialProtocolChanged(studyId, version, request.protocolHash, current);
        }
        if (request.purpose == ConsentPurpose.None || request.readers > _READERS_ALL) {
            revert TrialInvalidConsent();
        }
    }

    /// @dev Enrols the participant or records their re-consent; freezes the version's outcomes.
    function _recordConsent(ConsentRequest calldata request, uint32 version) private returns (bool enrolment) {
        uint64 studyId = request.studyId;
        address participant = request.participant;
        uint40 now_ = uint40(block.timestamp);
        Participation storage p = _participations[studyId][participant];
        enrolment = p.site == address(0);
        if (enrolment) {
            Study storage study = _studies[studyId];
            // The same slot as `firstEnrolmentAt` below: the check adds no cold read to a study
            // without the rule.
            if (study.attestedParticipants) _PROVIDERS.requireAttestedBy(participant, request.site);
            _participations[studyId][participant] = Participation({
                site: request.site,
                consentedVersion: version,
                enrolledAt: now_,
                purpose: request.purpose,
                readers: request.readers,
                withdrawnAt: 0,
                delegate: request.delegate,
                consents: 1
            });
            study.participants += 1;
            if (study.firstEnrolmentAt == 0) study.firstEnrolmentAt = now_;
        } else {
            uint40 withdrawnAt = p.withdrawnAt;
            if (withdrawnAt != 0) revert TrialParticipantWithdrawn(studyId, participant, withdrawnAt);
            address enrollingSite = p.site;
            if (request.site != enrollingSite) revert TrialSiteMismatch(request.site, enrollingSite);
            if (version <= p.consentedVersion) revert TrialAlreadyConsented(studyId, participant, version);
            p.consentedVersion = version;
            p.purpose = request.purpose;
            p.readers = request.readers;
            p.delegate = request.delegate;
            p.consents += 1;
        }
        _freezeOutcomes(studyId, version);
    }

    /// @dev From a version's first consent or first data on, its outcomes never change.
    function _freezeOutcomes(uint64 studyId, uint32 version) private {
        StoredVersion storage stored = _versions[studyId][version];
        if (stored.outcomesFrozenAt == 0) stored.outcomesFrozenAt = uint40(block.timestamp);
    }

    function _withdraw(uint64 studyId, address participant, Participation storage p) private {
        if (p.site == address(0)) revert TrialNotEnrolled(studyId, participant);
        uint40 withdrawnAt = p.withdrawnAt;
        if (withdrawnAt != 0) revert TrialParticipantWithdrawn(studyId, participant, withdrawnAt);
        p.withdrawnAt = uint40(block.timestamp);
        emit ParticipantWithdrawn(studyId, participant, msg.sender);
    }

    /// @dev Returns the participant's enrolling site once the caller may submit for them now.
    function _checkSubmission(uint64 studyId, Study storage study, address participant)
        private
        view
        returns (address site)
    {
        Participation storage p = _participations[studyId][participant];
        site = p.site;
        if (site == address(0)) revert TrialNotEnrolled(studyId, participant);
        if (_PROVIDERS.verifiedInstitutionOf(msg.sender) != site) revert TrialNotParticipantSite(msg.sender, site);
        uint40 withdrawnAt = p.withdrawnAt;
        if (withdrawnAt != 0) revert TrialParticipantWithdrawn(studyId, participant, withdrawnAt);
        uint32 consented = p.consentedVersion;
        uint32 required = study.reconsentVersion;
        if (consented < required) revert TrialConsentStale(studyId, participant, consented, required);
    }

    function _checkStudySponsor(uint64 studyId) private view {
        if (_PROVIDERS.verifiedInstitutionOf(msg.sender) != _study(studyId).sponsor) {
            revert TrialNotStudySponsor(msg.sender, studyId);
        }
    }

    function _study(uint64 studyId) private view returns (Study storage study) {
        study = _studies[studyId];
        if (study.sponsor == address(0)) revert TrialUnknownStudy(studyId);
    }

    function _version(uint64 studyId, uint32 version) private view returns (StoredVersion storage stored) {
        stored = _versions[studyId][version];
        if (stored.registeredAt == 0) revert TrialUnknownVersion(studyId, version);
    }

    function _checkProtocol(Protocol calldata protocol) private pure {
        if (protocol.protocolDigest == bytes32(0) || protocol.primaryOutcomes == bytes32(0)) {
            revert TrialInvalidProtocol();
        }
    }

    function _dataId(
        uint64 studyId,
        address participant,
        bytes32 visit,
        uint32 version,
        bytes32 cidDigest,
        bytes32 commitment
    ) private view returns (bytes32) {
        return keccak256(
            abi.encode(block.chainid, address(this), studyId, participant, visit, version, cidDigest, commitment)
        );
    }

    function _batchId(uint64 studyId, address participant, bytes32 visit, bytes32 root)
        private
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, address(this), studyId, participant, visit, root));
    }

    /// @dev `ConsentRequest` holds only static fields, so `abi.encode` of the struct is the
    /// concatenation EIP-712's `encodeData` asks for.
    function _consentDigest(ConsentRequest calldata request) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CONSENT_TYPEHASH, request)));
    }

    function _protocolHash(StoredVersion storage stored) private view returns (bytes32) {
        return keccak256(abi.encode(stored.protocolDigest, stored.primaryOutcomes, stored.secondaryOutcomes));
    }

    function _withdrawalDigest(WithdrawalRequest calldata request) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(WITHDRAWAL_TYPEHASH, request.studyId, request.participant, request.nonce, request.deadline))
        );
    }
}
