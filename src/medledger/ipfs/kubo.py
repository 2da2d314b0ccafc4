"""A block store on a Kubo (go-ipfs) node, spoken to through its RPC API over plain HTTP.

Why not ``ipfshttpclient``: its last release (0.7.0, 2021) refuses every Kubo newer than 0.8
with ``VersionMismatch`` and the project is unmaintained. The RPC API is plain ``POST
/api/v0/<command>?arg=...`` with multipart uploads, so ``requests`` is all it takes.

Trust: the node is never trusted with content. CIDs are computed here; a DAG is sent block by
block (``block/put``) and Kubo must answer with the CID we computed; every block read back
(``block/get``) is verified before use. Reads, stats and pins pass ``offline=true``: a missing
block then fails at once instead of being searched for on the public network, which would also
tell the network which medical-record CIDs this node wants.

Failures: connection errors, timeouts and 5xx answers that are not Kubo command errors are
retried ``retries`` times with exponential backoff, then raise
:class:`~medledger.errors.NodeUnavailable` naming the URL. Kubo answers a failed command with
HTTP 500 and ``{"Message": ..., "Type": "error"}`` (a missing block, for instance): that answer
is final, so it is mapped to BlockNotFound or StoreError without retrying. Proxy settings from
the environment are ignored: the RPC API is an admin interface and must not go through a proxy.

Authentication: a node that restricts its RPC API with ``API.Authorizations`` wants an
``Authorization`` header on every request; ``auth`` takes the secret in the form of that
setting's ``AuthSecret`` (``bearer:TOKEN``, ``basic:USER:PASSWORD``, ``basic:BASE64`` or a bare
token, turned into the header as Kubo's ``config.ConvertAuthSecret`` does). Kubo answers a
missing or wrong secret with HTTP 403 ("Kubo RPC Access Denied"): that is
:class:`~medledger.errors.StoreAccessDenied`, never retried. The secret is never shown.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from medledger.errors import (
    BlockCorrupted,
    BlockNotFound,
    ConfigurationError,
    InvalidCid,
    NodeUnavailable,
    StoreAccessDenied,
    StoreError,
)
from medledger.httpsession import session_for
from medledger.ipfs.blockstore import BlockStoreBase, verify_block
from medledger.ipfs.car import verify_car
from medledger.ipfs.cid import CODEC_NAMES, Cid

if TYPE_CHECKING:
    from medledger.ipfs.protobuf import BytesLike

DEFAULT_API_URL = "http://127.0.0.1:5001"

_NOT_FOUND = re.compile(r"not found|could not find", re.IGNORECASE)
_CID_IN_TEXT = re.compile(r"\b(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{58})\b")
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")

Upload = bytes | Path | None


class KuboStore(BlockStoreBase):
    """The BlockStore interface over a Kubo node's RPC API (``ipfs daemon``)."""

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.1,
        auth: str | None = None,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ConfigurationError("IPFS API URL", f"{api_url!r} is not an http(s) URL")
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ConfigurationError("IPFS client", "timeout must be > 0, retries and backoff >= 0")
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._session = session_for(self.api_url)
        if auth is not None:
            self._session.headers["Authorization"] = authorization_header(auth)
        super().__init__(f"Kubo at {self.api_url}")

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._session.close()

    def __enter__(self) -> KuboStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- HTTP ---------------------------------------------------------------------------------

    def _request(self, command: str, params: dict[str, str], upload: Upload) -> requests.Response:
        """POST with bounded retries; return the node's final answer, or raise NodeUnavailable."""
        url = f"{self.api_url}/api/v0/{command}"
        attempts = self.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._post(url, params, upload)
            except requests.RequestException as exc:
                problem = self._describe(exc)
                continue
            if response.status_code >= 500 and _kubo_error(response) is None:
                problem = f"HTTP {response.status_code} {response.reason}"
                continue
            if response.status_code in (401, 403):
                raise StoreAccessDenied(
                    self.name,
                    response.status_code,
                    response.text.strip().splitlines()[0][:160] if response.text.strip() else "",
                    "set the secret of one of its API.Authorizations (config.toml [ipfs] "
                    "kubo_auth_env / kubo_auth_file, or MEDLEDGER_KUBO_AUTH)",
                )
            return response
        raise NodeUnavailable("IPFS node", self.api_url, f"{problem} ({attempts} attempts)")

    def _post(self, url: str, params: dict[str, str], upload: Upload) -> requests.Response:
        if isinstance(upload, Path):
            with upload.open("rb") as stream:
                return self._session.post(
                    url, params=params, files={"file": (upload.name, stream)}, timeout=self.timeout
                )
        files = None if upload is None else {"file": ("block", upload)}
        return self._session.post(url, params=params, files=files, timeout=self.timeout)

    def _describe(self, exc: requests.RequestException) -> str:
        if isinstance(exc, requests.Timeout):
            return f"no answer within {self.timeout:g} s"
        found = _ERRNO_TEXT.search(str(exc))
        return found.group(1).strip() if found else type(exc).__name__

    def _command(
        self, command: str, params: dict[str, str], upload: Upload = None, *, wanted: Cid | None
    ) -> requests.Response:
        """Run a command that must succeed; a not-found error about ``wanted`` is BlockNotFound."""
        response = self._request(command, params, upload)
        if response.status_code == 200:
            return response
        message = _kubo_error(response) or f"HTTP {response.status_code} {response.text[:200]}"
        if wanted is not None and _NOT_FOUND.search(message):
            found = _CID_IN_TEXT.search(message)
            raise BlockNotFound(found.group(1) if found else str(wanted))
        raise StoreError(f"{self.name} refused {command}: {message}")

    def _json(self, response: requests.Response, command: str) -> dict[str, Any]:
        try:
            value = response.json()
        except ValueError:
            raise StoreError(f"{self.name} sent an unreadable answer to {command}") from None
        if not isinstance(value, dict):
            raise StoreError(f"{self.name} sent an unexpected answer to {command}")
        return value

    def _json_lines(self, response: requests.Response, command: str) -> list[dict[str, Any]]:
        try:
            lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        except ValueError:
            raise StoreError(f"{self.name} sent an unreadable answer to {command}") from None
        if not all(isinstance(line, dict) for line in lines):
            raise StoreError(f"{self.name} sent an unexpected answer to {command}")
        return lines

    def _parse_cid(self, text: object, command: str) -> Cid:
        try:
            return Cid.parse(str(text))
        except InvalidCid as exc:
            raise StoreError(f"{self.name} answered {command} with an unusable CID: {exc}") from exc

    # --- the node -----------------------------------------------------------------------------

    def version(self) -> str:
        """Kubo's version string (``/api/v0/version``); also a cheap liveness check."""
        answer = self._json(self._command("version", {}, wanted=None), "version")
        return str(answer.get("Version", ""))

    def addresses(self) -> list[str]:
        """The node's swarm multiaddrs, each ending in ``/p2p/<peer id>`` (``/api/v0/id``)."""
        answer = self._json(self._command("id", {}, wanted=None), "id")
        peer = str(answer.get("ID") or "")
        found = [str(a) for a in answer.get("Addresses") or [] if isinstance(a, str)]
        return [a if "/p2p/" in a or not peer else f"{a}/p2p/{peer}" for a in found]

    def connect(self, multiaddr: str) -> None:
        """Open a swarm connection to a peer (``swarm/connect``), e.g. a pinning service's
        delegate, so that it fetches our blocks directly instead of searching the DHT."""
        self._command("swarm/connect", {"arg": multiaddr}, wanted=None)

    # --- blocks -------------------------------------------------------------------------------

    def _write_block(self, cid: Cid, data: BytesLike) -> None:
        params = {"cid-codec": CODEC_NAMES[cid.codec], "mhtype": "sha2-256", "pin": "false"}
        upload = bytes(data)  # a caller's buffer is not kept: the upload holds its own copy
        answer = self._json(self._command("block/put", params, upload, wanted=None), "block/put")
        stored = self._parse_cid(answer.get("Key"), "block/put")
        if stored.to_v1() != cid.to_v1():  # Kubo names cid-codec blocks with CIDv1
            raise BlockCorrupted(str(cid), f"{self.name} (it stored the block as {stored})")

    def get_block(self, cid: Cid) -> bytes:
        """Fetch a block (offline: local to the node only) and verify it against ``cid``."""
        params = {"arg": str(cid), "offline": "true"}
        data = self._command("block/get", params, wanted=cid).content
        verify_block(cid, data, self.name)
        return data

    def has(self, cid: Cid) -> bool:
        """True when the node holds the block (``block/stat``, offline)."""
        response = self._request("block/stat", {"arg": str(cid), "offline": "true"}, None)
        if response.status_code == 200:
            return True
        message = _kubo_error(response) or f"HTTP {response.status_code}"
        if _NOT_FOUND.search(message):
            return False
        raise StoreError(f"{self.name} refused block/stat: {message}")

    def delete_block(self, cid: Cid) -> None:
        """Remove one block (``block/rm``); Kubo refuses a block a pin needs."""
        params = {"arg": str(cid), "force": "true"}
        for line in self._json_lines(self._command("block/rm", params, wanted=None), "block/rm"):
            if line.get("Error"):
                raise StoreError(f"{self.name} will not delete block {cid}: {line['Error']}")

    # --- pins and garbage collection ----------------------------------------------------------

    def pin(self, cid: Cid) -> None:
        """Pin recursively (``pin/add``); the whole DAG must already be on the node."""
        params = {"arg": str(cid), "recursive": "true", "offline": "true"}
        self._command("pin/add", params, wanted=cid)

    def unpin(self, cid: Cid) -> None:
        """Remove a recursive pin (``pin/rm``); no error if it was not pinned."""
        response = self._request("pin/rm", {"arg": str(cid), "recursive": "true"}, None)
        if response.status_code == 200:
            return
        message = _kubo_error(response) or f"HTTP {response.status_code}"
        if "not pinned" not in message:
            raise StoreError(f"{self.name} refused pin/rm: {message}")

    def pins(self) -> frozenset[Cid]:
        """Recursive pins (``pin/ls``); pins of codecs MedLedger does not use are left out."""
        answer = self._json(self._command("pin/ls", {"type": "recursive"}, wanted=None), "pin/ls")
        keys = answer.get("Keys") or {}
        pinned = set()
        for text in keys:
            try:
                pinned.add(Cid.parse(text))
            except InvalidCid:
                continue  # another application's pin (dag-cbor, identity...): not ours to name
        return frozenset(pinned)

    def gc(self) -> int:
        """Run Kubo's garbage collector (``repo/gc``); return how many blocks it removed."""
        lines = self._json_lines(self._command("repo/gc", {}, wanted=None), "repo/gc")
        errors = [str(line["Error"]) for line in lines if line.get("Error")]
        if errors:
            raise StoreError(f"{self.name} garbage collection failed: {'; '.join(errors)}")
        return sum(1 for line in lines if line.get("Key"))

    # --- CAR ----------------------------------------------------------------------------------

    def import_car(self, path: Path, pin_roots: bool = True) -> list[Cid]:
        """Send a CAR file with ``dag/import`` after checking every block of it here."""
        path = Path(path)
        roots = verify_car(path)
        params = {"pin-roots": "true" if pin_roots else "false"}
        response = self._command("dag/import", params, path, wanted=None)
        for line in self._json_lines(response, "dag/import"):
            root = line.get("Root") or {}
            if root.get("PinErrorMsg"):
                raise StoreError(
                    f"{self.name} could not pin a root of {path}: {root['PinErrorMsg']}"
                )
        return roots


def authorization_header(secret: str) -> str:
    """The ``Authorization`` header for an ``API.Authorizations`` ``AuthSecret`` (Kubo's rule)."""
    kind, colon, value = secret.partition(":")
    if not colon:
        return f"Bearer {secret}"
    if kind == "bearer":
        return f"Bearer {value}"
    if kind == "basic":
        if ":" in value:
            return "Basic " + base64.b64encode(value.encode()).decode("ascii")
        return f"Basic {value}"
    raise ConfigurationError(
        "Kubo RPC secret", "must be bearer:TOKEN, basic:USER:PASSWORD or a token without ':'"
    )


def _kubo_error(response: requests.Response) -> str | None:
    """Kubo's error message when the answer is a Kubo command error, else None."""
    if response.status_code == 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("Type") == "error" and "Message" in body:
        return str(body["Message"])
    return None
