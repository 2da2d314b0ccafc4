// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @title IndexedMerkle
/// @notice Merkle proofs that fix a leaf's position, for batches whose size must be binding.
/// @dev Why not OpenZeppelin's `MerkleProof`: it hashes each pair in sorted order, so a proof
/// says nothing about where a leaf sits and a root says nothing about how many leaves it
/// holds; an issuer who declared a batch of `count` records could prove more. Here the tree
/// is a complete binary tree of depth `depth(count)`, leaves at positions `0 .. count - 1`
/// and `bytes32(0)` in the positions after them, each parent `keccak256(left || right)`. A
/// proof carries the position: bit `i` of `index` says whether the node at level `i` is a
/// right child. As each position of a tree of fixed depth holds exactly one leaf, at most
/// `count` distinct leaves verify against a root. The Python side
/// (`medledger.merkle.IndexedTree`) builds the same trees and is checked against this
/// library under hypothesis.
library IndexedMerkle {
    /// @notice Returns the depth of the tree that holds `count` leaves: ceil(log2(count)).
    /// @param count Number of leaves (at least 1).
    /// @return depth The depth (0 for one leaf, which is then the root).
    function depth(uint256 count) internal pure returns (uint256 depth) {
        while ((uint256(1) << depth) < count) {
            ++depth;
        }
    }

    /// @notice Tells whether `leaf` sits at position `index` of the tree of `count` leaves
    /// whose root is `root`.
    /// @param proof The sibling hashes from the leaf's level up.
    /// @param root The root.
    /// @param leaf The leaf hash.
    /// @param index The leaf's position.
    /// @param count The number of leaves the tree holds.
    /// @return valid True when the proof has the tree's depth and leads to `root`.
    function verifyCalldata(bytes32[] calldata proof, bytes32 root, bytes32 leaf, uint256 index, uint256 count)
        internal
        pure
        returns (bool valid)
    {
        if (index >= count || proof.length != depth(count)) return false;
        bytes32 node = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            node = (index >> i) & 1 == 0
                ? Hashes.efficientKeccak256(node, proof[i])
                : Hashes.efficientKeccak256(proof[i], node);
        }
        return node == root;
    }
}
