"""Settings: where local state lives and which chain and IPFS nodes to use.

All local state (devnet chain state, the embedded block store, configuration, key material)
lives under one directory, ``MEDLEDGER_HOME`` (default ``./.medledger``), so two homes never
mix. Settings come, in increasing priority, from defaults, ``$MEDLEDGER_HOME/config.toml`` and
environment variables::

    # $MEDLEDGER_HOME/config.toml
    [networks.sepolia]
    rpc = "https://rpc.example.org"     # any EVM JSON-RPC URL
    profile = "sepolia"                 # fills the four keys below (see medledger.networks)
    chain_id = 11155111                 # checked against eth_chainId before anything is sent
    confirmations = 3                   # blocks before a write is reported (default 1)
    fee_market = "eip1559"              # or "legacy" (default: read from the latest block)
    log_block_range = 2000              # blocks per eth_getLogs request (default 2000)
    claims_token = "0x..."              # the ERC-20 claims are paid in (chosen at deploy)

    [ipfs]
    kubo = ["http://127.0.0.1:5001"]    # Kubo RPC API nodes to replicate to (optional)
    embedded = true                     # keep the embedded block store as well
    kubo_auth_file = "/etc/medledger/kubo-auth"   # or kubo_auth_env = "VAR" (see below)

    [[ipfs.pinning]]                    # a remote pinning service (IPFS Pinning Service API)
    name = "pinata"
    endpoint = "https://api.pinata.cloud/psa"
    token_env = "PINATA_TOKEN"          # or token_file = "/run/secrets/pinata-token"
    wait = 60                           # seconds to wait for "pinned" (default 0: queued is enough)

    [signers]                           # --account signer:hospital (see medledger.signers)
    hospital = "https://signer.example.org:8550#0xADDRESS,key=env:HOSPITAL_DATA_KEY"

Environment: ``MEDLEDGER_HOME``, ``MEDLEDGER_NETWORK``, ``MEDLEDGER_ACCOUNT``,
``MEDLEDGER_DEPLOYMENTS`` (folder of the deployment files, one per chain, default
``./deployments``),
``MEDLEDGER_KUBO`` (comma-separated Kubo RPC URLs), ``MEDLEDGER_KUBO_AUTH`` (the Kubo RPC
secret when no ``kubo_auth_*`` key names one).

Secrets (a Kubo RPC secret, a pinning service's token) are never written in ``config.toml`` nor
kept in the project: the configuration names an environment variable or a file outside any git
work tree, read only when a store is opened. A Kubo secret has the form of Kubo's
``API.Authorizations`` ``AuthSecret``: ``bearer:TOKEN``, ``basic:USER:PASSWORD`` or a bare token.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from medledger.errors import ConfigurationError
from medledger.networks import (
    DEFAULT_LOG_BLOCK_RANGE,
    FEE_MARKETS,
    PROFILES,
    NetworkSettings,
    Profile,
)

LOCAL_NETWORK = "local"
NETWORK_KEYS = (
    "rpc", "profile", "chain_id", "confirmations", "fee_market", "log_block_range", "claims_token",
)  # fmt: skip
KUBO_AUTH_ENV = "MEDLEDGER_KUBO_AUTH"


@dataclass(frozen=True)
class SecretSource:
    """Where a secret is read from: an environment variable or a file (never its value)."""

    setting: str
    env: str | None = None
    file: Path | None = None

    def read(self) -> str:
        """The secret, or a one-line ConfigurationError naming where it was looked for."""
        if self.env is not None:
            value = os.environ.get(self.env, "").strip()
            if not value:
                raise ConfigurationError(
                    self.setting, f"the environment variable {self.env} is not set"
                )
            return value
        assert self.file is not None
        if _in_git_work_tree(self.file):
            raise ConfigurationError(
                self.setting,
                f"{self.file} is inside a git work tree: keep secrets outside the project",
            )
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            problem = getattr(exc, "strerror", None) or type(exc).__name__
            raise ConfigurationError(
                self.setting, f"{self.file} cannot be read ({problem})"
            ) from None
        if not value:
            raise ConfigurationError(self.setting, f"{self.file} is empty")
        return value


@dataclass(frozen=True)
class PinningSettings:
    """One remote pinning service (IPFS Pinning Service API) from ``[[ipfs.pinning]]``."""

    name: str
    endpoint: str
    token: SecretSource
    wait: float = 0.0


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one run."""

    home: Path
    deployments_dir: Path
    networks: dict[str, str] = field(default_factory=dict)
    confirmations: dict[str, int] = field(default_factory=dict)
    claims_tokens: dict[str, str] = field(default_factory=dict)
    kubo_urls: tuple[str, ...] = ()
    embedded_store: bool = True
    kubo_auth: SecretSource | None = None
    pinning: tuple[PinningSettings, ...] = ()
    default_network: str = LOCAL_NETWORK
    default_account: str | None = None
    signers: dict[str, str] = field(default_factory=dict, repr=False)  # URLs may hold secrets
    #: Every ``[networks.NAME]`` entry in full, its profile applied.
    network_settings: dict[str, NetworkSettings] = field(default_factory=dict)

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
        """Blocks a transaction on ``network`` (a name, or the URL of a named one) must be under
        before a write is reported."""
        entry = self.network_for(network)
        return entry.confirmations if entry else 1

    def network_for(self, network: str) -> NetworkSettings | None:
        """The ``[networks.NAME]`` entry of ``network`` (a name, or the URL of a named one;
        the first in the file when several name one URL); ``None`` for any other."""
        if network in self.network_settings:
            return self.network_settings[network]
        url = network.rstrip("/")
        return next((n for n in self.network_settings.values() if n.rpc.rstrip("/") == url), None)

    def log_block_range_for(self, network: str) -> int:
        """The most blocks one ``eth_getLogs`` request of ``network`` spans (the devnet's
        profile for the local devnet)."""
        if network == LOCAL_NETWORK:
            return PROFILES["devnet"].log_block_range
        entry = self.network_for(network)
        return entry.log_block_range if entry else DEFAULT_LOG_BLOCK_RANGE

    def claims_token_for(self, network: str) -> str | None:
        """The claims token configured for ``network`` (a name, or the URL of a named one)."""
        if network in self.claims_tokens:
            return self.claims_tokens[network]
        named = [n for n, url in self.networks.items() if url.rstrip("/") == network.rstrip("/")]
        return next((self.claims_tokens[n] for n in named if n in self.claims_tokens), None)

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

    entries = {name: _network(name, entry) for name, entry in _table(data, "networks").items()}
    networks = {name: n.rpc for name, n in entries.items()}
    confirmations = {name: n.confirmations for name, n in entries.items()}
    claims_tokens = {name: n.claims_token for name, n in entries.items() if n.claims_token}

    ipfs = _table(data, "ipfs")
    kubo_env = os.environ.get("MEDLEDGER_KUBO")
    kubo = kubo_env.split(",") if kubo_env else ipfs.get("kubo", [])
    if not isinstance(kubo, list) or not all(isinstance(u, str) for u in kubo):
        raise ConfigurationError("config.toml [ipfs] kubo", "must be a list of URLs")
    embedded = ipfs.get("embedded", True)
    if not isinstance(embedded, bool):
        raise ConfigurationError("config.toml [ipfs] embedded", "must be true or false")

    kubo_auth = _secret_source(ipfs, "kubo_auth", "config.toml [ipfs] kubo_auth")
    if kubo_auth is None and os.environ.get(KUBO_AUTH_ENV):
        kubo_auth = SecretSource(KUBO_AUTH_ENV, env=KUBO_AUTH_ENV)
    pinning = _pinning_services(ipfs.get("pinning", []))
    signers = _table(data, "signers")
    for name, target in signers.items():
        if not isinstance(target, str) or "://" not in target:
            raise ConfigurationError(
                f"config.toml [signers] {name}", 'must be "http(s)://HOST:PORT#0xADDRESS"'
            )
        if "@" in target.split("://", 1)[1].split("/", 1)[0].split("#", 1)[0]:
            raise ConfigurationError(
                f"config.toml [signers] {name}",
                "a secret is never written in config.toml: give a URL with credentials on the "
                'command line from the environment (--account "signer:$SIGNER_URL#0x...")',
            )

    deployments = os.environ.get("MEDLEDGER_DEPLOYMENTS") or data.get("deployments", "deployments")
    return Settings(
        home=home_path,
        deployments_dir=Path(str(deployments)).expanduser().resolve(),
        networks=networks,
        confirmations=confirmations,
        claims_tokens=claims_tokens,
        kubo_urls=tuple(u.strip() for u in kubo if u.strip()),
        embedded_store=embedded or not kubo,
        kubo_auth=kubo_auth,
        pinning=pinning,
        default_network=os.environ.get("MEDLEDGER_NETWORK") or str(data.get("network", "local")),
        default_account=os.environ.get("MEDLEDGER_ACCOUNT") or _optional_str(data, "account"),
        signers={name: str(target) for name, target in signers.items()},
        network_settings=entries,
    )


