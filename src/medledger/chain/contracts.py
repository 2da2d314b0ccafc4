"""Deployed contracts as the package calls them: ``contract.functions.name(*args)`` gives a
:class:`ContractCall` whose calldata the pipeline sends and whose ``call()`` runs it on the node.

Calls go through :class:`medledger.chain.Chain` (raw JSON-RPC, the same request path as the
pipeline), encoded and decoded from the packaged ABIs with eth-abi, so calling a contract
imports no web3. Results are shaped as web3.py shaped them (one output as itself, several as a
list, arrays as lists, structs as tuples, addresses checksummed), so callers did not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from medledger.addresses import checksum
from medledger.chain.artifacts import artifact
from medledger.keccak import keccak

if TYPE_CHECKING:
    from medledger.chain.client import Chain


def abi_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type of a parameter (tuples spelled out)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@dataclass(frozen=True)
class _Function:
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    names: tuple[str, ...]


@cache
def _functions(name: str) -> dict[str, _Function]:
    found = {}
    for entry in artifact(name).abi:
        if entry.get("type") == "function":
            inputs = tuple(abi_type(i) for i in entry["inputs"])
            outputs = tuple(abi_type(o) for o in entry.get("outputs", ()))
            selector = keccak(f"{entry['name']}({','.join(inputs)})".encode())[:4]
            names = tuple(str(i["name"]) for i in entry["inputs"])
            found[entry["name"]] = _Function(entry["name"], selector, inputs, outputs, names)
    return found


class Contract:
    """A deployed contract: its name, address and functions (``contract.functions.hasAccess``)."""

    def __init__(self, chain: Chain, name: str, address: str) -> None:
        self.chain = chain
        self.name = name
        self.address = checksum(address)
        self.functions = _Functions(self)

    @property
    def abi(self) -> list[dict[str, Any]]:
        """The contract's ABI (from the packaged artifact)."""
        return artifact(self.name).abi

    def decode_function_input(self, data: bytes | str) -> tuple[ContractCall, dict[str, Any]]:
        """The call a transaction's input makes, and its arguments by name; ``ValueError``
        when it calls no function of this contract."""
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        for function in _functions(self.name).values():
            if function.selector == raw[:4]:
                values = abi_decode(list(function.inputs), raw[4:])
                shaped = [_shape(k, v) for k, v in zip(function.inputs, values, strict=True)]
                call = ContractCall(self, function, tuple(shaped))
                return call, dict(zip(function.names, shaped, strict=True))
        raise ValueError(f"the input calls no function of {self.name}")

    def __repr__(self) -> str:
        return f"<{self.name} at {self.address}>"


class _Functions:
    def __init__(self, contract: Contract) -> None:
        self._contract = contract

    def __getattr__(self, name: str) -> Any:
        try:
            function = _functions(self._contract.name)[name]
        except KeyError:
            raise AttributeError(f"{self._contract.name} has no function {name}") from None
        return lambda *args: ContractCall(self._contract, function, args)


@dataclass(frozen=True)
class ContractCall:
    """One function of a deployed contract with its arguments: calldata to send, or a call."""

    contract: Contract
    function: _Function
    args: tuple[Any, ...]

    @property
    def address(self) -> str:
        """The contract's address (where a transaction of this call goes)."""
        return self.contract.address

    @property
    def fn_name(self) -> str:
        """The function's name."""
        return self.function.name

    @property
    def data(self) -> bytes:
        """The calldata: selector and ABI-encoded arguments."""
        kinds = self.function.inputs
        values = [_prepare(k, v) for k, v in zip(kinds, self.args, strict=True)]
        return self.function.selector + abi_encode(list(kinds), values)

    def call(self, action: str | None = None) -> Any:
        """Run the function on the node at the latest block and return what it returns
        (a revert raises ``TransactionReverted`` naming ``action``)."""
        chain = self.contract.chain
        what = action or f"calling {self.contract.name}.{self.function.name}"
        return self.decode(chain.eth_call(what, self.address, self.data))

    def decode(self, raw: bytes) -> Any:
        """What the function returned, from its raw return data."""
        values = abi_decode(list(self.function.outputs), raw)
        shaped = [
            _shape(kind, value) for kind, value in zip(self.function.outputs, values, strict=True)
        ]
        return shaped[0] if len(shaped) == 1 else shaped

    def estimate_gas(self) -> int:
        """The gas the node estimates for sending this call (from the chain's default account
        slot: no sender)."""
        chain = self.contract.chain
        return chain.estimate(f"estimating {self.function.name}", None, self.address, self.data)


def _prepare(kind: str, value: Any) -> Any:
    """An argument as web3.py took it: bytes as ``0x`` hex too, structs as sequences or
    mappings (in the struct's field order)."""
    if kind.endswith("]"):
        inner = kind[: kind.rindex("[")]
        return [_prepare(inner, item) for item in value]
    if kind.startswith("("):
        items = list(value.values()) if isinstance(value, Mapping) else list(value)
        return tuple(_prepare(k, v) for k, v in zip(_components(kind), items, strict=True))
    if kind.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return value


def _shape(kind: str, value: Any) -> Any:
    """A decoded value as web3.py returned it: arrays as lists, addresses checksummed."""
    if kind.endswith("]"):
        inner = kind[: kind.rindex("[")]
        return [_shape(inner, item) for item in value]
    if kind.startswith("("):
        return tuple(_shape(k, v) for k, v in zip(_components(kind), value, strict=True))
    if kind == "address":
        return checksum(value)
    return value


def _components(kind: str) -> list[str]:
    """The component types of a tuple type ``(a,b,(c,d)[])``."""
    parts, depth, start = [], 0, 1
    for i, char in enumerate(kind[1:-1], start=1):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(kind[start:i])
            start = i + 1
    parts.append(kind[start : len(kind) - 1])
    return [p for p in parts if p]
