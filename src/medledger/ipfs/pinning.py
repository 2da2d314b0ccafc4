"""A client of the IPFS Pinning Service API (the OpenAPI specification v1.0.0,
https://ipfs.github.io/pinning-services-api-spec/), as Pinata, Filebase and web3.storage-style
services serve it.

The API is plain JSON over HTTPS with a bearer token on every request: ``POST /pins`` asks for a
pin (answered ``202`` with a ``PinStatus``), ``GET /pins`` lists pins by CID, status and metadata,
``GET``/``POST``/``DELETE /pins/{requestid}`` read, replace and remove one pin request. A pin goes
``queued`` → ``pinning`` → ``pinned`` or ``failed``. Errors come as ``{"error": {"reason",
"details"}}`` with 400, 401, 404, 409 (insufficient funds), other 4xx and 5xx.

A pinning service keeps blocks but does not take them from us: it fetches the DAG from the IPFS
network, from the peers we name in ``origins`` (our Kubo nodes). So this is not a block store;
:mod:`medledger.ipfs.remotepins` asks for remote pins after a body is on the configured stores.

Failures: connection errors, timeouts and 5xx answers are retried ``retries`` times with
exponential backoff, then raise :class:`~medledger.errors.NodeUnavailable`; 401 and 403 raise
:class:`~medledger.errors.StoreAccessDenied` at once; other refusals raise StoreError with the
service's reason and details. The token is sent only in the ``Authorization`` header and never
appears in a message or a ``repr``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from medledger.errors import (
    ConfigurationError,
    InvalidCid,
    NodeUnavailable,
    StoreAccessDenied,
    StoreError,
)
from medledger.httpsession import session_for
from medledger.ipfs.cid import Cid

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

STATUSES = ("queued", "pinning", "pinned", "failed")
UNFINISHED = ("queued", "pinning")
MAX_CIDS_PER_QUERY = 10  # the spec's maxItems for ?cid=
MAX_LIMIT = 1000
APP_META = {"app_id": "medledger"}
"""Metadata put on every pin MedLedger asks for, and used to list only those pins."""


@dataclass(frozen=True)
class PinStatus:
    """One pin request as a service reports it (the spec's ``PinStatus``)."""

    requestid: str
    status: str
    cid: Cid
    created: datetime
    delegates: tuple[str, ...] = ()
    info: dict[str, str] = field(default_factory=dict)

    @property
    def details(self) -> str:
        """What the service says about the status (``info.status_details``), if anything."""
        return self.info.get("status_details", "")


class PinningService:
    """One pinning service reached at ``endpoint`` with a bearer ``token``."""

    def __init__(
        self,
        name: str,
        endpoint: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.2,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"pinning service {name!r}", f"{endpoint!r} is not a URL")
        if not token:
            raise ConfigurationError(f"pinning service {name!r}", "the access token is empty")
        self.endpoint = endpoint.rstrip("/")
        self.name = f"pinning service {name!r} at {self.endpoint}"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._session = session_for(self.endpoint)
        self._session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"<PinningService {self.endpoint}>"

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._session.close()

    # --- the API ------------------------------------------------------------------------------

    def add(self, cid: Cid, origins: Sequence[str] = (), name: str | None = None) -> PinStatus:
        """Ask for a recursive pin of ``cid`` (``POST /pins``); the service answers queued."""
        body = self._call("POST", "/pins", f"pinning {cid}", json=_pin(cid, origins, name))
        return _status(body, self.name)

    def get(self, requestid: str) -> PinStatus:
        """The current status of one pin request (``GET /pins/{requestid}``)."""
        return _status(self._call("GET", f"/pins/{requestid}", "reading a pin"), self.name)

    def replace(self, requestid: str, cid: Cid, origins: Sequence[str] = ()) -> PinStatus:
        """Replace a pin request by a new one (``POST /pins/{requestid}``), e.g. after a failure."""
        body = self._call(
            "POST", f"/pins/{requestid}", f"pinning {cid} again", json=_pin(cid, origins, None)
        )
        return _status(body, self.name)

    def remove(self, requestid: str) -> None:
        """Remove a pin request (``DELETE /pins/{requestid}``); no error if it is gone."""
        self._call("DELETE", f"/pins/{requestid}", "removing a pin", missing_ok=True)

    def find(self, cids: Iterable[Cid] = (), statuses: Sequence[str] = STATUSES) -> list[PinStatus]:
        """MedLedger's pin requests (by its ``meta``), of ``cids`` if given, in ``statuses``;
        every page is read (``before`` the oldest ``created`` of the previous one)."""
        wanted = list(dict.fromkeys(cids))
        groups = [
            wanted[i : i + MAX_CIDS_PER_QUERY] for i in range(0, len(wanted), MAX_CIDS_PER_QUERY)
        ] or [[]]
        found: dict[str, PinStatus] = {}
        for group in groups:
            params = {
                "status": ",".join(statuses),
                "limit": str(MAX_LIMIT),
                "meta": json.dumps(APP_META),
            }
            if group:
                params["cid"] = ",".join(str(c) for c in group)
            while True:
                body = self._call("GET", "/pins", "listing pins", params=params)
                results = body.get("results")
                if not isinstance(results, list) or not isinstance(body.get("count"), int):
                    raise StoreError(f"{self.name} sent a pin list without count and results")
                page = [_status(item, self.name) for item in results]
                fresh = [p for p in page if p.requestid not in found]
                found.update((p.requestid, p) for p in page)
                if not fresh or len(page) >= body["count"]:  # count: all matches from here on
                    break
                oldest = min(p.created for p in page)
                params["before"] = oldest.isoformat().replace("+00:00", "Z")
        return list(found.values())

    # --- HTTP ---------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        action: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any]:
        response = self._request(method, path, json, params)
        if response.status_code in (200, 202):
            if method == "DELETE":
                return {}
            try:
                body = response.json()
            except ValueError:
                raise StoreError(f"{self.name} sent an unreadable answer to {action}") from None
            if not isinstance(body, dict):
                raise StoreError(f"{self.name} sent an unexpected answer to {action}")
            return body
        reason, details = _failure(response)
        if response.status_code in (401, 403):
            raise StoreAccessDenied(
                self.name,
                response.status_code,
                f"{reason}: {details}" if details else reason,
                "check the token that config.toml [[ipfs.pinning]] token_env / token_file names",
            )
        if response.status_code == 404 and missing_ok:
            return {}
        shown = f"{reason}: {details}" if details else reason
        raise StoreError(f"{self.name} refused {action} (HTTP {response.status_code} {shown})")

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, params: dict[str, str] | None
    ) -> requests.Response:
        url = self.endpoint + path
        attempts = self.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._session.request(
                    method, url, json=body, params=params, timeout=self.timeout
                )
            except requests.Timeout:
                problem = f"no answer within {self.timeout:g} s"
                continue
            except requests.RequestException as exc:
                problem = _connection_problem(exc)
                continue
            if response.status_code >= 500:
                reason, details = _failure(response)
                problem = f"HTTP {response.status_code} {reason}" + (
                    f": {details}" if details else ""
                )
                continue
            return response
        raise NodeUnavailable(
            "IPFS pinning service", self.endpoint, f"{problem} ({attempts} attempts)"
        )


