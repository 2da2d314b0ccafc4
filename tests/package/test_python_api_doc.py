"""The Python API guide (docs/python-api.md) stays true: its worked example runs.

Every ```python block of the guide is executed, in order and in one namespace, on the session's
devnet (the ``chain`` fixture: Anvil on 127.0.0.1, the contracts freshly deployed, no other
test's writes). The example reads its settings from the environment, as a reader's script
would, and the fixture points ``MEDLEDGER_HOME`` and ``MEDLEDGER_DEPLOYMENTS`` at the session's
home, so the example's ``Chain(load_settings())`` reaches the same devnet and its
``deployments.deploy`` reuses the contracts. A failing assertion or an exception in the example
fails the test, with a traceback that points at the guide's own line numbers. The guide may use
only public API: every name it takes from a ``medledger`` package is in that package's
``__all__`` (or is one of its modules).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medledger import consent, records

if TYPE_CHECKING:
    from types import ModuleType

    import pytest

    from medledger.chain import Chain

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The guide's ```python blocks: (line of their first code line, source)."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def example_source() -> str:
    """The blocks as one program, padded so that its line numbers are the guide's."""
    source = ""
    for line, block in python_blocks(GUIDE.read_text()):
        source += "\n" * (line - 1 - source.count("\n")) + block
    return source


def test_the_guide_has_one_worked_example():
    blocks = python_blocks(GUIDE.read_text())
    assert len(blocks) == 1, "the guide's worked example is one ```python block"
    assert len(blocks[0][1].splitlines()) > 20


def _is_module_of(package: ModuleType, name: str) -> bool:
    paths = getattr(package, "__path__", None)
    return paths is not None and name in {m.name for m in pkgutil.iter_modules(paths)}


def _refusals(tree: ast.Module) -> list[str]:
    """Names the example takes from a medledger package that the package does not export."""
    bound: dict[str, ModuleType] = {}
    wrong = []

    def check(module: ModuleType, name: str, where: int) -> None:
        exported = getattr(module, "__all__", None)
        if name.startswith("_") or (
            exported is not None and name not in exported and not _is_module_of(module, name)
        ):
            wrong.append(f"line {where}: {module.__name__}.{name}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("medledger"):
            module = importlib.import_module(str(node.module))
            for alias in node.names:
                check(module, alias.name, node.lineno)
                if _is_module_of(module, alias.name):
                    name = f"{node.module}.{alias.name}"
                    bound[alias.asname or alias.name] = importlib.import_module(name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("medledger") and alias.asname:
                    bound[alias.asname] = importlib.import_module(alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
        ):
            check(bound[node.value.id], node.attr, node.lineno)
    return wrong


def test_the_example_uses_only_public_api():
    assert _refusals(ast.parse(example_source())) == []


def test_the_public_api_check_refuses_a_private_name():
    source = "from medledger import consent\nconsent.grantee_key\nconsent._held\n"
    assert _refusals(ast.parse(source)) == [
        "line 2: medledger.consent.grantee_key",
        "line 3: medledger.consent._held",
    ]


def test_the_worked_example_runs_on_the_devnet(chain: Chain, capsys: pytest.CaptureFixture[str]):
    assert chain.url.startswith("http://127.0.0.1:")
    namespace: dict[str, Any] = {"__name__": "__guide__"}

    exec(compile(example_source(), str(GUIDE), "exec"), namespace)

    # It ran on the session's devnet, not on a devnet of its own.
    assert namespace["chain"].url == chain.url
    # What it says happened is what the chain holds.
    record, clinic, patient = namespace["record"], namespace["clinic"], namespace["patient"]
    assert records.get(chain, record.id).patient == patient.address
    state = consent.grant_state(chain, patient.address, clinic.address, namespace["scope"])
    assert state.status(chain.now()) == "revoked"
    printed = capsys.readouterr().out
    assert record.uri in printed
    assert "AccessRefused - the patient revoked the grant" in printed
