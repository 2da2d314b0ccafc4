"""Deploying the contracts and remembering where they are, one file per chain.

A chain is named by its chain id and its genesis hash, not by how it was reached: the file is
``deployments/<chain id>-<first 8 hex digits of the genesis hash>.json``, so a configured network
name and its RPC URL are one deployment. Each file records, per contract: address, transaction
hash, block, and the hash of the code found at the address, with the chain id, the genesis
hash, the claims token, the compiler version and the git commit. Files of older versions
(``deployments/<network>.json``, keyed by the network's name) are still read: any file of the
folder recording this chain id and genesis hash is found (the one named after the network
first, else the latest), and the next ``deploy`` moves it to the chain's file.

A re-run against the same chain reuses a contract when the code at its address is unchanged and
was deployed from this package's artifact; otherwise it deploys that contract and every later
one (they take the earlier ones as constructor arguments) again, so a reset devnet or an
upgraded package is noticed instead of pointing at nothing or at an older contract.

Claims are paid in an ERC-20 chosen at deploy time (``--claims-token``, or ``claims_token`` in
the network's configuration), checked (a contract answering ``decimals()`` 6 or 18 and
``symbol()``) before anything is deployed. Only a devnet gets the ``DevStablecoin`` by default;
on any other network ``deploy`` refuses to run without a token. A deployment keeps its token:
a ClaimsManager still in place is never silently replaced by one paying in another.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from medledger.addresses import checksum as to_checksum_address
from medledger.chain.artifacts import DEPLOYABLE, artifact, compiler_version
from medledger.chain.tokens import ClaimsToken, inspect_token
from medledger.errors import ConfigurationError, NotDeployed
from medledger.keccak import keccak
from medledger.toolchain import project_root

#: How long after a claim decision the submitter or patient may dispute it.
DISPUTE_WINDOW_SECONDS = 7 * 24 * 3600
#: The devnet's claims token, deployed only when no other is chosen on a devnet.
DEV_TOKEN = "DevStablecoin"
#: Deployed by ProviderRegistry's constructor (not in ``DEPLOYABLE``), recorded beside it.
RECOVERY = "PatientRecovery"
IDENTITY = "IdentityRegistry"
#: Each contract ProviderRegistry's constructor deploys, and the registry's getter of it.
CREATED_BY_REGISTRY = {RECOVERY: "RECOVERY", IDENTITY: "IDENTITY"}

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.contracts import Contract


@dataclass(frozen=True)
class ContractDeployment:
    """Where one contract was deployed."""

    address: str
    transaction_hash: str
    block: int
    code_hash: str
    constructor_args: list[Any]
    #: keccak of the creation bytecode the contract was deployed from (the package's artifact).
    artifact_hash: str = ""


@dataclass
class Deployment:
    """The contracts of one chain."""

    #: The name the chain was first deployed under (a configured name, ``local`` or a URL).
    network: str
    chain_id: int
    genesis_hash: str
    compiler: str
    git_commit: str | None
    deployer: str
    contracts: dict[str, ContractDeployment] = field(default_factory=dict)
    updated_at: float = 0.0
    #: What claims are paid in (``None`` in files of older versions: the DevStablecoin).
    claims_token: ClaimsToken | None = None

    def address(self, name: str) -> str:
        """Return a contract's address or raise ``NotDeployed``."""
        try:
            return self.contracts[name].address
        except KeyError:
            raise NotDeployed(name, self.network) from None

    @property
    def pays_in_dev_token(self) -> bool:
        """True when claims are paid in the DevStablecoin this deployment holds."""
        dev = self.contracts.get(DEV_TOKEN)
        token = self.claims_token
        return token is None or (dev is not None and dev.address == token.address)

    def names(self) -> tuple[str, ...]:
        """The contracts this deployment holds, in deployment order."""
        if self.pays_in_dev_token:
            return DEPLOYABLE
        return tuple(n for n in DEPLOYABLE if n != DEV_TOKEN)


def deployment_file(chain: Chain) -> Path:
    """Return the chain's deployments file (named by chain id and genesis hash)."""
    return chain.settings.deployments_dir / f"{chain.chain_id}-{chain.genesis_hash[2:10]}.json"


def load(chain: Chain) -> Deployment | None:
    """Return the recorded deployment of the chain, if any (from an older file too)."""
    found = _find(chain)
    return found[0] if found else None


