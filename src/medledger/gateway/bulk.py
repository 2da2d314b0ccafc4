"""Bulk Data export (FHIR Bulk Data Access 2.0, https://hl7.org/fhir/uv/bulkdata/): a payer's
or a research sponsor's NDJSON files of what their grants cover.

``GET /fhir/$export`` or ``/fhir/Patient/$export`` (``_type``, ``_since``; ``_outputFormat``
``application/fhir+ndjson``) exports, for a caller holding grants, the current records of every
patient with a live grant to it, through the same path as a search (each read logged on chain,
naming the caller); for a patient, their own. ``GET /fhir/Group/{study}/$export`` exports a
study's data bodies held at this site that the chain lets the caller (a sponsor, a monitor) read,
participant by participant, as their consent says. The kick-off does the work before it answers
``202 Accepted`` with ``Content-Location`` (the status URL): the status answers the complete
manifest at once, files are served to the same caller only (``requiresAccessToken``) and kept
in memory for :data:`KEPT` or until the status URL is deleted.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from medledger import fhir, trials
from medledger.errors import Forbidden, InvalidRequest, RecordNotFound
from medledger.fhir import R4_RESOURCE_TYPES
from medledger.gateway.queries import Query, parse_query
from medledger.gateway.scopes import ANY_TYPE, Action
from medledger.gateway.standing import granting_patients

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from medledger.fhir import Exported
    from medledger.gateway.auth import Principal
    from medledger.gateway.serving import Records

KEPT = timedelta(hours=1)
ALL = 10**9  # a page size no export reaches
MAX_JOBS = 100
NDJSON_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})


@dataclass(frozen=True)
class Job:
    """One finished export: who asked, when, what for, and its files by name."""

    owner: str
    at: datetime
    request: str
    files: dict[str, bytes]
    counts: dict[str, int]


class Exports:
    """The finished exports of one gateway, in memory."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(
        self,
        caller: str,
        principal_for: Callable[[str], Principal],
        params: Iterable[tuple[str, str]],
        request: str,
    ) -> str:
        """Run an export for ``caller`` (its principal per patient from ``principal_for``);
        the job id."""
        types, since = _parameters(params)
        patients = self._patients_of(caller, principal_for)
        at = datetime.now(UTC)
        entries: list[Exported] = []
        for patient in patients:
            principal = principal_for(patient)
            wanted = _types_allowed(principal, types)
            if wanted == frozenset():
                continue
            query = Query(patient=patient, count=ALL, updated=(("ge", since),) if since else ())
            entries += self.records.search(principal, patient, wanted, query).entries
        return self._keep(caller, entries, request, at)

    def _keep(
        self, caller: str, entries: list[Exported], request: str, at: datetime | None = None
    ) -> str:
        at = at or datetime.now(UTC)
        files = fhir.export_ndjson(entries)
        counts = {kind: data.count(b"\n") for kind, data in files.items()}
        job = secrets.token_urlsafe(16)
        with self._lock:
            self._forget_old(at)
            if len(self._jobs) >= MAX_JOBS:
                raise InvalidRequest("too many exports are kept: delete finished ones first")
            self._jobs[job] = Job(caller, at, request, files, counts)
        return job

    def start_study(
        self, caller: str, study_id: int, params: Iterable[tuple[str, str]], request: str
    ) -> str:
        """Run ``Group/{study}/$export`` for ``caller`` (a sponsor or monitor): the study's
        data bodies this gateway's site holds that the chain lets ``caller`` read
        (``TrialRegistry.canRead``: the participant's consent decides), as FHIR NDJSON."""
        types, since = _parameters(params)
        chain, store, account = self.records.chain, self.records.store, self.records.account
        items = [i for i in trials.data(chain, store, study_id) if i.site == account.address]
        registry = trials.trial_registry(chain)
        allowed = chain.call_many("checking the study's readers", [
            registry.functions.canRead(study_id, i.participant, caller) for i in items
        ])  # fmt: skip
        if items and not any(allowed):
            raise Forbidden(
                f"{caller} may read none of study {study_id}'s data at this site (the "
                "participants' consent names who may)"
            )
        entries: list[Exported] = []
        for item, may in zip(items, allowed, strict=True):
            if not may or (since and item.submitted_at < since):
                continue
            body = trials.read_data(chain, store, account, study_id, item.id)
            resource = fhir.parse_resource(body)
            if types and resource["resourceType"] not in types:
                continue
            entries.append(fhir.Exported(f"urn:medledger:data:0x{item.id.hex()}", resource))
        return self._keep(caller, entries, request)

    def manifest(self, caller: str, job_id: str, base: str) -> dict[str, Any]:
        """The Bulk Data completion manifest of a job."""
        job = self._job(caller, job_id)
        return {
            "transactionTime": job.at.isoformat().replace("+00:00", "Z"),
            "request": job.request,
            "requiresAccessToken": True,
            "output": [
                {"type": kind, "url": f"{base}/$export-file/{job_id}/{kind}.ndjson",
                 "count": job.counts[kind]}
                for kind in sorted(job.files)
            ],
            "error": [],
        }  # fmt: skip

    def file(self, caller: str, job_id: str, name: str) -> bytes:
        """One NDJSON file of a job."""
        job = self._job(caller, job_id)
        kind = name.removesuffix(".ndjson")
        if kind not in job.files:
            raise RecordNotFound(f"export file {name}")
        return job.files[kind]

    def delete(self, caller: str, job_id: str) -> None:
        """Forget a job and its files."""
        self._job(caller, job_id)
        with self._lock:
            self._jobs.pop(job_id, None)

    def _job(self, caller: str, job_id: str) -> Job:
        with self._lock:
            self._forget_old(datetime.now(UTC))
            job = self._jobs.get(job_id)
        if job is None or job.owner != caller:  # another caller's job is as good as unknown
            raise RecordNotFound(f"export {job_id}")
        return job

    def _patients_of(self, caller: str, principal_for: Callable[[str], Principal]) -> list[str]:
        chain = self.records.chain
        patients = granting_patients(chain, caller)
        try:
            own = principal_for(caller)
        except (Forbidden, RecordNotFound):
            own = None
        if own is not None and own.categories is None and not own.institution:
            patients = [caller, *[p for p in patients if p != caller]]
        if not patients:
            raise Forbidden(
                f"{caller} holds no live grant from any patient: there is nothing to export"
            )
        return patients

    def _forget_old(self, now: datetime) -> None:
        for job_id in [j for j, job in self._jobs.items() if now - job.at > KEPT]:
            del self._jobs[job_id]


