"""The one event reader: every log the package reads, from a receipt or from the chain.

Events are decoded from the packaged ABIs with eth-abi (no web3 contract objects). Events on
the chain are read from the event index (:mod:`medledger.chain.eventindex`, synced to the
node's head before each query), filtered by their indexed arguments (``eth_getLogs`` topics).
A :class:`Log` carries its arguments, block, position, transaction and, when known, its
block's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from medledger.addresses import checksum as to_checksum_address
from medledger.chain.artifacts import artifact
from medledger.chain.contracts import abi_type as _type
from medledger.chain.eventindex import hex_bytes
from medledger.keccak import keccak

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from medledger.chain.client import Chain
    from medledger.chain.eventindex import RawLog
    from medledger.chain.pipeline import Receipt


def moment(seconds: int) -> datetime:
    """A time a contract holds or a block carries (seconds since the epoch) as a UTC datetime."""
    return datetime.fromtimestamp(int(seconds), tz=UTC)


@dataclass(frozen=True)
class Log:
    """One decoded event."""

    contract: str
    event: str
    args: Mapping[str, Any]
    address: str
    block: int
    index: int
    transaction_hash: str
    #: The block's time in seconds (None: not known yet, asked of the node when needed).
    timestamp: int | None = None

    def __getitem__(self, name: str) -> Any:
        """An argument by name (``log["patient"]``)."""
        return self.args[name]

    def time(self, chain: Chain) -> datetime:
        """The time of the block the event is in."""
        if self.timestamp is not None:
            return moment(self.timestamp)
        return chain.block_time(self.block)


@dataclass(frozen=True)
class _Event:
    name: str
    topic: bytes
    inputs: tuple[dict[str, Any], ...]
    #: (name, ABI type) of each indexed argument, then of each argument in the data, in order.
    indexed_types: tuple[tuple[str, str], ...] = ()
    plain_types: tuple[tuple[str, str], ...] = ()

    @property
    def indexed(self) -> list[dict[str, Any]]:
        return [i for i in self.inputs if i.get("indexed")]

    @property
    def plain(self) -> list[dict[str, Any]]:
        return [i for i in self.inputs if not i.get("indexed")]


@cache
def _events(contract: str) -> dict[str, _Event]:
    found: dict[str, _Event] = {}
    for entry in artifact(contract).abi:
        if entry.get("type") != "event":
            continue
        inputs = tuple(entry["inputs"])
        signature = f"{entry['name']}({','.join(_type(i) for i in inputs)})"
        found[entry["name"]] = _Event(
            entry["name"], keccak(signature.encode()), inputs,
            tuple((i["name"], _type(i)) for i in inputs if i.get("indexed")),
            tuple((i["name"], _type(i)) for i in inputs if not i.get("indexed")),
        )  # fmt: skip
    return found


def _event(contract: str, name: str) -> _Event:
    try:
        return _events(contract)[name]
    except KeyError:
        raise ValueError(f"{contract} has no event {name}") from None


def _normalise(kind: str, value: Any) -> Any:
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("bytes") and kind != "bytes" and "[" not in kind:
        return bytes(value)
    return value


def _decode(contract: str, event: _Event, raw: Mapping[str, Any]) -> Log:
    """A log as a node or a receipt sends it."""
    return _decoded(
        contract, event, [hex_bytes(t) for t in raw["topics"]],
        hex_bytes(raw.get("data", b"")), to_checksum_address(raw["address"]),
        _int(raw.get("blockNumber")), _int(raw.get("logIndex")),
        "0x" + hex_bytes(raw.get("transactionHash", b"")).hex(), None,
    )  # fmt: skip


def decode(contract: str, name: str, raw: RawLog) -> Log:
    """One ``name`` event of ``contract`` as the event index holds it, decoded (for a caller
    that picks from many undecoded rows, :meth:`EventIndex.select`, the few it needs)."""
    return _indexed(contract, _event(contract, name), raw)


def _indexed(contract: str, event: _Event, raw: RawLog) -> Log:
    """A log from the event index."""
    return _decoded(
        contract, event, list(raw.topics), raw.data, to_checksum_address(raw.address),
        raw.block, raw.position, "0x" + raw.transaction_hash.hex(), raw.time,
    )  # fmt: skip


def _decoded(
    contract: str, event: _Event, topics: list[bytes], data: bytes, address: str,
    block: int, index: int, transaction: str, timestamp: int | None,
) -> Log:  # fmt: skip
    args: dict[str, Any] = {}
    for (name, kind), topic in zip(event.indexed_types, topics[1:], strict=True):
        dynamic = kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")
        args[name] = topic if dynamic else topic_value(kind, topic)
    if event.plain_types:
        values = abi_decode([kind for _name, kind in event.plain_types], data)
        for (name, kind), value in zip(event.plain_types, values, strict=True):
            args[name] = _normalise(kind, value)
    return Log(contract, event.name, args, address, block, index, transaction, timestamp)


def topic_value(kind: str, topic: bytes) -> Any:
    """An indexed argument of a static type from its 32-byte topic, as eth-abi decodes it
    (then normalised: checksummed address, ``bytes``). Written out for the value types the
    contracts index because eth-abi's decoder costs 20-40 us a call to set up, most of an
    event's decoding; other types go to eth-abi. The tests compare both under hypothesis."""
    if kind == "address":
        return to_checksum_address(topic[12:])
    if kind.startswith("uint"):
        return int.from_bytes(topic, "big")
    if kind.startswith("bytes") and kind[5:].isdigit():
        return bytes(topic[: int(kind[5:])])
    if kind == "bool":
        return topic[-1] == 1
    return _normalise(kind, abi_decode([kind], topic)[0])


