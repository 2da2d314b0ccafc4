"""EVM nodes for the tests to reach as configured networks: a ``hardhat node`` (Hardhat
Network, npm ``hardhat``) or an ``anvil`` like the devnet's, each on 127.0.0.1 and a free port;
and a recording JSON-RPC proxy in front of one that notes every method a client sends.

Hardhat's settings are ``tools/hardhat/hardhat.config.js`` (chain id 31337, the standard test
mnemonic, Cancun, the devnet's block gas limit); Hardhat comes from npm (package.json), so
``make install`` installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING

from loopback import LoopbackServer

from medledger.accounts import DEV_ACCOUNT_COUNT
from medledger.chain import devnet
from medledger.toolchain import anvil_path, project_root

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

START_TIMEOUT_SECONDS = 60.0
#: Methods only a development node serves: a client of a real network must never send them.
DEV_ONLY_PREFIXES = ("anvil_", "evm_", "hardhat_")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str, method: str) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=2) as reply:
        return json.loads(reply.read())["result"]


@contextlib.contextmanager
def hardhat_node(log: Path, chain_id: int = devnet.CHAIN_ID) -> Iterator[str]:
    """Run ``hardhat node`` until the block ends; yield its URL. Its output goes to ``log``."""
    root = project_root()
    assert root is not None
    binary = root / "node_modules" / ".bin" / "hardhat"
    assert binary.exists(), f"{binary} is missing: run `make install` (npm ci installs Hardhat)"
    port = _free_port()
    command = [str(binary), "node", "--config", "hardhat.config.js",
               "--hostname", "127.0.0.1", "--port", str(port)]  # fmt: skip
    chosen = {"MEDLEDGER_HARDHAT_CHAIN_ID": str(chain_id)}
    with _running(command, root / "tools" / "hardhat", log, port, chain_id, chosen) as url:
        yield url


@contextlib.contextmanager
def anvil_node(
    log: Path, chain_id: int = devnet.CHAIN_ID, extra: tuple[str, ...] = ()
) -> Iterator[str]:
    """Run Anvil as the devnet runs it (without its state files) until the block ends
    (``extra``: more of its options)."""
    port = _free_port()
    command = [str(anvil_path()), "--host", "127.0.0.1", "--port", str(port),
               "--chain-id", str(chain_id), "--accounts", str(DEV_ACCOUNT_COUNT),
               "--gas-limit", str(devnet.BLOCK_GAS_LIMIT), *extra]  # fmt: skip
    with _running(command, log.parent, log, port, chain_id) as url:
        yield url


@contextlib.contextmanager
def _running(
    command: list[str], cwd: Path, log: Path, port: int, chain_id: int,
    env: dict[str, str] | None = None,
) -> Iterator[str]:  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=cwd,
            env={**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", **(env or {})},
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert process.poll() is None, f"{command[0]} exited: {log.read_text()[-600:]}"
            with contextlib.suppress(OSError, ValueError, KeyError):
                if _call(url, "eth_chainId") == hex(chain_id):
                    break
            assert time.monotonic() < deadline, f"{command[0]} did not answer on {url}"
            time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class RecordingProxy(LoopbackServer):
    """Forwards JSON-RPC requests (single or batched) to ``upstream`` and keeps every method
    name it saw, in order, in :attr:`methods`."""

    def __init__(self, upstream: str) -> None:
        self.methods: list[str] = []
        lock = threading.Lock()
        seen = self.methods

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                calls = json.loads(body)
                calls = calls if isinstance(calls, list) else [calls]
                with lock:
                    seen.extend(call["method"] for call in calls)
                request = urllib.request.Request(
                    upstream, body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=120) as reply:
                    answer = reply.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._serve(Handler)

    def dev_only(self) -> list[str]:
        """The development-node methods it was sent (none, for a client of a real network)."""
        return sorted({m for m in self.methods if m.startswith(DEV_ONLY_PREFIXES)})