def _network(name: str, entry: object) -> NetworkSettings:
    """One ``[networks.NAME]`` entry, checked, with its profile's keys where it gives none."""
    where = f"config.toml [networks.{name}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("rpc"), str):
        raise ConfigurationError(where, 'needs rpc = "<url>"')
    unknown = sorted(set(entry) - set(NETWORK_KEYS))
    if unknown:
        raise ConfigurationError(
            f"{where} {unknown[0]}", f"is not a setting (known: {', '.join(NETWORK_KEYS)})"
        )
    profile = _profile(where, entry.get("profile"))
    depth = _number(entry, "confirmations", where, 1_000, profile.confirmations if profile else 1)
    market = entry.get("fee_market", profile.fee_market if profile else None)
    if market is not None and market not in FEE_MARKETS:
        raise ConfigurationError(
            f"{where} fee_market", 'must be "eip1559" or "legacy" (leave it out to detect it)'
        )
    chain_id = entry.get("chain_id", profile.chain_id if profile else None)
    if chain_id is not None:
        chain_id = _number(entry, "chain_id", where, 2**64 - 1, chain_id)
    token = entry.get("claims_token")
    if token is not None and not isinstance(token, str):
        raise ConfigurationError(f"{where} claims_token", "must be an address string")
    default_range = profile.log_block_range if profile else DEFAULT_LOG_BLOCK_RANGE
    return NetworkSettings(
        name=name,
        rpc=entry["rpc"],
        confirmations=depth,
        chain_id=chain_id,
        fee_market=market,
        log_block_range=_number(entry, "log_block_range", where, 1_000_000, default_range),
        claims_token=token,
        profile=profile.name if profile else None,
    )


