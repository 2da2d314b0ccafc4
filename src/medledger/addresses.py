"""Ethereum addresses as people type them: the one parser every command and entry point uses.

An address is ``0x`` followed by 40 hex digits. All lower case (or all upper case) carries no
checksum and is accepted; mixed case is an EIP-55 checksum and must be right, so that a mistyped
digit is caught instead of sending to (or granting) an address nobody holds. Every problem is an
:class:`~medledger.errors.InvalidAddress` with a one-line message.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from eth_utils.address import is_checksum_address, to_checksum_address

from medledger.errors import InvalidAddress

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
    candidate = "0x" + digits
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(candidate):
        raise InvalidAddress(
            text,
            "its mixed-case EIP-55 checksum is wrong (a digit is mistyped? write it in lower "
            "case to skip the checksum)",
            what,
        )
    return to_checksum_address(candidate)


def parse_addresses(values: list[str] | tuple[str, ...], what: str = "address") -> list[str]:
    """Every address of ``values`` checksummed (the first bad one refused)."""
    return [parse_address(v, what) for v in values]
