"""Merkle trees for the contracts: sorted-pair trees (``MerkleTree``) whose proofs
OpenZeppelin's ``MerkleProof.verify`` accepts, used for sets (a policy's covered codes), and
positional trees (``IndexedTree``) that the contracts' ``IndexedMerkle`` library accepts, used for
batches, whose size must be binding.

Leaves follow OpenZeppelin's convention for a single ``bytes32`` value, a double hash:
``keccak256(bytes.concat(keccak256(abi.encode(id))))``, so a leaf can never be mistaken for an
inner node. Inner nodes hash their two children sorted (``Hashes.commutativeKeccak256``), so a
proof is just the list of siblings, leaf to root. The tree is the one OpenZeppelin's
``StandardMerkleTree`` builds: leaves sorted, stored right to left in a complete binary tree.

Written here rather than taken from a package because no maintained Python library produces
OpenZeppelin-compatible trees, nor trees of ``IndexedMerkle``'s layout; property tests check
every proof of both in Solidity.
"""

from __future__ import annotations

from dataclasses import dataclass

from medledger.keccak import keccak


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


ZERO_LEAF = bytes(32)
"""What fills the positions of an ``IndexedTree`` after its last leaf."""


@dataclass(frozen=True)
class IndexedTree:
    """A complete binary tree of depth ceil(log2(n)) over ids at positions ``0 .. n - 1``.

    The layout of the contracts' ``IndexedMerkle``: leaves are :func:`leaf_hash` of each id in
    the order given, positions after the last are :data:`ZERO_LEAF`, and each parent is
    ``keccak256(left || right)``. A proof is the siblings from the leaf up; the leaf's position
    (its index) tells left from right. As a position holds one leaf, a root with a declared
    count proves at most that many ids.
    """

    levels: tuple[tuple[bytes, ...], ...]
    count: int

    @classmethod
    def build(cls, ids: list[bytes]) -> IndexedTree:
        """Build the tree of ``ids`` (at least one), in their order."""
        if not ids:
            raise ValueError("a Merkle tree needs at least one leaf")
        depth = (len(ids) - 1).bit_length()
        level = [leaf_hash(i) for i in ids] + [ZERO_LEAF] * ((1 << depth) - len(ids))
        levels = [tuple(level)]
        while len(level) > 1:
            level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
            levels.append(tuple(level))
        return cls(tuple(levels), len(ids))

    @property
    def root(self) -> bytes:
        """The root."""
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """The sibling hashes from the leaf at ``index`` up to the root."""
        if not 0 <= index < self.count:
            raise IndexError(f"position {index} is outside a tree of {self.count}")
        return [level[(index >> height) ^ 1] for height, level in enumerate(self.levels[:-1])]


def verify_indexed(proof: list[bytes], root: bytes, item_id: bytes, index: int, count: int) -> bool:
    """Check a positional proof off chain, exactly as ``IndexedMerkle.verifyCalldata`` does."""
    if not 0 <= index < count or len(proof) != (count - 1).bit_length():
        return False
    node = leaf_hash(item_id)
    for height, sibling in enumerate(proof):
        node = keccak(node + sibling) if (index >> height) & 1 == 0 else keccak(sibling + node)
    return node == root
