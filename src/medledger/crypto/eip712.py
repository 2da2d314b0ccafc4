"""EIP-712 typed data: the digests MedLedger's contracts verify, and signing them.

Each contract names its domain (``"MedLedger <Contract>"``, version ``"1"``, the chain id and
its address); a request type is a list of ``(name, solidity type)`` fields in the order of the
contract's type hash. eth-account builds the digest (``encode_typed_data``) and signs it, so
nothing here hashes by hand; the contract tests keep their own independent copy as an oracle.
eth-account is imported when something is signed, not with this module (a command that only
reads never signs typed data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def typed_data(
    contract_name: str,
    chain_id: int,
    address: str,
    primary_type: str,
    fields: Sequence[tuple[str, str]],
    message: Mapping[str, Any],
) -> dict[str, Any]:
    """The full typed-data document of one request to ``MedLedger <contract_name>``."""
    return {
        "types": {
            "EIP712Domain": _DOMAIN,
            primary_type: [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": primary_type,
        "domain": {
            "name": f"MedLedger {contract_name}",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": address,
        },
        "message": dict(message),
    }


def sign(private_key: bytes, document: dict[str, Any]) -> bytes:
    """Sign a typed-data document: the 65-byte ``r || s || v`` signature."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    message = encode_typed_data(full_message=document)
    return bytes(Account.sign_message(message, private_key).signature)


_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def signer_of(document: dict[str, Any], signature: bytes) -> str | None:
    """The address that signed a typed-data document, or None for a signature the contracts'
    ``ECDSA.tryRecover`` refuses (not 65 bytes, a high ``s``, a ``v`` other than 27 or 28)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data
    from eth_keys.exceptions import BadSignature

    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    if int.from_bytes(signature[32:64], "big") > _HALF_ORDER:
        return None
    try:
        message = encode_typed_data(full_message=document)
        return str(Account.recover_message(message, signature=signature))
    except (ValueError, TypeError, BadSignature):  # BadSignature: an r that is not a point
        return None
