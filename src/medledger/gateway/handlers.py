"""What each route of the gateway does (:mod:`~medledger.gateway.app` routes to these): read
the request, ask :class:`~medledger.gateway.auth.Authority` who is calling, call the package, and
answer ``(status, body[, headers])`` (a body of bytes names its own ``Content-Type``).

Records of any type are served by :mod:`~medledger.gateway.serving` and created by
:mod:`~medledger.gateway.creating`; what the chain's state makes (``Consent``, ``Coverage``,
claims' responses, studies) by :mod:`~medledger.gateway.consents` and
:mod:`~medledger.gateway.financial`; Bulk Data by :mod:`~medledger.gateway.bulk`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from medledger.consent.fhir_consent import REVOCATION_HEADER
from medledger.errors import (
    ClaimNotFound,
    ConsentNotFound,
    Forbidden,
    InvalidRequest,
    NotSupported,
    PolicyNotFound,
    RecordNotFound,
)
from medledger.fhir import R4_RESOURCE_TYPES, Exported
from medledger.gateway import creating, financial
from medledger.gateway.bulk import Exports
from medledger.gateway.capability import capability_statement
from medledger.gateway.consents import Consents
from medledger.gateway.financial import Financial
from medledger.gateway.outcomes import outcome
from medledger.gateway.queries import parse_query, patient_address
from medledger.gateway.scopes import ANY_TYPE, Action
from medledger.gateway.serving import served_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from medledger.gateway.auth import Principal
    from medledger.gateway.server import Gateway

_SPECIAL = frozenset({"Provenance"})  # served from the chain, not as records


class Handlers:
    """One method per route; each answers ``(status, body[, headers])``."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.records = gateway.records
        self.authority = gateway.authority
        self.exports = Exports(gateway.records)
        self.financial = Financial(gateway.records, gateway.authority)
        self.consents = Consents(gateway.records)

    # --- signing in -----------------------------------------------------------------------

    def challenge(self, request: Request, body: bytes) -> tuple[int, Any]:
        asked = _json_object(body, "address", "scope")
        return 200, {"message": self.authority.challenge(asked["address"], asked["scope"])}

    def token(self, request: Request, body: bytes) -> tuple[int, Any]:
        asked = _json_object(body, "message", "signature")
        token = self.authority.sign_in(asked["message"], asked["signature"])
        lifetime = int(self.authority.token_lifetime.total_seconds())
        return 200, {
            "access_token": token.bearer, "token_type": "Bearer", "expires_in": lifetime,
            "scope": token.scope, "patient": token.patient,
        }  # fmt: skip

    # --- FHIR -----------------------------------------------------------------------------

    def metadata(self, request: Request, body: bytes) -> tuple[int, Any]:
        types = sorted(R4_RESOURCE_TYPES - {"Bundle", "OperationOutcome", "Parameters"})
        return 200, capability_statement(self.records.base, types, _OTHERS)

    def transaction(self, request: Request, body: bytes) -> tuple[int, Any]:
        created = creating.create(
            self.records, body, None, _patient_param(request), self._may_create(request)
        )
        return 200, creating.response_bundle(self.records, created)

    def create(self, request: Request, body: bytes) -> tuple[int, Any, dict[str, str]]:
        kind = _resource_type(request)
        if kind in _SPECIAL:
            raise NotSupported(f"{kind} is written by the gateway itself; it cannot be created")
        if kind == "Consent":
            return 201, self.consents.create(body, self._authorizer(request)), {}
        if kind == "Claim":
            response, claim_record = self.financial.submit_claim(body, self._authorizer(request))
            return 201, response, {"Location": f"{self.records.base}/Claim/{claim_record}"}
        if kind in _SERVED_ELSEWHERE:
            raise NotSupported(f"{kind} is made by the chain's state; it cannot be created here")
        created = creating.create(
            self.records, body, kind, _patient_param(request), self._may_create(request)
        )
        record = created.records[0]
        assert record is not None  # one resource makes one record
        where = creating.location(record, kind)
        shown = self.records.read(lambda _p: self._principal(request, kind, Action.READ, _p),
                                  kind, record.id.hex())  # fmt: skip
        headers = {"Location": f"{self.records.base}/{where}", "ETag": 'W/"1"'}
        return (201 if created.new[0] else 200), shown.resource, headers

    def search(self, request: Request, body: bytes) -> tuple[int, Any]:
        kind = _resource_type(request)
        items = request.query_params.multi_items()
        only_made = kind in _SERVED_ELSEWHERE - _ALSO_RECORDS
        if only_made or (kind == "Consent" and any(n in ("actor", "status") for n, _ in items)):
            found = self._made(kind, items, request)
            return 200, _bundle("searchset", [_plain(r) for r in found], len(found), [])
        items = [("patient", v) if n == "beneficiary" else (n, v) for n, v in items]
        query = parse_query(items)
        caller = self._principal(request, kind, Action.SEARCH, query.patient)
        patient = query.patient or caller.patient
        if patient is None:
            raise InvalidRequest(
                f"name the patient: GET /{kind}?patient=0x... (searches are per patient)"
            )
        made: list[Exported] = []  # made from chain state: first, on the first page
        if query.offset == 0 and (kind == "Consent" or kind in _ALSO_RECORDS):
            made = [_plain(r) for r in self._made(kind, [("patient", patient)], request)]
        page = self.records.search(caller, patient, frozenset({kind}), query)
        links = [("self", query.with_offset(query.offset))]
        if page.next_offset is not None:
            links.append(("next", query.with_offset(page.next_offset)))
        return 200, _bundle(
            "searchset", made + page.entries, len(made) + page.total,
            [(rel, f"{self.records.base}/{kind}?{_encode(q)}") for rel, q in links],
        )  # fmt: skip

    def _made(
        self, kind: str, items: list[tuple[str, str]], request: Request
    ) -> list[dict[str, Any]]:
        """Resources made from chain state (consents, policies, claims, studies) that match."""
        if kind == "Consent":
            return self.consents.search(items, self._authorizer(request))
        return self.financial.search(kind, items, self._authorizer(request))

    def read(self, request: Request, body: bytes) -> tuple[int, Any]:
        kind, logical_id = _resource_type(request), request.path_params["id"]
        if kind == "Patient" and logical_id.lower().startswith("0x"):
            patient = patient_address(logical_id)
            caller = self._principal(request, kind, Action.READ, patient)
            return 200, self.records.patient_resource(caller, patient)
        if kind == "Provenance":
            return 200, self.records.provenance(self._who(request, kind), logical_id)
        if kind == "Consent":
            try:
                return 200, self.consents.read(logical_id, self._authorizer(request))
            except ConsentNotFound:
                pass  # perhaps a Consent an EHR sent, stored as a record
        elif kind in _SERVED_ELSEWHERE:
            try:
                return 200, self.financial.read(kind, logical_id, self._authorizer(request))
            except (RecordNotFound, ClaimNotFound, PolicyNotFound):
                if kind not in _ALSO_RECORDS:
                    raise  # else: one stored as a record (an EHR's own Coverage, EOB...)
        return 200, self.records.read(self._who(request, kind), kind, logical_id).resource

    def update(self, request: Request, body: bytes) -> tuple[int, Any, dict[str, str]]:
        kind, logical_id = _resource_type(request), request.path_params["id"]
        if kind in _SPECIAL or kind in _SERVED_ELSEWHERE or kind in ("Claim", "Consent"):
            raise NotSupported(f"{kind} cannot be updated here")
        version = creating.update(
            self.records, body, kind, logical_id, self._may(request, Action.UPDATE)
        )
        shown = self.records.read(self._who(request, kind), kind, logical_id)
        where = f"{self.records.base}/{kind}/{logical_id}/_history/{version}"
        return 200, shown.resource, {"Location": where, "ETag": f'W/"{version}"'}

    def delete(self, request: Request, body: bytes) -> tuple[int, Any]:
        kind, logical_id = _resource_type(request), request.path_params["id"]
        if kind != "Consent":
            raise NotSupported(
                f"{kind} cannot be deleted: records are erased by the patient (medledger erase)"
            )
        signed = request.headers.get(REVOCATION_HEADER)
        return 200, self.consents.delete(logical_id, signed, self._authorizer(request))

    def vread(self, request: Request, body: bytes) -> tuple[int, Any]:
        kind, logical_id = _resource_type(request), request.path_params["id"]
        version = request.path_params["version"]
        if not version.isdigit():
            raise RecordNotFound(f"{kind}/{logical_id}/_history/{version}")
        found = self.records.read(self._who(request, kind), kind, logical_id, int(version))
        return 200, found.resource

    def history(self, request: Request, body: bytes) -> tuple[int, Any]:
        kind, logical_id = _resource_type(request), request.path_params["id"]
        versions = self.records.history(self._who(request, kind), kind, logical_id)
        return 200, _bundle("history", versions, len(versions), [], history=True)

    def everything(self, request: Request, body: bytes) -> tuple[int, Any]:
        patient = patient_address(request.path_params["id"])
        caller = self._principal(request, "Patient", Action.READ, patient)
        entries = self.records.everything(caller, patient)
        return 200, _bundle("searchset", entries, len(entries), [])

    # --- Bulk Data ------------------------------------------------------------------------

    def export(self, request: Request, body: bytes) -> tuple[int, Any, dict[str, str]]:
        caller = self.authority.caller(request.headers.get("authorization"))
        job = self.exports.start(
            caller, lambda patient: self._bulk_principal(request, patient),
            request.query_params.multi_items(), str(request.url),
        )  # fmt: skip
        return self._kicked_off(job)

    def export_study(self, request: Request, body: bytes) -> tuple[int, Any, dict[str, str]]:
        bearer = request.headers.get("authorization")
        caller = self.authority.caller(bearer)
        if not any(s.allows("Group", Action.READ) for s in self.authority.scopes(bearer)):
            raise Forbidden(
                "the token's scopes do not allow reading a Group: ask for user/Group.rs"
            )
        study = request.path_params["id"]
        if not study.isdigit():
            raise RecordNotFound(f"Group/{study} (a study's number)")
        params = request.query_params.multi_items()
        job = self.exports.start_study(caller, int(study), params, str(request.url))
        return self._kicked_off(job)

    def _kicked_off(self, job: str) -> tuple[int, Any, dict[str, str]]:
        """The Bulk Data kick-off's answer: 202 and where the job's status is."""
        status_url = f"{self.records.base}/$export-status/{job}"
        done = outcome(f"export finished: {status_url}", "informational", "information")
        return 202, done, {"Content-Location": status_url}

    def export_status(self, request: Request, body: bytes) -> tuple[int, Any, dict[str, str]]:
        caller = self.authority.caller(request.headers.get("authorization"))
        manifest = self.exports.manifest(caller, request.path_params["job"], self.records.base)
        return 200, creating.dumps(manifest), {"Content-Type": "application/json"}

    def export_delete(self, request: Request, body: bytes) -> tuple[int, Any]:
        caller = self.authority.caller(request.headers.get("authorization"))
        self.exports.delete(caller, request.path_params["job"])
        return 202, outcome("export deleted", "informational", "information")

    def export_file(self, request: Request, body: bytes) -> tuple[int, Any, dict[str, str]]:
        caller = self.authority.caller(request.headers.get("authorization"))
        data = self.exports.file(caller, request.path_params["job"], request.path_params["name"])
        return 200, data, {"Content-Type": "application/fhir+ndjson"}

    def _bulk_principal(self, request: Request, patient: str) -> Principal:
        """The caller about ``patient``, checked for the first type its scopes name that its
        standing allows (the export then keeps only types the scopes name)."""
        bearer = request.headers.get("authorization")
        named = sorted({s.resource_type for s in self.authority.scopes(bearer)})
        kinds = ["Patient", *sorted(R4_RESOURCE_TYPES)] if ANY_TYPE in named else named
        refusal: Forbidden | None = None
        for kind in kinds:
            try:
                return self.authority.authorize(bearer, kind, Action.SEARCH, patient)
            except Forbidden as error:
                refusal = refusal or error
        raise refusal or Forbidden("the token's scopes name no resource type")

    # --- who is calling -------------------------------------------------------------------

    def _principal(
        self, request: Request, kind: str, action: Action, patient: str | None
    ) -> Principal:
        bearer = request.headers.get("authorization")
        return self.authority.authorize(bearer, kind, action, patient)

    def _authorizer(self, request: Request) -> Callable[[str, Action, str | None], Principal]:
        self.authority.caller(request.headers.get("authorization"))
        return lambda kind, action, patient: self._principal(request, kind, action, patient)

    def _who(self, request: Request, kind: str) -> Callable[[str], Principal]:
        """The caller, decided once the record's patient is known; a request without a valid
        token is refused before anything is looked up."""
        self.authority.caller(request.headers.get("authorization"))
        return lambda patient: self._principal(request, kind, Action.READ, patient)

    def _may_create(self, request: Request) -> Callable[[frozenset[str], str], None]:
        return self._may(request, Action.CREATE)

    def _may(self, request: Request, action: Action) -> Callable[[frozenset[str], str], None]:
        def check(types: frozenset[str], patient: str) -> None:
            for kind in sorted(types):
                self._principal(request, kind, action, patient)

        self.authority.caller(request.headers.get("authorization"))
        return check


