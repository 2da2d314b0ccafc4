"""A patient's grants as FHIR R4 ``Consent`` resources: read, search, create by the patient's
signature, revoke by the patient's signature (what the gateway's ``/Consent`` serves).

One grant (patient, grantee, scope) is one ``Consent``, whose id is
:func:`~medledger.consent.consent_ids.consent_id` (found again by ``find_consent``). It says:

- ``status``: ``active`` while the grant gives access, ``inactive`` once revoked or expired;
  which of the two is the extension ``urn:medledger:fhir:grant-status`` (``active``,
  ``revoked``, ``expired``), a revocation's time ``urn:medledger:fhir:revoked-at``;
- ``scope`` ``patient-privacy``, ``category`` LOINC 59284-0 "Patient Consent", ``policyRule``
  ``OPTIN``, ``patient`` and ``performer`` ``Patient/<address>``, ``dateTime`` the grant's time,
  ``identifier`` ``urn:medledger:consent|eip155:<chain>/<ConsentManager>/<patient>/<grantee>/
  <scopeKey>`` (where the grant lives on chain);
- ``provision``: ``permit`` of ``access`` for one ``actor`` (role ``IRCP``, the grantee:
  ``Organization`` ``urn:medledger:institution|<address>`` for an institution, otherwise
  ``urn:medledger:account|<address>``, typed ``Practitioner`` for a practitioner), ``period``
  from the grant's time to its expiry, one ``purpose`` (v3 ActReason), and what it covers: a
  record grant one ``data`` (the record by its ``medledger://`` URI), a category grant a
  ``class`` holding ``urn:medledger:category|<category>`` then every FHIR resource type a
  record of that category can be, an all-records grant neither (the whole patient).

Creating: the patient's app calls :func:`signed_consent`, a ``proposed`` Consent carrying
the EIP-712 signed grant (the document ``medledger grant --sign-only`` writes) as compact JSON
in ``extension[url=urn:medledger:signed-grant].valueBase64Binary`` (base64 rather than a JSON
string: the document holds a key envelope, and a string element is limited to 1 MB and is
easily re-encoded by clients); the gateway passes what it receives to :func:`submit_consent`,
which submits it only when every stated term is exactly the signed one.

Revoking: the patient's app calls :func:`revocation_for` and sends what it returns (the signed
revocation as compact JSON, base64url without padding) with ``DELETE /Consent/<id>`` in the
HTTP header :data:`REVOCATION_HEADER`: fhir-kit-client (2.0.3) sends it with
``client.delete({resourceType, id, options: {headers: {...}}})``, SMART's Python fhirclient
(4.4.0) with ``server.session.headers[...]`` set before ``resource.delete(server)`` (both seen
arriving intact at a loopback server); a header keeps the signature out of URLs and access
logs, and neither client's ``delete`` can add a query parameter. :func:`revoke_consent`
checks it revokes that very grant, then submits it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes

from medledger import documents, fhir, providers, records
from medledger.addresses import parse_address
from medledger.categories import Category
from medledger.chain import eventindex, events
from medledger.consent.consent_ids import consent_id, find_consent
from medledger.consent.contract import CONTRACT, consent_contract
from medledger.consent.granting import (
    sign_grant,
    sign_revocation,
    submit_signed_grant,
    submit_signed_revocation,
)
from medledger.consent.grants import GrantState
from medledger.consent.scopes import Purpose, Scope, ScopeKind
from medledger.errors import (
    ConfigurationError,
    ConsentMismatch,
    ConsentNotFound,
    FhirStructureError,
    MedLedgerError,
)
from medledger.fhir._references import URI_SYSTEM
from medledger.fhir._research import INSTITUTION_SYSTEM
from medledger.fhir._validate import problems_of
from medledger.providers.participants import registry
from medledger.records.record import registry as record_registry

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

CONSENT_SYSTEM = "urn:medledger:consent"
ACCOUNT_SYSTEM = "urn:medledger:account"
CATEGORY_SYSTEM = "urn:medledger:category"
SIGNED_GRANT_URL = "urn:medledger:signed-grant"
GRANT_STATUS_URL = "urn:medledger:fhir:grant-status"
REVOKED_AT_URL = "urn:medledger:fhir:revoked-at"
#: The HTTP header that carries a signed revocation with ``DELETE /Consent/<id>``.
REVOCATION_HEADER = "X-MedLedger-Signature"

RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_PURPOSES = {
    Purpose.TREATMENT: ("TREAT", "treatment"),
    Purpose.PAYMENT: ("HPAYMT", "healthcare payment"),
    Purpose.RESEARCH: ("HRESCH", "healthcare research"),
    Purpose.OPERATIONS: ("HOPERAT", "healthcare operations"),
    Purpose.PATIENT_REQUEST: ("PATRQT", "patient requested"),
    Purpose.EMERGENCY: ("ETREAT", "emergency treatment"),
}
_PURPOSE_OF_CODE = {code: purpose for purpose, (code, _display) in _PURPOSES.items()}
_FIXED = {
    "scope": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
        "code": "patient-privacy", "display": "Privacy Consent",
    }]},
    "category": [{"coding": [
        {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
    ]}],
    "policyRule": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN",
        "display": "opt-in",
    }]},
}  # fmt: skip
_ACTOR_ROLE = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP",
    "display": "information recipient",
}]}  # fmt: skip
_ACCESS = [{"coding": [
    {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}
]}]  # fmt: skip
_PATIENT_REFERENCE = re.compile(r"Patient/(0x[0-9a-fA-F]{40})")
_NEW_STATUSES = ("proposed", "active")
_PROVISION_TERMS = frozenset({"type", "period", "actor", "action", "purpose", "class", "data"})


@dataclass(frozen=True)
class _Terms:
    """What a grant says: who, to whom, what, why and until when."""

    patient: str
    grantee: str
    scope: Scope
    purpose: Purpose
    expires_at: datetime


# --- search --------------------------------------------------------------------------------------


def consents_of(
    chain: Chain,
    patient: str | None = None,
    grantee: str | None = None,
    status: str | None = None,
) -> list[GrantState]:
    """Every grant a patient gave, or a grantee received (or both named), in the order they
    were first given, as they stand now; ``status`` ``active`` or ``inactive`` keeps only the
    grants whose ``Consent`` has it.

    The states are read from the grants' events (what ``getGrant`` answers is set by the last
    ``AccessGranted`` and a later ``AccessRevoked``, at their blocks' times), not asked of the
    contract one by one: a patient's 1,000 grants took 2.2 s with a call each."""
    if status not in (None, "active", "inactive"):
        raise ConfigurationError("status", f"{status!r} is not active or inactive")
    filters: dict[str, Any] = {}
    if patient:
        filters["patient"] = parse_address(patient, "patient")
    if grantee:
        filters["grantee"] = parse_address(grantee, "actor")
    if not filters:
        raise ConfigurationError("Consent search", "name a patient or an actor (the grantee)")
    states = _states(chain, filters)
    if status is None:
        return states
    now = chain.now()
    return [s for s in states if s.live(now) is (status == "active")]


