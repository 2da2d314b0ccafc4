"""Fault injection for the durability tests, off unless ``MEDLEDGER_FAILPOINT`` is set.

``MEDLEDGER_FAILPOINT=<point>[@<n>]=<target>`` kills ``target`` the ``n``-th time (default the
first) this process reaches ``point``: ``cli`` ends this process at once (``os._exit(137)``, as a
SIGKILL would: no cleanup, no output), ``anvil`` kills this home's devnet with SIGKILL and goes
on. The points, in the order a send reaches them: ``after-journal`` (signed and committed to the
outbox, nothing sent), ``after-send`` (a window of transactions sent, receipts not collected),
``after-mined`` (receipts collected and journalled, nothing printed yet).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

_reached: dict[str, int] = {}


def reach(point: str) -> None:
    """Fail here if ``MEDLEDGER_FAILPOINT`` names this point (see the module)."""
    spec = os.environ.get("MEDLEDGER_FAILPOINT")
    if not spec:
        return
    where, _, target = spec.partition("=")
    name, _, nth = where.partition("@")
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] != int(nth or 1):
        return
    if target == "cli":
        os._exit(137)
    if target == "anvil":
        home = Path(os.environ.get("MEDLEDGER_HOME") or ".medledger")
        pid = json.loads((home / "devnet" / "devnet.json").read_text())["pid"]
        os.killpg(pid, signal.SIGKILL)
