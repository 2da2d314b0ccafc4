// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";
import {RecordId, RecordIds} from "./libraries/RecordIds.sol";

/// @title RecordRegistry
/// @notice Anchors patient-owned medical record pointers; never stores medical data.
/// @dev Invariants: a record id, once anchored, keeps its patient, category and time forever;
/// each record has at most one successor; only writers that the ProviderRegistry authorises
/// for the patient can anchor. Storage: one slot per record, everything else in the event.
contract RecordRegistry is IRecordRegistry {
    // ------------------------------------------------------------------ immutables

    IProviderRegistry private immutable _PROVIDERS;

    // ------------------------------------------------------------------ storage

    mapping(RecordId id => Record) private _records;

    // ------------------------------------------------------------------ constructor

    /// @param providerRegistry The registry that says who may write for whom.
    constructor(IProviderRegistry providerRegistry) {
        _PROVIDERS = providerRegistry;
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IRecordRegistry
    function anchor(address patient, bytes32 cidDigest, bytes32 commitment, uint8 category, RecordId previous)
        external
        returns (RecordId id)
    {
        if (cidDigest == bytes32(0) || commitment == bytes32(0)) {
            revert RecordInvalidPointer(cidDigest, commitment);
        }
        if (category == 0) revert RecordInvalidCategory(category);
        (bool issuerMayWrite, bool patientRegistered) = _PROVIDERS.canAnchor(msg.sender, patient);
        if (!patientRegistered) revert RecordPatientNotRegistered(patient);
        if (!issuerMayWrite) revert RecordIssuerNotAuthorized(msg.sender, patient);

        id = RecordIds.derive(address(this), patient, msg.sender, cidDigest, commitment, category, previous);
        Record storage record = _records[id];
        if (record.patient != address(0)) revert RecordAlreadyAnchored(id);
        record.patient = patient;
        record.anchoredAt = uint40(block.timestamp);
        record.category = category;
        if (previous != RecordIds.NONE) _supersede(previous, id, patient);
        emit RecordAnchored(id, patient, msg.sender, previous, cidDigest, commitment, category);
    }

    /// @inheritdoc IRecordRegistry
    function getRecord(RecordId id) external view returns (Record memory record) {
        record = _records[id];
        if (record.patient == address(0)) revert RecordNotFound(id);
    }

    /// @inheritdoc IRecordRegistry
    function lookup(RecordId id) external view returns (Record memory record) {
        return _records[id];
    }

    /// @inheritdoc IRecordRegistry
    function exists(RecordId id) external view returns (bool anchored) {
        return _records[id].patient != address(0);
    }

    /// @inheritdoc IRecordRegistry
    function computeRecordId(
        address patient,
        address issuer,
        bytes32 cidDigest,
        bytes32 commitment,
        uint8 category,
        RecordId previous
    ) external view returns (RecordId id) {
        return RecordIds.derive(address(this), patient, issuer, cidDigest, commitment, category, previous);
    }

    /// @inheritdoc IRecordRegistry
    function providers() external view returns (IProviderRegistry registry) {
        return _PROVIDERS;
    }

    // ------------------------------------------------------------------ private

    function _supersede(RecordId previous, RecordId next, address patient) private {
        Record storage old = _records[previous];
        address oldPatient = old.patient;
        if (oldPatient == address(0)) revert RecordNotFound(previous);
        if (oldPatient != patient) revert RecordPatientMismatch(previous, oldPatient, patient);
        if (old.superseded) revert RecordAlreadySuperseded(previous);
        old.superseded = true;
        emit RecordSuperseded(previous, next);
    }
}