_SERVED_ELSEWHERE = financial.TYPES - {"Claim"}  # a Claim is a record once submitted
_ALSO_RECORDS = frozenset({"Coverage", "ClaimResponse", "ExplanationOfBenefit"})  # EHRs send them
_OTHERS: dict[str, dict[str, Any]] = {
    "Provenance": {"interaction": [{"code": "read"}, {"code": "search-type"}],
                   "documentation": "GET /Provenance/{record version id}: the gateway's "
                                    "Provenance of that version; a search finds the "
                                    "Provenance resources EHRs sent, stored as records"},
    "Consent": {"interaction": [{"code": c} for c in ("read", "search-type", "create", "delete")],
                "searchParam": [{"name": "patient", "type": "reference"},
                                {"name": "actor", "type": "reference"},
                                {"name": "status", "type": "token"}],
                "documentation": "a patient's grants: created from the patient's EIP-712 signed "
                                 "grant, deleted with a signed revocation (X-MedLedger-Signature)"},
    "Claim": {"interaction": [{"code": "create"}, {"code": "read"}, {"code": "search-type"}],
              "documentation": "POST /Claim submits it (answered with the ClaimResponse); "
                               "the Claim is then a record of the patient"},
    **{kind: {"interaction": [{"code": "read"}, {"code": "search-type"}],
              "searchParam": [{"name": name, "type": "reference" if name != "study" else "token"}
                              for name in financial.SEARCHES[kind]]}
       for kind in sorted(financial.TYPES - {"Claim"})},
}  # fmt: skip


