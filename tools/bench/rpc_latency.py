"""One local JSON-RPC call through a plain ``requests`` session and through the package's
(``medledger.httpsession.session_for``: the environment read once), paired in one run.

    python tools/bench/rpc_latency.py http://127.0.0.1:8545

Measured on 2 cores (2026-12-07), ``eth_blockNumber`` to Anvil, median of 500 each, twice:
plain 0.955 and 0.912 ms, once-read 0.678 and 0.607 ms.
"""

from __future__ import annotations

import statistics
import sys
import time

import requests

from medledger.httpsession import session_for


def main(url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    sessions = (("plain", requests.Session()), ("read once", session_for(url)))
    for name, session in sessions * 2:
        times = []
        for _ in range(500):
            started = time.perf_counter()
            session.post(url, json=body, timeout=5).json()
            times.append(time.perf_counter() - started)
        print(f"{name}: median {statistics.median(times) * 1e3:.3f} ms")


if __name__ == "__main__":
    main(sys.argv[1])