def _types_allowed(principal: Principal, asked: frozenset[str]) -> frozenset[str] | None:
    """The types to export: those asked for (none: all) that the token's scopes name."""
    searching = [s for s in principal.scopes if Action.SEARCH in s.actions]
    if any(s.resource_type == ANY_TYPE for s in searching):
        return asked or None
    named = frozenset(s.resource_type for s in searching)
    return named & asked if asked else named


def _parameters(params: Iterable[tuple[str, str]]) -> tuple[frozenset[str], datetime | None]:
    types: set[str] = set()
    since: datetime | None = None
    for name, value in params:
        if name == "_type":
            for kind in filter(None, (v.strip() for v in value.split(","))):
                if kind not in R4_RESOURCE_TYPES:
                    raise InvalidRequest(f"_type {kind!r} is not a FHIR R4 resource type")
                types.add(kind)
        elif name == "_since":
            query: Query = parse_query([("_lastUpdated", f"ge{value}")])
            since = query.updated[0][1]
        elif name == "_outputFormat":
            if value not in NDJSON_FORMATS:
                raise InvalidRequest(f"_outputFormat {value!r}: only application/fhir+ndjson")
        else:
            raise InvalidRequest(
                f"$export parameter {name!r} is not supported (supported: _type, _since, "
                "_outputFormat)"
            )
    return frozenset(types), since