def _states(chain: Chain, filters: dict[str, Any]) -> list[GrantState]:
    """The grants matching ``filters`` as the contract holds them, from their events."""
    with eventindex.one_view(chain):
        given = events.logs(chain, CONTRACT, "AccessGranted", filters)
        revoked = events.logs(chain, CONTRACT, "AccessRevoked", filters)
    last: dict[tuple[str, str, bytes], events.Log] = {}
    for log in given:  # a key keeps the place of its first grant
        last[log["patient"], log["grantee"], log["scopeKey"]] = log
    revoked_at: dict[tuple[str, str, bytes], datetime] = {}
    for log in revoked:
        granted = last.get((log["patient"], log["grantee"], log["scopeKey"]))
        if granted is not None and (log.block, log.index) > (granted.block, granted.index):
            revoked_at[log["patient"], log["grantee"], log["scopeKey"]] = log.time(chain)
    return [
        GrantState(
            patient=log["patient"],
            grantee=log["grantee"],
            scope=Scope.from_chain(log["scopeKind"], log["scope"]),
            purpose=Purpose(log["purpose"]),
            granted_at=log.time(chain),
            expires_at=events.moment(log["expiresAt"]),
            revoked_at=revoked_at.get(key),
            envelopes=(),
        )
        for key, log in last.items()
    ]


