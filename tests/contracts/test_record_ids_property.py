"""Python and Solidity agree on record ids (``RecordIds.derive``) and batch proofs.

``id = keccak256(abi.encode(chainid, registry, patient, issuer, cidDigest, commitment,
category, previous))``: a client computes the id before sending, and anyone re-derives it from
a ``RecordAnchored`` event, so the two must agree for every input. Batches are positional
``IndexedMerkle`` trees: clients build them with ``medledger.merkle.IndexedTree``, whose every
proof must verify on chain, and the tests build them with ``support.indexed_tree``, written
independently, so the two are also checked against each other.

Hypothesis and Ape fixtures: Ape's isolation runs an autouse, function-scoped fixture around
every test, and hypothesis refuses function-scoped fixtures (they are not reset between
examples) unless ``HealthCheck.function_scoped_fixture`` is suppressed. That is safe here
because the fixtures used are session-scoped; an example that writes to the chain runs inside
``isolated()`` so that examples never see each other's records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from medledger.crypto.merkle import IndexedTree, verify_indexed

from .support import Category, call_reverts, indexed_tree, record_id

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
words = st.binary(min_size=32, max_size=32)
non_zero_words = words.filter(any)
previous_ids = st.one_of(st.just(bytes(32)), words)
categories = st.one_of(st.sampled_from(list(Category)), st.integers(0, 255))

PROPERTY = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(
    patient=addresses,
    issuer=addresses,
    cid_digest=words,
    commitment=words,
    category=categories,
    previous=previous_ids,
)
def test_python_record_id_equals_compute_record_id(
    chain: Any,
    record_registry: Any,
    patient: str,
    issuer: str,
    cid_digest: bytes,
    commitment: bytes,
    category: int,
    previous: bytes,
) -> None:
    expected = record_id(
        chain.chain_id,
        record_registry.address,
        patient,
        issuer,
        cid_digest,
        commitment,
        category,
        previous,
    )
    on_chain = record_registry.computeRecordId(
        patient, issuer, cid_digest, commitment, category, previous
    )
    assert HexBytes(on_chain) == expected


@settings(PROPERTY, max_examples=20)
@given(
    cid_digest=non_zero_words,
    commitment=non_zero_words,
    category=st.integers(1, 255),
)
def test_anchored_record_id_equals_python_record_id(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    register_patient: Callable[..., Any],
    isolated: Callable[[], Any],
    cid_digest: bytes,
    commitment: bytes,
    category: int,
) -> None:
    with isolated():
        register_patient(patient)
        tx = record_registry.anchor(
            patient, cid_digest, commitment, category, bytes(32), sender=patient
        )
        (event,) = record_registry.RecordAnchored.from_receipt(tx)
    expected = record_id(
        chain.chain_id,
        record_registry.address,
        patient.address,
        patient.address,
        cid_digest,
        commitment,
        category,
        bytes(32),
    )
    assert HexBytes(event.id) == expected


def _batch_entries(size: int, salt: bytes) -> list[tuple[str, bytes, bytes, int, bytes]]:
    """``size`` distinct entries ``(patient, cidDigest, commitment, category, previous)`` drawn
    from ``salt``: random patients, non-zero pointers, categories 1..255, some updates."""
    entries = []
    for n in range(size):
        word = keccak(salt + n.to_bytes(4, "big"))
        patient = to_checksum_address(keccak(word + b"patient")[:20])
        previous = keccak(word + b"previous") if n % 3 == 2 else bytes(32)
        entries.append(
            (
                patient,
                keccak(word + b"cid"),
                keccak(word + b"commitment"),
                word[0] % 255 + 1,
                previous,
            )
        )
    return entries


@pytest.mark.networks  # call_reverts: eth-tester raises where Anvil answers with an error
@settings(PROPERTY, max_examples=25)
@given(size=st.integers(1, 40), salt=st.binary(min_size=32, max_size=32))
@example(size=1, salt=bytes(32))
@example(size=2, salt=bytes(32))
@example(size=5, salt=bytes(32))
@example(size=16, salt=bytes(32))
@example(size=17, salt=bytes(32))
@example(size=40, salt=bytes(32))
def test_every_indexed_tree_proof_verifies_on_chain_at_its_index_only(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    register_patient: Callable[..., Any],
    isolated: Callable[[], Any],
    size: int,
    salt: bytes,
) -> None:
    """``medledger.merkle.IndexedTree`` (what clients use to batch) and ``IndexedMerkle``
    agree for every batch size and every position; a proof never verifies at another position
    of the same batch."""
    entries = _batch_entries(size, salt)
    ids = [
        record_id(chain.chain_id, record_registry.address, e[0], patient.address, *e[1:])
        for e in entries
    ]
    tree = IndexedTree.build(ids)
    with isolated():
        register_patient(patient)
        tx = record_registry.anchorBatch(tree.root, b"\x01" * 32, size, sender=patient)
        (anchored,) = record_registry.BatchAnchored.from_receipt(tx)
        for index, (entry, expected) in enumerate(zip(entries, ids, strict=True)):
            proof = tree.proof(index)
            found = record_registry.verifyBatchRecord(patient, tree.root, entry, index, proof)
            assert HexBytes(found) == expected
        if size > 1:  # the last record's proof, offered at the first position
            call_reverts(
                record_registry.verifyBatchRecord,
                patient,
                tree.root,
                entries[-1],
                0,
                tree.proof(size - 1),
                sender=patient,
                error=record_registry.RecordNotInBatch,
                batchId=anchored.batchId,
                id=ids[-1],
            )


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(words, min_size=1, max_size=70))
def test_support_indexed_tree_and_package_indexed_tree_agree(ids: list[bytes]) -> None:
    """Two independent implementations of the ``IndexedMerkle`` layout give the same root and
    the same proof at every position, and each proof checks only at its own position."""
    root, proofs = indexed_tree(ids)
    tree = IndexedTree.build(ids)
    assert tree.root == bytes(root)
    count = len(ids)
    for index, item in enumerate(ids):
        assert tree.proof(index) == [bytes(p) for p in proofs[index]]
        assert verify_indexed(tree.proof(index), tree.root, item, index, count)
        assert not verify_indexed(tree.proof(index), tree.root, item, index + count, count)
        if ids.count(item) == 1 and count > 1:
            assert not verify_indexed(
                tree.proof(index), tree.root, item, (index + 1) % count, count
            )
