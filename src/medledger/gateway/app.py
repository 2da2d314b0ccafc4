"""The FHIR R4 REST API as an ASGI app (Starlette): routes only, over the package.

Each route reads the request, asks :class:`~medledger.gateway.auth.Authority` who is calling,
calls one package function and writes its answer. Package calls are made one at a time, on one
worker thread: the chain connection and the home's SQLite connections stay on the thread that
made them. Every
error is an ``OperationOutcome`` with the one-line reason the CLI would print
(:mod:`~medledger.gateway.outcomes`); anything unexpected is a 500 saying so, with the
traceback on the server's standard error, never in the answer.

Routes (``/fhir`` is the FHIR base):

- ``POST /auth/challenge`` ``{"address", "scope"}`` → ``{"message"}`` (EIP-4361, to sign);
  ``POST /auth/token`` ``{"message", "signature"}`` → ``{"access_token", "token_type",
  "expires_in", "scope", "patient"}``.
- ``GET /fhir/metadata``: the CapabilityStatement.
- ``POST /fhir``: a transaction or batch Bundle; ``POST /fhir/{type}``: one resource.
- ``GET /fhir/{type}?...``: search; ``GET /fhir/{type}/{id}``: read;
  ``GET /fhir/{type}/{id}/_history[/{version}]``; ``GET /fhir/Patient/{id}/$everything``.
- ``GET /fhir/$export`` (or ``/fhir/Patient/$export``): Bulk Data, see
  :mod:`~medledger.gateway.bulk`; ``GET|DELETE /fhir/$export-status/{job}``,
  ``GET /fhir/$export-file/{job}/{type}.ndjson``.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from medledger.chain.eventindex import one_view
from medledger.errors import (
    MedLedgerError,
)
from medledger.gateway import creating
from medledger.gateway.handlers import Handlers
from medledger.gateway.outcomes import outcome, status_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from medledger.gateway.server import Gateway

FHIR_JSON = "application/fhir+json"
MAX_BODY = 64 * 1024 * 1024  # bytes: a request body larger than this is refused unread


def make_app(gateway: Gateway) -> Starlette:
    """The ASGI app serving ``gateway``."""
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medledger-gateway")

    def route(path: str, handler: Callable[..., Any], method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            body = await _body(request) if method in ("POST", "PUT") else b""
            if body is None:
                refused = outcome(f"the request body is over {MAX_BODY} bytes", "too-costly")
                return Response(creating.dumps(refused), 413, media_type=FHIR_JSON)
            reading = method == "GET"  # one sync of the event index serves the whole request
            work = worker.submit(_answer, handler, request, body, gateway if reading else None)
            return await asyncio.wrap_future(work)

        return Route(path, endpoint, methods=[method])

    handlers = Handlers(gateway)
    return Starlette(routes=[
        route("/auth/challenge", handlers.challenge, "POST"),
        route("/auth/token", handlers.token, "POST"),
        route("/fhir/metadata", handlers.metadata, "GET"),
        route("/fhir", handlers.transaction, "POST"),
        route("/fhir/", handlers.transaction, "POST"),
        route("/fhir/$export", handlers.export, "GET"),
        route("/fhir/Patient/$export", handlers.export, "GET"),
        route("/fhir/Group/{id}/$export", handlers.export_study, "GET"),
        route("/fhir/$export-status/{job}", handlers.export_status, "GET"),
        route("/fhir/$export-status/{job}", handlers.export_delete, "DELETE"),
        route("/fhir/$export-file/{job}/{name}", handlers.export_file, "GET"),
        route("/fhir/Patient/{id}/$everything", handlers.everything, "GET"),
        route("/fhir/{type}", handlers.search, "GET"),
        route("/fhir/{type}", handlers.create, "POST"),
        route("/fhir/{type}/{id}", handlers.read, "GET"),
        route("/fhir/{type}/{id}", handlers.update, "PUT"),
        route("/fhir/{type}/{id}", handlers.delete, "DELETE"),
        route("/fhir/{type}/{id}/_history", handlers.history, "GET"),
        route("/fhir/{type}/{id}/_history/{version}", handlers.vread, "GET"),
    ])  # fmt: skip


def _answer(
    handler: Callable[..., Any], request: Request, body: bytes, reading: Gateway | None
) -> Response:
    try:
        if reading is None:
            status, payload, *rest = handler(request, body)
        else:
            with one_view(reading.records.chain):
                status, payload, *rest = handler(request, body)
        headers = dict(rest[0]) if rest else {}
        if isinstance(payload, bytes):  # not FHIR JSON: the handler names its type
            media = headers.pop("Content-Type")
            return Response(payload, status, headers, media_type=media)
    except MedLedgerError as error:
        status, code = status_of(error)
        payload, headers = outcome(str(error), code), {}
        if status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="medledger"'}
    except Exception:
        traceback.print_exc(file=sys.stderr)
        status, headers = 500, {}
        payload = outcome("internal error in the gateway (the server's log has the details)",
                          "exception")  # fmt: skip
    return Response(creating.dumps(payload), status, headers, media_type=FHIR_JSON)


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is larger than :data:`MAX_BODY`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