# --- a grant as a Consent ------------------------------------------------------------------------


def consent_resource(
    chain: Chain, state: GrantState, now: datetime | None = None
) -> dict[str, Any]:
    """One grant as an R4 ``Consent`` at ``now`` (default: the chain's time; a page of
    search results passes one time for all), see the module's docstring for what it says."""
    if not state.given:
        raise ConsentNotFound(consent_id(chain, state))
    grant_status = state.status(now or chain.now())
    extensions: list[dict[str, Any]] = [{"url": GRANT_STATUS_URL, "valueCode": grant_status}]
    if state.revoked_at is not None:
        extensions.append({"url": REVOKED_AT_URL, "valueDateTime": _time(state.revoked_at)})
    key = "0x" + state.scope.key.hex()
    manager = consent_contract(chain).address
    where = f"eip155:{chain.chain_id}/{manager}/{state.patient}/{state.grantee}/{key}"
    terms = _Terms(state.patient, state.grantee, state.scope, state.purpose, state.expires_at)
    resource = {
        "resourceType": "Consent",
        "id": consent_id(chain, state),
        "extension": extensions,
        "identifier": [{"system": CONSENT_SYSTEM, "value": where}],
        "status": "active" if grant_status == "active" else "inactive",
        **_body(chain, terms, state.granted_at, started=True),
    }
    return _validated(resource)


def _body(chain: Chain, terms: _Terms, at: datetime, started: bool) -> dict[str, Any]:
    """The elements a grant and a proposed one share: the fixed codes, patient, time and
    provision (its ``period`` starts at ``at`` once ``started``: a proposed grant starts when
    the chain records it)."""
    code, display = _PURPOSES[terms.purpose]
    period = {"start": _time(at)} if started else {}
    provision: dict[str, Any] = {
        "type": "permit",
        "period": {**period, "end": _time(terms.expires_at)},
        "actor": [
            {"role": copy.deepcopy(_ACTOR_ROLE), "reference": _account(chain, terms.grantee)}
        ],
        "action": copy.deepcopy(_ACCESS),
        "purpose": [{"system": ACT_REASON, "code": code, "display": display}],
    }
    scope = terms.scope
    if scope.kind is ScopeKind.RECORD and scope.record is not None:
        uri = f"medledger://eip155:{chain.chain_id}/{record_registry(chain).address}/0x"
        provision["data"] = [{"meaning": "instance", "reference": {
            "identifier": {"system": URI_SYSTEM, "value": uri + scope.record.hex()}
        }}]  # fmt: skip
    elif scope.kind is ScopeKind.CATEGORY and scope.category is not None:
        provision["class"] = [
            {"system": CATEGORY_SYSTEM, "code": scope.category.label},
            *({"system": RESOURCE_TYPES, "code": t} for t in _types_of(scope.category)),
        ]
    elif scope.kind is ScopeKind.CATEGORY:  # a category a later version added
        provision["class"] = [{"system": CATEGORY_SYSTEM, "code": "unknown"}]
    patient = f"Patient/{terms.patient}"
    return {
        **copy.deepcopy(_FIXED),
        "patient": {"reference": patient},
        "dateTime": _time(at),
        "performer": [{"reference": patient}],
        "provision": provision,
    }


def _account(chain: Chain, address: str) -> dict[str, Any]:
    """A grantee as a logical reference: an institution, a practitioner or another account."""
    entry = registry(chain).functions.participant(address)
    role = providers.Role(chain.call("reading the registry", entry)[0])  # one call, not four
    if role is providers.Role.INSTITUTION:
        return {"type": "Organization",
                "identifier": {"system": INSTITUTION_SYSTEM, "value": address}}  # fmt: skip
    reference: dict[str, Any] = {"identifier": {"system": ACCOUNT_SYSTEM, "value": address}}
    if role is providers.Role.PRACTITIONER:
        reference = {"type": "Practitioner", **reference}
    return reference


