"""The ``medledger`` root group loads its commands lazily: ``medledger --help`` imports no command
module, no web3 and no domain package, and the one-line help the root keeps for each command is
the one the command itself shows."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from medledger.cli import COMMANDS, cli

HEAVY = ("web3", "eth_account", "eth_abi", "eth_utils", "aiohttp", "requests", "coincurve", "rich",
         "matplotlib")  # fmt: skip
PACKAGES = ("providers", "records", "consent", "claims", "trials", "chain", "sealed", "ipfs",
            "fhir", "crypto", "demo", "benchmarks")  # fmt: skip


def _modules_after(*argv: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``medledger ARGV``."""
    code = (
        "import json, sys\n"
        "from medledger.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: medledger")
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def _loaded(modules: set[str], names: tuple[str, ...], prefix: str = "") -> list[str]:
    return sorted(m for m in modules if any(m == prefix + n or m.startswith(f"{prefix}{n}.")
                                            for n in names))  # fmt: skip


def test_root_help_imports_no_command_module_and_nothing_heavy() -> None:
    modules = _modules_after("--help")
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, PACKAGES, "medledger.") == []
    assert sorted(m for m in modules if m.startswith("medledger.")) == [
        "medledger.cli", "medledger.cli.lazy",
    ]  # fmt: skip


def test_a_group_help_imports_its_module_only() -> None:
    modules = _modules_after("claim", "--help")
    assert "medledger.cli.claims" in modules
    assert "medledger.cli.trials" not in modules and "medledger.cli.records" not in modules
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, ("providers", "records", "consent", "claims", "trials", "chain"),
                   "medledger.") == []  # fmt: skip


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_root_keeps_each_commands_own_name_and_one_line_help(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.name == name and not command.hidden
    assert COMMANDS[name].path.startswith("medledger.cli.")
    for limit in (20, 45, 60, 80, 120, 300):
        shown = command.get_short_help_str(limit)
        assert click.utils.make_default_short_help(COMMANDS[name].help, limit) == shown


def test_root_help_lists_every_command_with_its_help() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["--help"], prog_name="medledger", terminal_width=120)
    assert result.exit_code == 0
    listed = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(COMMANDS)
    assert "  revoke                  Revoke GRANTEE's access at once." in listed


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from medledger.cli import main

    assert main(["no-such-verb"]) == 2
    assert "No such command 'no-such-verb'" in capsys.readouterr().err
