// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
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
    mapping(bytes32 batchId => Batch) private _batches;

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
        _store(id, patient, msg.sender, cidDigest, commitment, category, previous, uint40(block.timestamp));
    }

    /// @inheritdoc IRecordRegistry
    function anchorBatch(bytes32 root, bytes32 manifestDigest, uint32 count) external returns (bytes32 batchId) {
        if (root == bytes32(0) || manifestDigest == bytes32(0) || count == 0) {
            revert RecordBatchInvalid(root, manifestDigest, count);
        }
        bool institutional = _PROVIDERS.verifiedInstitutionOf(msg.sender) != address(0);
        if (!institutional) {
            (, bool selfRegistered) = _PROVIDERS.canAnchor(msg.sender, msg.sender);
            if (!selfRegistered) revert RecordBatchIssuerNotAuthorized(msg.sender);
        }
        batchId = root;
        Batch storage batch = _batches[batchId];
        if (batch.issuer != address(0)) revert RecordBatchAlreadyAnchored(batchId);
        batch.issuer = msg.sender;
        batch.anchoredAt = uint40(block.timestamp);
        batch.count = count;
        batch.institutional = institutional;
        emit BatchAnchored(batchId, msg.sender, manifestDigest, count);
    }

    /// @inheritdoc IRecordRegistry
    function verifyBatchRecord(
        bytes32 batchId,
        address patient,
        bytes32 cidDigest,
        bytes32 commitment,
        uint8 category,
        RecordId previous,
        bytes32[] calldata proof
    ) external view returns (RecordId id) {
        (id,) = _proven(batchId, patient, cidDigest, commitment, category, previous, proof);
    }

    /// @inheritdoc IRecordRegistry
    function registerFromBatch(
        bytes32 batchId,
        address patient,
        bytes32 cidDigest,
        bytes32 commitment,
        uint8 category,
        RecordId previous,
        bytes32[] calldata proof
    ) external returns (RecordId id) {
        if (cidDigest == bytes32(0) || commitment == bytes32(0)) {
            revert RecordInvalidPointer(cidDigest, commitment);
        }
        if (category == 0) revert RecordInvalidCategory(category);
        Batch memory batch;
        (id, batch) = _proven(batchId, patient, cidDigest, commitment, category, previous, proof);
        (, bool patientRegistered) = _PROVIDERS.canAnchor(batch.issuer, patient);
        if (!patientRegistered) revert RecordPatientNotRegistered(patient);
        if (!batch.institutional && patient != batch.issuer) {
            revert RecordIssuerNotAuthorized(batch.issuer, patient);
        }
        _store(id, patient, batch.issuer, cidDigest, commitment, category, previous, batch.anchoredAt);
        emit RecordProven(id, batchId);
    }

    /// @inheritdoc IRecordRegistry
    function getBatch(bytes32 batchId) external view returns (Batch memory batch) {
        batch = _batches[batchId];
        if (batch.issuer == address(0)) revert RecordBatchNotFound(batchId);
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

    function _store(
        RecordId id,
        address patient,
        address issuer,
        bytes32 cidDigest,
        bytes32 commitment,
        uint8 category,
        RecordId previous,
        uint40 anchoredAt
    ) private {
        Record storage record = _records[id];
        if (record.patient != address(0)) revert RecordAlreadyAnchored(id);
        record.patient = patient;
        record.anchoredAt = anchoredAt;
        record.category = category;
        if (previous != RecordIds.NONE) _supersede(previous, id, patient);
        emit RecordAnchored(id, patient, issuer, previous, cidDigest, commitment, category);
    }

    function _proven(
        bytes32 batchId,
        address patient,
        bytes32 cidDigest,
        bytes32 commitment,
        uint8 category,
        RecordId previous,
        bytes32[] calldata proof
    ) private view returns (RecordId id, Batch memory batch) {
        batch = _batches[batchId];
        if (batch.issuer == address(0)) revert RecordBatchNotFound(batchId);
        id = RecordIds.derive(address(this), patient, batch.issuer, cidDigest, commitment, category, previous);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(id))));
        if (!MerkleProof.verifyCalldata(proof, batchId, leaf)) revert RecordNotInBatch(batchId, id);
    }

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
