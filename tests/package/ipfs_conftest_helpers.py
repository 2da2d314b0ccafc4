"""Shared helpers for the IPFS tests: a stand-in Kubo RPC server and small data makers.

``FakeKubo`` is a test double, not Kubo: no Kubo daemon can be installed on these machines (the
npm ``kubo``/``go-ipfs`` packages download the binary at install time and Debian has none, see
TOOLCHAIN.md). It serves, on 127.0.0.1 and an ephemeral port, the RPC endpoints ``KuboStore``
uses, with the request and answer shapes of the Kubo RPC reference (POST only, ``arg=``,
multipart uploads, HTTP 500 + ``{"Message", "Code", "Type": "error"}`` for a failed command,
newline-delimited JSON for streaming commands), on top of a ``LocalBlockStore``. Knobs let a
test corrupt served blocks, inject bare 500s, delay answers or lie about a stored CID, and
``authorization`` makes it check the ``Authorization`` header as Kubo does when
``API.Authorizations`` is set (kubo/core/corehttp/commands.go ``withAuthSecrets``: an exact
match of the header, else HTTP 403 with "Kubo RPC Access Denied: ..." in plain text).
"""

from __future__ import annotations

import json
import random
import socket
import tempfile
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackServer

from medledger.errors import BlockNotFound, StoreError
from medledger.ipfs import DAG_PB, RAW, Cid, LocalBlockStore, import_car

CODECS = {"dag-pb": DAG_PB, "raw": RAW}
KUBO_DENIED = (
    b"Kubo RPC Access Denied: Please provide a valid authorization token as defined in the "
    b"API.Authorizations configuration.\n"
)


def random_bytes(size: int, seed: int) -> bytes:
    """Deterministic pseudo-random content."""
    return random.Random(seed).randbytes(size)


def stored_digests(store: LocalBlockStore) -> set[bytes]:
    """Digests of every block a LocalBlockStore holds."""
    return {multihash[2:] for multihash in store.multihashes()}


