"""A click group whose subcommands are imported only when they are needed.

This is click's documented ``LazyGroup`` pattern (a group that knows each subcommand's name
and import path), with one addition: the group also knows each subcommand's one-line help, so
that listing the commands (``medledger --help``) imports none of them. A subcommand's module is
imported when the subcommand is invoked, when its own help is shown, or when shell completion
asks for it. ``tests/package/test_cli_lazy.py`` checks that every line kept here is the one the
command itself would show.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
from click.utils import make_default_short_help

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class Lazy:
    """Where a subcommand lives (``"package.module:attribute"``) and its one-line help."""

    path: str
    help: str

    def load(self) -> click.Command:
        """Import the module and return the command."""
        module, _, attribute = self.path.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.path} is not a click command")
        return command


class LazyGroup(click.Group):
    """A group of subcommands imported on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy.get(cmd_name)
        return entry.load() if entry is not None else super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the subcommands with their one-line help, importing none that is not loaded."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            entry = self.lazy.get(name)
            if entry is not None:
                rows.append((name, make_default_short_help(entry.help, limit)))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
