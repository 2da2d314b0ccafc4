"""The local devnet: an Anvil process on 127.0.0.1 whose chain survives a crash.

``ensure_running`` starts Anvil on demand (any command on the default network calls it), so a
record anchored by one command is still there for the next.

Durability has two parts. Snapshots: MedLedger asks Anvil for its state (``anvil_dumpState``)
and writes it to ``$MEDLEDGER_HOME/devnet/state.json`` atomically (a temporary file, fsync,
rename), at ``devnet stop`` and after every :data:`SNAPSHOT_EVERY` transactions; Anvil loads it
at start. Anvil's own ``--state``/``--dump-state`` are not used: Anvil truncates and rewrites the
file in place (seen with strace), so a kill during its dump left a state file it could not load.
The journal: every transaction is committed to the :mod:`~medledger.chain.outbox` before it is
sent, so whatever a snapshot does not hold yet is replayed, the same signed bytes in the same
order, when Anvil starts again from an older state. A command that printed a record id has
therefore made it durable, whenever Anvil is killed afterwards.

The process runs in its own process group and is stopped with SIGTERM (after a snapshot).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
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
from medledger.chain import outbox as journal
from medledger.chain.pipeline import Rpc
from medledger.errors import DevnetError, MedLedgerError
from medledger.files import write_atomically
from medledger.toolchain import anvil_path

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from medledger.config import Settings

CHAIN_ID = 31337
HOST = "127.0.0.1"
JOURNAL_KEY = "devnet"
"""The devnet's rows in the outbox."""
SNAPSHOT_EVERY = 1_000
"""Transactions journalled since the last snapshot that make the next send take one
(``MEDLEDGER_DEVNET_SNAPSHOT_EVERY``): the replay after a crash is at most this long."""
HISTORY_STATES = 8
"""States of the latest blocks Anvil keeps (each a full copy of the chain's state): nothing
reads state at an older block. 256 held 2.2 GB at 40,000 records and grants (a copy per block
of a growing state); 8 held 0.66 GB, and the fill rate fell less (see the growth bench)."""
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 15.0
# Large enough for batch anchoring (a batch of 10,000 records in one transaction).
BLOCK_GAS_LIMIT = 300_000_000


@dataclass(frozen=True)
class Restored:
    """What a start from an older state did: the chain had reached ``lost_from`` (as the
    journal knew it), the snapshot held blocks up to ``snapshot_block``, and the journal's
    transactions the snapshot lacked were replayed (``failed`` of them reverted this time;
    ``dropped`` had lost their nonce to another transaction)."""

    snapshot_block: int
    lost_from: int
    replayed: int
    failed: tuple[str, ...]
    dropped: int

    def describe(self) -> str:
        """One line for a person."""
        line = (
            f"the devnet restarted from its snapshot at block {self.snapshot_block} (it had "
            f"reached block {self.lost_from}); {self.replayed} transaction(s) replayed from the "
            "journal"
        )
        if self.failed:
            line += f", {len(self.failed)} reverted this time: " + ", ".join(self.failed[:3])
        if self.dropped:
            line += f", {self.dropped} dropped (nonce taken)"
        return line


@dataclass(frozen=True)
class DevnetInfo:
    """What ``devnet.json`` records about a running devnet."""

    pid: int
    port: int
    started_at: float
    restored: Restored | None = None

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
    unsnapshotted: int


def ensure_running(settings: Settings) -> DevnetInfo:
    """Return the running devnet of this home, starting it first if it is not running."""
    with _lock(settings.devnet_dir):
        info = _read_info(settings.devnet_dir)
        if info is not None and _alive(info) and _answers(info.url):
            return info
        return _start(settings, preferred_port=info.port if info else _last_port(settings))


def start(settings: Settings) -> DevnetInfo:
    """Start the devnet (a no-op when it already runs) and return where it listens."""
    return ensure_running(settings)


