"""Bare JSON-RPC to Anvil, and ABI encoding without Ape, for ``test_trust_stateful.py``.

A stateful test that makes thousands of moves cannot afford Ape's work around each
transaction (gas estimation, receipt enrichment, a call trace for every revert) nor one HTTP
round trip per view call. This module talks to the node directly:

* :class:`Rpc` sends single requests and JSON-RPC *batches* (hundreds of ``eth_call`` in one
  HTTP request) over one keep-alive session;
* :class:`Codec` encodes calls, decodes results, events and custom errors from a contract's
  ABI (the dictionaries of Ape's compiled contract type), with ``eth_abi`` only;
* :class:`Node` sends transactions from unlocked (impersonated) accounts with a fixed gas limit
  (no estimation), waits for the receipt and decodes its logs; and calls (``eth_call``) at a
  chosen block time, so that a refused move is checked at the very second its transaction
  would run.

Only for Anvil: it relies on ``anvil_impersonateAccount``, ``anvil_setBalance``,
``anvil_setBlockTimestampInterval`` and ``eth_call`` block overrides.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

GAS = 8_000_000
"""Gas limit of every transaction (no estimation: a move predicted to pass is sent as is)."""


def as_int(value: int | str) -> int:
    """A quantity as Anvil gives it: a hex string, or (``blockTimestamp``) a number."""
    return value if isinstance(value, int) else int(value, 16)


class RpcError(Exception):
    """A JSON-RPC error answer; ``data`` holds the revert data of a reverted call."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error}")
        self.error = error
        self.data = HexBytes(error.get("data") or b"") if isinstance(error, dict) else HexBytes(b"")


class Rpc:
    """JSON-RPC over one HTTP session."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.session = requests.Session()
        self._ids = itertools.count(1)

    def request(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        answer = self.session.post(self.uri, json=body, timeout=120).json()
        if "error" in answer:
            raise RpcError(method, answer["error"])
        return answer["result"]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Sends ``calls`` in one batch; returns the raw answers (``result`` or ``error``) in
        the order of ``calls``."""
        if not calls:
            return []
        first = next(self._ids)
        for _ in range(len(calls) - 1):
            next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": p}
            for i, (m, p) in enumerate(calls)
        ]
        answers = self.session.post(self.uri, json=body, timeout=300).json()
        by_id = {a["id"]: a for a in answers}
        return [by_id[first + i] for i in range(len(calls))]


def canonical(param: dict[str, Any]) -> str:
    """The canonical ABI type of a parameter (tuples spelled out)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(canonical(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


@dataclass(frozen=True)
class Function:
    selector: bytes
    inputs: list[str]
    outputs: list[str]
    static_inputs: bool
    static_outputs: list[list[str]] | None  # per output, the elementary types of its words


_STATIC = re.compile(r"address|bool|bytes32|uint(8|16|32|40|64|96|128|256)")


def _words(kind: str) -> list[str] | None:
    """The elementary types of the 32-byte words a static type takes, or ``None`` when it is
    dynamic or not elementary (then ``eth_abi`` encodes it)."""
    if _STATIC.fullmatch(kind):
        return [kind]
    if kind.startswith("(") and kind.endswith(")") and "(" not in kind[1:]:
        parts = kind[1:-1].split(",")
        if all(_STATIC.fullmatch(p) for p in parts):
            return parts
    return None


@functools.lru_cache(maxsize=4096)
def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


@functools.lru_cache(maxsize=4096)
def _checksummed(raw: bytes) -> str:
    return to_checksum_address("0x" + raw.hex())


def _encode_static(types: list[str], values: list[Any]) -> bytes:
    out = []
    for kind, value in zip(types, values, strict=True):
        if kind == "address":
            out.append(_address_word(value))
        elif kind == "bytes32":
            assert len(value) == 32, f"bytes32 of {len(value)} bytes"
            out.append(bytes(value))
        else:  # uintN, bool
            out.append(int(value).to_bytes(32, "big"))
    return b"".join(out)


def _decode_word(kind: str, word: bytes) -> Any:
    if kind == "address":
        return _checksummed(word[12:])
    if kind == "bytes32":
        return word
    if kind == "bool":
        return word[-1] == 1
    return int.from_bytes(word, "big")


@dataclass(frozen=True)
class Event:
    name: str
    names: list[str]
    types: list[str]
    indexed: list[bool]


@dataclass(frozen=True)
class Error:
    name: str
    selector: bytes
    names: list[str]
    types: list[str]


def _normalise(value: Any) -> Any:
    """Addresses checksummed, byte strings as ``bytes``, lists as tuples."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(v) for v in value)
    return value


