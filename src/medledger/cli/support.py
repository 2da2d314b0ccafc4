"""What every ``medledger`` command shares: the session, common options and output helpers.

The command modules (``medledger.cli.devnet``, ``.records``, ``.consent``...) import from here,
so that none of them imports another.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pathlib import Path

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Session:
    """What one command invocation works with."""

    settings: Settings
    network: str | None = None
    account_spec: str | None = None
    as_json: bool = False
    _chain: Chain | None = field(default=None, repr=False)

    @property
    def chain(self) -> Chain:
        """The chain of ``--network``, connected on first use."""
        if self._chain is None:
            from medledger.chain import Chain

            if self.settings.rpc_url_for(self.network or self.settings.default_network) is None:
                self.settings.writable(self.settings.devnet_dir)  # the devnet starts on demand
            chain = Chain(self.settings, self.network)
            chain.chain_id  # noqa: B018  (asked once: a node that does not answer is one line)
            self._chain = chain
            if chain.restored is not None:  # the devnet came back from a crash
                click.echo(f"notice: {chain.restored.describe()}", err=True)
        return self._chain

    def account(self, spec: str | None = None) -> Signer:
        """The signing account of ``--account`` (or ``spec``)."""
        return self.chain.account(spec or self.account_spec)

    def emit(self, data: dict[str, Any] | list[Any], text: str) -> None:
        """Print ``data`` as JSON with ``--json``, else the human ``text``."""
        click.echo(json.dumps(data, indent=2, default=str) if self.as_json else text)


def common(function: F) -> F:
    """Add ``--network``, ``--account`` and ``--json`` to a command."""

    def store(attr: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
        def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
            session = ctx.ensure_object(Session)
            if value not in (None, False):
                setattr(session, attr, value)
            return value

        return callback

    options = [
        click.option("--network", expose_value=False, callback=store("network"),
                     help="Network: 'local' (the devnet), a name from config.toml, or an RPC URL."),
        click.option("--account", expose_value=False, callback=store("account_spec"),
                     help="Signing account: an Ape alias, dev:N (devnet), env:VAR, or "
                     "signer:URL#0xADDRESS[,key=SPEC] (an external signer: Clef, Web3Signer)."),
        click.option("--json", "as_json", is_flag=True, expose_value=False,
                     callback=store("as_json"), help="Print machine-readable JSON."),
    ]  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function


pass_session = click.make_pass_decorator(Session, ensure=True)


class AddressType(click.ParamType):
    """An address argument or option: checked (EIP-55 for mixed case) and checksummed before
    the command runs, so a typo is one line (``medledger.addresses``), never a traceback."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from medledger.addresses import parse_address

        what = _label(param)
        return parse_address(value, what)


class DurationType(click.ParamType):
    """A duration option (``30d``, ``12h``, ``2w``), at most ``maximum`` (ten years unless the
    option says less): see ``medledger.durations``."""

    name = "duration"

    def __init__(self, maximum: timedelta | None = None) -> None:
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from medledger.durations import MAX_DURATION, parse_duration

        if isinstance(value, timedelta):
            return value
        return parse_duration(str(value), self.maximum or MAX_DURATION, _label(param))


class OutputFile(click.ParamType):
    """A file a command writes (``--out``): its folder must exist and the path must not be a
    folder, checked before the command does anything (nothing is read, sent or half-written
    for an output that cannot be written)."""

    name = "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from pathlib import Path

        from medledger.errors import ConfigurationError

        path = Path(value)
        if path.is_dir():
            raise ConfigurationError(str(path), "is a folder: name a file to write")
        folder = path.parent
        if not folder.is_dir():
            raise ConfigurationError(
                str(path), f"cannot be written: the folder {folder} does not exist"
            )
        return path


def _label(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return (param.name or "value").upper()


ADDRESS = AddressType()
DURATION = DurationType()
OUTPUT = OutputFile()


@contextmanager
def progress(total: int, what: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long runs (nothing for short ones)."""
    if total < 20:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{what}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def show_notices() -> None:
    """Print the package's notices (:class:`medledger.errors.Notice`) as one ``notice:`` line
    each on stderr; other warnings as Python shows them."""
    import warnings

    from medledger.errors import Notice

    shown = warnings.showwarning
    if getattr(shown, "medledger_notices", False):  # installed by an earlier command
        return

    def notice(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if issubclass(category, Notice):
            click.echo(f"notice: {message}", err=True)
        else:
            shown(message, category, *args, **kw)

    notice.medledger_notices = True  # type: ignore[attr-defined]
    warnings.showwarning = notice
    warnings.simplefilter("always", Notice)


def write_output(data: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        from medledger.errors import ConfigurationError

        try:
            out.write_bytes(data)
        except OSError as exc:
            raise ConfigurationError(str(out), f"cannot be written ({exc.strerror})") from None


def writable(path: Path) -> None:
    """Raise ConfigurationError unless ``path`` (a file or a folder to create) can be written
    by this process: checked before a command reads or sends anything."""
    import os

    from medledger.errors import ConfigurationError

    existing = path if path.is_dir() else path.parent
    if not existing.is_dir():
        raise ConfigurationError(
            str(path), f"cannot be written: the folder {existing} does not exist"
        )
    if not os.access(existing, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.W_OK)
    ):
        raise ConfigurationError(str(path), "cannot be written (permission denied)")


def write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (name → bytes) into ``folder`` (made if missing), each atomically."""
    from medledger.errors import ConfigurationError
    from medledger.files import write_atomically

    written = []
    try:
        folder.mkdir(exist_ok=True)
        for name, data in files.items():
            write_atomically(folder / name, data)
            written.append(folder / name)
    except OSError as exc:
        raise ConfigurationError(str(folder), f"cannot be written ({exc.strerror})") from None
    return written
