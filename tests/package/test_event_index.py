"""Scenarios for the event index: reads of events come from a local index that pages through
the chain as a public provider allows, follows the chain incrementally, and survives blocks
being replaced under it.

The index is read here through a second connection to the session's devnet, made through an
RPC proxy on 127.0.0.1 that forwards every request to the devnet, records what is asked, and
refuses ``eth_getLogs`` ranges wider than it allows, with the error code and wording of
Infura's documented limit (JSON-RPC error -32005, "query exceeds max block range"). The
proxy is a stand-in for a provider's limit; the answers come from the real Anvil node, which
is also the oracle: what the index returns is compared with one ``eth_getLogs`` of the node.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback import LoopbackServer

from medledger import records
from medledger.categories import Category
from medledger.chain import Chain, deployments, eventindex, events
from medledger.chain.pipeline import Rpc
from medledger.config import load_settings
from medledger.errors import NodeUnavailable, Notice
from medledger.ipfs.local import LocalBlockStore


class RpcProxy(LoopbackServer):
    """Forwards JSON-RPC to ``upstream``; records each call; refuses wide log ranges."""

    def __init__(self, upstream: str, max_span: int | None = None) -> None:
        self.upstream = upstream
        self.max_span = max_span
        self.calls: list[tuple[str, list[Any]]] = []
        #: Called once, right after the next eth_getLogs is answered (then cleared).
        self.after_logs: Any = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                batch = body if isinstance(body, list) else [body]
                answers = [proxy.answer(call) for call in batch]
                payload = json.dumps(answers if isinstance(body, list) else answers[0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                pass

        self._serve(Handler)

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((call["method"], call.get("params", [])))
        if call["method"] == "eth_getLogs" and self.max_span is not None:
            query = call["params"][0]
            span = int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1
            if span > self.max_span:
                message = f"query exceeds max block range {self.max_span}"
                return {"jsonrpc": "2.0", "id": call["id"],
                        "error": {"code": -32005, "message": message}}  # fmt: skip
        request = urllib.request.Request(
            self.upstream, json.dumps(call).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = dict(json.loads(reply.read()))
        if call["method"] == "eth_getLogs" and self.after_logs is not None:
            hook, self.after_logs = self.after_logs, None
            hook()
        return answer

    def log_ranges(self) -> list[tuple[int, int]]:
        return [
            (int(p[0]["fromBlock"], 16), int(p[0]["toBlock"], 16))
            for method, p in self.calls
            if method == "eth_getLogs"
        ]


@pytest.fixture
def proxy(chain: Chain):
    server = RpcProxy(chain.url, max_span=4)
    yield server
    server.stop()


@pytest.fixture
def through_proxy(chain: Chain, proxy: RpcProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A connection to the session's devnet through the proxy, from a home of its own (an
    empty index) that shares the session's deployments; ``log_block_range`` 50."""

    def connect(block_range: int = 50) -> Chain:
        home = tmp_path / "proxy-home"
        home.mkdir(exist_ok=True)
        (home / "config.toml").write_text(
            f'[networks.ward]\nrpc = "{proxy.url}"\nlog_block_range = {block_range}\n'
        )
        monkeypatch.setenv("MEDLEDGER_HOME", str(home))
        monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(chain.settings.deployments_dir))
        return Chain(load_settings(), "ward")

    return connect


@pytest.fixture
def anchor(chain, tmp_path, verified_institution, hospital, registered_patient, care):
    """Factory: the hospital anchors ``count`` records, one transaction (block) each."""
    care(registered_patient, verified_institution(hospital))
    store = LocalBlockStore(tmp_path / "ipfs")

    def make(count: int = 1) -> list[records.Record]:
        made = []
        for _ in range(count):
            body = json.dumps({"resourceType": "Observation", "id": os.urandom(8).hex()}).encode()
            made += records.anchor(
                chain,
                store,
                hospital,
                registered_patient.address,
                [records.Draft(body, Category.LAB)],
            )
        return made

    return make


def node_logs(chain: Chain, name: str = "RecordAnchored") -> list[tuple[int, int, str]]:
    """The oracle: the node's own answer to one eth_getLogs over the whole chain."""
    recorded = deployments.require(chain).contracts["RecordRegistry"]
    query = {
        "address": recorded.address,
        "fromBlock": hex(recorded.block),
        "toBlock": "latest",
        "topics": events.topics("RecordRegistry", name, None),
    }
    found = chain.request("eth_getLogs", [query])
    return [
        (int(e["blockNumber"], 16), int(e["logIndex"], 16), e["transactionHash"]) for e in found
    ]


