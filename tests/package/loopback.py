"""The HTTP scaffolding the tests' stand-in servers share: a threaded server on 127.0.0.1 (a
port of its own), its URL, and a stop that closes the port."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 from a daemon thread, once :meth:`_serve` is called."""

    server: ThreadingHTTPServer

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving and close the listening socket (the port then refuses connections)."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
