"""An account whose key stays in an external signer (``--account signer:URL#0xADDRESS``).

Institutions keep their keys in a signer such as Clef or Web3Signer and MedLedger asks it, over
JSON-RPC, for one signature at a time:

- ``eth_signTransaction``: one call per transaction; the answer is the raw signed transaction
  (Web3Signer answers the hex, Clef ``{"raw": ..., "tx": ...}``: both are taken). On a chain
  of the legacy fee market the request carries ``gasPrice`` instead of the EIP-1559 fees (which
  Clef and Web3Signer both sign as a legacy transaction), and the answer must be EIP-155
  replay-protected for the chain;
- ``eth_signTypedData_v4``: EIP-712 (grants, care relationships, trial consents);
- ``eth_accounts``: whether the signer holds the address at all, asked once.

A server that does not know the ``eth_`` name (JSON-RPC error -32601) is asked the same by the
name of Clef's documented external API (``account_signTransaction``,
``account_signTypedData``, ``account_list``).

Nothing a signer answers is trusted: a signed transaction must carry exactly the fields that were
asked for and recover to the account's address, and a typed-data signature must recover to it
too; anything else is refused (:class:`~medledger.errors.SignerRefused`) before it is sent.

The URL may carry credentials (``https://user:secret@host``); they are sent, never shown: every
message names the signer by scheme, host and port alone.

Encryption is not signing: sealing and opening records needs a private key in the process. An
account of a signer that also reads or writes records names a local *data key* after the
address (``signer:URL#0xADDRESS,key=env:VAR`` or ``,key=ALIAS``): its encryption key is
published with that key's own proof of possession, which the registry accepts for any account.

``signer:NAME`` names an entry of config.toml's ``[signers]`` table holding the rest
(``NAME = "URL#0xADDRESS[,key=SPEC]"``): a URL with credentials belongs there rather than on a
command line, where other users of the machine can see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import coincurve
import requests
from rlp.codec import decode_raw, encode_raw  # type: ignore[import-untyped]

from medledger.addresses import checksum
from medledger.errors import AccountError, NodeUnavailable, SignerRefused
from medledger.keccak import keccak

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

PREFIX = "signer:"
TIMEOUT_SECONDS = 120.0  # a person may be asked to approve in Clef's terminal
_METHOD_NOT_FOUND = -32601
_CLEF_NAMES = {
    "eth_accounts": "account_list",
    "eth_signTransaction": "account_signTransaction",
    "eth_signTypedData_v4": "account_signTypedData",
}
_HELD: set[tuple[str, str]] = set()  # signers that said they hold an account, this process
_SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def shown(url: str) -> str:
    """The URL as messages show it: scheme, host and port (no credentials, path or query)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class ExternalSigner:
    """An account whose transactions and typed data an external signer signs."""

    address: str
    url: str = field(repr=False)
    data_key: bytes | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"ExternalSigner({self.address} at {shown(self.url)})"

    @property
    def key(self) -> bytes:
        """The local data key (encryption, sameness), never the signing key."""
        if self.data_key is None:
            raise AccountError(
                self.label,
                "its key stays in the external signer, and this needs a local encryption key: "
                "name one after the address (signer:URL#0xADDRESS,key=env:VAR)",
            )
        return self.data_key

    @property
    def label(self) -> str:
        """How messages name this account (never the URL's credentials)."""
        return f"signer:{shown(self.url)}#{self.address}"

    def check(self) -> None:
        """Refuse a signer that is down or does not hold this account (``eth_accounts``, asked
        once a process: Clef may ask a person to approve it)."""
        if (self.url, self.address) in _HELD:
            return
        held = self._call("eth_accounts", [])
        if not isinstance(held, list) or self.address.lower() not in {str(a).lower() for a in held}:
            raise SignerRefused(self.label, "the signer does not hold this account")
        _HELD.add((self.url, self.address))

    def sign_eip1559(
        self, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int,
        max_fee: int, tip: int, value: int = 0,
    ) -> bytes:  # fmt: skip
        """The raw signed type-2 transaction, signed by the signer and checked here: the same
        fields as asked for, signed by this account (see the module)."""
        request: dict[str, Any] = {
            "from": self.address, "gas": hex(gas), "maxFeePerGas": hex(max_fee),
            "maxPriorityFeePerGas": hex(tip), "value": hex(value), "nonce": hex(nonce),
            "data": "0x" + data.hex(), "chainId": hex(chain_id), "type": "0x2",
        }  # fmt: skip
        target = b"" if to is None else bytes.fromhex(to[2:])
        asked = [_word(chain_id), _word(nonce), _word(tip), _word(max_fee), _word(gas), target,
                 _word(value), data, []]  # fmt: skip
        return self._checked(_unwrapped(self._signed_raw(request, to)), asked)

    def _signed_raw(self, request: dict[str, Any], to: str | None) -> bytes:
        """Ask ``eth_signTransaction`` (``to`` added unless the transaction creates a contract);
        the raw bytes of Web3Signer's hex answer or of Clef's ``{"raw", "tx"}``."""
        if to is not None:
            request["to"] = to
        answer = self._call("eth_signTransaction", [request])
        raw = answer.get("raw") if isinstance(answer, dict) else answer
        if not isinstance(raw, str) or not raw.startswith("0x"):
            raise SignerRefused(self.label, "the signer answered no raw transaction")
        return bytes.fromhex(raw[2:])

    def sign_legacy(
        self, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int,
        gas_price: int, value: int = 0,
    ) -> bytes:  # fmt: skip
        """The raw signed legacy transaction (EIP-155), signed by the signer and checked here
        like :meth:`sign_eip1559`."""
        request: dict[str, Any] = {
            "from": self.address, "gas": hex(gas), "gasPrice": hex(gas_price),
            "value": hex(value), "nonce": hex(nonce), "data": "0x" + data.hex(),
            "chainId": hex(chain_id),
        }  # fmt: skip
        target = b"" if to is None else bytes.fromhex(to[2:])
        asked = [_word(nonce), _word(gas_price), _word(gas), target, _word(value), data]
        signed = self._signed_raw(request, to)
        try:
            items = decode_raw(signed, True, 0)[0]
            if not isinstance(items, list) or len(items) != 9:
                raise ValueError("not a legacy transaction")
            if not all(isinstance(item, bytes) for item in items[6:]):
                raise ValueError("a list where a signature belongs")
            fields, (v, r, s) = items[:6], items[6:]
        except Exception as exc:  # rlp's DecodingError, or a typed transaction
            problem = f"the signed transaction is malformed ({exc})"
            raise SignerRefused(self.label, problem) from None
        if fields != asked:
            raise SignerRefused(self.label, "the signer returned another transaction than asked")
        recovery = int.from_bytes(v, "big") - 35 - 2 * chain_id
        if recovery not in (0, 1):
            raise SignerRefused(
                self.label,
                f"the signed transaction is not replay-protected for chain {chain_id} (EIP-155)",
            )
        self._signed_by_me(
            r, s, bytes([recovery]), encode_raw([*fields, _word(chain_id), b"", b""])
        )
        return signed

    def sign_typed_data(self, document: Mapping[str, Any]) -> bytes:
        """The 65-byte ``r || s || v`` EIP-712 signature, checked to recover to this account."""
        from eth_account import Account
        from eth_account.messages import encode_typed_data
        from eth_keys.exceptions import BadSignature

        answer = self._call("eth_signTypedData_v4", [self.address, _jsonable(document)])
        try:
            signature = bytes.fromhex(str(answer).removeprefix("0x"))
            signer = Account.recover_message(
                encode_typed_data(full_message=dict(document)), signature=signature
            )
        except (ValueError, TypeError, BadSignature):
            raise SignerRefused(self.label, "the signer answered no valid signature") from None
        if signer.lower() != self.address.lower():
            raise SignerRefused(self.label, f"the typed data came back signed by {signer}")
        return signature

    def _checked(self, raw: bytes, asked: list[Any]) -> bytes:
        try:
            if raw[:1] != b"\x02":
                raise ValueError("not a type-2 transaction")
            items = decode_raw(raw[1:], True, 0)[0]
            fields, (v, r, s) = items[:9], items[9:]
        except Exception as exc:  # rlp's DecodingError, or a list where bytes belong
            problem = f"the signed transaction is malformed ({exc})"
            raise SignerRefused(self.label, problem) from None
        if fields != asked:
            raise SignerRefused(self.label, "the signer returned another transaction than asked")
        if len(v) > 1 or int.from_bytes(v, "big") > 1:
            raise SignerRefused(self.label, "the signed transaction's signature is malformed")
        self._signed_by_me(r, s, v or b"\0", b"\x02" + encode_raw(fields))
        return raw

    def _signed_by_me(self, r: bytes, s: bytes, recovery: bytes, payload: bytes) -> None:
        """Refuse a signature of ``payload`` (the signed transaction's preimage) that is
        malformed (a high ``s``) or recovers to another address than this account's."""
        if not 0 < int.from_bytes(s, "big") <= _SECP256K1_HALF_ORDER:
            raise SignerRefused(self.label, "the signed transaction's signature is malformed")
        signature = r.rjust(32, b"\0") + s.rjust(32, b"\0") + recovery
        try:
            public = coincurve.PublicKey.from_signature_and_message(
                signature, keccak(payload), hasher=None
            )
        except Exception:  # no point for this r
            problem = "the signed transaction's signature is malformed"
            raise SignerRefused(self.label, problem) from None
        signer = checksum(keccak(public.format(compressed=False)[1:])[-20:])
        if signer != self.address:
            raise SignerRefused(self.label, f"the transaction came back signed by {signer}")

    def _call(self, method: str, params: list[Any]) -> Any:
        reply = _post(self.url, method, params)
        error = reply.get("error")
        if isinstance(error, dict) and error.get("code") == _METHOD_NOT_FOUND:
            reply = _post(self.url, _CLEF_NAMES[method], params)
            error = reply.get("error")
        if error is not None:
            message = error.get("message", error) if isinstance(error, dict) else error
            text = " ".join(str(message).split())[:200]
            raise SignerRefused(self.label, f"{method} refused: {text}")
        return reply.get("result")


