"""A stand-in pinning service, written from the IPFS Pinning Service API specification v1.0.0
(https://ipfs.github.io/pinning-services-api-spec/, ipfs/pinning-services-api-spec
ipfs-pinning-service.yaml, frozen at v1.0.0). It is a TEST DOUBLE: no real service (Pinata,
Filebase, web3.storage...) is reachable from these machines.

What it follows from the spec, on 127.0.0.1 and an ephemeral port:

- every request needs ``Authorization: Bearer <token>``; without it, or with another token,
  HTTP 401 and ``{"error": {"reason": "UNAUTHORIZED", "details": ...}}``;
- ``POST /pins`` takes a ``Pin`` (``cid`` required, ``name`` up to 255 characters, ``origins`` up
  to 20 multiaddrs, ``meta`` string to string) and answers 202 with a ``PinStatus`` (``requestid``,
  ``status`` queued, ``created``, ``pin``, ``delegates`` (1 to 20), ``info``); a bad body is 400
  ``BAD_REQUEST``;
- ``GET /pins`` filters by ``cid`` (comma-separated, at most 10), ``status`` (comma-separated,
  default ``pinned``), ``meta`` (a JSON object the pin's meta must contain), ``before``/``after``,
  ``limit`` (1 to 1000, default 10), newest first, with ``count`` the number of all matches;
- ``GET``/``POST``/``DELETE /pins/{requestid}`` read (200), replace (202, a new requestid, the
  old request gone) and remove (202, no body); an unknown requestid is 404 ``NOT_FOUND``;
- ``insufficient_funds`` makes ``POST`` answer 409 ``INSUFFICIENT_FUNDS``; ``bare_500s`` answers
  that many next requests with 500 ``INTERNAL_SERVER_ERROR``.

How a pin progresses (the spec leaves it to the service): each time a pin is read, by ``GET
/pins/{requestid}`` or in a list, it first moves one step, queued → pinning → pinned or failed.
It ends ``pinned`` only when one of its ``origins`` names the ``source`` node's peer id and that
node holds the whole DAG (as a real service fetches it over bitswap from the origins); otherwise,
or when its CID is in ``fail``, it ends ``failed`` with ``info.status_details`` saying why.
``page_size`` caps a list answer below ``limit`` (services may), to exercise paging.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackServer

from medledger.errors import BlockNotFound, InvalidCid
from medledger.ipfs import Cid
from medledger.ipfs.blockstore import iter_dag

if TYPE_CHECKING:
    from medledger.ipfs import LocalBlockStore

STATUSES = ("queued", "pinning", "pinned", "failed")
DELEGATE = "/ip4/198.51.100.9/tcp/4001/p2p/12D3KooWFakePinningServiceDelegate"


class FakePinningService(LoopbackServer):
    """The stand-in (see the module docstring)."""

    def __init__(
        self, token: str, source: LocalBlockStore | None = None, peer_id: str = ""
    ) -> None:
        self.token = token
        self.source = source  # the node origins must name to get a pin done
        self.peer_id = peer_id
        self.fail: set[str] = set()  # CIDs (v1 text) whose pins end failed
        self.insufficient_funds = False
        self.page_size = 1000
        self.bare_500s = 0  # answer this many next requests with 500 INTERNAL_SERVER_ERROR
        self.pins: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()
        self._serve(self._handler_class())

    def statuses(self) -> dict[str, str]:
        """CID (as asked for) -> status of every pin request held."""
        return {p["pin"]["cid"]: p["status"] for p in self.pins.values()}

    # --- HTTP ---------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                with fake._lock:
                    fake.requests.append((method, parts.path))
                    broken = fake.bare_500s > 0
                    fake.bare_500s -= broken
                    if broken:
                        status, body = _failure(500, "INTERNAL_SERVER_ERROR", "try again later")
                    elif self.headers.get("Authorization") != f"Bearer {fake.token}":
                        status, body = _failure(
                            401, "UNAUTHORIZED", "Access token is missing or invalid"
                        )
                    else:
                        status, body = fake.answer(method, parts.path, parse_qs(parts.query), raw)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    # --- the API ------------------------------------------------------------------------------

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], raw: bytes
    ) -> tuple[int, dict[str, Any] | None]:
        if path == "/pins" and method == "GET":
            return self._list(query)
        if path == "/pins" and method == "POST":
            return self._create(raw, None)
        if path.startswith("/pins/") and path.count("/") == 2:
            requestid = path.removeprefix("/pins/")
            if requestid not in self.pins:
                return _failure(404, "NOT_FOUND", "The specified resource was not found")
            if method == "GET":
                return 200, self._observe(self.pins[requestid])
            if method == "POST":
                return self._create(raw, requestid)
            if method == "DELETE":
                del self.pins[requestid]
                return 202, None
        return _failure(404, "NOT_FOUND", f"no route {method} {path}")

    def _create(self, raw: bytes, replaces: str | None) -> tuple[int, dict[str, Any] | None]:
        try:
            pin = json.loads(raw)
            problem = _pin_problem(pin)
        except ValueError:
            problem = "the body is not JSON"
        if problem:
            return _failure(400, "BAD_REQUEST", problem)
        if self.insufficient_funds:
            return _failure(
                409, "INSUFFICIENT_FUNDS", "Unable to process request due to the lack of funds"
            )
        if replaces is not None:
            del self.pins[replaces]
        self._clock += timedelta(milliseconds=1)  # created values stay unique, as paging needs
        status = {
            "requestid": str(uuid.uuid4()),
            "status": "queued",
            "created": self._clock.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "pin": pin,
            "delegates": [DELEGATE],
            "info": {"status_details": "queue position: 1"},
        }
        self.pins[status["requestid"]] = status
        return 202, dict(status)

    def _list(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any] | None]:
        cids = _csv(query, "cid")
        statuses = _csv(query, "status") or ["pinned"]
        if len(cids) > 10 or any(s not in STATUSES for s in statuses):
            return _failure(400, "BAD_REQUEST", "cid takes at most 10 CIDs; status must be known")
        try:
            limit = int(query.get("limit", ["10"])[0])
            meta = json.loads(query["meta"][0]) if "meta" in query else {}
        except ValueError:
            return _failure(400, "BAD_REQUEST", "limit must be a number, meta a JSON object")
        if not 1 <= limit <= 1000 or not isinstance(meta, dict):
            return _failure(400, "BAD_REQUEST", "limit must be from 1 to 1000")
        before = query.get("before", [None])[0]
        after = query.get("after", [None])[0]
        for status in list(self.pins.values()):
            self._observe(status)  # a pin moves on as it is looked at
        matches = [
            s
            for s in self.pins.values()
            if (not cids or s["pin"]["cid"] in cids)
            and s["status"] in statuses
            and meta.items() <= (s["pin"].get("meta") or {}).items()
            and (before is None or _when(s["created"]) < _when(before))
            and (after is None or _when(s["created"]) > _when(after))
        ]
        matches.sort(key=lambda s: s["created"], reverse=True)
        page = matches[: min(limit, self.page_size)]
        return 200, {"count": len(matches), "results": [dict(s) for s in page]}

    def _observe(self, status: dict[str, Any]) -> dict[str, Any]:
        """Move a pin one step on; return it as it is now."""
        if status["status"] == "queued":
            status["status"] = "pinning"
            status["info"] = {"status_details": "fetching from origins"}
        elif status["status"] == "pinning":
            why = self._why_not_pinned(status["pin"])
            status["status"] = "failed" if why else "pinned"
            status["info"] = {"status_details": why} if why else {}
        return dict(status)

    def _why_not_pinned(self, pin: dict[str, Any]) -> str:
        cid = Cid.parse(pin["cid"])
        if str(cid.to_v1()) in self.fail:
            return "the service gave up fetching the DAG"
        if self.source is None or not any(self.peer_id in o for o in pin.get("origins") or []):
            return "no origin provides the DAG"
        try:
            for _block in iter_dag(self.source.get_block, cid):
                pass
        except BlockNotFound as exc:
            return f"the origins do not hold block {exc.cid}"
        return ""


def _pin_problem(pin: object) -> str:
    if not isinstance(pin, dict) or not isinstance(pin.get("cid"), str):
        return "a Pin object with a cid is required"
    try:
        Cid.parse(pin["cid"])
    except InvalidCid:
        return f"{pin['cid']!r} is not a CID"
    if len(pin.get("name") or "") > 255:
        return "name is longer than 255 characters"
    origins = pin.get("origins") or []
    if not isinstance(origins, list) or len(origins) > 20 or len(set(origins)) != len(origins):
        return "origins must be at most 20 distinct multiaddrs"
    meta = pin.get("meta") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        return "meta must map strings to strings"
    return ""


def _csv(query: dict[str, list[str]], key: str) -> list[str]:
    return [item for value in query.get(key, []) for item in value.split(",") if item]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _failure(status: int, reason: str, details: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"reason": reason, "details": details}}