def require(chain: Chain) -> Deployment:
    """Return the chain's deployment or raise ``NotDeployed`` naming the first missing contract.

    Checked once per connection (code at every address, genesis hash), then remembered.
    """
    cached = chain.cache.get("deployment")
    if isinstance(cached, Deployment):
        return cached
    recorded = load(chain)
    if recorded is None:
        raise NotDeployed(DEPLOYABLE[0], chain.network)
    for name in recorded.names():
        if not _code_matches(chain, recorded, name):
            raise NotDeployed(name, chain.network)  # missing, gone, or an older version
    chain.cache["deployment"] = recorded
    return recorded


def contract(chain: Chain, name: str) -> Contract:
    """Return a deployed contract of the chain."""
    key = f"contract:{name}"
    if key not in chain.cache:
        chain.cache[key] = chain.contract(name, require(chain).address(name))
    found: Contract = chain.cache[key]
    return found


def deploy(
    chain: Chain,
    account: Signer,
    registrars: list[str] | None = None,
    threshold: int = 1,
    claims_token: str | None = None,
) -> tuple[Deployment, list[str]]:
    """Deploy what is missing; return the deployment and the names newly deployed.

    ``claims_token`` (else the network's configured ``claims_token``) is the ERC-20 claims are
    paid in; every input is checked before anything is sent.
    """
    found = _find(chain)
    recorded, source = found if found else (_fresh(chain, account), None)
    before = asdict(recorded)
    registrar_list = [to_checksum_address(r) for r in (registrars or [account.address])]
    if not 1 <= threshold <= len(registrar_list):
        raise ConfigurationError(
            "--threshold", f"must be between 1 and the {len(registrar_list)} registrar(s)"
        )
    token = _choose_token(chain, recorded, claims_token)
    if token is not None:
        recorded.claims_token = token
        recorded.contracts.pop(DEV_TOKEN, None)
    deployed: list[str] = []
    for name in recorded.names() if token is not None else DEPLOYABLE:
        # Later contracts take earlier ones as constructor arguments: once one is deployed
        # anew, every later one is too.
        if not deployed and _code_matches(chain, recorded, name):
            continue
        args = _constructor_args(name, recorded, account.address, registrar_list, threshold, token)
        receipt = chain.deploy(f"deploying {name}", account, name, *args)
        address = to_checksum_address(str(receipt.contract_address))
        recorded.contracts[name] = ContractDeployment(
            address=address,
            transaction_hash=receipt.transaction_hash,
            block=receipt.block_number,
            code_hash="0x" + keccak(chain.code(address)).hex(),
            constructor_args=args,
            artifact_hash=_artifact_hash(name),
        )
        deployed.append(name)
        if name == "ProviderRegistry":
            for created, getter in CREATED_BY_REGISTRY.items():
                recorded.contracts[created] = _created_by_registry(
                    chain, recorded.contracts[name], created, getter
                )
    if token is None:  # the DevStablecoin (also what files of older versions paid in)
        dev = recorded.address(DEV_TOKEN)
        if recorded.claims_token is None or recorded.claims_token.address != dev:
            recorded.claims_token = inspect_token(chain, dev, DEV_TOKEN)
    chain.cache.clear()
    if deployed:
        recorded.compiler = compiler_version()
        recorded.git_commit = _git_commit()
        recorded.updated_at = time.time()
    path = deployment_file(chain)
    if deployed or source != path or asdict(recorded) != before:
        _write(path, recorded)
        if source is not None and source != path:
            source.unlink(missing_ok=True)  # moved to the chain's file
    return recorded, deployed


def _created_by_registry(
    chain: Chain, registry: ContractDeployment, name: str, getter: str
) -> ContractDeployment:
    """A contract ProviderRegistry's constructor deploys (PatientRecovery, IdentityRegistry):
    recorded beside it (same transaction and block) so that its events are indexed and read
    like any other's."""
    found = getattr(chain.contract("ProviderRegistry", registry.address).functions, getter)()
    address = to_checksum_address(str(chain.call("reading the registry", found)))
    return ContractDeployment(
        address=address,
        transaction_hash=registry.transaction_hash,
        block=registry.block,
        code_hash="0x" + keccak(chain.code(address)).hex(),
        constructor_args=[registry.address],
        artifact_hash=_artifact_hash(name),
    )


def _fresh(chain: Chain, account: Signer) -> Deployment:
    return Deployment(
        network=chain.network,
        chain_id=chain.chain_id,
        genesis_hash=chain.genesis_hash,
        compiler=compiler_version(),
        git_commit=_git_commit(),
        deployer=account.address,
    )


