"""Scenarios for a patient's grants as FHIR ``Consent`` (what the gateway's ``/Consent``
serves): one grant of each scope kind, revoked and expired ones, finding a Consent by its id,
searching, creating one from the patient's signature and revoking one by signature.

Every resource is checked with ``fhir.resources``' R4B ``Consent`` model directly (not only
through the package's validator, which the module itself calls). The codes expected here are
written out from the R4 specification (https://hl7.org/fhir/R4/consent.html, v3 ActReason
https://terminology.hl7.org/CodeSystem-v3-ActReason.html), not taken from the module.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from fhir.resources.R4B.consent import Consent
from loopback import LoopbackServer

from medledger import consent, providers, records
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.errors import (
    ConfigurationError,
    ConsentMismatch,
    ConsentNotFound,
    FhirStructureError,
    InvalidAddress,
    PreconditionFailed,
)
from medledger.ipfs.local import LocalBlockStore

MONTH = timedelta(days=30)
ALL = consent.Scope(consent.ScopeKind.ALL)
LAB = consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB)
SIGNED_GRANT = "urn:medledger:signed-grant"


def body(name: str) -> bytes:
    return json.dumps({"resourceType": "Observation", "id": name, "status": "final"}).encode()


def advance(chain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


def valid(resource: dict) -> dict:
    """The resource, after fhir.resources' R4B Consent model accepted it."""
    Consent.model_validate(resource)
    return resource


def extension(resource: dict, url: str) -> object:
    (found,) = [e for e in resource.get("extension", []) if e["url"] == url]
    return next(v for k, v in found.items() if k.startswith("value"))


def actor_value(resource: dict) -> str:
    (actor,) = resource["provision"]["actor"]
    return actor["reference"]["identifier"]["value"]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_block_clock(chain):
    chain.forget_blocks()  # block times cached by earlier tests (see test_access.py)


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


@pytest.fixture
def record(chain, store, writer, registered_patient) -> records.Record:
    """One lab record the hospital anchored for the patient."""
    (made,) = records.anchor(
        chain, store, writer, registered_patient.address, [records.Draft(body("a"), Category.LAB)],
        readers=consent.readers_for(chain),
    )  # fmt: skip
    return made


@pytest.fixture
def give(chain, store, registered_patient):
    def make(grantee, scope=ALL, purpose=consent.Purpose.TREATMENT, expires=MONTH):
        return consent.grant(
            chain, store, registered_patient, registered_patient.address, grantee.address,
            scope, purpose, expires,
        )  # fmt: skip

    return make


@pytest.fixture
def insurer(verified_institution):
    return verified_institution(dev_account(11), providers.InstitutionKind.INSURER, "Acme Health")


# --- a grant as a Consent --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["all", "category", "record"])
def test_each_kind_of_grant_is_a_valid_consent_saying_what_it_covers(
    chain, record, give, doctor_with_key, registered_patient, kind
):
    scope = {"all": ALL, "category": LAB, "record": consent.Scope(
        consent.ScopeKind.RECORD, record=record.id)}[kind]  # fmt: skip
    state = give(doctor_with_key, scope)
    resource = valid(consent.consent_resource(chain, state))

    assert resource["status"] == "active"
    assert extension(resource, "urn:medledger:fhir:grant-status") == "active"
    assert resource["patient"] == {"reference": f"Patient/{registered_patient.address}"}
    assert resource["performer"] == [resource["patient"]]
    assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
    assert resource["category"][0]["coding"][0] == {
        "system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"
    }  # fmt: skip
    provision = resource["provision"]
    assert provision["type"] == "permit"
    assert actor_value(resource) == doctor_with_key.address
    assert provision["actor"][0]["reference"]["type"] == "Practitioner"
    assert provision["period"] == {
        "start": state.granted_at.isoformat().replace("+00:00", "Z"),
        "end": state.expires_at.isoformat().replace("+00:00", "Z"),
    }
    if kind == "all":
        assert "class" not in provision and "data" not in provision
    elif kind == "category":
        codes = {(c["system"], c["code"]) for c in provision["class"]}
        assert codes == {
            ("urn:medledger:category", "lab"),
            ("http://hl7.org/fhir/resource-types", "Observation"),
            ("http://hl7.org/fhir/resource-types", "DiagnosticReport"),
            ("http://hl7.org/fhir/resource-types", "Specimen"),
        }
        assert "data" not in provision
    else:
        (data,) = provision["data"]
        assert data["reference"]["identifier"] == {"system": "urn:ietf:rfc:3986",
                                                   "value": record.uri}  # fmt: skip
        assert "class" not in provision


