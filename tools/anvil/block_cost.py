"""How Anvil's cost per block grows with a contract's storage: the experiment behind the growth
section's note on the devnet (issue #16).

It starts Anvil (the devnet's flags, or the ones given), deploys ``Fill.sol``, fills it with
``--transactions`` transactions of ``poke()`` (each adds one storage slot; 250 a block, as the
devnet's send windows mine them), then times 40 more, one block each, and prints their median
and the fill rate. With ``--perf`` it records the node with ``perf`` during those 40 and prints
its hottest symbols.

    python tools/anvil/block_cost.py --transactions 60000 --perf
    python tools/anvil/block_cost.py --transactions 60000 -- --prune-history 8

Measured on 2 cores (2026-12-07), a one-transaction block: 2.2 ms on an empty chain, about
37 ms after 30,000 transactions, 73 ms after 60,000 and 130-240 ms after 100,000, whatever the
history settings (``--prune-history 8``, bare, absent, or ``--transaction-block-keeper 64``)
and with or without logs. It is the number of transactions, not of storage slots: the same
60,000 slots written by 60 transactions (``--transactions 60 --slots-each 1000``) leave
blocks at 1.6 ms. ``perf`` puts 58 % of Anvil's time in Keccak, 9 % in ``alloy_trie``'s
``HashBuilder::update`` and 7 % in sorting, under ``anvil::eth::backend::mem::state``'s
``trie_storage`` / ``build_root`` (a trie rebuilt from scratch for each block).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import requests
import solcx
from eth_utils.crypto import keccak

HERE = Path(__file__).resolve().parent
WINDOW = 250


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=60_000)
    parser.add_argument("--perf", action="store_true", help="profile the node with perf")
    parser.add_argument(
        "--slots-each", type=int, default=1,
        help="storage slots each filling transaction adds (fill(k) instead of poke2())",
    )  # fmt: skip
    parser.add_argument("anvil", nargs="*", help="Anvil's options (after --)")
    args = parser.parse_args()
    flags = args.anvil or ["--prune-history", "8"]
    source = (HERE / "Fill.sol").read_text()
    built = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"Fill.sol": {"content": source}},
            "settings": {
                "evmVersion": "cancun",
                "optimizer": {"enabled": True, "runs": 200},
                "outputSelection": {"*": {"*": ["evm.bytecode.object"]}},
            },
        },
        solc_version="0.8.30",
    )
    bytecode = built["contracts"]["Fill.sol"]["Fill"]["evm"]["bytecode"]["object"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    node = subprocess.Popen(
        ["anvil", "--host", "127.0.0.1", "--port", str(port), "--gas-limit", "300000000",
         "--silent", *flags]
    )  # fmt: skip
    session = requests.Session()

    def rpc(method: str, params: list[Any]) -> Any:
        for _ in range(200):
            try:
                reply = session.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                "params": params}).json()  # fmt: skip
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    try:
        sender = rpc("eth_accounts", [])[0]
        created = rpc("eth_sendTransaction", [{"from": sender, "data": "0x" + bytecode}])
        while (receipt := rpc("eth_getTransactionReceipt", [created])) is None:
            time.sleep(0.05)
        target = receipt["contractAddress"]
        poke = {"from": sender, "to": target, "data": "0x" + keccak(text="poke2()")[:4].hex(),
                "gas": hex(100_000)}  # fmt: skip
        rpc("evm_setAutomine", [False])
        nonce = int(rpc("eth_getTransactionCount", [sender, "latest"]), 16)
        filler, window = poke, WINDOW
        if args.slots_each > 1:
            window = max(1, 280_000_000 // (25_000 * args.slots_each))
            call = keccak(text="fill(uint256)")[:4] + args.slots_each.to_bytes(32, "big")
            filler = poke | {"data": "0x" + call.hex(), "gas": hex(25_000 * args.slots_each)}
        started = time.perf_counter()
        for first in range(0, args.transactions, window):
            session.post(url, json=[
                {"jsonrpc": "2.0", "id": i, "method": "eth_sendTransaction",
                 "params": [filler | {"nonce": hex(nonce + i)}]}
                for i in range(min(window, args.transactions - first))
            ]).json()  # fmt: skip
            nonce += min(window, args.transactions - first)
            rpc("evm_mine", [])
        rate = args.transactions / (time.perf_counter() - started)
        slots = int(rpc("eth_getStorageAt", [target, hex(1), "latest"]), 16)
        rpc("evm_setAutomine", [True])
        recorder = None
        if args.perf:
            recorder = subprocess.Popen(
                ["perf", "record", "-F", "499", "-g", "-p", str(node.pid), "-o",
                 str(HERE / "perf.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1)
        times = []
        for _ in range(40):
            begun = time.perf_counter()
            rpc("eth_sendTransaction", [poke])
            times.append((time.perf_counter() - begun) * 1e3)
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait()
        rss = int(Path(f"/proc/{node.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        print(f"anvil {' '.join(flags)}: {args.transactions:,} transactions ({slots:,} slots) at "
              f"{rate:,.0f} tx/s; a one-transaction block: median {statistics.median(times):.1f} "
              f"ms, mean {statistics.mean(times):.1f} ms; RSS {rss // 1024} MiB")  # fmt: skip
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait()
    if args.perf:
        report = subprocess.run(
            ["perf", "report", "-i", str(HERE / "perf.data"), "--stdio", "--no-children",
             "--sort", "symbol"], capture_output=True, text=True, check=False,
        )  # fmt: skip
        hot = [line for line in report.stdout.splitlines() if "%" in line and "[" in line]
        print("\n".join(hot[:12]))
        (HERE / "perf.data").unlink(missing_ok=True)


if __name__ == "__main__":
    os.environ.setdefault("SOLCX_BINARY_PATH", str(HERE.parents[1] / ".venv" / "solcx"))
    main()
