"""Settings: where local state lives and which chain and IPFS nodes to use.

All local state (devnet chain state, the embedded block store, configuration, key material)
lives under one directory, ``MEDLEDGER_HOME`` (default ``./.medledger``), so two homes never
mix. Settings come, in increasing priority, from defaults, ``$MEDLEDGER_HOME/config.toml`` and
environment variables::

    # $MEDLEDGER_HOME/config.toml
    [networks.sepolia]
    rpc = "https://rpc.example.org"     # any EVM JSON-RPC URL
    confirmations = 3                   # blocks before a write is reported (default 1)

    [ipfs]
    kubo = ["http://127.0.0.1:5001"]    # Kubo RPC API nodes to replicate to (optional)
    embedded = true                     # keep the embedded block store as well

    [signers]                           # --account signer:hospital (see medledger.signers)
    hospital = "https://signer.example.org:8550#0xADDRESS,key=env:HOSPITAL_DATA_KEY"

Environment: ``MEDLEDGER_HOME``, ``MEDLEDGER_NETWORK``, ``MEDLEDGER_ACCOUNT``,
``MEDLEDGER_DEPLOYMENTS`` (folder of ``<network>.json`` files, default ``./deployments``),
``MEDLEDGER_KUBO`` (comma-separated Kubo RPC URLs).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from medledger.errors import ConfigurationError

LOCAL_NETWORK = "local"


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one run."""

    home: Path
    deployments_dir: Path
    networks: dict[str, str] = field(default_factory=dict)
    confirmations: dict[str, int] = field(default_factory=dict)
    kubo_urls: tuple[str, ...] = ()
    embedded_store: bool = True
    default_network: str = LOCAL_NETWORK
    default_account: str | None = None
    signers: dict[str, str] = field(default_factory=dict, repr=False)  # URLs may hold secrets

    @property
    def devnet_dir(self) -> Path:
        """Folder of the local devnet's state file, log and process record."""
        return self.home / "devnet"

    @property
    def ipfs_dir(self) -> Path:
        """Folder of the embedded IPFS block store."""
        return self.home / "ipfs"

    @property
    def keys_dir(self) -> Path:
        """Folder of encrypted key material (never plain-text keys)."""
        return self.home / "keys"

    def confirmations_for(self, network: str) -> int:
        """Blocks a transaction on ``network`` must be under before a write is reported."""
        return self.confirmations.get(network, 1)

    def writable(self, folder: Path) -> Path:
        """``folder`` (under the home), created if need be, or a one-line ConfigurationError
        when it cannot be: a read-only or missing MEDLEDGER_HOME, a file in the way."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-check-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigurationError(
                "MEDLEDGER_HOME",
                f"{folder} cannot be written ({exc.strerror or type(exc).__name__}): "
                "point MEDLEDGER_HOME at a folder you can write",
            ) from None
        return folder

    def rpc_url_for(self, network: str) -> str | None:
        """Return the RPC URL configured for a named network, ``None`` for the local devnet."""
        if network == LOCAL_NETWORK:
            return None
        if network.startswith(("http://", "https://", "ws://", "wss://")):
            return network
        try:
            return self.networks[network]
        except KeyError:
            known = ", ".join([LOCAL_NETWORK, *sorted(self.networks)])
            raise ConfigurationError(
                "--network",
                f"unknown network {network!r} (known: {known}; or give an RPC URL, or add "
                f'[networks.{network}] rpc = "..." to {self.home / "config.toml"})',
            ) from None


def load_settings(home: Path | str | None = None) -> Settings:
    """Read settings from the environment and ``$MEDLEDGER_HOME/config.toml``."""
    home_path = Path(home or os.environ.get("MEDLEDGER_HOME") or ".medledger").expanduser()
    home_path = home_path.resolve()
    data = _read_config(home_path / "config.toml")

    networks: dict[str, str] = {}
    confirmations: dict[str, int] = {}
    for name, entry in _table(data, "networks").items():
        if not isinstance(entry, dict) or not isinstance(entry.get("rpc"), str):
            raise ConfigurationError(f"config.toml [networks.{name}]", 'needs rpc = "<url>"')
        networks[name] = entry["rpc"]
        depth = entry.get("confirmations", 1)
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 1_000:
            raise ConfigurationError(
                f"config.toml [networks.{name}] confirmations", "must be a number from 1 to 1000"
            )
        confirmations[name] = depth

    ipfs = _table(data, "ipfs")
    kubo_env = os.environ.get("MEDLEDGER_KUBO")
    kubo = kubo_env.split(",") if kubo_env else ipfs.get("kubo", [])
    if not isinstance(kubo, list) or not all(isinstance(u, str) for u in kubo):
        raise ConfigurationError("config.toml [ipfs] kubo", "must be a list of URLs")
    embedded = ipfs.get("embedded", True)
    if not isinstance(embedded, bool):
        raise ConfigurationError("config.toml [ipfs] embedded", "must be true or false")

    signers = _table(data, "signers")
    for name, target in signers.items():
        if not isinstance(target, str) or "://" not in target:
            raise ConfigurationError(
                f"config.toml [signers] {name}", 'must be "http(s)://HOST:PORT#0xADDRESS"'
            )

    deployments = os.environ.get("MEDLEDGER_DEPLOYMENTS") or data.get("deployments", "deployments")
    return Settings(
        home=home_path,
        deployments_dir=Path(str(deployments)).expanduser().resolve(),
        networks=networks,
        confirmations=confirmations,
        kubo_urls=tuple(u.strip() for u in kubo if u.strip()),
        embedded_store=embedded or not kubo,
        default_network=os.environ.get("MEDLEDGER_NETWORK") or str(data.get("network", "local")),
        default_account=os.environ.get("MEDLEDGER_ACCOUNT") or _optional_str(data, "account"),
        signers={name: str(target) for name, target in signers.items()},
    )


def _table(data: dict[str, object], key: str) -> dict[str, object]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigurationError(f"config.toml [{key}]", "must be a table")
    return value


def _optional_str(data: dict[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"config.toml {key}", "must be a string")
    return value


def _read_config(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(str(path), f"is not valid TOML: {exc}") from None