def _types_of(category: Category) -> list[str]:
    return sorted(fhir.types_of(frozenset({category})))


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _validated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, checked against the R4B model (a problem here is a bug, not input)."""
    problems = problems_of(resource, "Consent", None)
    if problems:
        raise AssertionError(f"built an invalid Consent: {problems}")
    return resource


# --- creating ------------------------------------------------------------------------------------


def signed_consent(
    chain: Chain,
    store: BlockStore,
    signer: Signer,
    patient: str,
    grantee: str,
    scope: Scope,
    purpose: Purpose,
    expires: timedelta,
    valid_for: timedelta = timedelta(days=7),
) -> dict[str, Any]:
    """A ``proposed`` Consent for ``POST /Consent``, carrying the grant the patient (or a
    delegate) signed: :func:`sign_grant`'s arguments, its document wrapped."""
    document = sign_grant(
        chain, store, signer, patient, grantee, scope, purpose, expires, valid_for
    )
    packed = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    signed = {"url": SIGNED_GRANT_URL, "valueBase64Binary": base64.b64encode(packed).decode()}
    resource = {
        "resourceType": "Consent",
        "extension": [signed],
        "status": "proposed",
        **_body(chain, _signed_terms(document), chain.now(), started=False),
    }
    return _validated(resource)