@pytest.mark.parametrize(
    ("purpose", "code"),
    [("treatment", "TREAT"), ("payment", "HPAYMT"), ("research", "HRESCH"),
     ("operations", "HOPERAT"), ("patient-request", "PATRQT")],
)  # fmt: skip
def test_the_purpose_is_the_v3_act_reason_code(chain, record, give, insurer, purpose, code):
    state = give(insurer, purpose=consent.Purpose.parse(purpose))
    resource = valid(consent.consent_resource(chain, state))
    (coding,) = resource["provision"]["purpose"]
    assert (coding["system"], coding["code"]) == (
        "http://terminology.hl7.org/CodeSystem/v3-ActReason", code
    )  # fmt: skip


def test_an_institution_grantee_is_an_organization_by_institution_identifier(
    chain, record, give, insurer
):
    resource = consent.consent_resource(chain, give(insurer))
    (actor,) = resource["provision"]["actor"]
    assert actor["reference"] == {
        "type": "Organization",
        "identifier": {"system": "urn:medledger:institution", "value": insurer.address},
    }


def test_a_revoked_grant_is_inactive_saying_revoked_and_when(
    chain, store, record, give, doctor_with_key, registered_patient
):
    give(doctor_with_key)
    consent.revoke(chain, registered_patient, registered_patient.address,
                   doctor_with_key.address, ALL)  # fmt: skip
    (state,) = consent.consents_of(chain, registered_patient.address)
    resource = valid(consent.consent_resource(chain, state))
    assert resource["status"] == "inactive"
    assert extension(resource, "urn:medledger:fhir:grant-status") == "revoked"
    assert state.revoked_at is not None
    assert extension(resource, "urn:medledger:fhir:revoked-at") == state.revoked_at.isoformat(
    ).replace("+00:00", "Z")  # fmt: skip


def test_an_expired_grant_is_inactive_saying_expired(chain, record, give, doctor_with_key):
    state = give(doctor_with_key, expires=timedelta(hours=1))
    advance(chain, 2 * 3600)
    resource = valid(consent.consent_resource(chain, consent.find_consent(
        chain, consent.consent_id(chain, state))))  # fmt: skip
    assert resource["status"] == "inactive"
    assert extension(resource, "urn:medledger:fhir:grant-status") == "expired"
    assert not any(e["url"] == "urn:medledger:fhir:revoked-at" for e in resource["extension"])


def test_a_category_this_version_does_not_know_is_stated_as_unknown_not_as_all(
    chain, record, doctor_with_key, registered_patient
):
    """The contract takes any category 1-255; a later version may add some."""
    expires = int((chain.now() + MONTH).timestamp())
    later = (99).to_bytes(32, "big")
    raw = consent.consent_contract(chain).functions.grant(
        registered_patient.address, doctor_with_key.address, 1, later, 1, expires, bytes(32)
    )
    chain.transact("granting", registered_patient, raw)
    (state,) = consent.consents_of(chain, registered_patient.address)
    resource = valid(consent.consent_resource(chain, state))
    assert resource["provision"]["class"] == [
        {"system": "urn:medledger:category", "code": "unknown"}
    ]


# --- ids -------------------------------------------------------------------------------------


