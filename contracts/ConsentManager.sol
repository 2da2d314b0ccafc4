// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IConsentManager} from "./interfaces/IConsentManager.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";
import {RecordId} from "./libraries/RecordIds.sol";

/// @title ConsentManager
/// @notice Patients (and their delegates) grant and revoke access to their records; emergency
/// services open time-boxed break-glass access; readers log their use; patients erase records.
/// @dev Invariants: after `revoke` or past `expiresAt` a grant gives no access; a grant never
/// covers a record outside its scope; only the patient, a delegate or a relayer of their
/// signature changes a grant; an emergency opening never touches a grant and gives access only
/// to the accounts of a still-verified emergency service until it expires or is closed; an
/// erased record gives nobody access; `hasAccess` reads a fixed number of slots (three scopes,
/// then the reader's service), whatever the number of grants.
contract ConsentManager is IConsentManager, EIP712, Nonces {
    // ------------------------------------------------------------------ constants

    /// @notice Longest break-glass access one opening gives.
    uint40 public constant MAX_EMERGENCY_DURATION = 24 hours;

    /// @notice How long after an opening ends before the same service may open again for the
    /// same patient.
    uint40 public constant EMERGENCY_COOLDOWN = 7 days;

    /// @notice EIP-712 type hash of `GrantRequest`.
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "GrantRequest(address patient,address grantee,uint8 scopeKind,bytes32 scope,uint8 purpose,"
        "uint40 expiresAt,bytes32 envelopeDigest,uint256 nonce,uint256 deadline)"
    );

    /// @notice EIP-712 type hash of `RevocationRequest`.
    bytes32 public constant REVOCATION_TYPEHASH = keccak256(
        "RevocationRequest(address patient,address grantee,uint8 scopeKind,bytes32 scope,uint256 nonce,"
        "uint256 deadline)"
    );

    bytes32 private constant _ALL_KEY = keccak256(abi.encode(ScopeKind.All, bytes32(0)));

    IProviderRegistry private immutable _PROVIDERS;
    IRecordRegistry private immutable _RECORDS;

    // ------------------------------------------------------------------ storage

    mapping(address patient => mapping(address grantee => mapping(bytes32 scopeKey => Grant))) private
        _grants;
    mapping(address patient => mapping(address institution => Emergency)) private _emergencies;
    mapping(RecordId id => bool) private _erased;

    // ------------------------------------------------------------------ modifiers

    modifier onlyPatientOrDelegate(address patient) {
        _checkActsFor(msg.sender, patient);
        _;
    }

    // ------------------------------------------------------------------ constructor

    /// @param providers The registry of participants and their keys.
    /// @param records The registry of records.
    constructor(IProviderRegistry providers, IRecordRegistry records) EIP712("MedLedger ConsentManager", "1") {
        _PROVIDERS = providers;
        _RECORDS = records;
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IConsentManager
    function grant(
        address patient,
        address grantee,
        ScopeKind scopeKind,
        bytes32 scope,
        Purpose purpose,
        uint40 expiresAt,
        bytes32 envelopeDigest
    ) external onlyPatientOrDelegate(patient) returns (bytes32 scopeKey) {
        return _grant(patient, grantee, scopeKind, scope, purpose, expiresAt, envelopeDigest, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function grantWithSignature(GrantRequest calldata request, bytes calldata signature)
        external
        returns (bytes32 scopeKey)
    {
        address signer = _useSignature(request.patient, request.nonce, request.deadline, _digest(request), signature);
        return _grant(
            request.patient,
            request.grantee,
            request.scopeKind,
            request.scope,
            request.purpose,
            request.expiresAt,
            request.envelopeDigest,
            signer
        );
    }

    /// @inheritdoc IConsentManager
    function revoke(address patient, address grantee, ScopeKind scopeKind, bytes32 scope)
        external
        onlyPatientOrDelegate(patient)
    {
        _revoke(patient, grantee, scopeKind, scope, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function revokeWithSignature(RevocationRequest calldata request, bytes calldata signature) external {
        address signer =
            _useSignature(request.patient, request.nonce, request.deadline, _revocationDigest(request), signature);
        _revoke(request.patient, request.grantee, request.scopeKind, request.scope, signer);
    }

    /// @inheritdoc IConsentManager
    function cancelSignatures(address patient) external onlyPatientOrDelegate(patient) {
        emit SignaturesCancelled(patient, _useNonce(patient), msg.sender);
    }

    /// @inheritdoc IConsentManager
    function openEmergencyAccess(address patient, uint40 duration, string calldata reason)
        external
        returns (uint40 expiresAt)
    {
        (address institution, uint32 round) = _PROVIDERS.actingInstitution(msg.sender);
        if (
            institution == address(0)
                || _PROVIDERS.participant(institution).kind != IProviderRegistry.InstitutionKind.EmergencyService
        ) revert ConsentNotEmergencyService(msg.sender);
        if (bytes(reason).length == 0) revert ConsentEmergencyReasonRequired();
        if (duration == 0 || duration > MAX_EMERGENCY_DURATION) {
            revert ConsentEmergencyTooLong(duration, MAX_EMERGENCY_DURATION);
        }
        if (_PROVIDERS.participant(patient).role != IProviderRegistry.Role.Patient) {
            revert ConsentNotPatient(patient);
        }
        Emergency storage opening = _emergencies[patient][institution];
        uint40 now_ = uint40(block.timestamp);
        if (opening.openedAt != 0) {
            uint256 until = uint256(_endOf(opening)) + EMERGENCY_COOLDOWN;
            if (now_ < until) revert ConsentEmergencyCoolingDown(patient, institution, until);
        }
        expiresAt = now_ + duration;
        _emergencies[patient][institution] =
            Emergency({openedAt: now_, expiresAt: expiresAt, closedAt: 0, round: round});
        emit EmergencyAccessOpened(patient, msg.sender, institution, expiresAt, reason);
    }

    /// @inheritdoc IConsentManager
    function closeEmergencyAccess(address patient, address institution) external onlyPatientOrDelegate(patient) {
        Emergency storage opening = _emergencies[patient][institution];
        if (!_emergencyLive(opening)) revert ConsentNoEmergencyAccess(patient, institution);
        opening.closedAt = uint40(block.timestamp);
        emit EmergencyAccessClosed(patient, institution, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function deliverKeys(
        address patient,
        address grantee,
        ScopeKind scopeKind,
        bytes32 scope,
        bytes32 envelopeDigest
    ) external {
        if (!_PROVIDERS.actsFor(msg.sender, patient)) {
            (bool writes,) = _PROVIDERS.mayWriteFor(msg.sender, patient);
            if (!writes) revert ConsentNotKeyHolder(msg.sender, patient);
        }
        _checkScope(scopeKind, scope);
        if (scopeKind == ScopeKind.Record) {
            RecordId id = RecordId.wrap(scope);
            if (_erased[id] || _RECORDS.lookup(id).patient != patient) revert ConsentUnknownRecord(id);
        }
        bytes32 scopeKey = _scopeKey(scopeKind, scope);
        if (
            !_live(_grants[patient][grantee][scopeKey])
                && (scopeKind != ScopeKind.All || !_emergencyCovers(patient, grantee))
        ) revert ConsentNoLiveAccess(patient, grantee);
        emit KeysDelivered(patient, grantee, scopeKey, envelopeDigest, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function logAccess(RecordId[] calldata ids) external {
        for (uint256 i = 0; i < ids.length; ++i) {
            RecordId id = ids[i];
            IRecordRegistry.Record memory record = _RECORDS.lookup(id);
            if (!_hasAccess(msg.sender, id, record, Purpose.None)) revert ConsentAccessDenied(msg.sender, id);
            emit RecordAccessed(id, record.patient, msg.sender);
        }
    }

    /// @inheritdoc IConsentManager
    function logAccessFor(address reader, RecordId[] calldata ids) external {
        (bool mayWrite, uint32 writer) = _PROVIDERS.writerOf(msg.sender);
        bool institution = mayWrite && writer != 0; // writer 0 is a patient, who serves nobody
        for (uint256 i = 0; i < ids.length; ++i) {
            RecordId id = ids[i];
            IRecordRegistry.Record memory record = _RECORDS.lookup(id);
            if (record.patient == address(0)) revert ConsentUnknownRecord(id);
            if (!institution || record.writer != writer) revert ConsentNotRecordWriter(msg.sender, id);
            if (!_hasAccess(reader, id, record, Purpose.None)) revert ConsentAccessDenied(reader, id);
            emit RecordAccessServed(id, record.patient, reader, msg.sender);
        }
    }

    /// @inheritdoc IConsentManager
    function eraseRecord(RecordId id) external {
        address patient = _RECORDS.lookup(id).patient;
        if (patient == address(0)) revert ConsentUnknownRecord(id);
        _checkActsFor(msg.sender, patient);
        _erased[id] = true;
        emit RecordErased(id, patient, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function hasAccess(address reader, RecordId id) external view returns (bool allowed) {
        return _hasAccess(reader, id, _RECORDS.lookup(id), Purpose.None);
    }

    /// @inheritdoc IConsentManager
    function hasAccessFor(address reader, RecordId id, Purpose purpose) external view returns (bool allowed) {
        if (purpose == Purpose.None) revert ConsentInvalidPurpose(purpose);
        return _hasAccess(reader, id, _RECORDS.lookup(id), purpose);
    }

    /// @inheritdoc IConsentManager
    function getGrant(address patient, address grantee, bytes32 scopeKey) external view returns (Grant memory) {
        return _grants[patient][grantee][scopeKey];
    }

    /// @inheritdoc IConsentManager
    function scopeKeyOf(ScopeKind scopeKind, bytes32 scope) external pure returns (bytes32 scopeKey) {
        return _scopeKey(scopeKind, scope);
    }

    /// @inheritdoc IConsentManager
    function emergencyOf(address patient, address institution) external view returns (Emergency memory opening) {
        return _emergencies[patient][institution];
    }

    /// @inheritdoc IConsentManager
    function isErased(RecordId id) external view returns (bool erased) {
        return _erased[id];
    }

    /// @inheritdoc IConsentManager
    function grantDigest(GrantRequest calldata request) external view returns (bytes32 digest) {
        return _digest(request);
    }

    /// @inheritdoc IConsentManager
    function revocationDigest(RevocationRequest calldata request) external view returns (bytes32 digest) {
        return _revocationDigest(request);
    }

    // ------------------------------------------------------------------ private

    function _grant(
        address patient,
        address grantee,
        ScopeKind scopeKind,
        bytes32 scope,
        Purpose purpose,
        uint40 expiresAt,
        bytes32 envelopeDigest,
        address grantor
    ) private returns (bytes32 scopeKey) {
        if (purpose == Purpose.None || purpose == Purpose.Emergency) revert ConsentInvalidPurpose(purpose);
        if (expiresAt <= block.timestamp) revert ConsentInvalidExpiry(expiresAt);
        if (grantee == patient || grantee == address(0)) revert ConsentInvalidGrantee(grantee);
        _checkScope(scopeKind, scope);
        scopeKey = _scopeKey(scopeKind, scope);
        _grants[patient][grantee][scopeKey] =
            Grant({grantedAt: uint40(block.timestamp), expiresAt: expiresAt, revokedAt: 0, purpose: purpose});
        emit AccessGranted(patient, grantee, scopeKey, scopeKind, scope, purpose, expiresAt, envelopeDigest, grantor);
    }

    function _revoke(address patient, address grantee, ScopeKind scopeKind, bytes32 scope, address revoker)
        private
    {
        bytes32 scopeKey = _scopeKey(scopeKind, scope);
        Grant storage stored = _grants[patient][grantee][scopeKey];
        if (!_live(stored)) revert ConsentNotGranted(patient, grantee, scopeKey);
        stored.revokedAt = uint40(block.timestamp);
        emit AccessRevoked(patient, grantee, scopeKey, revoker);
    }

    /// @dev Checks a signed request of `patient` (deadline, next nonce, signer the patient or a
    /// delegate; OpenZeppelin's ECDSA refuses malleable signatures) and uses its nonce.
    function _useSignature(address patient, uint256 nonce, uint256 deadline, bytes32 digest, bytes calldata signature)
        private
        returns (address signer)
    {
        if (block.timestamp > deadline) revert ConsentSignatureExpired(deadline);
        uint256 expected = nonces(patient);
        if (nonce != expected) revert ConsentSignatureReplayed(patient, nonce, expected);
        ECDSA.RecoverError failure;
        (signer, failure,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (
            failure != ECDSA.RecoverError.NoError || !_PROVIDERS.actsFor(signer, patient)
        ) revert ConsentInvalidSignature(signer, patient);
        _useNonce(patient);
    }

    function _checkScope(ScopeKind scopeKind, bytes32 scope) private pure {
        bool valid;
        if (scopeKind == ScopeKind.Record) {
            valid = scope != bytes32(0);
        } else if (scopeKind == ScopeKind.Category) {
            valid = uint256(scope) != 0 && uint256(scope) <= type(uint8).max;
        } else {
            valid = scope == bytes32(0);
        }
        if (!valid) revert ConsentInvalidScope(scopeKind, scope);
    }

    function _hasAccess(address reader, RecordId id, IRecordRegistry.Record memory record, Purpose purpose)
        private
        view
        returns (bool)
    {
        address patient = record.patient;
        if (patient == address(0) || _erased[id]) return false;
        mapping(bytes32 => Grant) storage grants = _grants[patient][reader];
        if (
            _covers(grants[_scopeKey(ScopeKind.Record, RecordId.unwrap(id))], purpose)
                || _covers(grants[_scopeKey(ScopeKind.Category, bytes32(uint256(record.category)))], purpose)
                || _covers(grants[_ALL_KEY], purpose)
        ) return true;
        if ((purpose == Purpose.None || purpose == Purpose.Emergency) && _emergencyCovers(patient, reader)) {
            return true;
        }
        // Asked last, so a grantee's check costs no extra call: the patient reads through its
        // live controller (the id itself until a recovery; nobody while frozen).
        return (purpose == Purpose.None || purpose == Purpose.PatientRequest)
            && reader == _PROVIDERS.controllerOf(patient);
    }

    /// @dev True when `reader` acts for a verified institution with a live opening for the
    /// patient made in its current round (only emergency services can have one).
    function _emergencyCovers(address patient, address reader) private view returns (bool) {
        (address institution, uint32 round) = _PROVIDERS.actingInstitution(reader);
        if (institution == address(0)) return false;
        Emergency storage opening = _emergencies[patient][institution];
        return opening.round == round && _emergencyLive(opening);
    }

    function _emergencyLive(Emergency storage opening) private view returns (bool) {
        return opening.openedAt != 0 && opening.closedAt == 0 && opening.expiresAt > block.timestamp;
    }

    /// @dev When an opening ended or will end: its closing, or else its expiry.
    function _endOf(Emergency storage opening) private view returns (uint40) {
        uint40 closedAt = opening.closedAt;
        return closedAt != 0 ? closedAt : opening.expiresAt;
    }

    function _checkActsFor(address account, address patient) private view {
        if (!_PROVIDERS.actsFor(account, patient)) {
            revert ConsentNotPatientOrDelegate(account, patient);
        }
    }

    function _covers(Grant storage stored, Purpose purpose) private view returns (bool) {
        return _live(stored) && (purpose == Purpose.None || stored.purpose == purpose);
    }

    function _live(Grant storage stored) private view returns (bool) {
        return stored.grantedAt != 0 && stored.revokedAt == 0 && stored.expiresAt > block.timestamp;
    }

    function _scopeKey(ScopeKind scopeKind, bytes32 scope) private pure returns (bytes32) {
        return keccak256(abi.encode(scopeKind, scope));
    }

    function _revocationDigest(RevocationRequest calldata request) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    REVOCATION_TYPEHASH,
                    request.patient,
                    request.grantee,
                    request.scopeKind,
                    request.scope,
                    request.nonce,
                    request.deadline
                )
            )
        );
    }

    function _digest(GrantRequest calldata request) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    GRANT_TYPEHASH,
                    request.patient,
                    request.grantee,
                    request.scopeKind,
                    request.scope,
                    request.purpose,
                    request.expiresAt,
                    request.envelopeDigest,
                    request.nonce,
                    request.deadline
                )
            )
        );
    }
}
