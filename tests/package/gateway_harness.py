"""Running ``medledger serve`` for tests: the real console script in a subprocess, on a free
loopback port, against the session's devnet and home (started as the gateway benchmark starts
it), and signing in to it as ``medledger sign-in`` does (EIP-191 ``personal_sign`` of the
EIP-4361 challenge)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

from medledger.benchmarks import gateway as bench
from medledger.gateway.signin import sign_in

FHIR_JSON = "application/fhir+json"


@dataclass
class Server:
    """A running gateway: its base URL and process."""

    running: bench.Running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def fhir(self) -> str:
        return f"{self.url}/fhir"

    def sign_in(self, account: Any, scope: str) -> str:
        """A bearer token for ``account`` (an eth-account key) asking for ``scope``."""
        return str(sign_in(self.url, account, scope)["access_token"])

    def client(self, token: str | None) -> httpx.Client:
        """An HTTP client for the FHIR base, sending ``token``."""
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.fhir, headers=headers, timeout=120)

    def stop(self) -> str:
        """Stop the server; its standard error."""
        return bench.stop(self.running)


def start(env: dict[str, str], account: str) -> Server:
    """``medledger serve --account ACCOUNT --port 0`` on 127.0.0.1; waits until it answers."""
    return Server(bench.start({**os.environ, **env}, account))