def test_the_id_is_the_keccak_of_chain_manager_patient_grantee_and_scope_key(
    chain, record, give, doctor_with_key, registered_patient
):
    state = give(doctor_with_key, LAB)
    scope_key = keccak(encode(["uint8", "bytes32"], [1, int(Category.LAB).to_bytes(32, "big")]))
    expected = keccak(encode(
        ["uint256", "address", "address", "address", "bytes32"],
        [chain.chain_id, consent.consent_contract(chain).address, registered_patient.address,
         doctor_with_key.address, scope_key],
    )).hex()  # fmt: skip
    resource = consent.consent_resource(chain, state)
    assert consent.consent_id(chain, state) == resource["id"] == expected
    assert len(expected) == 64


def test_every_consent_is_found_again_by_its_id(
    chain, record, give, doctor_with_key, insurer, registered_patient
):
    given = [give(doctor_with_key), give(doctor_with_key, LAB), give(insurer, LAB)]
    for state in given:
        found = consent.find_consent(chain, consent.consent_id(chain, state))
        assert (found.patient, found.grantee, found.scope) == (
            registered_patient.address, state.grantee, state.scope
        )  # fmt: skip
        assert found.live(chain.now())
    ids = {consent.consent_id(chain, s) for s in given}
    assert len(ids) == 3


def test_the_id_stays_the_same_when_a_grant_is_revoked_and_given_again(
    chain, record, give, doctor_with_key, registered_patient
):
    first = consent.consent_id(chain, give(doctor_with_key))
    consent.revoke(chain, registered_patient, registered_patient.address,
                   doctor_with_key.address, ALL)  # fmt: skip
    assert consent.find_consent(chain, first).revoked_at is not None
    again = give(doctor_with_key)
    assert consent.consent_id(chain, again) == first
    assert consent.find_consent(chain, first).live(chain.now())


@pytest.mark.parametrize(
    "consent_id", ["ab" * 32, "not-a-consent", "AB" * 33, "../Consent", ""],
    ids=["unknown", "not-hex", "too-long", "path", "empty"],
)  # fmt: skip
def test_an_id_no_grant_has_is_consent_not_found(chain, record, give, doctor_with_key, consent_id):
    give(doctor_with_key)
    with pytest.raises(ConsentNotFound, match="no Consent"):
        consent.find_consent(chain, consent_id)


def test_a_grant_in_blocks_a_reorg_replaced_is_no_longer_found(chain, record, give, insurer):
    snapshot = chain.request("evm_snapshot", [])
    gone = consent.consent_id(chain, give(insurer))
    consent.find_consent(chain, gone)  # the id is in the index's table now
    assert chain.request("evm_revert", [snapshot]) is True
    chain.request("evm_mine", [])
    with pytest.raises(ConsentNotFound):
        consent.find_consent(chain, gone)


# --- search ----------------------------------------------------------------------------------


def test_search_by_patient_actor_and_status(
    chain, store, record, give, doctor_with_key, insurer, registered_patient
):
    other = dev_account(12)  # a second patient grants the same insurer
    providers.register_patient(chain, other)
    consent.grant(chain, store, other, other.address, insurer.address, ALL,
                  consent.Purpose.PAYMENT, MONTH)  # fmt: skip
    give(doctor_with_key)
    give(insurer, LAB)
    consent.revoke(chain, registered_patient, registered_patient.address,
                   doctor_with_key.address, ALL)  # fmt: skip

    def found(**query) -> list[tuple[str, str, str]]:
        return [(s.patient, s.grantee, s.scope.label) for s in consent.consents_of(chain, **query)]

    me, doc, ins = registered_patient.address, doctor_with_key.address, insurer.address
    assert found(patient=me) == [(me, doc, "all"), (me, ins, "category:lab")]
    assert found(grantee=ins) == [(other.address, ins, "all"), (me, ins, "category:lab")]
    assert found(patient=me, grantee=ins) == [(me, ins, "category:lab")]
    assert found(patient=me, status="active") == [(me, ins, "category:lab")]
    assert found(patient=me, status="inactive") == [(me, doc, "all")]


