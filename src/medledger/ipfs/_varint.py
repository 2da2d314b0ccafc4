"""Unsigned LEB128 varints, the integer encoding shared by CIDs, protobuf and CAR files.

Hand-written because it is ten lines; the ``varint`` packages on PyPI add nothing but a dependency.
"""

from __future__ import annotations

_MAX_BYTES = 10  # 64-bit values need at most ten 7-bit groups


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as an unsigned varint."""
    if value < 0:
        raise ValueError(f"varints are unsigned, got {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode the varint at ``buf[pos:]``; return ``(value, position after it)``.

    Raises ``ValueError`` if the varint is truncated, longer than ten bytes, or not minimal
    (the multiformats specs forbid padded varints, so two encodings never name one value).
    """
    value = 0
    for i in range(_MAX_BYTES):
        if pos + i >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise ValueError("varint is not minimally encoded")
            return value, pos + i + 1
    raise ValueError("varint longer than 10 bytes")