def submit_consent(
    chain: Chain, store: BlockStore, submitter: Signer, resource: object
) -> GrantState:
    """Submit the grant a ``proposed`` (or ``active``) Consent carries (the ``submitter`` pays
    the gas), once its stated patient, grantee, scope, purpose and end are exactly the signed
    ones; otherwise :class:`ConsentMismatch` and nothing is sent or stored."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Consent":
        raise FhirStructureError("Consent", "the body is not a Consent resource")
    if resource.get("status") not in _NEW_STATUSES:
        raise FhirStructureError(
            "Consent", f"status {resource.get('status')!r}: a new Consent is proposed or active"
        )
    document = _carried_grant(resource)
    signed = _signed_terms(document)
    stated = _stated_terms(chain, resource)
    for what, mine, theirs in (
        ("patient", stated.patient, signed.patient),
        ("grantee", stated.grantee, signed.grantee),
        ("scope", stated.scope.label, signed.scope.label),
        ("purpose", stated.purpose.label, signed.purpose.label),
        ("provision.period.end", _time(stated.expires_at), _time(signed.expires_at)),
    ):
        if mine != theirs:
            raise ConsentMismatch(f"its {what} is {mine}, but the patient signed {theirs}")
    return submit_signed_grant(chain, store, submitter, document)


def _carried_grant(resource: dict[str, Any]) -> dict[str, Any]:
    """The signed grant a Consent carries in its ``urn:medledger:signed-grant`` extension."""
    found = [
        e for e in resource.get("extension") or []
        if isinstance(e, dict) and e.get("url") == SIGNED_GRANT_URL
    ]  # fmt: skip
    if len(found) != 1 or not isinstance(found[0].get("valueBase64Binary"), str):
        raise FhirStructureError(
            "Consent", f"it carries no {SIGNED_GRANT_URL} extension with a valueBase64Binary: "
            "the patient's app signs the grant (consent.signed_consent)",
        )  # fmt: skip
    try:
        packed = base64.b64decode(found[0]["valueBase64Binary"], validate=True)
    except (binascii.Error, ValueError):
        raise FhirStructureError("Consent", f"its {SIGNED_GRANT_URL} is not base64") from None
    return documents.parse_object(packed, f"Consent {SIGNED_GRANT_URL}")


def _signed_terms(document: dict[str, Any]) -> _Terms:
    """The terms of a signed grant document."""
    try:
        request = document["request"]
        return _Terms(
            parse_address(request["patient"]),
            parse_address(request["grantee"]),
            _known(Scope.from_chain(request["scopeKind"], bytes(HexBytes(request["scope"])))),
            Purpose(request["purpose"]),
            datetime.fromtimestamp(int(request["expiresAt"]), tz=UTC),
        )
    except (KeyError, TypeError, ValueError, MedLedgerError):
        raise ConfigurationError(
            f"Consent {SIGNED_GRANT_URL}", "is not a MedLedger signed grant"
        ) from None


def _known(scope: Scope) -> Scope:
    """A signed scope this version can state (not a category it does not know)."""
    if scope.kind is ScopeKind.CATEGORY and scope.category is None:
        raise ValueError("a category this version does not know")
    return scope


def _stated_terms(chain: Chain, resource: dict[str, Any]) -> _Terms:
    """The terms a Consent states, in the form :func:`consent_resource` writes them."""
    patient = _dict(resource.get("patient"))
    found = _PATIENT_REFERENCE.fullmatch(str(patient.get("reference", "")))
    if found is None:
        raise FhirStructureError("Consent", "patient is not a reference Patient/<address>")
    provision = _dict(resource.get("provision"))
    if provision.get("type") != "permit":
        raise FhirStructureError("Consent", "provision.type is not permit")
    _require_no_other_terms(resource, provision)
    actors = provision.get("actor")
    if not isinstance(actors, list) or len(actors) != 1:
        raise FhirStructureError("Consent", "provision.actor does not name one grantee")
    grantee = _dict(_dict(_dict(actors[0]).get("reference")).get("identifier"))
    if grantee.get("system") not in (INSTITUTION_SYSTEM, ACCOUNT_SYSTEM):
        raise FhirStructureError(
            "Consent", f"provision.actor has no {INSTITUTION_SYSTEM} or {ACCOUNT_SYSTEM} "
            "identifier",
        )  # fmt: skip
    purposes = provision.get("purpose")
    if not isinstance(purposes, list) or len(purposes) != 1:
        raise FhirStructureError("Consent", "provision.purpose does not hold one purpose")
    purpose = _dict(purposes[0])
    if purpose.get("system") != ACT_REASON or purpose.get("code") not in _PURPOSE_OF_CODE:
        codes = ", ".join(code for code, _display in _PURPOSES.values())
        raise FhirStructureError("Consent", f"provision.purpose is not one of {ACT_REASON} "
                                            f"{codes}")  # fmt: skip
    end = _dict(provision.get("period")).get("end")
    try:
        expires_at = datetime.fromisoformat(str(end))
        if expires_at.tzinfo is None:
            raise ValueError(end)
    except ValueError:
        raise FhirStructureError(
            "Consent", f"provision.period.end {end!r} is not a dateTime with a time zone"
        ) from None
    return _Terms(
        parse_address(found[1], "Consent patient"),
        parse_address(grantee.get("value"), "Consent provision.actor"),
        _stated_scope(chain, provision),
        _PURPOSE_OF_CODE[purpose["code"]],
        expires_at.astimezone(UTC),
    )


def _require_no_other_terms(resource: dict[str, Any], provision: dict[str, Any]) -> None:
    """Refuse what would narrow or change the grant without the chain holding it (a nested
    provision, a data period, a security label, a modifier extension, an action other than
    access): the grant would give more than the Consent says."""
    other = sorted(set(provision) - _PROVISION_TERMS)
    if other:
        raise FhirStructureError(
            "Consent", f"provision.{other[0]} is not a term a MedLedger grant can hold"
        )
    if "modifierExtension" in resource:
        raise FhirStructureError("Consent", "a modifierExtension is not a term a grant can hold")
    actions = provision.get("action", _ACCESS)
    listed = actions if isinstance(actions, list) else []
    codings = [c for action in listed for c in _dict(action).get("coding") or []]
    if [_dict(c).get("code") for c in codings] != ["access"]:
        raise FhirStructureError("Consent", "provision.action is not access (a grant reads)")


def _stated_scope(chain: Chain, provision: dict[str, Any]) -> Scope:
    """A record (``data``), a category (``class``: the category, then its resource types) or
    all records (neither)."""
    data, classes = provision.get("data"), provision.get("class")
    if data and classes:
        raise FhirStructureError("Consent", "provision holds both data and class")
    if data:
        if not isinstance(data, list) or len(data) != 1:
            raise FhirStructureError("Consent", "provision.data does not name one record")
        identifier = _dict(_dict(_dict(data[0]).get("reference")).get("identifier"))
        if identifier.get("system") != URI_SYSTEM:
            raise FhirStructureError("Consent", "provision.data names no record URI")
        ref = records.RecordRef.parse(str(identifier.get("value")))
        here = (chain.chain_id, record_registry(chain).address)
        if (ref.chain_id, ref.registry) != here:
            raise FhirStructureError("Consent", "provision.data names a record of another chain")
        return Scope(ScopeKind.RECORD, record=ref.id)
    if classes:
        codings = [_dict(c) for c in classes] if isinstance(classes, list) else []
        named = [c.get("code") for c in codings if c.get("system") == CATEGORY_SYSTEM]
        if len(named) != 1:
            raise FhirStructureError("Consent", f"provision.class names no {CATEGORY_SYSTEM}")
        category = Category.parse(str(named[0]))
        types = sorted(str(c.get("code")) for c in codings if c.get("system") != CATEGORY_SYSTEM)
        if types != _types_of(category):
            raise FhirStructureError(
                "Consent", f"provision.class does not list exactly the resource types of "
                f"category {category.label}",
            )  # fmt: skip
        return Scope(ScopeKind.CATEGORY, category=category)
    return Scope(ScopeKind.ALL)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- revoking ------------------------------------------------------------------------------------


def revocation_for(
    chain: Chain, patient: Signer, consent_id: str, deadline: datetime | None = None
) -> str:
    """What the patient's app sends in :data:`REVOCATION_HEADER` with ``DELETE
    /Consent/<consent_id>``: the patient's signed revocation of that grant, compact JSON in
    base64url without padding."""
    state = find_consent(chain, consent_id)
    document = sign_revocation(chain, patient, state.grantee, state.scope, deadline)
    _require_revokes(document, state)
    packed = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode()


def revoke_consent(chain: Chain, submitter: Signer, consent_id: str, signed: str) -> GrantState:
    """Revoke the grant of ``Consent/<consent_id>`` with the patient's signed revocation (what
    :func:`revocation_for` made); refused, nothing sent, unless it revokes exactly that grant."""
    state = find_consent(chain, consent_id)
    text = signed.strip()
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigurationError(REVOCATION_HEADER, "is not base64url") from None
    document = documents.parse_object(packed, REVOCATION_HEADER)
    _require_revokes(document, state)
    result: GrantState = submit_signed_revocation(chain, submitter, document)
    return result


def _require_revokes(document: dict[str, Any], state: GrantState) -> None:
    """Refuse a signed revocation of another grant than ``state``'s (its request names the
    patient, the grantee and the scope, by kind and value or by key)."""
    request = _dict(document.get("request"))
    try:
        patient = parse_address(request.get("patient"), "revoked patient")
        grantee = parse_address(request.get("grantee"), "revoked grantee")
        if "scopeKey" in request:
            key = bytes(HexBytes(request["scopeKey"]))
        else:
            key = Scope.from_chain(request["scopeKind"], bytes(HexBytes(request["scope"]))).key
    except (KeyError, TypeError, ValueError, MedLedgerError):
        raise ConfigurationError(
            REVOCATION_HEADER, "is not a MedLedger signed revocation"
        ) from None
    for what, stated, wanted in (
        ("patient", patient, state.patient),
        ("grantee", grantee, state.grantee),
        ("scope key", "0x" + key.hex(), "0x" + state.scope.key.hex()),
    ):
        if stated != wanted:
            raise ConsentMismatch(
                f"the signed revocation is for {what} {stated}, not this Consent's {wanted}"
            )
