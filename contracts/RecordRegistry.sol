// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";
import {IndexedMerkle} from "./libraries/IndexedMerkle.sol";
import {RecordId, RecordIds} from "./libraries/RecordIds.sol";

/// @title RecordRegistry
/// @notice Anchors patient-owned medical record pointers; never stores medical data.
/// @dev Invariants: a record id, once anchored, keeps its patient, category, time and writer
/// forever; each record has at most one successor, written by the same writer; only the
/// patient, or a care institution (or its practitioner) holding a live care relationship with
/// the patient in the ProviderRegistry, writes a patient's records; a batch belongs to its
/// issuer and yields at most its declared count of records. Storage: one slot per record,
/// everything else in the event.
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
        _checkFields(cidDigest, commitment, category);
        (bool allowed, uint32 writer) = _PROVIDERS.mayWriteFor(msg.sender, patient);
        if (!allowed) revert RecordIssuerNotAuthorized(msg.sender, patient);
        id = RecordIds.derive(address(this), patient, msg.sender, cidDigest, commitment, category, previous);
        _store(id, patient, writer, category, previous, uint40(block.timestamp));
        emit RecordAnchored(id, patient, msg.sender, previous, cidDigest, commitment, category);
    }

    /// @inheritdoc IRecordRegistry
    function anchorBatch(bytes32 root, bytes32 manifestDigest, uint32 count) external returns (bytes32 batchId) {
        if (root == bytes32(0) || manifestDigest == bytes32(0) || count == 0) {
            revert RecordBatchInvalid(root, manifestDigest, count);
        }
        (bool mayWrite, uint32 writer) = _PROVIDERS.writerOf(msg.sender);
        if (!mayWrite) revert RecordBatchIssuerNotAuthorized(msg.sender);
        batchId = _batchId(msg.sender, root);
        Batch storage batch = _batches[batchId];
        if (batch.anchoredAt != 0) revert RecordBatchAlreadyAnchored(batchId);
        batch.anchoredAt = uint40(block.timestamp);
        batch.count = count;
        batch.writer = writer;
        emit BatchAnchored(batchId, msg.sender, root, manifestDigest, count);
    }

    /// @inheritdoc IRecordRegistry
    function verifyBatchRecord(
        address issuer,
        bytes32 root,
        Entry calldata entry,
        uint256 index,
        bytes32[] calldata proof
    ) external view returns (RecordId id) {
        (id,,) = _proven(issuer, root, entry, index, proof);
    }

    /// @inheritdoc IRecordRegistry
    function registerFromBatch(
        address issuer,
        bytes32 root,
        Entry calldata entry,
        uint256 index,
        bytes32[] calldata proof
    ) external returns (RecordId id) {
        _checkFields(entry.cidDigest, entry.commitment, entry.category);
        Batch memory batch;
        bytes32 batchId;
        (id, batch, batchId) = _proven(issuer, root, entry, index, proof);
        address patient = entry.patient;
        // A patient's own batch: written by the patient's controller (the id itself until a
        // recovery), or before a recovery by the id's own key.
        bool allowed = batch.writer == 0
            ? patient == issuer || _PROVIDERS.controllerOf(patient) == issuer
            : _PROVIDERS.hadCare(patient, batch.writer, batch.anchoredAt);
        if (!allowed) revert RecordIssuerNotAuthorized(issuer, patient);
        _store(id, patient, batch.writer, entry.category, entry.previous, batch.anchoredAt);
        emit RecordAnchored(id, patient, issuer, entry.previous, entry.cidDigest, entry.commitment, entry.category);
        emit RecordProven(id, batchId);
    }

    /// @inheritdoc IRecordRegistry
    function batchIdOf(address issuer, bytes32 root) external pure returns (bytes32 batchId) {
        return _batchId(issuer, root);
    }

    /// @inheritdoc IRecordRegistry
    function getBatch(bytes32 batchId) external view returns (Batch memory batch) {
        batch = _batches[batchId];
        if (batch.anchoredAt == 0) revert RecordBatchNotFound(batchId);
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

    function _checkFields(bytes32 cidDigest, bytes32 commitment, uint8 category) private pure {
        if (cidDigest == bytes32(0) || commitment == bytes32(0)) {
            revert RecordInvalidPointer(cidDigest, commitment);
        }
        if (category == 0) revert RecordInvalidCategory(category);
    }

    /// @dev Stores a new record (and supersedes its previous version); the caller emits
    /// `RecordAnchored` right after.
    function _store(RecordId id, address patient, uint32 writer, uint8 category, RecordId previous, uint40 anchoredAt)
        private
    {
        Record storage record = _records[id];
        if (record.patient != address(0)) revert RecordAlreadyAnchored(id);
        record.patient = patient;
        record.anchoredAt = anchoredAt;
        record.category = category;
        record.writer = writer;
        if (previous != RecordIds.NONE) _supersede(previous, id, patient, writer, anchoredAt);
    }

    function _proven(address issuer, bytes32 root, Entry calldata entry, uint256 index, bytes32[] calldata proof)
        private
        view
        returns (RecordId id, Batch memory batch, bytes32 batchId)
    {
        batchId = _batchId(issuer, root);
        batch = _batches[batchId];
        if (batch.anchoredAt == 0) revert RecordBatchNotFound(batchId);
        id = RecordIds.derive(
            address(this), entry.patient, issuer, entry.cidDigest, entry.commitment, entry.category, entry.previous
        );
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(id))));
        if (!IndexedMerkle.verifyCalldata(proof, root, leaf, index, batch.count)) revert RecordNotInBatch(batchId, id);
    }

    function _supersede(RecordId previous, RecordId next, address patient, uint32 writer, uint40 anchoredAt)
        private
    {
        Record storage old = _records[previous];
        address oldPatient = old.patient;
        if (oldPatient == address(0)) revert RecordNotFound(previous);
        if (oldPatient != patient) revert RecordPatientMismatch(previous, oldPatient, patient);
        uint32 oldWriter = old.writer;
        if (oldWriter != writer) revert RecordNotPreviousWriter(previous, writer, oldWriter);
        if (old.superseded) revert RecordAlreadySuperseded(previous);
        if (old.anchoredAt > anchoredAt) revert RecordPreviousNotEarlier(previous);
        old.superseded = true;
        emit RecordSuperseded(previous, next);
    }

    function _batchId(address issuer, bytes32 root) private pure returns (bytes32) {
        return keccak256(abi.encode(issuer, root));
    }
}