def test_search_states_read_from_events_are_what_the_contract_answers(
    chain, record, give, doctor_with_key, insurer, registered_patient
):
    me = registered_patient.address
    give(doctor_with_key)  # given, revoked, given again with other terms, then expired
    consent.revoke(chain, registered_patient, me, doctor_with_key.address, ALL)
    give(doctor_with_key, purpose=consent.Purpose.RESEARCH, expires=timedelta(hours=1))
    give(insurer, LAB)  # revoked for good
    consent.revoke(chain, registered_patient, me, insurer.address, LAB)
    give(insurer, purpose=consent.Purpose.PAYMENT)  # live
    advance(chain, 2 * 3600)
    found = consent.consents_of(chain, me)
    assert [s.status(chain.now()) for s in found] == ["expired", "revoked", "active"]
    assert found == [consent.grant_state(chain, me, s.grantee, s.scope) for s in found]


@pytest.mark.parametrize(
    ("query", "message"),
    [({}, "name a patient or an actor"), ({"patient": "0x1234"}, "not a valid address"),
     ({"patient": dev_account(5).address, "status": "draft"}, "not active or inactive")],
    ids=["nothing-named", "bad-address", "bad-status"],
)  # fmt: skip
def test_a_search_it_cannot_answer_is_one_clear_error(chain, query, message):
    with pytest.raises((ConfigurationError, InvalidAddress), match=message):
        consent.consents_of(chain, **query)


# --- creating from the patient's signature ---------------------------------------------------


@pytest.fixture
def proposed(chain, store, record, doctor_with_key, registered_patient) -> dict:
    """A proposed Consent: the patient signed a lab grant to the doctor for research."""
    return consent.signed_consent(
        chain, store, registered_patient, registered_patient.address, doctor_with_key.address,
        LAB, consent.Purpose.RESEARCH, MONTH,
    )  # fmt: skip


def test_a_signed_consent_is_a_valid_proposed_consent_carrying_the_signed_grant(
    chain, proposed, doctor_with_key, registered_patient
):
    valid(proposed)
    assert proposed["status"] == "proposed" and "id" not in proposed
    document = json.loads(base64.b64decode(extension(proposed, SIGNED_GRANT)))
    assert document["kind"] == consent.SIGNED_GRANT_KIND
    assert document["request"]["patient"] == registered_patient.address
    assert document["request"]["grantee"] == actor_value(proposed) == doctor_with_key.address
    assert proposed["provision"]["period"] == {"end": _end(document["request"]["expiresAt"])}


def _end(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def test_an_institution_submits_a_proposed_consent_and_the_grant_is_live(
    chain, store, record, proposed, doctor_with_key, writer
):
    state = consent.submit_consent(chain, store, writer, copy.deepcopy(proposed))
    assert state.live(chain.now()) and state.scope == LAB
    assert state.purpose is consent.Purpose.RESEARCH
    assert consent.read(chain, store, doctor_with_key, record.id, log=False) == body("a")
    granted = valid(consent.consent_resource(chain, state))
    assert granted["status"] == "active"
    for element in ("patient", "category", "scope"):
        assert granted[element] == proposed[element]
    stated = {k: v for k, v in proposed["provision"].items() if k != "period"}
    assert {k: v for k, v in granted["provision"].items() if k != "period"} == stated
    assert granted["provision"]["period"]["end"] == proposed["provision"]["period"]["end"]


def _tamper(resource: dict, change: str, chain, record) -> None:
    """Change one stated term of a proposed Consent (the signature is left as it was)."""
    provision = resource["provision"]
    if change == "patient":
        resource["patient"] = {"reference": f"Patient/{dev_account(12).address}"}
    elif change == "grantee":
        provision["actor"][0]["reference"]["identifier"]["value"] = dev_account(11).address
    elif change == "scope-all":
        del provision["class"]
    elif change == "scope-record":
        del provision["class"]
        provision["data"] = [{"meaning": "instance", "reference": {
            "identifier": {"system": "urn:ietf:rfc:3986", "value": record.uri}}}]  # fmt: skip
    elif change == "scope-category":
        provision["class"] = [{"system": "urn:medledger:category", "code": "vitals"},
                              {"system": "http://hl7.org/fhir/resource-types",
                               "code": "Observation"}]  # fmt: skip
    elif change == "purpose":
        provision["purpose"][0]["code"] = "TREAT"
    elif change == "end":
        provision["period"]["end"] = "2099-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("change", "named"),
    [("patient", "patient"), ("grantee", "grantee"), ("scope-all", "scope is all"),
     ("scope-record", "scope is record:"), ("scope-category", "scope is category:vitals"),
     ("purpose", "purpose is treatment"), ("end", "provision.period.end is 2099")],
)  # fmt: skip
def test_a_consent_stating_other_terms_than_signed_is_refused_and_nothing_sent(
    chain, store, record, proposed, writer, change, named
):
    _tamper(proposed, change, chain, record)
    head = chain.w3.eth.block_number
    with pytest.raises(ConsentMismatch, match=f"its {named}.*nothing was sent"):
        consent.submit_consent(chain, store, writer, proposed)
    assert chain.w3.eth.block_number == head


