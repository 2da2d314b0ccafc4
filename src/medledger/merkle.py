"""Merkle trees whose proofs OpenZeppelin's ``MerkleProof.verify`` accepts.

Leaves follow OpenZeppelin's convention for a single ``bytes32`` value, a double hash:
``keccak256(bytes.concat(keccak256(abi.encode(id))))``, so a leaf can never be mistaken for an
inner node. Inner nodes hash their two children sorted (``Hashes.commutativeKeccak256``), so a
proof is just the list of siblings, leaf to root. The tree is the one OpenZeppelin's
``StandardMerkleTree`` builds: leaves sorted, stored right to left in a complete binary tree.

Written here rather than taken from a package because no maintained Python library produces
OpenZeppelin-compatible trees; it is 60 lines, and a property test checks every proof in
Solidity.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.crypto import keccak


def leaf_hash(record_id: bytes) -> bytes:
    """The leaf of a record id (OpenZeppelin's double-hashed leaf of ``abi.encode(bytes32)``)."""
    if len(record_id) != 32:
        raise ValueError("a record id is 32 bytes")
    return keccak(keccak(record_id))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """A complete binary tree over leaf hashes (the layout of OpenZeppelin's StandardMerkleTree)."""

    nodes: tuple[bytes, ...]
    positions: dict[bytes, int]

    @classmethod
    def build(cls, record_ids: list[bytes]) -> MerkleTree:
        """Build the tree of a batch of record ids."""
        if not record_ids:
            raise ValueError("a Merkle tree needs at least one leaf")
        leaves = sorted((leaf_hash(i) for i in record_ids), reverse=True)
        size = 2 * len(leaves) - 1
        nodes: list[bytes] = [b""] * size
        for offset, leaf in enumerate(leaves):
            nodes[size - 1 - offset] = leaf
        for index in range(size - len(leaves) - 1, -1, -1):
            nodes[index] = _pair(nodes[2 * index + 1], nodes[2 * index + 2])
        positions = {nodes[i]: i for i in range(size - len(leaves), size)}
        return cls(tuple(nodes), positions)

    @property
    def root(self) -> bytes:
        """The root (the batch id on chain)."""
        return self.nodes[0]

    def proof(self, record_id: bytes) -> list[bytes]:
        """The sibling hashes from the record's leaf up to the root."""
        index = self.positions[leaf_hash(record_id)]
        siblings: list[bytes] = []
        while index > 0:
            siblings.append(self.nodes[index - 1 if index % 2 == 0 else index + 1])
            index = (index - 1) // 2
        return siblings


def verify(proof: list[bytes], root: bytes, record_id: bytes) -> bool:
    """Check a proof off chain, exactly as ``MerkleProof.verify`` does on chain."""
    node = leaf_hash(record_id)
    for sibling in proof:
        node = _pair(node, sibling)
    return node == root