def _pin(cid: Cid, origins: Sequence[str], name: str | None) -> dict[str, Any]:
    pin: dict[str, Any] = {"cid": str(cid), "meta": dict(APP_META)}
    if name:
        pin["name"] = name[:255]
    if origins:
        pin["origins"] = list(dict.fromkeys(origins))[:20]
    return pin


def _status(body: dict[str, Any], service: str) -> PinStatus:
    """A ``PinStatus`` answer checked against the spec's required fields."""
    try:
        pin = body["pin"]
        status = body["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        created = datetime.fromisoformat(str(body["created"]).replace("Z", "+00:00"))
        info = body.get("info") or {}
        return PinStatus(
            requestid=str(body["requestid"]),
            status=status,
            cid=Cid.parse(str(pin["cid"])),
            created=created,
            delegates=tuple(str(d) for d in body.get("delegates") or ()),
            info={str(k): str(v) for k, v in info.items()} if isinstance(info, dict) else {},
        )
    except (KeyError, TypeError, ValueError, InvalidCid) as exc:
        raise StoreError(f"{service} sent a pin status MedLedger cannot read ({exc})") from None


def _failure(response: requests.Response) -> tuple[str, str]:
    """The spec's ``{"error": {"reason", "details"}}``, or the HTTP reason when it is absent."""
    try:
        error = response.json().get("error")
        return str(error["reason"]), str(error.get("details") or "")
    except (ValueError, AttributeError, KeyError, TypeError):
        return response.reason or "error", ""


def _connection_problem(exc: requests.RequestException) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host"):
        if known in text:
            return known
    return type(exc).__name__
