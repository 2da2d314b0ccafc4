"""Accounts named on the command line (``--account``).

- ``dev:N``: the devnet's funded test account N (Anvil's well-known test mnemonic). Refused on
  any chain that is not a local devnet, because these keys are public.
- ``ALIAS``: an Ape account (``ape accounts generate|import ALIAS``), an encrypted JSON keystore
  in ``$APE_DATA_FOLDER/accounts`` (default ``~/.ape/accounts``). Its passphrase comes from
  ``APE_ACCOUNTS_<ALIAS>_PASSPHRASE`` (Ape's own variable) or ``MEDLEDGER_PASSPHRASE``, so scripts
  run unattended; on a terminal it is asked for otherwise.
- ``env:VAR``: a private key held in the environment variable ``VAR``.
- ``signer:URL#0xADDRESS``: an account whose key stays in an external signer (Clef, Web3Signer)
  reached by JSON-RPC at ``URL``; ``,key=SPEC`` after the address names a local data key for
  encryption (``env:VAR`` or an alias); ``signer:NAME`` is the same from config.toml's
  ``[signers]`` table. See :mod:`medledger.signers`.

Keystores are read with eth-account directly (the same file format Ape writes), so the CLI does
not pay Ape's start-up time for every command. Every account comes back as a :class:`Key`
(an address and its private key: all the package uses of an account); ``dev:N`` and ``env:VAR``
are resolved with coincurve and hashlib alone (BIP-39 seed, BIP-32 derivation), so a command
that only reads does not import eth-account (about 0.2 s).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import sys
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import coincurve

from medledger.addresses import checksum
from medledger.errors import AccountError
from medledger.keccak import keccak

if TYPE_CHECKING:
    from collections.abc import Mapping

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_IDS = frozenset({31337, 1337})
DEV_ACCOUNT_COUNT = 20
DEV_PATH = "m/44'/60'/0'/0/{index}"
_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HARDENED = 0x80000000


class Signer(Protocol):
    """What the package uses of a signing account: its address and private key (a
    :class:`Key`, or an eth-account ``LocalAccount``). An external signer's account
    (:class:`medledger.signers.ExternalSigner`) has no signing key here: its ``key`` is its local
    data key, and transactions and typed data go to the signer (``Pipeline.send``,
    :func:`sign_typed_data`)."""

    @property
    def address(self) -> str: ...

    @property
    def key(self) -> bytes: ...


@dataclass(frozen=True)
class Key:
    """An account: its checksummed address and 32-byte private key (never shown)."""

    address: str
    key: bytes = field(repr=False)

    @classmethod
    def from_private_key(cls, key: bytes) -> Key:
        """The account of a private key (the address is the last 20 bytes of the keccak of
        its uncompressed public key)."""
        public = coincurve.PrivateKey(key).public_key.format(compressed=False)
        return cls(checksum(keccak(public[1:])[-20:]), bytes(key))


def ape_accounts_folder() -> Path:
    """Return the folder where Ape keeps its account keystores."""
    data = os.environ.get("APE_DATA_FOLDER")
    return (Path(data) if data else Path.home() / ".ape") / "accounts"


@lru_cache(maxsize=DEV_ACCOUNT_COUNT)
def dev_account(index: int) -> Key:
    """Return the devnet's funded test account ``index`` (0-19)."""
    if not 0 <= index < DEV_ACCOUNT_COUNT:
        raise AccountError(
            f"dev:{index}", f"devnet accounts are dev:0 to dev:{DEV_ACCOUNT_COUNT - 1}"
        )
    return Key.from_private_key(derive_key(DEV_MNEMONIC, DEV_PATH.format(index=index)))


