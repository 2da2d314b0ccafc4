"""Keccak-256, the chain's hash, from eth-hash's pysha3 backend (a dependency of the package).

The backend is imported by name: ``eth_hash.auto`` tries pycryptodome first, whose cffi
start-up costs about 50 ms in every command, and eth-utils' ``keccak`` imports eth-utils whole
(about 170 ms, pydantic included). The digests are the same (tests compare them).
"""

from __future__ import annotations

from eth_hash.backends.pysha3 import keccak256


def keccak(data: bytes | bytearray) -> bytes:
    """The 32-byte Keccak-256 digest of ``data``."""
    return keccak256(data)