class Codec:
    """Encoding and decoding for one deployed contract, from its ABI."""

    def __init__(self, name: str, abi: list[dict[str, Any]], address: str = "") -> None:
        self.name = name
        self.address = to_checksum_address(address) if address else ""
        self.functions: dict[str, Function] = {}
        self.events: dict[bytes, Event] = {}
        self.errors: dict[str, Error] = {}
        self.error_selectors: dict[bytes, Error] = {}
        self._checked: set[str] = set()
        self._encoded: set[str] = set()
        for item in abi:
            kind = item["type"]
            if kind == "function":
                inputs = [canonical(p) for p in item["inputs"]]
                selector = keccak(text=f"{item['name']}({','.join(inputs)})")[:4]
                outputs = [canonical(p) for p in item["outputs"]]
                layouts = [_words(o) for o in outputs]
                self.functions[item["name"]] = Function(
                    selector,
                    inputs,
                    outputs,
                    all(_STATIC.fullmatch(i) for i in inputs),
                    None if any(x is None for x in layouts) else layouts,  # type: ignore[misc]
                )
            elif kind == "event":
                types = [canonical(p) for p in item["inputs"]]
                topic = keccak(text=f"{item['name']}({','.join(types)})")
                self.events[topic] = Event(
                    item["name"],
                    [p["name"] for p in item["inputs"]],
                    types,
                    [bool(p.get("indexed")) for p in item["inputs"]],
                )
            elif kind == "error":
                types = [canonical(p) for p in item["inputs"]]
                selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                error = Error(item["name"], selector, [p["name"] for p in item["inputs"]], types)
                self.errors[item["name"]] = error
                self.error_selectors[selector] = error

    def at(self, address: str) -> Codec:
        """The same codec bound to ``address``."""
        bound = Codec.__new__(Codec)
        bound.__dict__.update(self.__dict__)
        bound.address = to_checksum_address(address)
        return bound

    def data(self, function: str, *args: Any) -> str:
        f = self.functions[function]
        if not f.static_inputs:
            return "0x" + (f.selector + encode(f.inputs, list(args))).hex()
        fast = _encode_static(f.inputs, list(args))
        if function not in self._encoded:  # the fast path agrees with eth_abi, once each
            self._encoded.add(function)
            assert fast == encode(f.inputs, list(args)), f"fast encoding of {function}"
        return "0x" + (f.selector + fast).hex()

    def result(self, function: str, raw: str | bytes) -> Any:
        """The decoded return value: the value itself for one output, else a tuple."""
        f = self.functions[function]
        data = HexBytes(raw)
        if f.static_outputs is not None:
            values = []
            offset = 0
            for kind, layout in zip(f.outputs, f.static_outputs, strict=True):
                words = tuple(
                    _decode_word(k, bytes(data[offset + 32 * i : offset + 32 * (i + 1)]))
                    for i, k in enumerate(layout)
                )
                offset += 32 * len(layout)
                values.append(words if kind.startswith("(") else words[0])
            fast = values[0] if len(values) == 1 else tuple(values)
            if function not in self._checked:  # the fast path agrees with eth_abi, once each
                self._checked.add(function)
                assert fast == self._slow_result(f, data), f"fast decoding of {function}"
            return fast
        return self._slow_result(f, data)

    @staticmethod
    def _slow_result(f: Function, data: bytes) -> Any:
        values = tuple(_normalise(v) for v in decode(f.outputs, data))
        return values[0] if len(values) == 1 else values

    def error_data(self, name: str, *args: Any) -> HexBytes:
        """The revert data of ``name(*args)``."""
        error = self.errors[name]
        return HexBytes(error.selector + encode(error.types, list(args)))

    def describe_error(self, data: bytes) -> str:
        """``Name(arg=value, ...)`` for revert data of one of this contract's errors."""
        error = self.error_selectors.get(bytes(data[:4]))
        if error is None:
            return f"<unknown revert data 0x{bytes(data).hex()}>"
        values = decode(error.types, bytes(data[4:]))
        shown = ", ".join(
            f"{n}={_normalise(v)!r}" for n, v in zip(error.names, values, strict=True)
        )
        return f"{error.name}({shown})"

    def decode_log(self, log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """``(event name, arguments)`` of a raw log of this contract, or ``None``."""
        topics = [HexBytes(t) for t in log["topics"]]
        if not topics or bytes(topics[0]) not in self.events:
            return None
        event = self.events[bytes(topics[0])]
        data_types = [t for t, i in zip(event.types, event.indexed, strict=True) if not i]
        data_values = iter(decode(data_types, HexBytes(log["data"])))
        topic_values = iter(topics[1:])
        args: dict[str, Any] = {}
        for name, kind, indexed in zip(event.names, event.types, event.indexed, strict=True):
            if indexed:
                (value,) = decode([kind], bytes(next(topic_values)))
            else:
                value = next(data_values)
            args[name] = _normalise(value)
        return event.name, args


@dataclass
class Receipt:
    status: int
    block: int
    timestamp: int
    events: list[tuple[str, str, dict[str, Any]]]  # (contract name, event name, arguments)
    raw: dict[str, Any]


class Node:
    """Transactions and calls against a set of deployed contracts on Anvil."""

    def __init__(self, rpc: Rpc) -> None:
        self.rpc = rpc
        self.codecs: dict[str, Codec] = {}  # by checksummed address

    def track(self, codec: Codec) -> Codec:
        self.codecs[codec.address] = codec
        return codec

    def decode_logs(self, logs: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
        decoded = []
        for log in logs:
            codec = self.codecs.get(to_checksum_address(log["address"]))
            event = codec.decode_log(log) if codec is not None else None
            if event is None:
                decoded.append(("?", "?", {"address": log["address"], "topics": log["topics"]}))
            else:
                decoded.append((codec.name, event[0], event[1]))  # type: ignore[union-attr]
        return decoded

    def send(self, sender: str, to: str | None, data: str, gas: int = GAS) -> Receipt:
        tx: dict[str, Any] = {"from": sender, "data": data, "gas": hex(gas), "gasPrice": "0x0"}
        if to is not None:
            tx["to"] = to
        tx_hash = self.rpc.request("eth_sendTransaction", [tx])
        while (raw := self.rpc.request("eth_getTransactionReceipt", [tx_hash])) is None:
            pass
        return Receipt(
            status=int(raw["status"], 16),
            block=int(raw["blockNumber"], 16),
            timestamp=as_int(raw["blockTimestamp"]),
            events=self.decode_logs(raw["logs"]),
            raw=raw,
        )

    @staticmethod
    def call_request(
        sender: str, to: str, data: str, time: int | None = None
    ) -> tuple[str, list[Any]]:
        """An ``eth_call`` request for :meth:`Rpc.batch` (at ``time`` when given)."""
        params: list[Any] = [{"from": sender, "to": to, "data": data}, "latest"]
        if time is not None:
            params += [None, {"time": hex(time)}]
        return "eth_call", params

    def call(self, sender: str, to: str, data: str, time: int | None = None) -> tuple[bool, bytes]:
        """``(True, return data)`` or ``(False, revert data)``."""
        method, params = self.call_request(sender, to, data, time)
        try:
            return True, HexBytes(self.rpc.request(method, params))
        except RpcError as err:
            if err.error.get("code") != 3 and "revert" not in str(err.error.get("message")):
                raise
            return False, err.data
