"""Record ids and the context a record body is sealed in.

A record id commits to everything that identifies the record (``RecordIds.derive`` on chain);
the same fields, less the pointer and commitment, are the body's associated data, so a
ciphertext moved under another record does not open.
"""

from __future__ import annotations

from dataclasses import dataclass

from medledger.keccak import keccak

ZERO_ID = bytes(32)
AAD_PREFIX = b"medledger/record/v1"


@dataclass(frozen=True)
class Context:
    """What every body of one anchoring call shares."""

    chain_id: int
    registry: str
    issuer: str


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def derive_id(
    ctx: Context, patient: str, cid_digest: bytes, commitment: bytes, category: int,
    previous: bytes | None,
) -> bytes:  # fmt: skip
    """``RecordIds.derive`` on chain: keccak of the ABI encoding of the record's fields.

    The words are packed by hand because every field is a static type and eth-abi's encoder
    costs about 150 us a call, as much as sealing a 1 KB body; tests compare this with eth-abi.
    """
    return keccak(
        b"".join(
            (
                _word(ctx.chain_id),
                _address(ctx.registry),
                _address(patient),
                _address(ctx.issuer),
                cid_digest,
                commitment,
                _word(category),
                previous or ZERO_ID,
            )
        )
    )


def associated_data(ctx: Context, patient: str, category: int, previous: bytes | None) -> bytes:
    """The AES-GCM associated data binding a body to its record's identity (ABI words)."""
    return AAD_PREFIX + b"".join((
        _word(ctx.chain_id), _address(ctx.registry), _address(patient), _address(ctx.issuer),
        _word(category), previous or ZERO_ID,
    ))  # fmt: skip
