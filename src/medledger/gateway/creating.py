"""Creating records over REST: ``POST /{type}`` (one resource) and ``POST /`` (a ``transaction``
or ``batch`` Bundle), sealed, stored and anchored by :func:`medledger.intake.anchor_fhir`, the
path ``medledger anchor`` takes, with the gateway's institution account.

Whose records they are is said by the request, checked before anything is written: the
``patient`` query parameter, or the input's patient naming the MedLedger account (an
identifier ``urn:medledger:account|0x...``, or a ``Patient/0x...`` reference). A Bundle's
resources are anchored in one batch transaction (as ``medledger anchor --batch``); a single
resource in its own transaction. Sending the same request again writes nothing twice: the
records already on chain are answered ``200 OK`` instead of ``201 Created``.

Each created record has a ``Provenance`` (:mod:`~medledger.gateway.provenance`): the record's
URI and the transaction that anchored it, served at ``Provenance/{id}``; each response entry
says both too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medledger import fhir, intake, providers, records
from medledger.errors import InvalidRequest
from medledger.gateway.provenance import ACCOUNT_SYSTEM, instant
from medledger.gateway.queries import patient_address

if TYPE_CHECKING:
    from collections.abc import Callable

    from medledger.fhir import Ingest
    from medledger.gateway.serving import Records
    from medledger.records import Record

_BUNDLE_KINDS = ("transaction", "batch")
_ENTRY_METHODS = ("POST", "PUT")


@dataclass(frozen=True)
class Created:
    """What a create wrote: per input entry, the record made of it (None: the entry made no
    record), whether it was new, and the resource type; the patient."""

    patient: str
    records: list[Record | None]
    new: list[bool]
    kinds: list[str]
    bundle_kind: str | None  # "transaction" / "batch" for POST /, else None


def create(
    served: Records,
    body: bytes,
    resource_type: str | None,
    patient: str | None,
    check: Callable[[frozenset[str], str], None],
) -> Created:
    """Anchor ``body``: one resource of ``resource_type`` (``POST /{type}``) or, with None, a
    transaction or batch Bundle (``POST /``), for ``patient`` or the patient it names.
    ``check(types, patient)`` decides whether the caller may create them (it raises)."""
    ingest = fhir.load(body, "the request")  # refuses what is not FHIR, saying where
    document = json.loads(body)
    bundle_kind = _check_shape(document, resource_type)
    owner = providers.require_patient(served.chain, patient or _named_patient(ingest))
    check(frozenset(d.resource_type for d in ingest.drafts), owner)
    done = intake.anchor_fhir(
        served.chain, served.store, served.account, owner, [("request", ingest)],
        batch=len(ingest.drafts) > 1,
    )  # fmt: skip
    entries = len(document["entry"]) if bundle_kind else 1
    made: list[Record | None] = [None] * entries
    new = [False] * entries
    kinds = [""] * entries
    for i, (draft, record) in enumerate(zip(ingest.drafts, done.records, strict=True)):
        at = draft.entry_index or 0
        if made[at] is None:
            made[at], new[at], kinds[at] = record, i not in done.skipped, draft.resource_type
    return Created(owner, made, new, kinds, bundle_kind)


def update(
    served: Records,
    body: bytes,
    resource_type: str,
    logical_id: str,
    check: Callable[[frozenset[str], str], None],
) -> int:
    """``PUT /{type}/{id}``: anchor ``body`` as the next version of the record; its version
    number. Sending the same body again writes nothing and answers the same version."""
    ingest = fhir.load(body, "the request")
    if ingest.kind != "resource" or ingest.drafts[0].resource_type != resource_type:
        raise InvalidRequest(f"PUT /{resource_type}/{{id}} takes one {resource_type}")
    chain_of = served.versions_of(logical_id)
    current, patient = chain_of[-1], chain_of[0].patient
    check(frozenset({resource_type}), patient)
    if served.body_of(current) == ingest.drafts[0].body:
        return len(chain_of)  # a retry of the PUT that made the current version
    current = records.ensure_registered(served.chain, served.store, served.account, current)
    done = intake.anchor_fhir(
        served.chain, served.store, served.account, patient, [("request", ingest)],
        previous=current.id,
    )  # fmt: skip
    return len(chain_of) + (0 if done.skipped else 1)


def response_bundle(served: Records, created: Created) -> dict[str, Any]:
    """The ``transaction-response`` / ``batch-response`` Bundle of a ``POST /``."""
    entries: list[dict[str, Any]] = []
    for record, new, kind in zip(created.records, created.new, created.kinds, strict=True):
        if record is None:
            entries.append({"response": {"status": "200 OK"}})
            continue
        entries.append({
            "fullUrl": served.link(record.id, kind),
            "response": {
                "status": "201 Created" if new else "200 OK",
                "location": location(record, kind),
                "etag": 'W/"1"',
                "lastModified": instant(record),
                "outcome": _anchored_outcome(record),
            },
        })  # fmt: skip
    return {"resourceType": "Bundle", "type": f"{created.bundle_kind}-response", "entry": entries}


def location(record: Record, resource_type: str) -> str:
    """A created record's version-specific location, relative to the base."""
    return f"{resource_type}/{record.id.hex()}/_history/1"


def _check_shape(document: dict[str, Any], resource_type: str | None) -> str | None:
    found = document.get("resourceType")
    if resource_type is not None:
        if found != resource_type:
            raise InvalidRequest(
                f"POST /{resource_type} takes a {resource_type}, not {found or 'an empty body'}"
            )
        return None
    if found != "Bundle" or document.get("type") not in _BUNDLE_KINDS:
        raise InvalidRequest(
            "POST / takes a transaction or batch Bundle; POST one resource to /{type}"
        )
    entries = document.get("entry")
    if not isinstance(entries, list) or not entries:
        raise InvalidRequest("the Bundle has no entries")
    for i, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        if method not in _ENTRY_METHODS:
            raise InvalidRequest(
                f"Bundle entry {i}: request.method {method!r} is not supported here (POST or "
                "PUT of a resource)"
            )
    return str(document["type"])


def _named_patient(ingest: Ingest) -> str:
    named = ingest.patient
    if named is not None:
        for system, value in named.identifiers:
            if system == ACCOUNT_SYSTEM:
                return patient_address(value)
        if named.resource_id and named.resource_id.startswith("0x"):
            return patient_address(named.resource_id)
    raise InvalidRequest(
        "say whose records these are: add ?patient=0x... (the patient's MedLedger account), or "
        f"an identifier {ACCOUNT_SYSTEM}|0x... on the Patient"
    )


def _anchored_outcome(record: Record) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": "information", "code": "informational",
            "diagnostics": f"anchored as {record.uri} in transaction {record.transaction_hash}",
        }],
    }  # fmt: skip


def dumps(value: object) -> bytes:
    """JSON bytes of a response body."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
