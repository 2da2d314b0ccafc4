"""Ethereum addresses as people type them: the one parser every command and entry point uses.

An address is ``0x`` followed by 40 hex digits. All lower case (or all upper case) carries no
checksum and is accepted; mixed case is an EIP-55 checksum and must be right, so that a mistyped
digit is caught instead of sending to (or granting) an address nobody holds. Every problem is an
:class:`~medledger.errors.InvalidAddress` with a one-line message.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, cast

from medledger.errors import InvalidAddress
from medledger.keccak import keccak

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

_HEX40 = re.compile(r"[0-9a-fA-F]{40}")


def parse_address(text: object, what: str = "address") -> ChecksumAddress:
    """The checksummed form of ``text``, or :class:`InvalidAddress` saying what is wrong.

    ``what`` names the value in the message (``"--patient"``, ``"GRANTEE"``, ``"site"``).
    """
    if not isinstance(text, str):
        raise InvalidAddress(str(text), f"expected a string, got {type(text).__name__}", what)
    value = text.strip()
    if not value:
        raise InvalidAddress(text, "it is empty (expected 0x and 40 hex digits)", what)
    if not value.startswith(("0x", "0X")):
        hint = " (add the 0x prefix)" if _HEX40.fullmatch(value) else ""
        raise InvalidAddress(text, f"it must start with 0x{hint}", what)
    digits = value[2:]
    if not _HEX40.fullmatch(digits):
        if all(c in "0123456789abcdefABCDEF" for c in digits):
            problem = f"it has {len(digits)} hex digits, not 40"
        else:
            problem = "expected 0x and 40 hex digits (0-9, a-f)"
        raise InvalidAddress(text, problem, what)
    candidate = checksum("0x" + digits)
    if digits != digits.lower() and digits != digits.upper() and candidate[2:] != digits:
        raise InvalidAddress(
            text,
            "its mixed-case EIP-55 checksum is wrong (a digit is mistyped? write it in lower "
            "case to skip the checksum)",
            what,
        )
    return candidate


@lru_cache(maxsize=65_536)  # the same few addresses recur in every event a command reads
def checksum(address: str | bytes) -> ChecksumAddress:
    """The EIP-55 form of an address (``0x`` and 40 hex digits, or its 20 bytes), unchecked:
    for addresses the chain or the package produced (:func:`parse_address` for input)."""
    digits = address.hex() if isinstance(address, bytes) else address[2:].lower()
    hashed = keccak(digits.encode()).hex()  # 64 nibbles: the first 40 mark the upper case
    marked = (c.upper() if int(h, 16) >= 8 else c for c, h in zip(digits, hashed, strict=False))
    return cast("ChecksumAddress", "0x" + "".join(marked))


def parse_addresses(values: list[str] | tuple[str, ...], what: str = "address") -> list[str]:
    """Every address of ``values`` checksummed (the first bad one refused)."""
    return [parse_address(v, what) for v in values]
