"""Where MedLedger finds its external programs, and how it installs the offline compiler.

Anvil comes from the npm package ``@foundry-rs/anvil`` and the Solidity compiler is solc-js (npm
``solc``) behind ``compiler/solc-bridge.js``, a small Node script that answers like a native
``solc`` binary. ``python -m medledger.toolchain install`` puts a ``solc-v<version>`` shim where
py-solc-x looks for installed compilers and makes that folder the default for every Python of
this virtual environment, so ``ape compile`` and py-solc-x work with no download.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import sysconfig
from pathlib import Path

from medledger.errors import ToolMissing

SOLC_VERSION = "0.8.30"
_PTH_NAME = "medledger-solcx.pth"


def project_root() -> Path | None:
    """Return the source checkout this package runs from (editable install), if any."""
    candidate = Path(__file__).resolve().parents[2]
    return candidate if (candidate / "package.json").is_file() else None


def _node_modules() -> list[Path]:
    roots = [Path.cwd(), *Path.cwd().parents]
    root = project_root()
    if root is not None:
        roots.insert(0, root)
    return [r / "node_modules" for r in roots if (r / "node_modules").is_dir()]


def _npm_binary(tool: str) -> Path | None:
    """Find the native binary that npm's ``@foundry-rs/<tool>`` platform package ships.

    The platform package's binary is used directly rather than ``node_modules/.bin/<tool>``,
    which is a Node wrapper: killing the wrapper would leave the real process running.
    """
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = sys.platform if sys.platform != "darwin" else "darwin"
    for modules in _node_modules():
        binary = modules / "@foundry-rs" / f"{tool}-{system}-{arch}" / "bin" / tool
        if binary.is_file():
            return binary
    return None


def anvil_path() -> Path:
    """Return the Anvil binary: ``$MEDLEDGER_ANVIL``, the npm package's, or ``anvil`` on PATH."""
    override = os.environ.get("MEDLEDGER_ANVIL")
    if override:
        return Path(override)
    found = _npm_binary("anvil")
    if found is not None:
        return found
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ToolMissing("anvil", "run `make install` (it installs @foundry-rs/anvil from npm)")


def bridge_script() -> Path:
    """Return the solc-js bridge script of the source checkout."""
    root = project_root()
    if root is None or not (root / "compiler" / "solc-bridge.js").is_file():
        raise ToolMissing(
            "compiler/solc-bridge.js", "compiling needs the MedLedger source checkout"
        )
    return root / "compiler" / "solc-bridge.js"


def solcx_folder() -> Path:
    """Return the folder py-solc-x searches for compilers (``SOLCX_BINARY_PATH`` or ours)."""
    configured = os.environ.get("SOLCX_BINARY_PATH")
    if configured:
        return Path(configured)
    return Path(sys.prefix) / "solcx"


def solc_shim() -> Path:
    """Return the path of the ``solc-v<version>`` shim that runs the bridge."""
    return solcx_folder() / f"solc-v{SOLC_VERSION}"


def install() -> Path:
    """Install the compiler shim and make its folder py-solc-x's default in this environment.

    Idempotent: rewrites the two small files each time, so a moved checkout is picked up.
    """
    node = shutil.which("node")
    if node is None:
        raise ToolMissing("node", "install Node.js 18 or newer")
    script = bridge_script()
    shim = solc_shim()
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec "{node}" "{script}" "$@"\n')
    shim.chmod(0o755)
    # A .pth line runs at interpreter start-up (the mechanism setuptools and coverage use),
    # so ape, pytest and py-solc-x in this environment all find the shim's folder.
    site = Path(sysconfig.get_paths()["purelib"])
    (site / _PTH_NAME).write_text(
        f"import os; os.environ.setdefault('SOLCX_BINARY_PATH', {str(shim.parent)!r})\n"
    )
    return shim


def main(argv: list[str] | None = None) -> int:
    """``python -m medledger.toolchain install|where``."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["install"]:
        print(f"solc {SOLC_VERSION} bridge installed at {install()}")
        return 0
    if args == ["where"]:
        print(f"anvil: {anvil_path()}")
        print(f"solc shim: {solc_shim()}")
        return 0
    print("usage: python -m medledger.toolchain install|where", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
