"""The local devnet: an Anvil process on 127.0.0.1 whose chain state is kept on disk.

``ensure_running`` starts Anvil on demand (any command on the default network calls it), so a
record anchored by one command is still there for the next. Anvil loads and dumps its state to
``$MEDLEDGER_HOME/devnet/state.json`` (on exit, and every few seconds while it runs, so a crash
loses at most that interval). The process runs in its own process group and is stopped with
SIGTERM, which makes Anvil write its state before it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import requests

from medledger.accounts import DEV_ACCOUNT_COUNT
from medledger.errors import DevnetError
from medledger.toolchain import anvil_path

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from medledger.config import Settings

CHAIN_ID = 31337
HOST = "127.0.0.1"
STATE_INTERVAL_SECONDS = 2
HISTORY_STATES = 256
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 15.0
# Large enough for batch anchoring (a batch of 10,000 records in one transaction).
BLOCK_GAS_LIMIT = 300_000_000


@dataclass(frozen=True)
class DevnetInfo:
    """What ``devnet.json`` records about a running devnet."""

    pid: int
    port: int
    started_at: float

    @property
    def url(self) -> str:
        """The devnet's JSON-RPC URL."""
        return f"http://{HOST}:{self.port}"


@dataclass(frozen=True)
class DevnetStatus:
    """The devnet's state as ``medledger devnet status`` reports it."""

    running: bool
    url: str | None
    pid: int | None
    block: int | None
    state_file: str
    state_bytes: int | None


def ensure_running(settings: Settings) -> DevnetInfo:
    """Return the running devnet of this home, starting it first if it is not running."""
    with _lock(settings.devnet_dir):
        info = _read_info(settings.devnet_dir)
        if info is not None and _alive(info) and _answers(info.url):
            return info
        return _start(settings, preferred_port=info.port if info else None)


def start(settings: Settings) -> DevnetInfo:
    """Start the devnet (a no-op when it already runs) and return where it listens."""
    return ensure_running(settings)


def stop(settings: Settings) -> bool:
    """Stop the devnet, letting Anvil dump its state; return False when it was not running."""
    with _lock(settings.devnet_dir):
        info = _read_info(settings.devnet_dir)
        if info is None or not _alive(info):
            _info_path(settings.devnet_dir).unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _alive(info) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(info):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info.pid, signal.SIGKILL)
        _info_path(settings.devnet_dir).unlink(missing_ok=True)
        return True


def status(settings: Settings) -> DevnetStatus:
    """Report whether the devnet runs, where, and at which block."""
    state = settings.devnet_dir / "state.json"
    size = state.stat().st_size if state.is_file() else None
    info = _read_info(settings.devnet_dir)
    if info is None or not _alive(info):
        return DevnetStatus(False, None, None, None, str(state), size)
    block = _block_number(info.url)
    return DevnetStatus(block is not None, info.url, info.pid, block, str(state), size)


def _state_args(state: Path) -> list[str]:
    """How Anvil keeps its state, from ``MEDLEDGER_DEVNET_STATE_INTERVAL``: unset, a dump every
    2 s and on exit; ``N``, every N seconds and on exit; ``0``, on exit only; ``off``, never
    (a throwaway chain, as the benchmarks use).

    Anvil's dump holds every block and is written whole each time, so its cost grows with the
    chain: at 2 s, anchoring fell from about 700 to 350 transactions/s within 8,000
    transactions, and without an interval Anvil dumped on every block (a 317 MB file at 5,500
    blocks, 13 transactions/s). Long runs should say ``0`` or ``off``.
    """
    text = os.environ.get("MEDLEDGER_DEVNET_STATE_INTERVAL")
    if text == "off":
        return []
    if text is None:
        seconds = STATE_INTERVAL_SECONDS
    else:
        try:
            seconds = int(text)
        except ValueError:
            message = f"MEDLEDGER_DEVNET_STATE_INTERVAL must be seconds or off, not {text!r}"
            raise DevnetError(message) from None
        if seconds < 0:
            raise DevnetError("MEDLEDGER_DEVNET_STATE_INTERVAL must not be negative")
    if seconds == 0:
        load = ["--load-state", str(state)] if state.is_file() else []
        return ["--dump-state", str(state), *load]
    return ["--state", str(state), "--state-interval", str(seconds)]


def _start(settings: Settings, preferred_port: int | None) -> DevnetInfo:
    folder = settings.devnet_dir
    folder.mkdir(parents=True, exist_ok=True)
    port = preferred_port if preferred_port and _port_free(preferred_port) else _free_port()
    binary = anvil_path()
    command = [
        str(binary),
        "--host", HOST,
        "--port", str(port),
        "--chain-id", str(CHAIN_ID),
        "--accounts", str(DEV_ACCOUNT_COUNT),
        "--gas-limit", str(BLOCK_GAS_LIMIT),
        *_state_args(folder / "state.json"),
        # Keep the state of the last blocks only (blocks, receipts and logs are all kept):
        # with Anvil's default of every block's state, anchoring fell from about 1,000 to 130
        # transactions/s within 10,000 blocks; with this it stays near 600. Nothing here reads
        # state at an old block.
        "--prune-history", str(HISTORY_STATES),
    ]  # fmt: skip
    log = (folder / "anvil.log").open("ab")
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
    except OSError as exc:
        raise DevnetError(f"could not start Anvil ({binary}): {exc}") from None
    finally:
        log.close()
    info = DevnetInfo(pid=process.pid, port=port, started_at=time.time())
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (folder / "anvil.log").read_text(errors="replace")[-600:].strip()
            raise DevnetError(f"Anvil exited at start (code {process.returncode}): {tail}")
        if _answers(info.url):
            _info_path(folder).write_text(json.dumps(asdict(info)))
            return info
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    raise DevnetError(f"Anvil did not answer on {info.url} within {START_TIMEOUT_SECONDS:.0f} s")


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """Serialise devnet start/stop between processes sharing a home."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _info_path(folder: Path) -> Path:
    return folder / "devnet.json"


def _read_info(folder: Path) -> DevnetInfo | None:
    try:
        data = json.loads(_info_path(folder).read_text())
        return DevnetInfo(
            pid=int(data["pid"]), port=int(data["port"]), started_at=data["started_at"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(info: DevnetInfo) -> bool:
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(0); its /proc state says so.
    try:
        with open(f"/proc/{info.pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def _rpc(url: str, method: str, timeout: float = 1.0) -> object:
    reply = requests.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": []}, timeout=timeout
    )
    return reply.json().get("result")


def _answers(url: str) -> bool:
    try:
        return _rpc(url, "eth_chainId", timeout=0.5) is not None
    except (requests.RequestException, ValueError):
        return False


def _block_number(url: str) -> int | None:
    try:
        result = _rpc(url, "eth_blockNumber")
    except (requests.RequestException, ValueError):
        return None
    return int(str(result), 16) if result is not None else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True