def _profile(where: str, name: object) -> Profile | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in PROFILES:
        raise ConfigurationError(
            f"{where} profile", f"{name!r} is not a profile (known: {', '.join(PROFILES)})"
        )
    return PROFILES[name]


def _number(entry: dict[str, object], key: str, where: str, top: int, default: int) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
        raise ConfigurationError(f"{where} {key}", f"must be a whole number from 1 to {top:,}")
    return value


def _secret_source(table: dict[str, object], key: str, setting: str) -> SecretSource | None:
    """``<key>_env`` or ``<key>_file`` of ``table``; a secret written in place is refused."""
    if key in table:
        raise ConfigurationError(
            setting,
            f"a secret is never written in config.toml: name where it is with {key}_env "
            f'= "VARIABLE" or {key}_file = "/path/outside/the/project"',
        )
    env, file = table.get(f"{key}_env"), table.get(f"{key}_file")
    if env is not None and file is not None:
        raise ConfigurationError(setting, f"give {key}_env or {key}_file, not both")
    if env is not None:
        if not isinstance(env, str) or not env:
            raise ConfigurationError(f"{setting}_env", "must be the name of a variable")
        return SecretSource(setting, env=env)
    if file is not None:
        if not isinstance(file, str) or not file:
            raise ConfigurationError(f"{setting}_file", "must be a path")
        return SecretSource(setting, file=Path(file).expanduser().resolve())
    return None


def _pinning_services(entries: object) -> tuple[PinningSettings, ...]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigurationError("config.toml [[ipfs.pinning]]", "must be an array of tables")
    services: list[PinningSettings] = []
    for index, entry in enumerate(entries):
        where = f"config.toml [[ipfs.pinning]] #{index + 1}"
        name, endpoint = entry.get("name", f"pinning-{index + 1}"), entry.get("endpoint")
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{where} name", "must be a non-empty string")
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"{where} endpoint", 'needs endpoint = "https://..."')
        token = _secret_source(entry, "token", f"{where} token")
        if token is None:
            raise ConfigurationError(
                where, 'needs token_env = "VARIABLE" or token_file = "/path/outside/the/project"'
            )
        wait = entry.get("wait", 0)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 3600:
            raise ConfigurationError(f"{where} wait", "must be a number of seconds from 0 to 3600")
        if any(s.name == name for s in services):
            raise ConfigurationError(f"{where} name", f"{name!r} is used twice")
        services.append(PinningSettings(name, endpoint.rstrip("/"), token, float(wait)))
    return tuple(services)


def _in_git_work_tree(path: Path) -> bool:
    return any((folder / ".git").exists() for folder in path.parents)


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
