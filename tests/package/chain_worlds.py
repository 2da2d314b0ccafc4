"""Test worlds built once per run and restored from chain snapshots.

A *world step* is a part of a package test's setup that changes nothing but the chain (and the
session's own store): verifying an institution, registering the patient, opening care, issuing
a policy. The first test that asks for a sequence of steps builds them and takes an
``evm_snapshot`` after each one; a later test that asks for the same steps in the same order
(the same fixtures and factory calls, with the same arguments) gets the same values back and an
``evm_revert`` to the snapshot instead of the transactions. Every test still starts from the
freshly deployed chain plus its own steps, and never sees another test's writes.

Anvil keeps snapshots as a stack: reverting to one deletes it and every later one. The cache is
therefore one path of steps from the deployed chain (``Worlds.path``); a test whose steps leave
the path reverts to the point where they leave it and builds on from there, replacing the rest.
The revert is lazy: a test walks the path without touching the chain, and the chain is brought
to the test's world only when something else talks to it (any JSON-RPC request to the devnet,
caught in ``requests``), when a step is not on the path, or when the test itself starts.

What a step may do: send transactions and write to a store that lives for the whole session;
its value is handed to every later test that reaches the same snapshot, so it should be plain
data (accounts, ids, frozen dataclasses). A step must not depend on anything random or
per-test (a ``tmp_path`` store, ``Account.create()``): arguments are keyed by value (accounts
by address, stores by folder), so such a step is simply built again by every test.
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests.adapters

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

# JSON-RPC methods that change nothing: a test's world must be in place before them, but they
# leave it as it is, so later steps of the same test can still be cached.
READS = frozenset({
    "eth_accounts", "eth_blockNumber", "eth_call", "eth_chainId", "eth_estimateGas",
    "eth_feeHistory", "eth_gasPrice", "eth_getBalance", "eth_getBlockByHash",
    "eth_getBlockByNumber", "eth_getCode", "eth_getLogs", "eth_getStorageAt",
    "eth_getTransactionByHash", "eth_getTransactionCount", "eth_getTransactionReceipt",
    "eth_maxPriorityFeePerGas", "net_version", "web3_clientVersion",
})  # fmt: skip


class Unkeyable(Exception):
    """An argument of a step has no stable value (the step is then built, never cached)."""


@dataclass
class Built:
    """One step on the path: its key, the snapshot taken right after it, and its value."""

    key: tuple[Any, ...]
    snapshot: str
    value: Any


class Worlds:
    """The cache of world steps of one session's devnet (see the module docstring).

    Where a test stands: ``at`` steps along the path are its world so far; ``mode`` says what
    the chain holds: ``"lazy"`` (anything: the world is restored before the next request),
    ``"exact"`` (exactly the world ``path[at]``, so further steps can be built and cached) or
    ``"own"`` (the test's own writes on top: further steps are built and not cached).
    """

    def __init__(self) -> None:
        self.url: str | None = None
        self.path: list[Built] = []
        self.at = 0
        self.mode = "lazy"
        self.on_restore: Callable[[], None] = lambda: None
        self.building = 0  # steps being built: a step inside a step is part of the outer one
        self.hits = 0
        self.builds = 0
        self._lock = threading.RLock()
        self._original_send: Any = None

    # --------------------------------------------------------------------- session

    def start(self, url: str, on_restore: Callable[[], None]) -> None:
        """Takes the path's root (the deployed chain) and starts watching requests to ``url``."""
        self.url = url.rstrip("/")
        self.on_restore = on_restore
        self.path = [Built((), self._rpc("evm_snapshot", []), None)]
        self.at, self.mode = 0, "exact"
        original = requests.adapters.HTTPAdapter.send
        self._original_send = original
        worlds = self

        @functools.wraps(original)
        def send(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            if worlds.url is not None and (request.url or "").rstrip("/") == worlds.url:
                worlds.touched(request.body)
            return original(adapter, request, *args, **kwargs)

        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]

    def stop(self) -> None:
        if self._original_send is not None:
            requests.adapters.HTTPAdapter.send = self._original_send  # type: ignore[method-assign]
            self._original_send = None
        self.url = None

    # --------------------------------------------------------------------- tests

    def begin(self) -> None:
        """A test starts: its world is the deployed chain, whatever the chain holds now."""
        with self._lock:
            self.at, self.mode = 0, "lazy"

    def enter(self) -> None:
        """The test body starts (or something outside ``requests`` is about to use the chain):
        its world must be in place."""
        with self._lock:
            if self.url is not None and self.mode == "lazy":
                self._restore()

    def step(self, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        """Returns the step's value, from the path when the test's next step is there."""
        with self._lock:
            if self.url is None or self.building or self.mode == "own":
                cached = False  # no devnet watched, part of a step being built, or own writes
            else:
                wanted = (*self.path[self.at].key, key)
                if self.at + 1 < len(self.path) and self.path[self.at + 1].key == wanted:
                    self.at += 1
                    self.hits += 1
                    self.mode = "lazy"  # the chain is not there yet (or holds anything)
                    value: T = self.path[self.at].value
                    return value
                if self.mode == "lazy":
                    self._restore()
                cached = True
                self.building += 1
        if not cached:
            return build()
        try:
            value = build()
        except BaseException:
            with self._lock:
                self.building -= 1
                self.mode = "own"
            raise
        with self._lock:
            self.building -= 1
            self.builds += 1
            del self.path[self.at + 1 :]  # their snapshots went with the last restore
            self.path.append(Built(wanted, self._rpc("evm_snapshot", []), value))
            self.at += 1
            return value

    def touched(self, body: bytes | str | None) -> None:
        """A request to the devnet: the world goes in place first; a write makes the chain
        the test's own."""
        with self._lock:
            if self.building:
                return
            if self.mode == "lazy":
                self._restore()
            if self.mode == "exact" and not _only_reads(body):
                self.mode = "own"

    # --------------------------------------------------------------------- chain

    def _restore(self) -> None:
        """Reverts to the snapshot of ``path[at]`` and takes it again (a revert deletes it),
        dropping the steps after it (the revert deleted their snapshots too)."""
        built = self.path[self.at]
        if not self._rpc("evm_revert", [built.snapshot]):
            raise RuntimeError(f"evm_revert to {built.snapshot} failed: the world cache is lost")
        del self.path[self.at + 1 :]
        built.snapshot = self._rpc("evm_snapshot", [])
        # Anvil puts its clock back to the head's time on a revert; say so explicitly, so that
        # no time travel of an earlier test (evm_increaseTime) outlives its blocks.
        head = self._rpc("eth_getBlockByNumber", ["latest", False])
        self._rpc("evm_setTime", [int(head["timestamp"], 16)])
        self.on_restore()
        self.mode = "exact"

    def _rpc(self, method: str, params: list[Any]) -> Any:
        """A JSON-RPC call that the ``requests`` watch does not see."""
        assert self.url is not None
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}
        )
        with _DIRECT.open(request, timeout=60) as reply:
            answer = json.loads(reply.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


WORLDS = Worlds()
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def world_step(fixture: Callable[..., T]) -> Callable[..., T]:
    """Decorates a fixture function (under ``@pytest.fixture``) whose setup is a world step.

    The fixture must return a value (not yield); its arguments are keyed by value (see
    :func:`key_of`).
    """
    if inspect.isgeneratorfunction(fixture):
        raise TypeError(f"{fixture.__name__}: a world step returns its value, it cannot yield")

    @functools.wraps(fixture)
    def stepped(*args: Any, **kwargs: Any) -> T:
        return run_step(
            (fixture.__module__, fixture.__qualname__, *args, *sorted(kwargs.items())),
            lambda: fixture(*args, **kwargs),
        )

    return stepped


def run_step(parts: tuple[Any, ...], build: Callable[[], T]) -> T:
    """Runs ``build`` as the world step named by ``parts`` (its name and arguments)."""
    try:
        key = key_of(parts)
    except Unkeyable:
        WORLDS.touched(None)  # a write of the test's own
        return build()
    return WORLDS.step(key, build)


def key_of(value: Any) -> Any:
    """A hashable, stable stand-in for a step argument: plain values as they are, accounts by
    address, stores and settings by folder, the session's chain and factories by name."""
    if value is None or isinstance(value, str | int | bytes | bool | Decimal | Enum):
        return value
    if isinstance(value, tuple | list):
        return tuple(key_of(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, key_of(v)) for k, v in value.items()))
    if isinstance(value, Path):
        return ("path", str(value))
    kind = type(value).__name__
    if hasattr(value, "address") and hasattr(value, "key"):  # an eth_account LocalAccount
        return ("account", value.address)
    if kind == "Chain":
        return ("chain", value.url)
    if hasattr(value, "root") and isinstance(value.root, Path):  # a block store
        return ("store", kind, str(value.root))
    if kind == "Settings" and hasattr(value, "home"):
        return ("settings", str(value.home))
    if callable(value) and hasattr(value, "__qualname__"):  # a factory fixture's function
        return ("function", value.__module__, value.__qualname__)
    raise Unkeyable(kind)


def _only_reads(body: bytes | str | None) -> bool:
    if not body:
        return False
    try:
        calls = json.loads(body)
    except (TypeError, ValueError):
        return False
    calls = calls if isinstance(calls, list) else [calls]
    return all(isinstance(c, dict) and c.get("method") in READS for c in calls)
