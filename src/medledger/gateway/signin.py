"""Signing in to a MedLedger gateway from the caller's side: ask for a challenge, sign it as a
wallet does (EIP-191 ``personal_sign`` of the EIP-4361 text), trade it for a bearer token.

``medledger sign-in`` is this; so is what a hospital's integration script does before its
first FHIR request.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import requests
from eth_account import Account
from eth_account.messages import encode_defunct

from medledger.errors import ConfigurationError, Forbidden, Unauthenticated
from medledger.httpsession import session_for

if TYPE_CHECKING:
    from medledger.accounts import Signer

TIMEOUT = 30  # seconds per request
STARTING = 15  # seconds a refused connection is retried (a gateway still starting)


def sign_in(url: str, account: Signer, scope: str) -> dict[str, Any]:
    """A token for ``account`` from the gateway at ``url`` (its base, e.g.
    ``http://127.0.0.1:8080``): the answer of ``/auth/token`` (``access_token``, ``scope``,
    ``expires_in``, ``patient``). Raises the gateway's refusal as one line."""
    from medledger.signers import ExternalSigner

    if isinstance(account, ExternalSigner):
        raise ConfigurationError(
            "--account", "signing in needs a local key (external signers sign transactions and "
            "typed data only)",
        )  # fmt: skip
    base = url.rstrip("/").removesuffix("/fhir")
    message = _post(f"{base}/auth/challenge", {"address": account.address, "scope": scope})
    text = message["message"]
    signed = Account.from_key(account.key).sign_message(encode_defunct(text=text))
    signature = "0x" + bytes(signed.signature).hex()
    return _post(f"{base}/auth/token", {"message": text, "signature": signature})


def _post(url: str, payload: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + STARTING
    while True:
        try:
            answer = session_for(url).post(url, json=payload, timeout=TIMEOUT)
            break
        except requests.ConnectionError:
            if time.monotonic() < deadline:  # a gateway started a moment ago: wait for it
                time.sleep(0.2)
                continue
            raise ConfigurationError(
                "--gateway", f"no MedLedger gateway answers at {url} (is it serving?)"
            ) from None
        except requests.RequestException as error:
            raise ConfigurationError(
                "--gateway", f"the gateway at {url} did not answer: {type(error).__name__}"
            ) from None
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 200 or not isinstance(body, dict):
        reason = _reason(body) or f"HTTP {answer.status_code}"
        raise (Unauthenticated if answer.status_code == 401 else Forbidden)(
            f"the gateway refused the sign-in: {reason}"
        )
    return body


def _reason(body: object) -> str | None:
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue") or [{}]
        return str(issues[0].get("diagnostics") or "") or None
    return None
