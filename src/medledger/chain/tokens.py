"""ERC-20 tokens the contracts are wired to: the claims token, checked before it is used.

A token chosen at deploy time must be a contract that answers ``decimals()`` with 6 or 18 and
``symbol()`` (a string, or a ``bytes32`` as some early tokens return it); anything else is
refused in one line before a contract is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from medledger.addresses import parse_address
from medledger.errors import ConfigurationError, TransactionReverted

if TYPE_CHECKING:
    from medledger.chain import Chain

#: Decimals a claims token may have (USDC-like and DAI-like stablecoins).
SUPPORTED_DECIMALS = (6, 18)
_DECIMALS = bytes.fromhex("313ce567")  # decimals()
_SYMBOL = bytes.fromhex("95d89b41")  # symbol()


@dataclass(frozen=True)
class ClaimsToken:
    """The ERC-20 the ClaimsManager pays claims in."""

    address: str
    symbol: str
    decimals: int


def inspect_token(chain: Chain, text: str, what: str = "--claims-token") -> ClaimsToken:
    """The token at ``text``, or a one-line ``ConfigurationError`` saying why it cannot be one."""
    address = parse_address(text, what)
    if not chain.code(address):
        raise ConfigurationError(what, f"{address} is not a contract on chain {chain.chain_id}")
    decimals = _answer(chain, address, _DECIMALS, "decimals()", what)
    try:
        (places,) = abi_decode(["uint8"], decimals)
    except DecodingError:
        raise ConfigurationError(what, f"{address} answers decimals() with no number") from None
    if places not in SUPPORTED_DECIMALS:
        raise ConfigurationError(
            what, f"{address} has {places} decimals; a claims token has 6 or 18"
        )
    return ClaimsToken(address, _symbol(_answer(chain, address, _SYMBOL, "symbol()", what)), places)


def _answer(chain: Chain, address: str, selector: bytes, function: str, what: str) -> bytes:
    try:
        raw = chain.eth_call(f"reading {function}", address, selector)
    except TransactionReverted:
        raw = b""
    if len(raw) < 32:
        raise ConfigurationError(what, f"{address} does not answer {function}: is it an ERC-20?")
    return raw


def _symbol(raw: bytes) -> str:
    try:
        (text,) = abi_decode(["string"], raw)
        return str(text)
    except (DecodingError, UnicodeDecodeError, OverflowError):
        return raw[:32].rstrip(b"\0").decode("utf-8", "replace")  # a bytes32 symbol
