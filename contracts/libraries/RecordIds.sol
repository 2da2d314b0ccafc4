// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

/// @notice Identifier of an anchored record, portable across chains and deployments.
type RecordId is bytes32;

using {eq as ==, neq as !=} for RecordId global;

function eq(RecordId a, RecordId b) pure returns (bool) {
    return RecordId.unwrap(a) == RecordId.unwrap(b);
}

function neq(RecordId a, RecordId b) pure returns (bool) {
    return RecordId.unwrap(a) != RecordId.unwrap(b);
}

/// @title RecordIds
/// @notice How a record id is derived: a commitment to everything that identifies the record.
/// @dev `id = keccak256(abi.encode(chainid, registry, patient, issuer, cidDigest, commitment,
/// category, previous))`. Because the id commits to its pointer and integrity commitment, the
/// metadata emitted in `RecordAnchored` can be checked against the id by anyone, a pointer
/// cannot be swapped under an existing id, and the same record can never be anchored twice
/// (a retried transaction reverts instead of writing a duplicate). Chain id and registry
/// address make ids unique across networks and deployments. Batch anchoring uses the same
/// derivation for its Merkle leaves, so a record proven from a batch has the id it would
/// have had on its own.
library RecordIds {
    /// @notice The zero id, used as "no previous version".
    RecordId internal constant NONE = RecordId.wrap(bytes32(0));

    /// @notice Derives a record id.
    /// @param registry The RecordRegistry the record belongs to.
    /// @param patient The patient the record is about.
    /// @param issuer The account that wrote the record.
    /// @param cidDigest The sha2-256 digest of the encrypted body's root block (CIDv0, dag-pb).
    /// @param commitment The salted commitment to the plaintext.
    /// @param category The record's category code.
    /// @param previous The previous version's id, or `NONE`.
    /// @return id The record id.
    function derive(
        address registry,
        address patient,
        address issuer,
        bytes32 cidDigest,
        bytes32 commitment,
        uint8 category,
        RecordId previous
    ) internal view returns (RecordId id) {
        return RecordId.wrap(
            keccak256(
                abi.encode(block.chainid, registry, patient, issuer, cidDigest, commitment, category, previous)
            )
        );
    }
}
