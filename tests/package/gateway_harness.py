"""Running ``medledger serve`` for tests: the real console script in a subprocess, on a free
loopback port, against the session's devnet and home; and signing in to it as a wallet would
(eth-account's EIP-191 ``personal_sign`` of the EIP-4361 challenge)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

FHIR_JSON = "application/fhir+json"


@dataclass
class Server:
    """A running gateway: its base URL and process."""

    url: str
    process: subprocess.Popen[str]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def fhir(self) -> str:
        return f"{self.url}/fhir"

    def sign_in(self, account: Any, scope: str) -> str:
        """A bearer token for ``account`` (an eth-account key) asking for ``scope``."""
        asked = httpx.post(f"{self.url}/auth/challenge",
                           json={"address": account.address, "scope": scope})  # fmt: skip
        assert asked.status_code == 200, asked.text
        message = asked.json()["message"]
        signed = Account.from_key(account.key).sign_message(encode_defunct(text=message))
        answer = httpx.post(f"{self.url}/auth/token", json={
            "message": message, "signature": "0x" + bytes(signed.signature).hex()})  # fmt: skip
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def client(self, token: str | None) -> httpx.Client:
        """An HTTP client for the FHIR base, sending ``token``."""
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.fhir, headers=headers, timeout=120)

    def stop(self) -> str:
        """Stop the server; its standard error."""
        self.process.terminate()
        try:
            _out, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _out, err = self.process.communicate()
        return err


def start(env: dict[str, str], account: str, *extra: str) -> Server:
    """``medledger serve --account ACCOUNT --port 0`` on 127.0.0.1; waits until it answers."""
    script = Path(sys.executable).with_name("medledger")
    process = subprocess.Popen(
        [str(script), "serve", "--account", account, "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **env},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("serving FHIR R4 at "):
        process.kill()
        raise AssertionError(f"the gateway did not start: {line}{process.communicate()[1]}")
    url = line.split(" at ", 1)[1].split("/fhir", 1)[0]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/fhir/metadata", timeout=5).status_code == 200:
                return Server(url, process)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("the gateway did not answer /metadata within 30 s")