@pytest.mark.parametrize(
    ("change", "message"),
    [("not-consent", "not a Consent"), ("draft", "status 'draft'"),
     ("no-signature", "no urn:medledger:signed-grant"), ("not-base64", "is not base64"),
     ("not-a-grant", "not a MedLedger signed grant"),
     ("two-actors", "does not name one grantee"), ("no-period", "period.end None"),
     ("category-types-cut", "exactly the resource types of category lab"),
     ("unknown-category", "not a MedLedger signed grant"),
     ("nested-deny", "provision.provision is not a term"),
     ("data-period", "provision.dataPeriod is not a term"),
     ("modifier-extension", "modifierExtension is not a term"),
     ("action-disclose", "provision.action is not access")],
)  # fmt: skip
def test_a_malformed_consent_is_refused_in_one_line_and_nothing_sent(
    chain, store, proposed, writer, change, message
):
    if change == "not-consent":
        proposed["resourceType"] = "Patient"
    elif change == "draft":
        proposed["status"] = "draft"
    elif change == "no-signature":
        proposed["extension"] = []
    elif change == "not-base64":
        proposed["extension"][0]["valueBase64Binary"] = "%%%"
    elif change == "not-a-grant":
        proposed["extension"][0]["valueBase64Binary"] = base64.b64encode(b'{"a":1}').decode()
    elif change == "two-actors":
        proposed["provision"]["actor"] *= 2
    elif change == "no-period":
        del proposed["provision"]["period"]
    elif change == "category-types-cut":
        proposed["provision"]["class"] = proposed["provision"]["class"][:2]
    elif change == "nested-deny":  # "except Observation": the chain's grant would not say it
        proposed["provision"]["provision"] = [{"type": "deny", "class": [
            {"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]}]  # fmt: skip
    elif change == "data-period":
        proposed["provision"]["dataPeriod"] = {"start": "2020-01-01"}
    elif change == "modifier-extension":
        proposed["modifierExtension"] = [{"url": "urn:x", "valueBoolean": True}]
    elif change == "action-disclose":
        proposed["provision"]["action"][0]["coding"][0]["code"] = "disclose"
    elif change == "unknown-category":  # signed for a category a later version may add
        document = json.loads(base64.b64decode(extension(proposed, SIGNED_GRANT)))
        document["request"]["scope"] = "0x" + (99).to_bytes(32, "big").hex()
        packed = base64.b64encode(json.dumps(document).encode()).decode()
        proposed["extension"][0]["valueBase64Binary"] = packed
    head = chain.w3.eth.block_number
    with pytest.raises((FhirStructureError, ConfigurationError), match=message) as caught:
        consent.submit_consent(chain, store, writer, proposed)
    assert "\n" not in str(caught.value)
    assert chain.w3.eth.block_number == head


def test_a_proposed_consent_past_its_signatures_deadline_is_refused_before_sending(
    chain, store, record, doctor_with_key, registered_patient, writer
):
    proposed = consent.signed_consent(
        chain, store, registered_patient, registered_patient.address, doctor_with_key.address,
        ALL, consent.Purpose.TREATMENT, MONTH, valid_for=timedelta(hours=1),
    )  # fmt: skip
    advance(chain, 2 * 3600)
    head = chain.w3.eth.block_number
    with pytest.raises(PreconditionFailed, match="signed grant expired"):
        consent.submit_consent(chain, store, writer, proposed)
    assert chain.w3.eth.block_number == head


# --- revoking by the patient's signature -----------------------------------------------------


def _header(document: dict) -> str:
    packed = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode()


@pytest.mark.parametrize("other", ["grantee", "patient", "scope"])
def test_a_signed_revocation_of_another_grant_is_refused_and_nothing_sent(
    chain, record, give, doctor_with_key, insurer, registered_patient, writer, other
):
    """Checked before h-relay's submit_signed_revocation is called: the document is built by
    hand in the shape of a signed grant (request: patient, grantee, scopeKind, scope)."""
    target = consent.consent_id(chain, give(doctor_with_key))
    request = {
        "patient": registered_patient.address, "grantee": doctor_with_key.address,
        "scopeKind": 2, "scope": "0x" + "00" * 32, "nonce": 0, "deadline": 2**40,
    }  # fmt: skip
    if other == "grantee":
        request["grantee"] = insurer.address
    elif other == "patient":
        request["patient"] = dev_account(12).address
    else:
        request |= {"scopeKind": 1, "scope": "0x" + int(Category.LAB).to_bytes(32, "big").hex()}
    document = {"kind": "medledger/signed-revocation", "request": request, "signature": "0x00"}
    head = chain.w3.eth.block_number
    with pytest.raises(ConsentMismatch, match=f"revocation is for {other}"):
        consent.revoke_consent(chain, writer, target, _header(document))
    assert chain.w3.eth.block_number == head


@pytest.mark.parametrize("signed", ["%%%", _header({"kind": "x"}), "bm90IGpzb24"],
                         ids=["not-base64url", "no-request", "not-json"])  # fmt: skip
def test_a_malformed_revocation_header_is_one_clear_error(
    chain, record, give, doctor_with_key, writer, signed
):
    target = consent.consent_id(chain, give(doctor_with_key))
    with pytest.raises(ConfigurationError, match=consent.REVOCATION_HEADER):
        consent.revoke_consent(chain, writer, target, signed)


def test_revoking_an_unknown_consent_is_consent_not_found(chain, record, writer):
    with pytest.raises(ConsentNotFound):
        consent.revoke_consent(chain, writer, "ab" * 32, _header({"request": {}}))


def test_the_patient_revokes_through_the_gateway_and_the_consent_turns_inactive(
    chain, store, record, give, doctor_with_key, registered_patient, writer
):
    target = consent.consent_id(chain, give(doctor_with_key))
    signed = consent.revocation_for(chain, registered_patient, target)
    state = consent.revoke_consent(chain, writer, target, signed)
    assert state.revoked_at is not None
    resource = valid(consent.consent_resource(chain, consent.find_consent(chain, target)))
    assert resource["status"] == "inactive"
    assert extension(resource, "urn:medledger:fhir:grant-status") == "revoked"
    with pytest.raises(Exception, match="revoked"):
        consent.read(chain, store, doctor_with_key, record.id, log=False)


def test_a_revocation_signed_for_one_consent_is_refused_for_another(
    chain, record, give, doctor_with_key, insurer, registered_patient, writer
):
    first = consent.consent_id(chain, give(doctor_with_key))
    second = consent.consent_id(chain, give(insurer))
    signed = consent.revocation_for(chain, registered_patient, first)
    head = chain.w3.eth.block_number
    with pytest.raises(ConsentMismatch):
        consent.revoke_consent(chain, writer, second, signed)
    assert chain.w3.eth.block_number == head


class _DeleteRecorder(LoopbackServer):
    """A stand-in for the gateway's ``DELETE /Consent/<id>`` (FHIR R4 delete interaction,
    https://hl7.org/fhir/R4/http.html#delete): it records the path and headers of each DELETE
    and answers 204 No Content, to show what a client library actually sends."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_DELETE(self) -> None:
                recorder.seen.append((self.path, dict(self.headers.items())))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._serve(Handler)


def test_smart_fhirclient_sends_the_revocation_header_with_its_delete(
    chain, record, give, doctor_with_key
):
    """SMART's Python fhirclient (4.4.0) deletes with a fixed set of headers; what it adds from
    its requests session reaches the server intact, so the revocation travels in a header (a
    signed revocation of realistic size: a compact JSON request and a 65-byte signature)."""
    from fhirclient.models.consent import Consent as ClientConsent
    from fhirclient.server import FHIRServer

    target = consent.consent_id(chain, give(doctor_with_key))
    signed = _header({
        "kind": "medledger/signed-revocation", "chain_id": chain.chain_id,
        "consent_manager": consent.consent_contract(chain).address,
        "request": {"patient": dev_account(5).address, "grantee": doctor_with_key.address,
                    "scopeKind": 2, "scope": "0x" + "00" * 32, "nonce": 7, "deadline": 2**40},
        "signature": "0x" + "ab" * 65,
    })  # fmt: skip
    recorder = _DeleteRecorder()
    try:
        server = FHIRServer(None, base_uri=recorder.url + "/fhir/")
        server.session.headers[consent.REVOCATION_HEADER] = signed
        assert ClientConsent({"id": target}, strict=False).delete(server) is None
    finally:
        recorder.stop()
    ((path, headers),) = recorder.seen
    assert path == f"/fhir/Consent/{target}"
    assert headers[consent.REVOCATION_HEADER] == signed


# --- the CLI -------------------------------------------------------------------------------


def test_cli_writes_a_proposed_consent_that_a_relayer_submits(
    medledger, chain, registered_patient, doctor_with_key, tmp_path
):
    proposed = tmp_path / "consent.json"
    made = medledger("grant", doctor_with_key.address, "--scope", "category:lab", "--purpose",
                     "research", "--sign-only", "--fhir", "--out", str(proposed),
                     "--account", "dev:5")  # fmt: skip
    assert made.exit_code == 0, made.stderr
    resource = valid(json.loads(proposed.read_text()))
    assert resource["status"] == "proposed"
    assert consent.consents_of(chain, registered_patient.address) == []  # nothing sent yet

    sent = medledger("grant", "--submit", str(proposed), "--account", "dev:8", "--json")
    assert sent.exit_code == 0, sent.stderr
    (state,) = consent.consents_of(chain, registered_patient.address, status="active")
    assert (state.grantee, state.scope, state.purpose) == (
        doctor_with_key.address, LAB, consent.Purpose.RESEARCH
    )  # fmt: skip


def test_cli_refuses_a_consent_whose_terms_were_changed_in_one_line(
    medledger, chain, registered_patient, doctor_with_key, tmp_path
):
    proposed = tmp_path / "consent.json"
    medledger("grant", doctor_with_key.address, "--sign-only", "--fhir", "--out", str(proposed),
              "--account", "dev:5")  # fmt: skip
    resource = json.loads(proposed.read_text())
    resource["provision"]["purpose"][0]["code"] = "HPAYMT"
    proposed.write_text(json.dumps(resource))
    sent = medledger("grant", "--submit", str(proposed), "--account", "dev:8")
    assert sent.exit_code == 1 and sent.stdout == ""
    (line,) = sent.stderr.strip().splitlines()
    assert line.startswith(
        "error: Consent: its purpose is payment, but the patient signed treatment"
    )


def test_cli_fhir_without_sign_only_is_one_clear_error(medledger, doctor_with_key):
    out = medledger("grant", doctor_with_key.address, "--fhir", "--account", "dev:5")
    assert out.exit_code == 1
    assert out.stderr.strip() == (
        "error: --fhir: goes with --sign-only (it writes a proposed Consent)"
    )