class FakeKubo(LoopbackServer):
    """A Kubo RPC API stand-in on 127.0.0.1 (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.store = LocalBlockStore(root)
        self.corrupt: set[bytes] = set()  # digests whose block/get answer is altered
        self.bare_500s = 0  # answer this many next requests with a plain HTTP 500
        self.delay = 0.0  # seconds to sleep before answering
        self.lie_on_put = False  # answer block/put with another block's CID
        self.authorization: str | None = None  # the Authorization header every request needs
        self.peer_id = "12D3KooWFakeKuboPeer"
        self.connected: list[str] = []  # multiaddrs swarm/connect was asked for
        self.swarm = ["/ip4/127.0.0.1/tcp/4001", "/ip4/192.0.2.7/tcp/4001"]
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._serve(self._handler_class())

    def count(self, command: str) -> int:
        """How many requests the server received for ``command`` (e.g. ``block/get``)."""
        return self.requests.count(command)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # no Nagle delay between headers and body, as in Go's server
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

            def do_GET(self) -> None:
                self._send(405, b"405 - Method Not Allowed", "text/plain")

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                command = parts.path.removeprefix("/api/v0/")
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if fake.authorization and self.headers.get("Authorization") != fake.authorization:
                    self._send(403, KUBO_DENIED, "text/plain; charset=utf-8")
                    with fake._lock:
                        fake.requests.append(f"denied:{command}")
                    return
                with fake._lock:
                    fake.requests.append(command)
                    bare_500 = fake.bare_500s > 0
                    fake.bare_500s -= bare_500
                time.sleep(fake.delay)
                if bare_500:
                    self._send(500, b"Internal Server Error", "text/plain")
                    return
                try:
                    status, payload, kind = fake.answer(command, params, self._upload(body))
                except BlockNotFound as exc:  # Kubo's wording for a block it does not hold
                    message = (
                        f"block was not found locally (offline): ipld: could not find {exc.cid}"
                    )
                    status, payload, kind = 500, _error(message), "application/json"
                except StoreError as exc:
                    status, payload, kind = 500, _error(str(exc)), "application/json"
                self._send(status, payload, kind)

            def _upload(self, body: bytes) -> bytes | None:
                kind = self.headers.get("Content-Type", "")
                if not kind.startswith("multipart/form-data"):
                    return None
                message = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + kind.encode() + b"\r\n\r\n" + body
                )
                for part in message.iter_parts():
                    payload = part.get_payload(decode=True)
                    return payload if isinstance(payload, bytes) else None
                return None

            def _send(self, status: int, payload: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def answer(
        self, command: str, params: dict[str, str], upload: bytes | None
    ) -> tuple[int, bytes, str]:
        """Carry out one RPC command against the backing store."""
        as_json = "application/json"
        store = self.store
        if command == "version":
            return 200, _json({"Version": "0.0.0-fake", "Commit": "", "Repo": "15"}), as_json
        if command == "id":
            addresses = [f"{a}/p2p/{self.peer_id}" for a in self.swarm]
            return 200, _json({"ID": self.peer_id, "Addresses": addresses}), as_json
        if command == "swarm/connect":
            self.connected.append(params["arg"])
            return (
                200,
                _json({"Strings": [f"connect {params['arg'].split('/')[-1]} success"]}),
                as_json,
            )
        if command == "block/put":
            if upload is None:
                return 400, _error('argument "data" is required'), as_json
            cid = Cid.of_block(upload, version=1, codec=CODECS[params.get("cid-codec", "raw")])
            store.put_block(cid, upload)
            shown = Cid.of_block(upload + b"!", version=1) if self.lie_on_put else cid
            return 200, _json({"Key": str(shown), "Size": len(upload)}), as_json
        if command in ("block/get", "block/stat", "pin/add", "pin/rm", "block/rm"):
            cid = Cid.parse(params["arg"])
        if command == "block/get":
            data = store.get_block(cid)
            if cid.digest in self.corrupt:
                data = bytes([data[0] ^ 1]) + data[1:]
            return 200, data, "text/plain"
        if command == "block/stat":
            if not store.has(cid):
                raise BlockNotFound(str(cid))
            return 200, _json({"Key": str(cid), "Size": len(store.get_block(cid))}), as_json
        if command == "block/rm":
            try:
                store.delete_block(cid)
                line = {"Hash": str(cid), "Error": ""}
            except StoreError:
                line = {"Hash": str(cid), "Error": "pinned: recursive"}
            return 200, _json(line), as_json
        if command == "pin/add":
            store.pin(cid)
            return 200, _json({"Pins": [str(cid)]}), as_json
        if command == "pin/rm":
            if cid not in store.pins():
                return 500, _error("not pinned or pinned indirectly"), as_json
            store.unpin(cid)
            return 200, _json({"Pins": [str(cid)]}), as_json
        if command == "pin/ls":
            keys = {str(c): {"Type": "recursive"} for c in store.pins()}
            return 200, _json({"Keys": keys}), as_json
        if command == "repo/gc":
            before = stored_digests(store)
            store.gc()
            gone = before - stored_digests(store)
            lines = [{"Key": {"/": str(Cid.from_digest_v0(d))}} for d in sorted(gone)]
            return 200, b"".join(_json(line) for line in lines), as_json
        if command == "dag/import":
            if upload is None:
                return 400, _error('argument "path" is required'), as_json
            with tempfile.TemporaryDirectory() as tmp:
                car = Path(tmp) / "upload.car"
                car.write_bytes(upload)
                roots = import_car(store, car, pin_roots=params.get("pin-roots") != "false")
            answers = [{"Root": {"Cid": {"/": str(r)}, "PinErrorMsg": ""}} for r in roots]
            return 200, b"".join(_json(answer) for answer in answers), as_json
        return 404, b"404 page not found", "text/plain"


def _json(value: object) -> bytes:
    return json.dumps(value).encode() + b"\n"


def _error(message: str) -> bytes:
    return _json({"Message": message, "Code": 0, "Type": "error"})
