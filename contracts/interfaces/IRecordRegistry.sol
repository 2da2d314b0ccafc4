// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

import {RecordId} from "../libraries/RecordIds.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";

/// @title IRecordRegistry
/// @notice Patient-owned record pointers: each record names its patient and category on chain;
/// its issuer, encrypted-body pointer (CID digest), salted plaintext commitment and previous
/// version are committed to by its id and emitted in `RecordAnchored`.
/// @dev Records are never deleted or changed: an update anchors a new version that names the
/// previous one, which is then marked superseded. One storage slot per record.
interface IRecordRegistry {
    // ------------------------------------------------------------------ types

    /// @notice The on-chain part of a record, packed in one storage slot.
    /// @param patient The patient the record is about.
    /// @param anchoredAt Block timestamp of the anchoring (of its batch, for batched records).
    /// @param category Category code (see the Python `Category` enum); never zero.
    /// @param superseded True once a newer version names this record as its previous one.
    /// @param writer Who wrote it: the directory number of the writing institution (whose
    /// practitioner may have signed), or 0 for the patient themself. Only the same writer
    /// may write its next version.
    struct Record {
        address patient;
        uint40 anchoredAt;
        uint8 category;
        bool superseded;
        uint32 writer;
    }

    /// @notice A batch of records anchored in one transaction by its Merkle root (one slot).
    /// Its id is `batchIdOf(issuer, root)`, so nobody but its issuer can take it.
    /// @param anchoredAt Block timestamp of the batch; zero for an unknown batch.
    /// @param count Number of records in the batch: positions `0 .. count - 1` of an
    /// `IndexedMerkle` tree, so no more than `count` records can ever be proven from it.
    /// @param writer The issuer's writer number (see `Record.writer`); 0 for a patient's own.
    struct Batch {
        uint40 anchoredAt;
        uint32 count;
        uint32 writer;
    }

    /// @notice The fields of one record of a batch (the record id is derived from them and the
    /// batch's issuer).
    struct Entry {
        address patient;
        bytes32 cidDigest;
        bytes32 commitment;
        uint8 category;
        RecordId previous;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when a record with the same id is already anchored.
    error RecordAlreadyAnchored(RecordId id);

    /// @notice Thrown when a record id is not anchored.
    error RecordNotFound(RecordId id);

    /// @notice Thrown when the issuer may not write records for the patient: it is not the
    /// patient, or not a care institution (or its practitioner) with a live care relationship
    /// with the patient (at the batch's time, for batched records).
    error RecordIssuerNotAuthorized(address issuer, address patient);

    /// @notice Thrown when the category code is zero.
    error RecordInvalidCategory(uint8 category);

    /// @notice Thrown when the content pointer or the commitment is zero.
    error RecordInvalidPointer(bytes32 cidDigest, bytes32 commitment);

    /// @notice Thrown when an update names a previous version that already has a successor.
    error RecordAlreadySuperseded(RecordId previous);

    /// @notice Thrown when an update names a previous version of another patient.
    error RecordPatientMismatch(RecordId previous, address expected, address actual);

    /// @notice Thrown when a batched new version would predate the version it replaces (its
    /// batch was anchored before that version).
    error RecordPreviousNotEarlier(RecordId previous);

    /// @notice Thrown when an update is written by another writer than the previous version's.
    error RecordNotPreviousWriter(RecordId previous, uint32 writer, uint32 previousWriter);

    /// @notice Thrown when a batch declares no records or has a zero root or manifest.
    error RecordBatchInvalid(bytes32 root, bytes32 manifestDigest, uint32 count);

    /// @notice Thrown when the caller already anchored a batch with the same root.
    error RecordBatchAlreadyAnchored(bytes32 batchId);

    /// @notice Thrown when a batch id is not anchored.
    error RecordBatchNotFound(bytes32 batchId);

    /// @notice Thrown when the caller may not anchor batches (not a care institution,
    /// practitioner of one, or registered patient).
    error RecordBatchIssuerNotAuthorized(address issuer);

    /// @notice Thrown when a Merkle proof does not place the record at its position in the batch.
    error RecordNotInBatch(bytes32 batchId, RecordId id);

    // ------------------------------------------------------------------ events

    /// @notice Emitted when a record (or a new version of one) is anchored.
    /// @param id The record id.
    /// @param patient The patient the record is about.
    /// @param issuer The account that wrote it.
    /// @param previous The previous version, or zero.
    /// @param cidDigest The sha2-256 digest of the encrypted body's CIDv0.
    /// @param commitment The salted commitment to the plaintext.
    /// @param category The category code.
    event RecordAnchored(
        RecordId indexed id,
        address indexed patient,
        address indexed issuer,
        RecordId previous,
        bytes32 cidDigest,
        bytes32 commitment,
        uint8 category
    );

    /// @notice Emitted when a record gets a newer version.
    event RecordSuperseded(RecordId indexed previous, RecordId indexed next);

    /// @notice Emitted when a batch is anchored; the manifest (public, in IPFS) lists its
    /// records' fields in tree order so that anyone can build proofs.
    event BatchAnchored(
        bytes32 indexed batchId, address indexed issuer, bytes32 root, bytes32 manifestDigest, uint32 count
    );

