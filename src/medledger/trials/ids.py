"""Trial data ids and contexts: a visit's id, a data body's id and a batch's id exactly as the
TrialRegistry derives them, and the associated data a body is sealed in."""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from medledger.errors import ConfigurationError


def visit_id(label: str) -> bytes:
    """A visit's on-chain id: keccak256 of its label text (``baseline``, ``week-4``...)."""
    if not label.strip():
        raise ConfigurationError("--visit", "a visit needs a label")
    return keccak(text=label.strip())


def data_id(
    chain_id: int,
    registry_address: str,
    study_id: int,
    participant: str,
    visit: bytes,
    version: int,
    cid_digest: bytes,
    commitment: bytes,
) -> bytes:
    """A data body's id, exactly as ``dataIdOf`` derives it on chain."""
    return keccak(
        abi_encode(
            ["uint256", "address", "uint64", "address", "bytes32", "uint32", "bytes32", "bytes32"],
            [
                chain_id,
                registry_address,
                study_id,
                participant,
                visit,
                version,
                cid_digest,
                commitment,
            ],
        )
    )


def batch_id(
    chain_id: int, registry_address: str, study_id: int, participant: str, visit: bytes, root: bytes
) -> bytes:
    """A batch's id, exactly as ``submitDataBatch`` derives it on chain."""
    return keccak(
        abi_encode(
            ["uint256", "address", "uint64", "address", "bytes32", "bytes32"],
            [chain_id, registry_address, study_id, participant, visit, root],
        )
    )


def data_context(
    chain_id: int, registry_address: str, study_id: int, participant: str, visit: bytes
) -> bytes:
    """The associated data a body of this participant's visit is sealed in (a ciphertext moved
    to another study, participant or visit does not open)."""
    return (
        f"medledger/trial-data:{chain_id}:{registry_address}:{study_id}:{participant}:"
        f"0x{visit.hex()}"
    ).encode()