def parse(
    spec: str, load_key: Callable[[str], bytes], aliases: Mapping[str, str]
) -> ExternalSigner:
    """An ``--account signer:URL#0xADDRESS[,key=SPEC]`` value, or ``signer:NAME`` for an entry
    of config.toml's ``[signers]`` table (``aliases``); ``load_key`` resolves the data key's
    own account spec to its private key."""
    body = spec[len(PREFIX) :]
    if "://" not in body:
        if body not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise AccountError(
                spec, f"no signer {body!r} in config.toml [signers] (configured: {known})"
            )
        body = aliases[body]
    url, _, fragment = body.partition("#")
    address, _, option = fragment.partition(",")
    shown_spec = f"{PREFIX}{shown(url) if url else ''}#{address}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AccountError(shown_spec, "expected signer:http(s)://HOST:PORT#0xADDRESS")
    from medledger.addresses import parse_address

    try:
        address = parse_address(address)
    except Exception:
        raise AccountError(shown_spec, "expected the account's address after '#'") from None
    data_key = None
    if option:
        name, _, value = option.partition("=")
        if name != "key" or not value:
            raise AccountError(shown_spec, f"unknown option {name!r} (expected ,key=SPEC)")
        data_key = load_key(value)
    return ExternalSigner(address, url, data_key)


def _post(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    try:
        reply = requests.post(url, json=body, timeout=TIMEOUT_SECONDS)
        reply.raise_for_status()
        answer = reply.json()
        if not isinstance(answer, dict):
            raise ValueError("not a JSON-RPC reply")
        return answer
    except (requests.RequestException, ValueError) as exc:
        raise NodeUnavailable("external signer", shown(url), type(exc).__name__) from None


def _unwrapped(raw: bytes) -> bytes:
    """A typed transaction as its envelope: a signer that RLP-encodes it as a byte string
    (go-ethereum's ``rlp.EncodeToBytes``) gets the string's content."""
    if raw[:1] and 0x80 <= raw[0] <= 0xBF:
        try:
            inner = decode_raw(raw, True, 0)[0]
        except Exception:
            return raw
        if isinstance(inner, bytes):
            return inner
    return raw


def _word(number: int) -> bytes:
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def _jsonable(value: Any) -> Any:
    """Typed data as JSON: bytes as 0x-hex (what signers expect for bytes fields)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
