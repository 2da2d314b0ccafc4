"""A patient's grants over REST as ``Consent``: read, search, create from the patient's signed
grant, delete with the patient's signed revocation (thin over
:mod:`medledger.consent.fhir_consent`).

The gateway submits what the patient signed with the institution's account; it can neither
grant nor revoke on its own. Who may: the patient (or a delegate) and the institution read and
search a patient's consents; creating and deleting need the patient's signature, sent by the
patient's own signed-in app or by the institution on the patient's behalf.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from medledger import consent
from medledger.errors import FhirStructureError, InvalidRequest
from medledger.gateway.queries import patient_address
from medledger.gateway.scopes import Action

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from medledger.gateway.auth import Principal
    from medledger.gateway.serving import Records

    Authorize = Callable[[str, Action, str | None], Principal]

SEARCH = ("patient", "actor", "status")


class Consents:
    """The ``Consent`` resources a gateway serves."""

    def __init__(self, records: Records) -> None:
        self.chain, self.store, self.account = records.chain, records.store, records.account

    def read(self, consent_id: str, authorize: Authorize) -> dict[str, Any]:
        """``GET /Consent/{id}``."""
        state = consent.find_consent(self.chain, consent_id)
        authorize("Consent", Action.READ, state.patient)
        return consent.consent_resource(self.chain, state)

    def search(
        self, params: Iterable[tuple[str, str]], authorize: Authorize
    ) -> list[dict[str, Any]]:
        """``GET /Consent?patient=&actor=&status=``."""
        given: dict[str, str] = {}
        for name, value in params:
            if name in ("_format", "_pretty", "_count"):
                continue
            if name not in SEARCH:
                raise InvalidRequest(
                    f"Consent search parameter {name!r} is not supported ({', '.join(SEARCH)})"
                )
            given[name] = value
        patient = patient_address(given["patient"]) if "patient" in given else None
        caller = authorize("Consent", Action.SEARCH, patient)
        patient = patient or caller.patient
        if patient is None:
            raise InvalidRequest("name the patient: GET /Consent?patient=0x...")
        actor = given.get("actor")
        states = consent.consents_of(
            self.chain, patient, patient_address(actor) if actor else None, given.get("status")
        )
        now = self.chain.now()
        return [consent.consent_resource(self.chain, s, now) for s in states]

    def create(self, body: bytes, authorize: Authorize) -> dict[str, Any]:
        """``POST /Consent``: submit the patient's signed grant the Consent carries."""
        try:
            resource = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise FhirStructureError("Consent", "is not valid JSON") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Consent":
            raise InvalidRequest("POST /Consent takes a Consent")
        reference = (resource.get("patient") or {}).get("reference")
        if not isinstance(reference, str):
            raise InvalidRequest("the Consent names no patient (patient.reference Patient/0x...)")
        authorize("Consent", Action.CREATE, patient_address(reference))
        state = consent.submit_consent(self.chain, self.store, self.account, resource)
        return consent.consent_resource(self.chain, state)

    def delete(self, consent_id: str, signed: str | None, authorize: Authorize) -> dict[str, Any]:
        """``DELETE /Consent/{id}`` with the patient's signed revocation in the
        ``X-MedLedger-Signature`` header; the Consent as it now stands (inactive)."""
        state = consent.find_consent(self.chain, consent_id)
        authorize("Consent", Action.DELETE, state.patient)
        if not signed:
            raise InvalidRequest(
                f"send the patient's signed revocation in the {consent.REVOCATION_HEADER} "
                "header (the gateway cannot revoke for the patient)"
            )
        revoked = consent.revoke_consent(self.chain, self.account, consent_id, signed)
        return consent.consent_resource(self.chain, revoked)