def derive_key(mnemonic: str, path: str, passphrase: str = "") -> bytes:
    """The private key at a BIP-32 ``path`` (``m/44'/60'/0'/0/0``) of a BIP-39 mnemonic's
    seed, as every Ethereum wallet derives it (the words are not checked against a word
    list: this serves the devnet's public test mnemonic)."""
    words = unicodedata.normalize("NFKD", " ".join(mnemonic.split()))
    salt = unicodedata.normalize("NFKD", "mnemonic" + passphrase)
    seed = hashlib.pbkdf2_hmac("sha512", words.encode(), salt.encode(), 2048)
    node = hmac.digest(b"Bitcoin seed", seed, "sha512")
    key, chain_code = node[:32], node[32:]
    for step in path.split("/")[1:]:
        index = int(step.rstrip("'")) + (_HARDENED if step.endswith("'") else 0)
        if index >= _HARDENED:
            data = b"\x00" + key
        else:
            data = coincurve.PrivateKey(key).public_key.format(compressed=True)
        node = hmac.digest(chain_code, data + index.to_bytes(4, "big"), "sha512")
        child = (int.from_bytes(node[:32], "big") + int.from_bytes(key, "big")) % _CURVE_ORDER
        key, chain_code = child.to_bytes(32, "big"), node[32:]
    return key


def sign_typed_data(account: Signer, document: Mapping[str, Any]) -> bytes:
    """The account's EIP-712 signature of a typed-data document (``r || s || v``): by its own
    key, or asked of its external signer."""
    from medledger.signers import ExternalSigner

    if isinstance(account, ExternalSigner):
        return account.sign_typed_data(document)
    from medledger.crypto import eip712

    return eip712.sign(account.key, dict(document))


def load_account(spec: str, chain_id: int, signers: Mapping[str, str] | None = None) -> Signer:
    """Resolve an ``--account`` value to a signing account for a chain (``signers``: the
    aliases of config.toml's ``[signers]`` table, for ``signer:NAME``)."""
    spec = spec.strip()
    if spec.startswith("signer:"):
        from medledger import signers as external

        return external.parse(spec, lambda data: _data_key(data, chain_id), signers or {})
    if spec.startswith("dev:"):
        if chain_id not in DEV_CHAIN_IDS:
            raise AccountError(
                spec, f"test accounts are refused on chain {chain_id} (not a devnet)"
            )
        try:
            index = int(spec[4:])
        except ValueError:
            raise AccountError(spec, "expected dev:N with N a number") from None
        return dev_account(index)
    if spec.startswith("env:"):
        return _from_environment(spec, spec[4:])
    return _from_keystore(spec)


def _data_key(spec: str, chain_id: int) -> bytes:
    if spec.startswith("signer:"):
        raise AccountError(spec, "a data key is a local key (env:VAR or an alias)")
    return bytes(load_account(spec, chain_id).key)


def _from_environment(spec: str, variable: str) -> Key:
    value = os.environ.get(variable)
    if not value:
        raise AccountError(spec, f"environment variable {variable} is not set")
    digits = value.strip().removeprefix("0x").removeprefix("0X")
    try:
        key = bytes.fromhex(digits)
        if len(key) != 32:
            raise ValueError(len(key))
        return Key.from_private_key(key)
    except ValueError:
        raise AccountError(spec, f"{variable} does not hold a valid private key") from None


def _from_keystore(alias: str) -> Key:
    path = ape_accounts_folder() / f"{alias}.json"
    if not path.is_file():
        raise AccountError(
            alias,
            f"no keystore at {path} (create one with `ape accounts generate {alias}`, "
            "or use dev:N on the local devnet)",
        )
    try:
        keyfile = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AccountError(alias, f"keystore {path} is unreadable: {exc}") from None
    passphrase = os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE") or os.environ.get(
        "MEDLEDGER_PASSPHRASE"
    )
    if passphrase is None:
        if not sys.stdin.isatty():
            raise AccountError(
                alias, f"no passphrase: set APE_ACCOUNTS_{alias}_PASSPHRASE or MEDLEDGER_PASSPHRASE"
            )
        passphrase = getpass.getpass(f"Passphrase for account {alias!r}: ")
    from eth_account import Account  # the keystore format; only this path needs it

    try:
        key = Account.decrypt(keyfile, passphrase)
    except ValueError:
        raise AccountError(alias, "wrong passphrase for its keystore") from None
    return Key.from_private_key(bytes(key))
