"""Compiled contracts shipped with the package, and the build step that regenerates them.

The CLI deploys and calls contracts from ``artifacts/contracts.json`` (ABI and bytecode), so a
clinic's machine needs no compiler, much as ApePay's SDK ships its manifest. ``python -m
medledger.chain.artifacts`` rebuilds the file from ``contracts/`` with py-solc-x and the offline
solc-js bridge, with the same settings as ``ape-config.yaml``; a test checks the shipped file
matches the sources.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from medledger.errors import ToolMissing

ARTIFACT_FILE = Path(__file__).with_name("artifacts") / "contracts.json"
#: Contracts the package deploys, in deployment order.
DEPLOYABLE = (
    "ProviderRegistry",
    "RecordRegistry",
    "ConsentManager",
    "DevStablecoin",
    "ClaimsManager",
    "TrialRegistry",
)
SETTINGS: dict[str, Any] = {
    # 6,000 rather than 10,000: ClaimsManager (with identity checks and the patient's controller
    # after a recovery) stays under the 24,576-byte code size limit: 24,019 bytes (24,613 at
    # 8,000). Also in ape-config.yaml.
    "optimizer": {"enabled": True, "runs": 6_000},
    "evmVersion": "cancun",
    "remappings": ["@openzeppelin/contracts=node_modules/@openzeppelin/contracts"],
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source: str


@cache
def _load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ARTIFACT_FILE.read_text())
    return data


def artifact(name: str) -> Artifact:
    """Return the compiled contract ``name``."""
    entry = _load()["contracts"][name]
    return Artifact(
        name=name,
        abi=entry["abi"],
        bytecode=entry["bytecode"],
        deployed_bytecode=entry["deployedBytecode"],
        source=entry["source"],
    )


def compiler_version() -> str:
    """Return the full version of the compiler that built the artifacts."""
    return str(_load()["compiler"])


def all_error_abis() -> list[dict[str, Any]]:
    """Return every custom error declared by any compiled contract (for decoding reverts)."""
    seen: dict[str, dict[str, Any]] = {}
    for entry in _load()["contracts"].values():
        for item in entry["abi"]:
            if item.get("type") == "error":
                seen.setdefault(json.dumps(item, sort_keys=True), item)
    return list(seen.values())


def build(root: Path) -> dict[str, Any]:
    """Compile ``root/contracts`` and return the artifact document (does not write it)."""
    try:
        import solcx
    except ImportError:
        raise ToolMissing("py-solc-x", "install the dev extras: pip install -e '.[dev]'") from None
    from medledger.toolchain import solc_shim

    shim = solc_shim()
    if not shim.is_file():
        raise ToolMissing(str(shim), "run `python -m medledger.toolchain install`")
    files = sorted(p for p in (root / "contracts").rglob("*.sol") if ".cache" not in p.parts)
    sources = {str(p.relative_to(root)): {"content": p.read_text()} for p in files}
    output = solcx.compile_standard(
        {"language": "Solidity", "sources": sources, "settings": SETTINGS},
        solc_binary=shim,
        base_path=str(root),
        allow_paths=[str(root)],
    )
    contracts: dict[str, Any] = {}
    for source, by_name in output["contracts"].items():
        for name, out in by_name.items():
            # Deployable contracts sit at the top of contracts/ (and the benchmark's baseline in
            # contracts/bench/); libraries, interfaces, mocks (contracts/test/) and
            # OpenZeppelin's files are compiled into them or left out.
            if Path(source).parent not in (Path("contracts"), Path("contracts/bench")):
                continue
            contracts[name] = {
                "source": source,
                "abi": out["abi"],
                "bytecode": "0x" + out["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
            }
    version = solcx.wrapper.get_solc_version(shim, with_commit_hash=True)
    return {
        "compiler": str(version),
        "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
        "contracts": contracts,
    }


def write(document: dict[str, Any]) -> None:
    """Write an artifact document where the package loads it from."""
    ARTIFACT_FILE.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT_FILE.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    _load.cache_clear()


def main() -> int:
    """``python -m medledger.chain.artifacts``: rebuild the shipped artifacts from the sources."""
    from medledger.toolchain import project_root

    root = project_root()
    if root is None:
        print("run this from the MedLedger source checkout", file=sys.stderr)
        return 2
    document = build(root)
    write(document)
    print(f"wrote {len(document['contracts'])} contracts to {ARTIFACT_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
