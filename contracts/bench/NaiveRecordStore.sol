// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title NaiveRecordStore
/// @notice The benchmark's baseline, NOT part of MedLedger: record pointers stored the way
///         common open-source EHR contracts store them (a struct of strings pushed to a
///         per-patient array, one transaction per record), so `medledger bench` can report
///         MedLedger's anchoring against it in the same run. It has no access control.
contract NaiveRecordStore {
    struct Record {
        string cid;
        string recordType;
        address issuer;
        uint256 timestamp;
    }

    /// @notice A record was added.
    event RecordAdded(address indexed patient, address indexed issuer, string cid);

    /// @notice An empty CID string was given.
    error EmptyCid();

    mapping(address patient => Record[]) private _records;

    /// @notice Store a record pointer as strings, as the baseline designs do.
    /// @param patient The patient the record belongs to.
    /// @param cid The IPFS CID of the (encrypted) body, as text.
    /// @param recordType A free-text record type, as text.
    function addRecord(address patient, string calldata cid, string calldata recordType) external {
        if (bytes(cid).length == 0) revert EmptyCid();
        _records[patient].push(Record(cid, recordType, msg.sender, block.timestamp));
        emit RecordAdded(patient, msg.sender, cid);
    }

    /// @notice How many records a patient has.
    /// @param patient The patient.
    /// @return The number of records.
    function recordCount(address patient) external view returns (uint256) {
        return _records[patient].length;
    }

    /// @notice One record of a patient.
    /// @param patient The patient.
    /// @param index The record's position.
    /// @return The record.
    function recordAt(address patient, uint256 index) external view returns (Record memory) {
        return _records[patient][index];
    }
}