    /// @notice Emitted when a record of a batch is registered on its own.
    event RecordProven(RecordId indexed id, bytes32 indexed batchId);

    // ------------------------------------------------------------------ functions

    /// @notice Anchors a record (or, with `previous` set, a new version of one) for a patient.
    /// @dev Callable by the patient (writer 0), or by a verified care institution or its
    /// practitioner while the patient's care relationship with that institution is live. A
    /// new version must come from the previous version's writer.
    /// @param patient The patient the record is about.
    /// @param cidDigest The sha2-256 digest of the encrypted body's root block (CIDv0).
    /// @param commitment The salted commitment to the plaintext.
    /// @param category The category code (non-zero).
    /// @param previous The id of the version this one replaces, or zero for a new record.
    /// @return id The new record's id.
    function anchor(address patient, bytes32 cidDigest, bytes32 commitment, uint8 category, RecordId previous)
        external
        returns (RecordId id);

    /// @notice Anchors many records in one transaction: the root of an `IndexedMerkle` tree of
    /// their ids.
    /// @dev Leaves are `keccak256(bytes.concat(keccak256(abi.encode(id))))` with `id` derived as
    /// for `anchor`, the issuer being the caller. Callable by a verified care institution, its
    /// practitioner, or a registered patient (own records only). Whether the writer may write
    /// for each record's patient is checked when the record is registered, against the care
    /// relationship live at the batch's time.
    /// @param root The Merkle root.
    /// @param manifestDigest CIDv0 digest of the batch manifest in IPFS.
    /// @param count How many records the batch holds (binding: see `Batch.count`).
    /// @return batchId The batch id, `batchIdOf(caller, root)`.
    function anchorBatch(bytes32 root, bytes32 manifestDigest, uint32 count)
        external
        returns (bytes32 batchId);

    /// @notice Checks that a record sits at `index` of a batch and returns its id (no state
    /// change, no check of who may write for whom).
    /// @param issuer The batch's issuer.
    /// @param root The batch's root.
    /// @param entry The record's fields.
    /// @param index The record's position in the batch.
    /// @param proof The Merkle proof.
    /// @return id The record id; reverts with `RecordNotInBatch` when the proof fails.
    function verifyBatchRecord(
        address issuer,
        bytes32 root,
        Entry calldata entry,
        uint256 index,
        bytes32[] calldata proof
    ) external view returns (RecordId id);

    /// @notice Registers one record of a batch on its own, so that grants, claims and
    /// `getRecord` treat it exactly as a singly anchored record.
    /// @dev Callable by anyone (the proof is the authority). Its `anchoredAt` is the batch's;
    /// the issuer must have been allowed to write for the patient at that time.
    /// @param issuer The batch's issuer.
    /// @param root The batch's root.
    /// @param entry The record's fields.
    /// @param index The record's position in the batch.
    /// @param proof The Merkle proof.
    /// @return id The record id.
    function registerFromBatch(
        address issuer,
        bytes32 root,
        Entry calldata entry,
        uint256 index,
        bytes32[] calldata proof
    ) external returns (RecordId id);

    /// @notice Returns a batch's id: `keccak256(abi.encode(issuer, root))`.
    /// @param issuer The batch's issuer.
    /// @param root The batch's root.
    /// @return batchId The id.
    function batchIdOf(address issuer, bytes32 root) external pure returns (bytes32 batchId);

    /// @notice Returns a batch.
    /// @param batchId The batch id (`batchIdOf(issuer, root)`).
    /// @return batch The batch; reverts with `RecordBatchNotFound` for an unknown id.
    function getBatch(bytes32 batchId) external view returns (Batch memory batch);

    /// @notice Returns the on-chain part of a record.
    /// @param id The record id.
    /// @return record The record; reverts with `RecordNotFound` for an unknown id.
    function getRecord(RecordId id) external view returns (Record memory record);

    /// @notice Returns the on-chain part of a record, or all zero for an unknown id.
    /// @dev For other contracts (ConsentManager) that must not revert on an unknown id.
    /// @param id The record id.
    /// @return record The record, or all zero.
    function lookup(RecordId id) external view returns (Record memory record);

    /// @notice Tells whether a record id is anchored.
    /// @param id The record id.
    /// @return anchored True when anchored.
    function exists(RecordId id) external view returns (bool anchored);

    /// @notice Computes the id a record would get (see `RecordIds.derive`).
    /// @param patient The patient.
    /// @param issuer The writer.
    /// @param cidDigest The content pointer digest.
    /// @param commitment The plaintext commitment.
    /// @param category The category code.
    /// @param previous The previous version, or zero.
    /// @return id The record id.
    function computeRecordId(
        address patient,
        address issuer,
        bytes32 cidDigest,
        bytes32 commitment,
        uint8 category,
        RecordId previous
    ) external view returns (RecordId id);

    /// @notice Returns the ProviderRegistry that authorises writers.
    /// @return registry The registry.
    function providers() external view returns (IProviderRegistry registry);
}