def _int(value: Any) -> int:
    if value is None:
        return 0
    return value if isinstance(value, int) else int(str(value), 16)


def from_receipt(
    receipt: Receipt, contract: str, name: str, address: str | None = None
) -> list[Log]:
    """The ``name`` events of ``contract`` a receipt holds (from ``address`` when given)."""
    event = _event(contract, name)
    wanted = None if address is None else address.lower()
    return [
        _decode(contract, event, raw)
        for raw in receipt.logs
        if raw["topics"]
        and hex_bytes(raw["topics"][0]) == event.topic
        and (wanted is None or str(raw["address"]).lower() == wanted)
    ]


def _topic(kind: str, value: Any) -> str:
    if kind in ("string", "bytes"):
        return "0x" + keccak(value if isinstance(value, bytes) else str(value).encode()).hex()
    if kind == "address":
        value = to_checksum_address(value)
    return "0x" + abi_encode([kind], [value]).hex()


def topics(contract: str, name: str, filters: Mapping[str, Any] | None) -> list[Any]:
    """The ``eth_getLogs`` topics of an event with some indexed arguments fixed (a list value
    means any of them)."""
    event = _event(contract, name)
    chosen: list[Any] = ["0x" + event.topic.hex()]
    for param in event.indexed:
        value = (filters or {}).get(param["name"])
        if value is None:
            chosen.append(None)
        elif isinstance(value, (list, tuple, set, frozenset)):
            chosen.append([_topic(_type(param), v) for v in value])
        else:
            chosen.append(_topic(_type(param), value))
    unknown = set(filters or {}) - {p["name"] for p in event.indexed}
    if unknown:
        raise ValueError(f"{contract}.{name} has no indexed argument {sorted(unknown)}")
    while chosen and chosen[-1] is None:
        chosen.pop()
    return chosen


def logs(
    chain: Chain,
    contract: str,
    name: str,
    filters: Mapping[str, Any] | None = None,
    from_block: int | None = None,
) -> list[Log]:
    """Every ``name`` event of the deployed ``contract`` matching ``filters`` (indexed
    arguments), oldest first, from the block it was deployed in (or ``from_block``)."""
    from medledger.chain import deployments, eventindex

    address = deployments.require(chain).contracts[contract].address
    wanted = topics(contract, name, filters)
    event = _event(contract, name)
    found = eventindex.for_chain(chain).select(address, wanted, from_block)
    return [_indexed(contract, event, raw) for raw in found]


def many(
    chain: Chain, contract: str, names: Iterable[str], filters: Mapping[str, Any] | None = None
) -> list[Log]:
    """The events of several kinds with the same filters, in chain order."""
    found = [log for name in names for log in logs(chain, contract, name, filters)]
    return sorted(found, key=lambda log: (log.block, log.index))


def start_block(chain: Chain, contract: str) -> int:
    """The block the deployed ``contract`` was deployed in."""
    from medledger.chain import deployments

    return deployments.require(chain).contracts[contract].block