def _json_object(body: bytes, *keys: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict) or any(not isinstance(value.get(k), str) for k in keys):
        raise InvalidRequest(f"send a JSON object with the strings {', '.join(keys)}")
    return value


def _resource_type(request: Request) -> str:
    kind = str(request.path_params["type"])
    if kind not in R4_RESOURCE_TYPES:
        raise RecordNotFound(f"{kind} (not a FHIR R4 resource type)")
    return kind


def _patient_param(request: Request) -> str | None:
    values = request.query_params.getlist("patient")
    if len(values) > 1:
        raise InvalidRequest("name one patient")
    return patient_address(values[0]) if values else None


def _encode(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs)


def _plain(resource: dict[str, Any]) -> Exported:
    """A resource served from chain state, as a search entry."""
    return Exported(served_url(resource), resource)


def _bundle(
    kind: str, entries: list[Exported], total: int, links: list[tuple[str, str]],
    *, history: bool = False,
) -> dict[str, Any]:  # fmt: skip
    items: list[dict[str, Any]] = []
    for entry in entries:
        item: dict[str, Any] = {"fullUrl": entry.full_url, "resource": entry.resource}
        if history:
            version = entry.resource["meta"]["versionId"]
            item["request"] = {"method": "POST" if version == "1" else "PUT",
                               "url": entry.resource["resourceType"]}  # fmt: skip
            item["response"] = {"status": "201 Created" if version == "1" else "200 OK"}
        else:
            item["search"] = {"mode": "match"}
        items.append(item)
    document: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "total": total}
    if links:
        document["link"] = [{"relation": rel, "url": url} for rel, url in links]
    document["entry"] = items
    return document