def stop(settings: Settings) -> bool:
    """Snapshot the devnet and stop it; return False when it was not running."""
    with _lock(settings.devnet_dir):
        info = _read_info(settings.devnet_dir)
        if info is None or not _alive(info):
            _info_path(settings.devnet_dir).unlink(missing_ok=True)
            return False
        if _keeps_state() and _answers(info.url):
            _snapshot(settings, info)
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
    waiting = journal.open_outbox(settings.home).count(JOURNAL_KEY)
    if info is None or not _alive(info):
        return DevnetStatus(False, None, None, None, str(state), size, waiting)
    block = _block_number(info.url)
    return DevnetStatus(block is not None, info.url, info.pid, block, str(state), size, waiting)


def snapshot(settings: Settings) -> int | None:
    """Write the running devnet's state to disk now; return its block (None: not running)."""
    with _lock(settings.devnet_dir):
        info = _read_info(settings.devnet_dir)
        if info is None or not _alive(info) or not _keeps_state():
            return None
        return _snapshot(settings, info)


def after_send(settings: Settings) -> None:
    """Take a snapshot once :data:`SNAPSHOT_EVERY` transactions wait for one (called by the
    chain client after each send to the devnet)."""
    if not _keeps_state():
        return
    # Mined entries only: a snapshot prunes those, so unsent leftovers of an account that
    # never sends again would otherwise make every later send take a snapshot.
    if journal.open_outbox(settings.home).count(JOURNAL_KEY, (journal.MINED,)) >= _snapshot_every():
        snapshot(settings)


def _snapshot(settings: Settings, info: DevnetInfo) -> int:
    """Dump Anvil's state and write it atomically; forget the journal rows it now holds."""
    block = _block_number(info.url)
    try:
        dump = _rpc(info.url, "anvil_dumpState", timeout=600)
    except (requests.RequestException, ValueError) as exc:
        raise DevnetError(f"the devnet's state could not be read for a snapshot: {exc}") from None
    if not isinstance(dump, str) or block is None:
        raise DevnetError("the devnet did not return its state for a snapshot")
    state = settings.devnet_dir / "state.json"
    data = _one_genesis(settings.devnet_dir, info.url, gzip.decompress(bytes.fromhex(dump[2:])))
    _write_atomically(state, data)
    journal.open_outbox(settings.home).prune(JOURNAL_KEY, block)
    return block


def _write_atomically(path: Path, data: bytes) -> None:
    """:func:`medledger.files.write_atomically`, a failure as a one-line DevnetError."""
    try:
        write_atomically(path, data)
    except OSError as exc:
        raise DevnetError(f"the devnet could not write {path}: {exc}") from None


def _one_genesis(folder: Path, url: str, dump: bytes) -> bytes:
    """Keep only the chain's own genesis block in a state dump.

    Anvil 1.7 adds a fresh genesis block (with the time of the load) each time it loads a state,
    and its next dump holds both: loaded again, either may come back as block 0, so the genesis
    hash changed between restarts and every deployment looked gone. The devnet's first genesis
    (its timestamp, kept in ``genesis.json``) is the one kept.
    """
    record = folder / "genesis.json"
    try:
        stamp = json.loads(record.read_text())["timestamp"]
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or damaged: the node's own
        block = requests.post(url, json={
            "jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x0", False],
        }, timeout=5).json()["result"]  # fmt: skip
        stamp = block["timestamp"]
        _write_atomically(record, json.dumps({"hash": block["hash"], "timestamp": stamp}).encode())
    state = json.loads(dump)
    blocks = state.get("blocks") or []
    kept = [
        b for b in blocks
        if b["header"]["number"] not in ("0x0", 0) or b["header"]["timestamp"] == stamp
    ]  # fmt: skip
    if len(kept) == len(blocks):
        return dump
    state["blocks"] = kept
    return json.dumps(state).encode()