def _choose_token(chain: Chain, recorded: Deployment, asked: str | None) -> ClaimsToken | None:
    """The token a new ClaimsManager would pay in; ``None`` for the DevStablecoin."""
    what = "--claims-token"
    if not asked:
        asked, what = chain.settings.claims_token_for(chain.network), "config.toml claims_token"
    kept = _code_matches(chain, recorded, "ClaimsManager")
    if asked:
        token = inspect_token(chain, asked, what)
        dev = recorded.contracts.get(DEV_TOKEN)
        paid_in = recorded.claims_token.address if recorded.claims_token else None
        paid_in = paid_in or (dev.address if dev is not None else None)
        if kept and paid_in is not None and paid_in != token.address:
            raise ConfigurationError(
                what,
                f"the ClaimsManager at {recorded.address('ClaimsManager')} on this chain pays "
                f"claims in {paid_in}, and a deployment keeps its token: point "
                "MEDLEDGER_DEPLOYMENTS at another folder for a new set of contracts",
            )
        return None if dev is not None and dev.address == token.address else token
    if not recorded.pays_in_dev_token:
        return recorded.claims_token  # chosen by an earlier deploy
    if chain.is_devnet or kept:
        return None
    raise ConfigurationError(
        "--claims-token",
        f"network {chain.network!r} is not a devnet, so claims need a real ERC-20: give "
        '--claims-token ADDRESS (or claims_token = "0x..." under its [networks.NAME] in '
        "config.toml)",
    )


def _constructor_args(
    name: str,
    recorded: Deployment,
    deployer: str,
    registrars: Sequence[str],
    threshold: int,
    token: ClaimsToken | None,
) -> list[Any]:
    """Each contract's constructor arguments: the contracts deployed before it, and settings
    (``token``: the claims token, ``None`` for the DevStablecoin)."""
    if name == "ProviderRegistry":
        return [registrars, threshold]
    providers = recorded.address("ProviderRegistry")
    if name in ("RecordRegistry", "TrialRegistry"):
        return [providers]
    if name == "ConsentManager":
        return [providers, recorded.address("RecordRegistry")]
    if name == DEV_TOKEN:
        return [deployer]  # the devnet dollar: the deployer owns (and mints) it
    if name == "ClaimsManager":
        paid_in = token.address if token is not None else recorded.address(DEV_TOKEN)
        return [
            providers, recorded.address("RecordRegistry"), recorded.address("ConsentManager"),
            paid_in, DISPUTE_WINDOW_SECONDS, deployer,
        ]  # fmt: skip
    raise ConfigurationError(name, "has no constructor arguments recipe")


def _artifact_hash(name: str) -> str:
    return "0x" + keccak(bytes.fromhex(artifact(name).bytecode[2:])).hex()


def _code_matches(chain: Chain, recorded: Deployment, name: str) -> bool:
    """True when the contract at the recorded address is this package's version of it."""
    entry = recorded.contracts.get(name)
    if entry is None or entry.artifact_hash != _artifact_hash(name):
        return False
    code = chain.code(to_checksum_address(entry.address))
    return bool(code) and "0x" + keccak(code).hex() == entry.code_hash


def _find(chain: Chain) -> tuple[Deployment, Path] | None:
    """The chain's recorded deployment and its file: the chain's own file, else a file of an
    older version recording this chain (the one named after the network first, else the
    latest)."""
    path = deployment_file(chain)
    if path.is_file():
        recorded = _read(path)
        return (recorded, path) if _same_chain(chain, recorded) else None
    folder = chain.settings.deployments_dir
    named = folder / (_legacy_name(chain.network) + ".json")
    candidates: list[tuple[bool, float, Path, Deployment]] = []
    for other in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            recorded = _read(other)
        except ConfigurationError:
            if other == named:
                raise
            continue  # not a deployments file of this package
        if _same_chain(chain, recorded):
            candidates.append((other == named, recorded.updated_at, other, recorded))
    if not candidates:
        return None
    *_, best, chosen = max(candidates, key=lambda c: (c[0], c[1]))
    return chosen, best


def _read(path: Path) -> Deployment:
    try:
        data = json.loads(path.read_text())
        contracts = {k: ContractDeployment(**v) for k, v in data.pop("contracts").items()}
        token = data.pop("claims_token", None)
        return Deployment(
            **data, contracts=contracts, claims_token=ClaimsToken(**token) if token else None
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigurationError(str(path), f"is not a valid deployments file: {exc}") from None


def _same_chain(chain: Chain, recorded: Deployment) -> bool:
    return recorded.chain_id == chain.chain_id and recorded.genesis_hash == chain.genesis_hash


def _legacy_name(network: str) -> str:
    """The file name (without ``.json``) older versions gave a network's deployments."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in network)


def _write(path: Path, recorded: Deployment) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(recorded), indent=2) + "\n")
    os.replace(tmp, path)


def _git_commit() -> str | None:
    root = project_root()
    if root is None:
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")
