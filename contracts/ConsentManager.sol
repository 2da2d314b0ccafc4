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
/// @notice Patients grant, revoke and delegate access to their records; emergency services
/// open time-boxed break-glass access; readers log their use; patients erase records.
/// @dev Invariants: after `revoke` or past `expiresAt` a grant gives no access; a grant never
/// covers a record outside its scope; an erased record gives nobody access; `hasAccess` reads
/// a fixed number of slots (three scopes), whatever the number of grants.
contract ConsentManager is IConsentManager, EIP712, Nonces {
    // ------------------------------------------------------------------ constants

    /// @notice Longest break-glass access one opening gives.
    uint40 public constant MAX_EMERGENCY_DURATION = 24 hours;

    /// @notice EIP-712 type hash of `GrantRequest`.
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "GrantRequest(address patient,address grantee,uint8 scopeKind,bytes32 scope,uint8 purpose,"
        "uint40 expiresAt,bytes32 envelopeDigest,uint256 nonce,uint256 deadline)"
    );

    bytes32 private constant _ALL_KEY = keccak256(abi.encode(ScopeKind.All, bytes32(0)));

    IProviderRegistry private immutable _PROVIDERS;
    IRecordRegistry private immutable _RECORDS;

    // ------------------------------------------------------------------ storage

    mapping(address patient => mapping(address grantee => mapping(bytes32 scopeKey => Grant))) private
        _grants;
    mapping(address patient => mapping(address delegate => bool)) private _delegates;
    mapping(RecordId id => bool) private _erased;

    // ------------------------------------------------------------------ modifiers

    modifier onlyPatientOrDelegate(address patient) {
        if (msg.sender != patient && !_delegates[patient][msg.sender]) {
            revert ConsentNotPatientOrDelegate(msg.sender, patient);
        }
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
        if (block.timestamp > request.deadline) revert ConsentSignatureExpired(request.deadline);
        uint256 expected = nonces(request.patient);
        if (request.nonce != expected) {
            revert ConsentSignatureReplayed(request.patient, request.nonce, expected);
        }
        (address signer, ECDSA.RecoverError failure,) = ECDSA.tryRecover(_digest(request), signature);
        if (
            failure != ECDSA.RecoverError.NoError
                || (signer != request.patient && !_delegates[request.patient][signer])
        ) revert ConsentInvalidSignature(signer, request.patient);
        _useNonce(request.patient);
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
        bytes32 scopeKey = _scopeKey(scopeKind, scope);
        Grant storage stored = _grants[patient][grantee][scopeKey];
        if (!_live(stored)) revert ConsentNotGranted(patient, grantee, scopeKey);
        stored.revokedAt = uint40(block.timestamp);
        emit AccessRevoked(patient, grantee, scopeKey, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function setDelegate(address delegate, bool allowed) external {
        if (_PROVIDERS.participant(msg.sender).role != IProviderRegistry.Role.Patient) {
            revert ConsentNotPatient(msg.sender);
        }
        if (delegate == address(0) || delegate == msg.sender) revert ConsentInvalidDelegate(delegate);
        _delegates[msg.sender][delegate] = allowed;
        emit DelegateChanged(msg.sender, delegate, allowed);
    }

    /// @inheritdoc IConsentManager
    function openEmergencyAccess(address patient, uint40 duration, string calldata reason)
        external
        returns (uint40 expiresAt)
    {
        address institution = _PROVIDERS.verifiedInstitutionOf(msg.sender);
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
        expiresAt = uint40(block.timestamp) + duration;
        _grants[patient][msg.sender][_ALL_KEY] =
            Grant({grantedAt: uint40(block.timestamp), expiresAt: expiresAt, revokedAt: 0, purpose: Purpose.Emergency});
        emit EmergencyAccessOpened(patient, msg.sender, institution, expiresAt, reason);
    }

    /// @inheritdoc IConsentManager
    function deliverKeys(
        address patient,
        address grantee,
        ScopeKind scopeKind,
        bytes32 scope,
        bytes32 envelopeDigest
    ) external {
        bytes32 scopeKey = _scopeKey(scopeKind, scope);
        if (!_live(_grants[patient][grantee][scopeKey])) revert ConsentNoLiveAccess(patient, grantee);
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
    function eraseRecord(RecordId id) external {
        address patient = _RECORDS.lookup(id).patient;
        if (patient == address(0)) revert ConsentUnknownRecord(id);
        if (msg.sender != patient && !_delegates[patient][msg.sender]) {
            revert ConsentNotPatientOrDelegate(msg.sender, patient);
        }
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
    function isDelegate(address patient, address delegate) external view returns (bool allowed) {
        return _delegates[patient][delegate];
    }

    /// @inheritdoc IConsentManager
    function isErased(RecordId id) external view returns (bool erased) {
        return _erased[id];
    }

    /// @inheritdoc IConsentManager
    function grantDigest(GrantRequest calldata request) external view returns (bytes32 digest) {
        return _digest(request);
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
        if (grantee == patient || _PROVIDERS.encryptionKey(grantee).length == 0) {
            revert ConsentInvalidGrantee(grantee);
        }
        _checkScope(patient, scopeKind, scope);
        scopeKey = _scopeKey(scopeKind, scope);
        _grants[patient][grantee][scopeKey] =
            Grant({grantedAt: uint40(block.timestamp), expiresAt: expiresAt, revokedAt: 0, purpose: purpose});
        emit AccessGranted(patient, grantee, scopeKey, scopeKind, scope, purpose, expiresAt, envelopeDigest, grantor);
    }

    function _checkScope(address patient, ScopeKind scopeKind, bytes32 scope) private view {
        bool valid;
        if (scopeKind == ScopeKind.Record) {
            valid = _RECORDS.lookup(RecordId.wrap(scope)).patient == patient;
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
        if (reader == patient) return purpose == Purpose.None || purpose == Purpose.PatientRequest;
        mapping(bytes32 => Grant) storage grants = _grants[patient][reader];
        return _covers(grants[_scopeKey(ScopeKind.Record, RecordId.unwrap(id))], purpose)
            || _covers(grants[_scopeKey(ScopeKind.Category, bytes32(uint256(record.category)))], purpose)
            || _covers(grants[_ALL_KEY], purpose);
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
