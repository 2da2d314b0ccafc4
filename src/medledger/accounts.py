"""Accounts named on the command line (``--account``).

- ``dev:N``: the devnet's funded test account N (Anvil's well-known test mnemonic). Refused on
  any chain that is not a local devnet, because these keys are public.
- ``ALIAS``: an Ape account (``ape accounts generate|import ALIAS``), an encrypted JSON keystore
  in ``$APE_DATA_FOLDER/accounts`` (default ``~/.ape/accounts``). Its passphrase comes from
  ``APE_ACCOUNTS_<ALIAS>_PASSPHRASE`` (Ape's own variable) or ``MEDLEDGER_PASSPHRASE``, so scripts
  run unattended; on a terminal it is asked for otherwise.
- ``env:VAR``: a private key held in the environment variable ``VAR``.

Keystores are read with eth-account directly (the same file format Ape writes), so the CLI does
not pay Ape's start-up time for every command.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account import Account

from medledger.errors import AccountError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_IDS = frozenset({31337, 1337})
DEV_ACCOUNT_COUNT = 20

Account.enable_unaudited_hdwallet_features()


def ape_accounts_folder() -> Path:
    """Return the folder where Ape keeps its account keystores."""
    data = os.environ.get("APE_DATA_FOLDER")
    return (Path(data) if data else Path.home() / ".ape") / "accounts"


@lru_cache(maxsize=DEV_ACCOUNT_COUNT)
def dev_account(index: int) -> LocalAccount:
    """Return the devnet's funded test account ``index`` (0-9)."""
    if not 0 <= index < DEV_ACCOUNT_COUNT:
        raise AccountError(
            f"dev:{index}", f"devnet accounts are dev:0 to dev:{DEV_ACCOUNT_COUNT - 1}"
        )
    account: LocalAccount = Account.from_mnemonic(
        DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account


def load_account(spec: str, chain_id: int) -> LocalAccount:
    """Resolve an ``--account`` value to a signing account for a chain."""
    spec = spec.strip()
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


def _from_environment(spec: str, variable: str) -> LocalAccount:
    value = os.environ.get(variable)
    if not value:
        raise AccountError(spec, f"environment variable {variable} is not set")
    try:
        account: LocalAccount = Account.from_key(value.strip())
    except (ValueError, TypeError):
        raise AccountError(spec, f"{variable} does not hold a valid private key") from None
    return account


def _from_keystore(alias: str) -> LocalAccount:
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
    try:
        key = Account.decrypt(keyfile, passphrase)
    except ValueError:
        raise AccountError(alias, "wrong passphrase for its keystore") from None
    account: LocalAccount = Account.from_key(key)
    return account