def indexed(
    chain: Chain, name: str = "RecordAnchored", **filters: Any
) -> list[tuple[int, int, str]]:
    return [
        (log.block, log.index, log.transaction_hash)
        for log in events.logs(chain, "RecordRegistry", name, filters or None)
    ]


def test_the_index_answers_what_the_node_answers_in_pages_the_provider_allows(
    chain, anchor, through_proxy, proxy
):
    anchor(3)
    ward = through_proxy(block_range=50)
    assert indexed(ward) == node_logs(chain)
    assert len(indexed(ward)) >= 3
    ranges = proxy.log_ranges()
    assert any(last - first + 1 > 4 for first, last in ranges)  # refused, then halved
    assert max(last - first + 1 for first, last in ranges) <= 50
    accepted = [r for r in ranges if r[1] - r[0] + 1 <= 4]
    covered = sorted(b for first, last in accepted for b in range(first, last + 1))
    assert covered == sorted(set(covered)), "a block was fetched twice"
    assert covered[0] == min(c.block for c in deployments.require(chain).contracts.values())


def test_the_index_follows_the_chain_and_fetches_only_new_blocks(
    chain, anchor, through_proxy, proxy
):
    anchor(1)
    ward = through_proxy()
    indexed(ward)
    seen = proxy.log_ranges()[-1][1]
    proxy.calls.clear()
    (record,) = anchor(1)
    found = indexed(ward, patient=record.patient)
    assert found == node_logs(chain)
    assert found[-1][2] == record.transaction_hash
    assert all(first > seen for first, _last in proxy.log_ranges())
    proxy.calls.clear()
    indexed(ward)
    assert proxy.log_ranges() == []  # nothing new: no eth_getLogs at all


def test_filters_on_indexed_arguments_match_the_nodes_topic_filter(chain, anchor, through_proxy):
    made = anchor(3)
    ward = through_proxy()
    for record in made:
        (only,) = indexed(ward, id=record.id)
        assert only[2] == record.transaction_hash
    both = indexed(ward, id=[made[0].id, made[2].id])
    assert [b[2] for b in both] == [made[0].transaction_hash, made[2].transaction_hash]
    assert indexed(ward, id=b"\x01" * 32) == []


def test_many_alternatives_are_asked_in_slices(chain, anchor, through_proxy, monkeypatch):
    made = anchor(3)
    ward = through_proxy()
    monkeypatch.setattr(eventindex, "_MOST_ALTERNATIVES", 2)
    wanted = [made[2].id, made[0].id, made[1].id, made[0].id]
    assert [r[2] for r in indexed(ward, id=wanted)] == [m.transaction_hash for m in made]


def test_blocks_replaced_under_the_index_are_forgotten(chain, anchor, through_proxy):
    """A devnet reverted to a snapshot replaces blocks as a reorg does: the index must drop
    the events of the replaced blocks (an empty block now stands at that height) and take
    the new ones."""
    anchor(1)
    ward = through_proxy()
    snapshot = chain.request("evm_snapshot", [])
    (gone,) = anchor(1)
    assert gone.transaction_hash in {r[2] for r in indexed(ward)}
    assert chain.request("evm_revert", [snapshot]) is True
    chain.request("evm_mine", [])  # another block at the height of the one that held `gone`
    assert gone.transaction_hash not in {r[2] for r in indexed(ward)}
    assert indexed(ward) == node_logs(chain)


def test_blocks_replaced_while_a_page_is_fetched_are_not_mixed_in(
    chain, anchor, through_proxy, proxy
):
    """The node answers a page's logs from one fork and the page's last header from another
    (the blocks were replaced between the two answers): that page must not be kept."""
    anchor(1)
    ward = through_proxy(block_range=100_000)
    indexed(ward)
    snapshot = chain.request("evm_snapshot", [])
    (gone,) = anchor(1)

    def replace_the_block() -> None:
        chain.request("evm_revert", [snapshot])
        chain.request("evm_mine", [])

    proxy.after_logs = replace_the_block
    found = indexed(ward)
    assert proxy.after_logs is None  # the blocks were replaced during the page
    assert gone.transaction_hash not in {r[2] for r in found}
    assert found == node_logs(chain)
    assert indexed(ward) == node_logs(chain)