def _restore(settings: Settings, url: str) -> Restored | None:
    """Replay the journal's transactions the loaded state lacks (after a crash of Anvil)."""
    box = journal.open_outbox(settings.home)
    entries = box.entries(JOURNAL_KEY)
    if not entries:
        return None
    rpc = Rpc(url, mines=True)
    found = rpc.find_receipts([e.hash for e in entries])
    box.mined(JOURNAL_KEY, [(h, r.block_number, r.status) for h, r in found.items()])
    missing = [e for e in entries if e.hash not in found]
    box.unmine(JOURNAL_KEY, [e.hash for e in missing])  # their blocks were of the lost chain
    head = _block_number(url) or 0
    box.prune(JOURNAL_KEY, head)  # what the snapshot holds is durable
    if not missing:
        return None
    lost_from = max((e.block or 0 for e in entries), default=head)
    replayed: list[str] = []
    failed: list[str] = []
    dropped: list[str] = []
    for run in _runs(missing):  # in journal order, one sender's consecutive transactions at once
        taken = rpc.nonce(run[0].sender)
        dropped.extend(e.hash for e in run if e.nonce < taken)
        live = sorted((e for e in run if e.nonce >= taken), key=lambda e: e.nonce)
        try:
            receipts = rpc.submit("replaying the journal", [e.raw for e in live])
        except MedLedgerError as exc:
            raise DevnetError(
                f"the devnet restarted from an older state and replaying {len(missing)} "
                f"journalled transaction(s) failed: {exc}"
            ) from None
        box.mined(JOURNAL_KEY, [(r.transaction_hash, r.block_number, r.status) for r in receipts])
        replayed.extend(r.transaction_hash for r in receipts)
        failed.extend(r.transaction_hash for r in receipts if r.status != 1)
    box.dropped(JOURNAL_KEY, dropped)
    return Restored(head, max(lost_from, head), len(replayed), tuple(failed), len(dropped))


def _runs(entries: list[journal.Entry]) -> list[list[journal.Entry]]:
    runs: list[list[journal.Entry]] = []
    for entry in entries:
        if runs and runs[-1][0].sender == entry.sender:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


def _keeps_state() -> bool:
    """``MEDLEDGER_DEVNET_STATE``: ``on`` (default) keeps the chain across restarts and crashes;
    ``off`` makes a throwaway chain (the tests and benchmarks)."""
    text = os.environ.get("MEDLEDGER_DEVNET_STATE", "on")
    if text not in ("on", "off"):
        raise DevnetError(f"MEDLEDGER_DEVNET_STATE must be on or off, not {text!r}")
    return text == "on"


def _snapshot_every() -> int:
    text = os.environ.get("MEDLEDGER_DEVNET_SNAPSHOT_EVERY")
    if text is None:
        return SNAPSHOT_EVERY
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise DevnetError(
            "MEDLEDGER_DEVNET_SNAPSHOT_EVERY must be a number of transactions (1 or more), "
            f"not {text!r}"
        )
    return count


def _state_args(state: Path) -> list[str]:
    """Load the last snapshot, when the devnet keeps its state and has one."""
    return ["--load-state", str(state)] if _keeps_state() and state.is_file() else []


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
        # state at an old block (see HISTORY_STATES).
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
            (folder / "port").write_text(str(port))
            if not _keeps_state():  # a throwaway chain: nothing of an earlier one to replay
                journal.open_outbox(settings.home).forget_chain(JOURNAL_KEY)
                return info
            # A first snapshot at once: a chain restarted without one would get a new genesis
            # block, and the journal replayed onto it would not match the deployments.
            restored = _restore(settings, info.url)
            if restored is not None or not (folder / "state.json").is_file():
                _snapshot(settings, info)
            return DevnetInfo(info.pid, info.port, info.started_at, restored)
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


def _last_port(settings: Settings) -> int | None:
    """The port the devnet listened on last (a restart keeps its URL, so a command that was
    sending when it stopped reaches it again)."""
    try:
        return int((settings.devnet_dir / "port").read_text())
    except (OSError, ValueError):
        return None


def _info_path(folder: Path) -> Path:
    return folder / "devnet.json"


def _read_info(folder: Path) -> DevnetInfo | None:
    try:
        data = json.loads(_info_path(folder).read_text())
        return DevnetInfo(
            pid=int(data["pid"]), port=int(data["port"]), started_at=float(data["started_at"])
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
        # As a server binds it: a port the stopped devnet left in TIME_WAIT is free to reuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True
