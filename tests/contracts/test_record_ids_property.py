"""Python and Solidity agree on record ids (``RecordIds.derive``) and batch proofs.

``id = keccak256(abi.encode(chainid, registry, patient, issuer, cidDigest, commitment,
category, previous))``: a client computes the id before sending, and anyone re-derives it from
a ``RecordAnchored`` event, so the two must agree for every input.

Hypothesis and Ape fixtures: Ape's isolation runs an autouse, function-scoped fixture around
every test, and hypothesis refuses function-scoped fixtures (they are not reset between
examples) unless ``HealthCheck.function_scoped_fixture`` is suppressed. That is safe here
because the fixtures used are session-scoped; an example that writes to the chain runs inside
``isolated()`` so that examples never see each other's records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medledger.merkle import MerkleTree

from .support import Category, record_id

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


@settings(PROPERTY, max_examples=15)
@given(
    records=st.lists(
        st.tuples(non_zero_words, non_zero_words, st.integers(1, 255), previous_ids),
        min_size=1,
        max_size=8,
        unique_by=lambda r: r[0],
    )
)
def test_every_proof_of_the_package_merkle_tree_verifies_on_chain(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    register_patient: Callable[..., Any],
    isolated: Callable[[], Any],
    records: list[tuple[bytes, bytes, int, bytes]],
) -> None:
    """``medledger.merkle`` (what clients use to batch) and ``MerkleProof`` agree."""
    ids = [
        record_id(
            chain.chain_id, record_registry.address, patient.address, patient.address, *fields
        )
        for fields in records
    ]
    tree = MerkleTree.build(ids)
    with isolated():
        register_patient(patient)
        tx = record_registry.anchorBatch(tree.root, b"\x01" * 32, len(ids), sender=patient)
        (anchored,) = record_registry.BatchAnchored.from_receipt(tx)
        for fields, expected in zip(records, ids, strict=True):
            found = record_registry.verifyBatchRecord(
                anchored.batchId, patient, *fields, tree.proof(expected)
            )
            assert HexBytes(found) == expected
