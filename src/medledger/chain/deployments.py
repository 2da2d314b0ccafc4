"""Deploying the contracts and remembering where they are (``deployments/<network>.json``).

Each network's file records, per contract: address, transaction hash, block, and the hash of
the code found at the address, with the chain id, the chain's genesis hash, the compiler version
and the git commit. A re-run against the same chain reuses a contract when the chain (genesis
hash) is the same, the code at its address is unchanged and was deployed from this package's
artifact; otherwise it deploys that contract and every later one (they take the earlier ones as
constructor arguments) again, so a reset devnet or an upgraded package is noticed instead of
pointing at nothing or at an older contract.
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
from medledger.errors import ConfigurationError, NotDeployed
from medledger.keccak import keccak
from medledger.toolchain import project_root

#: How long after a claim decision the submitter or patient may dispute it.
DISPUTE_WINDOW_SECONDS = 7 * 24 * 3600

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
    """The contracts of one network."""

    network: str
    chain_id: int
    genesis_hash: str
    compiler: str
    git_commit: str | None
    deployer: str
    contracts: dict[str, ContractDeployment] = field(default_factory=dict)
    updated_at: float = 0.0

    def address(self, name: str) -> str:
        """Return a contract's address or raise ``NotDeployed``."""
        try:
            return self.contracts[name].address
        except KeyError:
            raise NotDeployed(name, self.network) from None


def deployment_file(chain: Chain) -> Path:
    """Return the deployments file of the chain's network."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in chain.network)
    return chain.settings.deployments_dir / f"{safe}.json"


def load(chain: Chain) -> Deployment | None:
    """Return the recorded deployment of the chain's network, if any and still valid."""
    path = deployment_file(chain)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        contracts = {k: ContractDeployment(**v) for k, v in data.pop("contracts").items()}
        recorded = Deployment(**data, contracts=contracts)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(str(path), f"is not a valid deployments file: {exc}") from None
    if recorded.chain_id != chain.chain_id or recorded.genesis_hash != _genesis_hash(chain):
        return None
    return recorded


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
    for name in DEPLOYABLE:
        if not _code_matches(chain, recorded, name):
            raise NotDeployed(name, chain.network)  # missing, gone, or an older version
    chain.cache["deployment"] = recorded
    return recorded


def contract(chain: Chain, name: str) -> Contract:
    """Return a deployed contract of the chain's network."""
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
) -> tuple[Deployment, list[str]]:
    """Deploy what is missing; return the deployment and the names newly deployed."""
    recorded = load(chain)
    if recorded is None:
        recorded = Deployment(
            network=chain.network,
            chain_id=chain.chain_id,
            genesis_hash=_genesis_hash(chain),
            compiler=compiler_version(),
            git_commit=_git_commit(),
            deployer=account.address,
        )
    registrar_list = [to_checksum_address(r) for r in (registrars or [account.address])]
    if not 1 <= threshold <= len(registrar_list):
        raise ConfigurationError(
            "--threshold", f"must be between 1 and the {len(registrar_list)} registrar(s)"
        )
    deployed: list[str] = []
    for name in DEPLOYABLE:
        # Later contracts take earlier ones as constructor arguments: once one is deployed
        # anew, every later one is too.
        if not deployed and _code_matches(chain, recorded, name):
            continue
        args = _constructor_args(name, recorded, account.address, registrar_list, threshold)
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
    chain.cache.clear()
    if deployed:
        recorded.compiler = compiler_version()
        recorded.git_commit = _git_commit()
        recorded.updated_at = time.time()
        _write(chain, recorded)
    return recorded, deployed


def _constructor_args(
    name: str, recorded: Deployment, deployer: str, registrars: Sequence[str], threshold: int
) -> list[Any]:
    """Each contract's constructor arguments: the contracts deployed before it, and settings."""
    if name == "ProviderRegistry":
        return [registrars, threshold]
    providers = recorded.address("ProviderRegistry")
    if name in ("RecordRegistry", "TrialRegistry"):
        return [providers]
    if name == "ConsentManager":
        return [providers, recorded.address("RecordRegistry")]
    if name == "DevStablecoin":
        # The devnet dollar: the deployer owns (and mints) it. A production network would pass
        # a real stablecoin's address to the ClaimsManager instead.
        return [deployer]
    if name == "ClaimsManager":
        return [
            providers, recorded.address("RecordRegistry"), recorded.address("ConsentManager"),
            recorded.address("DevStablecoin"), DISPUTE_WINDOW_SECONDS, deployer,
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


def _genesis_hash(chain: Chain) -> str:
    return str(chain.block(0)["hash"]).lower()


def _write(chain: Chain, recorded: Deployment) -> None:
    path = deployment_file(chain)
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
