"""A running gateway: what it serves with (chain, block store, the institution's account),
who it lets in (:class:`~medledger.gateway.auth.Authority`), and serving it with uvicorn on a
loopback address by default."""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

from medledger.errors import ConfigurationError
from medledger.gateway.auth import Authority
from medledger.gateway.serving import Records

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Gateway:
    """What one ``medledger serve`` serves: ``account``'s view of the records, at ``url``."""

    def __init__(self, chain: Chain, store: BlockStore, account: Signer, url: str) -> None:
        self.url = url.rstrip("/")
        self.records = Records(chain, store, account, f"{self.url}/fhir")
        domain = self.url.split("://", 1)[-1].split("/", 1)[0]
        self.authority = Authority(chain, account.address, domain, self.url)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port), refused with one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio: TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigurationError(
            "--port", f"cannot listen on {host}:{port}: {error.strerror or error}"
        ) from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    """The base URL a listening socket serves."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: ASGIApp, url: str, sock: socket.socket) -> None:
    """Serve ``app`` (:func:`medledger.gateway.app.make_app`) at ``url`` on ``sock`` until
    interrupted."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    print(f"serving FHIR R4 at {url}/fhir (sign in at {url}/auth)", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        print("gateway stopped", file=sys.stderr, flush=True)