def test_a_shorter_chain_after_a_revert_rewinds_the_index(chain, anchor, through_proxy):
    anchor(1)
    ward = through_proxy()
    snapshot = chain.request("evm_snapshot", [])
    anchor(2)
    indexed(ward)
    chain.request("evm_revert", [snapshot])
    assert indexed(ward) == node_logs(chain)


def test_a_new_connection_reads_the_index_without_fetching_it_again(
    chain, anchor, through_proxy, proxy
):
    anchor(2)
    indexed(through_proxy())
    proxy.calls.clear()
    assert indexed(through_proxy()) == node_logs(chain)
    assert proxy.log_ranges() == []


def test_a_cold_start_over_many_pages_shows_progress(
    chain, anchor, through_proxy, proxy, monkeypatch
):
    anchor(2)
    proxy.max_span = None
    monkeypatch.setattr(eventindex, "_PROGRESS_EVERY_SECONDS", 0.0)
    ward = through_proxy(block_range=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        indexed(ward)
    shown = [str(w.message) for w in caught if issubclass(w.category, Notice)]
    assert shown and shown[0].startswith("indexing events: block ")
    assert shown[-1].endswith("%)")


def test_a_damaged_index_file_is_rebuilt(chain, anchor, through_proxy):
    anchor(1)
    ward = through_proxy()
    indexed(ward)
    path = eventindex.index_file(ward)
    assert path is not None
    ward.cache.clear()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"not a database" * 100)
    assert indexed(through_proxy()) == node_logs(chain)


def test_an_index_of_another_deployment_is_cleared(chain, anchor, through_proxy):
    anchor(1)
    ward = through_proxy()
    indexed(ward)
    path = eventindex.index_file(ward)
    db = sqlite3.connect(str(path))
    with db:
        db.execute("UPDATE meta SET value = '[]' WHERE key = 'deployment'")
        db.execute("INSERT INTO logs SELECT block, position + 1000, address, t0, t1, t2, t3, "
                   "data, tx FROM logs")  # fmt: skip
    db.close()
    assert indexed(through_proxy()) == node_logs(chain)


def test_a_provider_that_refuses_even_one_block_is_one_clear_error(
    chain, anchor, through_proxy, proxy
):
    anchor(1)
    proxy.max_span = 0
    with pytest.raises(NodeUnavailable, match="query exceeds max block range 0"):
        indexed(through_proxy())


def test_event_times_come_from_the_index(chain, anchor, through_proxy, proxy):
    (record,) = anchor(1)
    ward = through_proxy()
    (log,) = events.logs(ward, "RecordRegistry", "RecordAnchored", {"id": record.id})
    proxy.calls.clear()
    block = Rpc(chain.url).batch([("eth_getBlockByNumber", [hex(log.block), False])])[0]
    assert log.time(ward).timestamp() == int(block["result"]["timestamp"], 16)
    assert not [m for m, _p in proxy.calls if m == "eth_getBlockByNumber"]


_KINDS = ["address", "uint8", "uint40", "uint64", "uint256", "bytes32", "bytes4", "bool", "int256"]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), kind=st.sampled_from(_KINDS))
def test_an_indexed_value_decodes_as_eth_abi_decodes_it(data, kind):
    """``events.topic_value`` writes out eth-abi's decoding of the value types events index;
    eth-abi, on the word eth-abi encoded, is the oracle."""
    from eth_abi import decode, encode
    from eth_abi.tools import get_abi_strategy

    value = data.draw(get_abi_strategy(kind))
    word = encode([kind], [value])
    expected = decode([kind], word)[0]
    if kind == "address":
        expected = to_checksum_address(expected)
    assert events.topic_value(kind, word) == expected


def test_reads_in_one_view_sync_once_and_see_one_chain(chain, anchor, through_proxy, proxy):
    anchor(1)
    ward = through_proxy()
    before = indexed(ward)
    proxy.calls.clear()
    with eventindex.one_view(ward):
        assert indexed(ward) == before
        anchor(1)  # another client writes meanwhile
        assert indexed(ward) == before  # the view is the chain as it was when it began
        indexed(ward, name="RecordSuperseded")
    heads = [p for m, p in proxy.calls if m == "eth_getBlockByNumber" and p[0] == "latest"]
    assert len(heads) == 1
    assert indexed(ward) == node_logs(chain)  # after the view, the next read syncs again
    assert len(indexed(ward)) == len(before) + 1
