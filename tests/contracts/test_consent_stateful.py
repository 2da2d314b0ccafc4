"""Stateful test of the ConsentManager against a Python model, with hostile actors.

Hypothesis grants (by the patient, by a delegate, or signed by either and relayed), revokes,
cancels signatures, advances time, names and drops the delegate (in the ProviderRegistry),
erases records, delivers keys, opens and closes emergency access, suspends and reinstates the
emergency service, removes and re-hires its paramedic, and lets hostile actors (a stranger, an
insurer and a hospital without a care relationship) try to grant, sign, revoke, cancel,
deliver keys, open and close, in random order. Every step checks the exact events, or the
exact custom error, that the model predicts; a rejected move is checked with
``support.call_reverts`` (an ``eth_call`` of the same transaction: it changes no state either
way, and skips the call trace Ape fetches for every reverted transaction).

After every step the invariants check that:

* ``hasAccess``, ``hasAccessFor(TREATMENT)`` and ``hasAccessFor(EMERGENCY)`` match the model
  for every reader (hostile ones included) and record;
* nobody but the record's patient, its live grantees and the accounts of a live, verified
  emergency service passes ``hasAccess``, and a hostile actor never does;
* every grant (``getGrant``) and the emergency opening (``emergencyOf``) is exactly what the
  model says: only the patient's and the delegate's moves change a grant, only the service's
  opening and the patient's (or delegate's) closing change the opening;
* every change of access is an event: an auditor who knows only the starting world and reads
  only the two contracts' logs predicts the same access as the chain, and the logs hold
  exactly the events the model counted (no more, no fewer);
* a grant gives no access after revocation or expiry, and an erased record gives nobody
  access.

Time moves in whole hours (and weeks) and grants and openings last whole hours, so that the
model's "is it live" and "is the cooldown over", judged at the head block, agree with what a
transaction sees one second later (eth-tester) or in the same second (Anvil): an expiry or
cooldown end is either at or before the head, or about an hour after it.

Each example runs between a chain snapshot and its restore, so examples start from the same
chain.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from eth_abi import decode, encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from .support import Category, Kind, assert_events, call_reverts
from .test_consent_manager import (
    ALL_KEY,
    EMERGENCY_COOLDOWN,
    ENVELOPE,
    HOUR,
    ZERO32,
    Purpose,
    ScopeKind,
    as_scope,
    scope_key,
    typed_grant,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

    from .conftest import Anchored

REASON = "unconscious"
HOSTILE_MOVES = [
    "grant",
    "signed-grant",
    "revoke",
    "cancel-signatures",
    "deliver-keys",
    "close-emergency",
    "open-emergency",
    "erase",
]
SUSPENSION = b"licence-lapsed".ljust(32, b"\0")


def examples(chain: Any) -> int:
    """12 examples on Anvil (about 30 s: the views are read in one JSON-RPC batch per block);
    2 on eth-tester (about 2 minutes: py-evm spends 15-30 ms on each of the ~160 view calls of
    an observation, made one by one). ``CONSENT_STATEFUL_EXAMPLES`` overrides both."""
    if override := os.environ.get("CONSENT_STATEFUL_EXAMPLES"):
        return int(override)
    return 12 if chain.provider.name == "foundry" else 2


@dataclass
class ModelGrant:
    granted_at: int
    expires_at: int
    purpose: Purpose
    revoked_at: int = 0

    def live(self, now: int) -> bool:
        return self.revoked_at == 0 and self.expires_at > now

    def stored(self) -> tuple[int, int, int, int]:
        """As ``getGrant`` returns it."""
        return (self.granted_at, self.expires_at, self.revoked_at, int(self.purpose))


@dataclass
class Opening:
    opened_at: int
    expires_at: int
    round: int
    closed_at: int = 0

    def live(self, now: int) -> bool:
        return self.closed_at == 0 and self.expires_at > now

    @property
    def cooldown_until(self) -> int:
        return (self.closed_at or self.expires_at) + EMERGENCY_COOLDOWN


@dataclass
class Model:
    """What the two contracts should hold for ``patient``."""

    now: int
    grants: dict[tuple[str, bytes], ModelGrant] = field(default_factory=dict)
    delegate: bool = False
    erased: set[bytes] = field(default_factory=set)
    nonce: int = 0
    opening: Opening | None = None
    ems_round: int = 0  # the service's approval round: a suspension or reinstatement bumps it
    ems_verified: bool = True
    paramedic_employed: bool = True
    events: Counter[tuple[str, str]] = field(default_factory=Counter)

    def live(self, grantee: str, key: bytes) -> bool:
        stored = self.grants.get((grantee, bytes(key)))
        return stored is not None and stored.live(self.now)


@dataclass(frozen=True)
class Record:
    id: HexBytes
    patient: str
    category: int

    @property
    def covering_keys(self) -> list[bytes]:
        """The three scope keys whose grants cover this record."""
        return [
            bytes(scope_key(ScopeKind.RECORD, self.id)),
            bytes(scope_key(ScopeKind.CATEGORY, as_scope(self.category))),
            bytes(ALL_KEY),
        ]


@dataclass
class Observed:
    """The views at one block: access by purpose (``None``: ``hasAccess``) and pair, grants by
    ``(patient, grantee, scopeKey)`` and openings of ``patient`` by institution."""

    access: dict[Purpose | None, dict[tuple[str, bytes], bool]]
    grants: dict[tuple[str, str, bytes], tuple[int, ...]] = field(default_factory=dict)
    emergencies: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass
class Auditor:
    """Access as an auditor derives it from the logs alone, starting from the known world."""

    patient: str
    employer: dict[str, str]
    verified: set[str]
    grants: dict[tuple[str, bytes], tuple[int, Purpose, bool]] = field(default_factory=dict)
    openings: dict[str, tuple[int, bool]] = field(default_factory=dict)
    erased: set[bytes] = field(default_factory=set)

    def read(self, name: str, args: dict[str, Any]) -> None:
        if name == "AccessGranted":
            key = (args["grantee"], bytes(args["scopeKey"]))
            self.grants[key] = (args["expiresAt"], Purpose(args["purpose"]), False)
        elif name == "AccessRevoked":
            key = (args["grantee"], bytes(args["scopeKey"]))
            expires, purpose, _ = self.grants[key]
            self.grants[key] = (expires, purpose, True)
        elif name == "EmergencyAccessOpened":
            self.openings[args["institution"]] = (args["expiresAt"], False)
        elif name == "EmergencyAccessClosed":
            self.openings[args["institution"]] = (self.openings[args["institution"]][0], True)
        elif name == "RecordErased":
            self.erased.add(bytes(args["id"]))
        elif name == "InstitutionSuspended":
            self.verified.discard(args["institution"])
            # A suspension ends the service's opening for good (a reinstatement starts a new
            # round, in which the old opening no longer counts).
            if args["institution"] in self.openings:
                expires, _closed = self.openings[args["institution"]]
                self.openings[args["institution"]] = (expires, True)
        elif name in ("InstitutionReinstated", "InstitutionVerified"):
            self.verified.add(args["institution"])
        elif name == "PractitionerAdded":
            self.employer[args["practitioner"]] = args["institution"]
        elif name == "PractitionerRemoved" and (
            self.employer.get(args["practitioner"]) == args["institution"]
        ):
            del self.employer[args["practitioner"]]  # not for a withdrawn invitation

    def allows(self, reader: str, record: Record, purpose: Purpose | None, now: int) -> bool:
        if bytes(record.id) in self.erased:
            return False
        if reader == record.patient:
            return purpose is None
        if record.patient != self.patient:
            return False  # in this world, only the patient's consent is ever given
        for key in record.covering_keys:
            expires, granted_for, revoked = self.grants.get((reader, key), (0, Purpose.NONE, True))
            if not revoked and expires > now and purpose in (None, granted_for):
                return True
        institution = self.employer.get(reader, reader)
        expires, closed = self.openings.get(institution, (0, True))
        live = institution in self.verified and not closed and expires > now
        return live and purpose in (None, Purpose.EMERGENCY)


@pytest.fixture(scope="module")
def consent_manager(project: Any, provider_registry: Any, record_registry: Any, admin: Any) -> Any:
    """The ConsentManager on the session's registries."""
    return project.ConsentManager.deploy(provider_registry, record_registry, sender=admin)


def funded(accounts: Any, admin: AccountAPI) -> AccountAPI:
    account = accounts.generate_test_account()
    admin.transfer(account, 10**20)
    return account


@pytest.fixture(scope="module")
def ems(accounts: Any, admin: AccountAPI) -> AccountAPI:
    return funded(accounts, admin)


@pytest.fixture(scope="module")
def paramedic(accounts: Any, admin: AccountAPI) -> AccountAPI:
    return funded(accounts, admin)


@pytest.fixture(scope="module")
def guardian(accounts: Any, admin: AccountAPI) -> AccountAPI:
    return funded(accounts, admin)


@pytest.fixture(scope="module")
def insurer(accounts: Any, admin: AccountAPI) -> AccountAPI:
    return funded(accounts, admin)


@pytest.fixture(scope="module")
def outsider(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """Made a verified hospital with no care relationship with anybody."""
    return funded(accounts, admin)


@pytest.fixture(scope="module", autouse=True)
def world(
    consent_manager: Any,
    ems: AccountAPI,
    paramedic: AccountAPI,
    guardian: AccountAPI,
    insurer: AccountAPI,
    outsider: AccountAPI,
) -> None:
    """Sets up every module fixture before the test (see conftest's note on isolation)."""


def test_access_follows_the_consent_model_whatever_hostile_actors_try(
    chain: Any,
    consent_manager: Any,
    provider_registry: Any,
    registrars: list[AccountAPI],
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    guardian: AccountAPI,
    insurer: AccountAPI,
    outsider: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    suspend: Callable[..., Any],
    approve: Callable[..., Any],
    create_record: Callable[..., Anchored],
    advance_time: Callable[[int], int],
    isolated: Callable[[], Any],
) -> None:
    # Rolled back by Ape after the test, kept across examples.
    register_patient(patient)
    register_patient(other_patient)
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.EMERGENCY_SERVICE, account=ems)
    verified_institution(Kind.INSURER, account=insurer)
    verified_institution(Kind.HOSPITAL, account=outsider)
    add_practitioner(hospital, doctor)
    add_practitioner(ems, paramedic)
    anchored = [  # the hospital opens a care relationship with each patient to write these
        create_record(hospital, patient, category=Category.LAB),
        create_record(hospital, patient, category=Category.LAB),
        create_record(hospital, patient, category=Category.IMAGING),
        create_record(hospital, other_patient, category=Category.LAB),
    ]
    records = [Record(a.id, a.patient, a.category) for a in anchored]
    own_records = records[:3]

    consent = consent_manager
    registry = provider_registry
    grantees = [hospital, doctor, ems, paramedic]
    hostiles = [stranger, insurer, outsider]
    readers = [patient, other_patient, hospital, doctor, ems, paramedic, guardian, *hostiles]
    key_holders = [patient, guardian, hospital, doctor]  # the guardian only while named
    scopes = [(ScopeKind.RECORD, r.id) for r in own_records] + [
        (ScopeKind.CATEGORY, as_scope(Category.LAB)),
        (ScopeKind.CATEGORY, as_scope(Category.IMAGING)),
        (ScopeKind.ALL, ZERO32),
    ]
    scope_keys = [bytes(scope_key(kind, value)) for kind, value in scopes]
    purposes = [Purpose.TREATMENT, Purpose.RESEARCH]
    hours = st.sampled_from([1, 2, 24])
    picks = st.integers(0, 2**16)
    by_address = {g.address: g for g in grantees}
    scope_of = {bytes(scope_key(kind, value)): (kind, value) for kind, value in scopes}
    institutions = [ems, hospital, insurer, outsider, paramedic]  # emergencyOf is per service

    # The invariants read every view (about 160 calls) once per block. A call through Ape
    # costs 10-15 ms, a bare JSON-RPC eth_call about 5 ms on Anvil; so the calls are encoded
    # once and sent in one JSON-RPC batch where the provider takes one (Anvil over HTTP).
    # Ape's own path is covered in test_consent_manager.py.
    rpc = chain.provider.web3.provider
    batch = getattr(rpc, "make_batch_request", None)

    def encoded_call(signature: str, args: list[Any]) -> dict[str, str]:
        types = signature[signature.index("(") + 1 : -1].split(",")
        data = keccak(text=signature)[:4] + encode(types, args)
        return {"from": stranger.address, "to": consent.address, "data": HexBytes(data).to_0x_hex()}

    def eth_calls(requests: list[dict[str, str]]) -> list[HexBytes]:
        """The results of ``eth_call``s at the head, in order."""
        calls = [("eth_call", [request, "latest"]) for request in requests]
        if batch is not None:
            responses = batch(calls)
            assert isinstance(responses, list), responses  # a list unless the batch failed
        else:
            responses = [rpc.make_request(method, params) for method, params in calls]
        for response in responses:
            assert "error" not in response, response
        return [HexBytes(response["result"]) for response in responses]

    def as_int(value: Any) -> int:
        return int(value, 16) if isinstance(value, str) else int(value)

    pairs = [(reader.address, bytes(r.id)) for reader in readers for r in records]
    access_calls = {
        None: {(a, i): encoded_call("hasAccess(address,bytes32)", [a, i]) for a, i in pairs},
    } | {
        purpose: {
            (a, i): encoded_call("hasAccessFor(address,bytes32,uint8)", [a, i, int(purpose)])
            for a, i in pairs
        }
        for purpose in (Purpose.TREATMENT, Purpose.EMERGENCY)
    }
    # Every slot a move could write, the hostile actors' (never granted) and the other
    # patient's (who never grants here).
    grant_slots = [
        *((patient.address, g.address, k) for g in grantees for k in scope_keys),
        *((patient.address, h.address, bytes(ALL_KEY)) for h in (*hostiles, guardian)),
        *((other_patient.address, g.address, bytes(ALL_KEY)) for g in grantees),
    ]
    get_grant_calls = {
        slot: encoded_call("getGrant(address,address,bytes32)", list(slot)) for slot in grant_slots
    }
    emergency_calls = {
        i.address: encoded_call("emergencyOf(address,address)", [patient.address, i.address])
        for i in institutions
    }
    all_calls: list[tuple[str, Any, dict[str, str], list[str]]] = [
        *(
            ("access", (purpose, pair), call, ["bool"])
            for purpose, calls in access_calls.items()
            for pair, call in calls.items()
        ),
        *(
            ("grant", s, c, ["uint40", "uint40", "uint40", "uint8"])
            for s, c in get_grant_calls.items()
        ),
        *(
            ("emergency", i, c, ["uint40", "uint40", "uint40", "uint32"])
            for i, c in emergency_calls.items()
        ),
    ]
    contracts = {consent.address: ("consent", consent), registry.address: ("registry", registry)}
    topics = {  # both contracts have a SignaturesCancelled of the same signature
        (address, HexBytes(keccak(text=abi.selector))): (label, abi)
        for address, (label, contract) in contracts.items()
        for abi in contract.contract_type.events
    }

    def decode_log(log: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        label, abi = topics[(to_checksum_address(log["address"]), HexBytes(log["topics"][0]))]
        indexed = [i for i in abi.inputs if i.indexed]
        plain = [i for i in abi.inputs if not i.indexed]
        args = {
            i.name: decode([i.canonical_type], HexBytes(t))[0]
            for i, t in zip(indexed, log["topics"][1:], strict=True)
        }
        values = decode([i.canonical_type for i in plain], HexBytes(log["data"]))
        args |= dict(zip([i.name for i in plain], values, strict=True))
        args = {k: to_checksum_address(v) if _is_address(abi, k) else v for k, v in args.items()}
        return label, abi.name, args

    def block_time(receipt: Any) -> int:
        return int(chain.blocks[receipt.block_number].timestamp)

    def head_time() -> int:
        return int(chain.blocks.head.timestamp)

    def head_number() -> int:
        return as_int(rpc.make_request("eth_blockNumber", [])["result"])

    class ConsentWorld(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._isolation = isolated()
            self._isolation.__enter__()
            self.model = Model(now=head_time(), ems_round=int(registry.participant(ems).round))
            self.auditor = Auditor(
                patient=patient.address,
                employer={doctor.address: hospital.address, paramedic.address: ems.address},
                verified={hospital.address, ems.address, insurer.address, outsider.address},
            )
            self.logged: Counter[tuple[str, str]] = Counter()
            self._logs_from = head_number() + 1
            self._observed: Observed | None = None
            self._observed_at = -1

        def teardown(self) -> None:
            self._isolation.__exit__(None, None, None)

        # ------------------------------------------------------------ helpers

        def acts_for_patient(self, account: AccountAPI) -> bool:
            return account == patient or (account == guardian and self.model.delegate)

        def service_accounts(self) -> list[str]:
            """The accounts that act for the emergency service now."""
            if not self.model.ems_verified:
                return []
            return [ems.address] + ([paramedic.address] if self.model.paramedic_employed else [])

        def emergency_covers(self, reader: str) -> bool:
            """An opening gives access only in the round it was made in: a suspension ends it
            for good, even once the service is reinstated."""
            opening = self.model.opening
            live = opening is not None and opening.live(self.model.now)
            current = opening is not None and opening.round == self.model.ems_round
            return live and current and reader in self.service_accounts()

        def expect(self, receipt: Any, *events: Any) -> None:
            """The receipt emitted exactly ``events``; the model counts them."""
            assert_events(receipt, *events)
            for event in events:
                label = contracts[event.contract_address][0]
                self.model.events[(label, event.event_name)] += 1

        def observed(self) -> Observed:
            """What the chain says, read once per block (every view, in one batch), and the
            auditor's intake of the logs up to that block."""
            number = head_number()
            if self._observed is None or self._observed_at != number:
                self.model.now = head_time()
                self._observed_at = number
                seen = Observed(access={None: {}, Purpose.TREATMENT: {}, Purpose.EMERGENCY: {}})
                results = eth_calls([call for _, _, call, _ in all_calls])
                for (kind, key, _, types), result in zip(all_calls, results, strict=True):
                    values = decode(types, result)
                    if kind == "access":
                        purpose, pair = key
                        seen.access[purpose][pair] = values[0]
                    elif kind == "grant":
                        seen.grants[key] = values
                    else:
                        seen.emergencies[key] = values
                self._observed = seen
                self.read_logs(number)
            return self._observed

        def read_logs(self, head: int) -> None:
            if head < self._logs_from:
                return
            query = {"fromBlock": self._logs_from, "toBlock": head, "address": list(contracts)}
            for log in chain.provider.web3.eth.get_logs(query):  # formats the query per node
                label, name, args = decode_log(log)
                self.logged[(label, name)] += 1
                self.auditor.read(name, args)
            self._logs_from = head + 1

        def expected(self, reader: str, record_id: bytes, purpose: Purpose | None) -> bool:
            record = next(r for r in records if bytes(r.id) == record_id)
            if record_id in self.model.erased:
                return False
            if reader == record.patient:
                return purpose is None  # TREATMENT and EMERGENCY are not PATIENT_REQUEST
            if record.patient != patient.address:
                return False  # nobody is granted the other patient's records here
            for key in record.covering_keys:
                stored = self.model.grants.get((reader, key))
                live = stored is not None and stored.live(self.model.now)
                if live and purpose in (None, stored.purpose):
                    return True
            return purpose in (None, Purpose.EMERGENCY) and self.emergency_covers(reader)

        def refused(self, method: Any, *args: Any, sender: Any, error: Any, **inputs: Any) -> None:
            call_reverts(method, *args, sender=sender, error=error, **inputs)

        def slot(self, pick: int) -> tuple[AccountAPI, ScopeKind, HexBytes]:
            """``(grantee, kind, scope)``: two times in three a slot granted before (live or
            not), so that revocations and deliveries meet grants; else any slot."""
            known = sorted(self.model.grants)
            if known and pick % 3:
                grantee, key = known[pick // 3 % len(known)]
                kind, value = scope_of[key]
                return by_address[grantee], kind, value
            kind, value = scopes[pick % len(scopes)]
            return grantees[pick // len(scopes) % len(grantees)], kind, value

        def request(
            self,
            grantee: AccountAPI,
            scope: tuple[ScopeKind, HexBytes],
            purpose: Purpose,
            hours: int,
        ) -> dict[str, Any]:
            kind, value = scope
            return {
                "patient": patient.address,
                "grantee": grantee.address,
                "scopeKind": int(kind),
                "scope": value,
                "purpose": int(purpose),
                "expiresAt": head_time() + hours * HOUR,
                "envelopeDigest": ENVELOPE,
                "nonce": self.model.nonce,
                "deadline": head_time() + HOUR,
            }

        def signature(self, signer: AccountAPI, request: dict[str, Any]) -> bytes:
            signable = typed_grant(chain.chain_id, consent.address, request)
            return Account.sign_message(signable, signer.private_key).signature

        # ------------------------------------------------------------ the patient's moves
        # Made by the patient or by the guardian, who acts for the patient only while named.

        @rule(
            grantee=st.sampled_from(grantees),
            scope=st.sampled_from(scopes),
            purpose=st.sampled_from(purposes),
            hours=hours,
            by=st.sampled_from([patient, guardian]),
        )
        def grant(
            self,
            grantee: AccountAPI,
            scope: tuple[ScopeKind, HexBytes],
            purpose: Purpose,
            hours: int,
            by: AccountAPI,
        ) -> None:
            kind, value = scope
            expires = head_time() + hours * HOUR
            args = (patient, grantee, kind, value, purpose, expires, ENVELOPE)
            if not self.acts_for_patient(by):
                self.refused(
                    consent.grant,
                    *args,
                    sender=by,
                    error=consent.ConsentNotPatientOrDelegate,
                    caller=by,
                    patient=patient,
                )
                return
            tx = consent.grant(*args, sender=by)
            key = scope_key(kind, value)
            self.expect(
                tx,
                consent.AccessGranted(
                    patient=patient,
                    grantee=grantee,
                    scopeKey=key,
                    scopeKind=kind,
                    scope=value,
                    purpose=purpose,
                    expiresAt=expires,
                    envelopeDigest=ENVELOPE,
                    grantor=by,
                ),
            )
            self.model.grants[(grantee.address, bytes(key))] = ModelGrant(
                block_time(tx), expires, purpose
            )

        @rule(
            grantee=st.sampled_from(grantees),
            scope=st.sampled_from(scopes),
            purpose=st.sampled_from(purposes),
            hours=hours,
            signer=st.sampled_from([patient, guardian]),
            relayer=st.sampled_from([stranger, hospital, insurer]),
        )
        def signed_grant(
            self,
            grantee: AccountAPI,
            scope: tuple[ScopeKind, HexBytes],
            purpose: Purpose,
            hours: int,
            signer: AccountAPI,
            relayer: AccountAPI,
        ) -> None:
            kind, value = scope
            request = self.request(grantee, scope, purpose, hours)
            signature = self.signature(signer, request)
            if not self.acts_for_patient(signer):
                self.refused(
                    consent.grantWithSignature,
                    request,
                    signature,
                    sender=relayer,
                    error=consent.ConsentInvalidSignature,
                    signer=signer,
                    patient=patient,
                )
                return
            tx = consent.grantWithSignature(request, signature, sender=relayer)
            key = scope_key(kind, value)
            self.expect(
                tx,
                consent.AccessGranted(
                    patient=patient,
                    grantee=grantee,
                    scopeKey=key,
                    scopeKind=kind,
                    scope=value,
                    purpose=purpose,
                    expiresAt=request["expiresAt"],
                    envelopeDigest=ENVELOPE,
                    grantor=signer,
                ),
            )
            self.model.nonce += 1
            assert consent.nonces(patient) == self.model.nonce
            self.model.grants[(grantee.address, bytes(key))] = ModelGrant(
                block_time(tx), request["expiresAt"], purpose
            )

        @rule(by=st.sampled_from([patient, guardian]))
        def cancel_signatures(self, by: AccountAPI) -> None:
            """Cancels a grant the patient signed and has not seen submitted."""
            pending = self.request(hospital, (ScopeKind.ALL, ZERO32), Purpose.TREATMENT, 24)
            signature = self.signature(patient, pending)
            if not self.acts_for_patient(by):
                self.refused(
                    consent.cancelSignatures,
                    patient,
                    sender=by,
                    error=consent.ConsentNotPatientOrDelegate,
                    caller=by,
                    patient=patient,
                )
                return
            tx = consent.cancelSignatures(patient, sender=by)
            nonce = self.model.nonce
            self.expect(tx, consent.SignaturesCancelled(patient=patient, nonce=nonce, by=by))
            self.model.nonce += 1
            assert consent.nonces(patient) == self.model.nonce
            self.refused(
                consent.grantWithSignature,
                pending,
                signature,
                sender=stranger,
                error=consent.ConsentSignatureReplayed,
                patient=patient,
                nonce=nonce,
                expectedNonce=nonce + 1,
            )

        @rule(pick=picks, by=st.sampled_from([patient, guardian]))
        def revoke(self, pick: int, by: AccountAPI) -> None:
            grantee, kind, value = self.slot(pick)
            key = scope_key(kind, value)
            args = (patient, grantee, kind, value)
            if not self.acts_for_patient(by):
                self.refused(
                    consent.revoke,
                    *args,
                    sender=by,
                    error=consent.ConsentNotPatientOrDelegate,
                    caller=by,
                    patient=patient,
                )
                return
            self.model.now = head_time()
            if not self.model.live(grantee.address, key):
                self.refused(
                    consent.revoke,
                    *args,
                    sender=by,
                    error=consent.ConsentNotGranted,
                    patient=patient,
                    grantee=grantee,
                    scopeKey=key,
                )
                return
            tx = consent.revoke(*args, sender=by)
            self.expect(
                tx,
                consent.AccessRevoked(patient=patient, grantee=grantee, scopeKey=key, revoker=by),
            )
            self.model.grants[(grantee.address, bytes(key))].revoked_at = block_time(tx)

        @rule(
            pick=picks,
            deliverer=st.sampled_from(key_holders),
            to_service=st.booleans(),
        )
        def deliver_keys(self, pick: int, deliverer: AccountAPI, to_service: bool) -> None:
            """Delivers keys for a slot, or (``to_service``) for an emergency opening: scope All
            for an account of the service (or, wrongly, another scope of the same account)."""
            grantee, kind, value = self.slot(pick)
            if to_service:
                grantee = (ems, paramedic)[pick % 2]
                kind, value = (ScopeKind.ALL, ZERO32) if pick % 5 else scopes[pick % 3]
            key = scope_key(kind, value)
            args = (patient, grantee, kind, value, ENVELOPE)
            # The hospital and its doctor hold a live care relationship throughout.
            if not (self.acts_for_patient(deliverer) or deliverer in (hospital, doctor)):
                self.refused(
                    consent.deliverKeys,
                    *args,
                    sender=deliverer,
                    error=consent.ConsentNotKeyHolder,
                    caller=deliverer,
                    patient=patient,
                )
                return
            if kind == ScopeKind.RECORD and bytes(value) in self.model.erased:
                # The keys of an erased (crypto-shredded) record are delivered to nobody.
                self.refused(
                    consent.deliverKeys,
                    *args,
                    sender=deliverer,
                    error=consent.ConsentUnknownRecord,
                    id=value,
                )
                return
            self.model.now = head_time()
            through_opening = kind == ScopeKind.ALL and self.emergency_covers(grantee.address)
            if not (self.model.live(grantee.address, key) or through_opening):
                self.refused(
                    consent.deliverKeys,
                    *args,
                    sender=deliverer,
                    error=consent.ConsentNoLiveAccess,
                    patient=patient,
                    grantee=grantee,
                )
                return
            tx = consent.deliverKeys(*args, sender=deliverer)
            self.expect(
                tx,
                consent.KeysDelivered(
                    patient=patient,
                    grantee=grantee,
                    scopeKey=key,
                    envelopeDigest=ENVELOPE,
                    deliverer=deliverer,
                ),
            )

        @rule(allowed=st.booleans())
        def set_delegate(self, allowed: bool) -> None:
            tx = registry.setDelegate(guardian, allowed, sender=patient)
            self.expect(
                tx, registry.DelegateChanged(patient=patient, delegate=guardian, allowed=allowed)
            )
            self.model.delegate = allowed

        @precondition(lambda self: len(self.model.erased) < 2)  # keep something to read
        @rule(record=st.sampled_from(own_records), by=st.sampled_from([patient, guardian]))
        def erase(self, record: Record, by: AccountAPI) -> None:
            if not self.acts_for_patient(by):
                self.refused(
                    consent.eraseRecord,
                    record.id,
                    sender=by,
                    error=consent.ConsentNotPatientOrDelegate,
                    caller=by,
                    patient=patient,
                )
                return
            tx = consent.eraseRecord(record.id, sender=by)
            self.expect(tx, consent.RecordErased(id=record.id, patient=patient, by=by))
            self.model.erased.add(bytes(record.id))

        @rule(by=st.sampled_from([patient, guardian, ems, paramedic]))
        def close_emergency(self, by: AccountAPI) -> None:
            if not self.acts_for_patient(by):
                self.refused(
                    consent.closeEmergencyAccess,
                    patient,
                    ems,
                    sender=by,
                    error=consent.ConsentNotPatientOrDelegate,
                    caller=by,
                    patient=patient,
                )
                return
            opening = self.model.opening
            if opening is None or not opening.live(head_time()):  # the service verified or not
                self.refused(
                    consent.closeEmergencyAccess,
                    patient,
                    ems,
                    sender=by,
                    error=consent.ConsentNoEmergencyAccess,
                    patient=patient,
                    institution=ems,
                )
                return
            tx = consent.closeEmergencyAccess(patient, ems, sender=by)
            self.expect(tx, consent.EmergencyAccessClosed(patient=patient, institution=ems, by=by))
            opening.closed_at = block_time(tx)

        # ------------------------------------------------------------ the service's moves

        @initialize(opener=st.sampled_from([None, ems, paramedic]), hours=hours)
        def maybe_open_emergency_first(self, opener: AccountAPI | None, hours: int) -> None:
            """Two examples in three start with an opening (a rule among many is rare)."""
            if opener is not None:
                self.open_emergency(opener, hours)

        @rule(
            opener=st.sampled_from([ems, paramedic, ems, paramedic, hospital, doctor]), hours=hours
        )
        def open_emergency(self, opener: AccountAPI, hours: int) -> None:
            duration = hours * HOUR
            args = (patient, duration, REASON)
            if opener.address not in self.service_accounts():
                self.refused(
                    consent.openEmergencyAccess,
                    *args,
                    sender=opener,
                    error=consent.ConsentNotEmergencyService,
                    caller=opener,
                )
                return
            opening = self.model.opening
            if opening is not None and opening.cooldown_until > head_time():
                self.refused(
                    consent.openEmergencyAccess,
                    *args,
                    sender=opener,
                    error=consent.ConsentEmergencyCoolingDown,
                    patient=patient,
                    institution=ems,
                    until=opening.cooldown_until,
                )
                return
            tx = consent.openEmergencyAccess(*args, sender=opener)
            opened = block_time(tx)
            self.expect(
                tx,
                consent.EmergencyAccessOpened(
                    patient=patient,
                    opener=opener,
                    institution=ems,
                    expiresAt=opened + duration,
                    reason=REASON,
                ),
            )
            self.model.opening = Opening(opened, opened + duration, self.model.ems_round)

        @rule(
            change=st.sampled_from(["standing", "paramedic"]), by=st.sampled_from([ems, paramedic])
        )
        def service_change(self, change: str, by: AccountAPI) -> None:
            """Suspends or reinstates the service, or removes (``by`` the service or the
            paramedic) or re-hires its paramedic."""
            if change == "standing" and self.model.ems_verified:
                tx = suspend(ems)
                self.expect(
                    tx,
                    registry.InstitutionSuspended(
                        institution=ems, registrar=registrars[0], reason=SUSPENSION
                    ),
                )
                self.model.ems_verified = False
                self.model.ems_round += 1
            elif change == "standing":
                first, second = approve(ems)
                self.expect(
                    first,
                    registry.InstitutionApproved(
                        institution=ems, registrar=registrars[0], approvals=1, threshold=2
                    ),
                )
                self.expect(
                    second,
                    registry.InstitutionApproved(
                        institution=ems, registrar=registrars[1], approvals=2, threshold=2
                    ),
                    registry.InstitutionReinstated(institution=ems),
                )
                self.model.ems_verified = True
                self.model.ems_round += 1
            elif self.model.paramedic_employed:
                tx = registry.removePractitioner(paramedic, sender=by)
                self.expect(
                    tx, registry.PractitionerRemoved(institution=ems, practitioner=paramedic, by=by)
                )
                self.model.paramedic_employed = False
            elif self.model.ems_verified:  # a suspended service invites nobody
                invited = registry.addPractitioner(paramedic, sender=ems)
                self.expect(
                    invited, registry.PractitionerInvited(institution=ems, practitioner=paramedic)
                )
                accepted = registry.acceptPractitioner(ems, sender=paramedic)
                self.expect(
                    accepted, registry.PractitionerAdded(institution=ems, practitioner=paramedic)
                )
                self.model.paramedic_employed = True

        # ------------------------------------------------------------ time

        @rule(hours=st.sampled_from([1, 2, 24, 7 * 24]))
        def advance(self, hours: int) -> None:
            advance_time(hours * HOUR)

        # ------------------------------------------------------------ hostile actors

        @rule(actor=st.sampled_from(hostiles), action=st.sampled_from(HOSTILE_MOVES), pick=picks)
        def hostile_move(self, actor: AccountAPI, action: str, pick: int) -> None:
            """A stranger, an insurer or a hospital without care tries a move of the patient's
            (or, to open emergency access, the service's); each is refused, whatever the state."""
            grantee, kind, value = self.slot(pick)
            not_acting = {
                "error": consent.ConsentNotPatientOrDelegate,
                "caller": actor,
                "patient": patient,
            }
            if action == "grant":
                expires = head_time() + HOUR
                args = (patient, grantee, kind, value, Purpose.TREATMENT, expires, ENVELOPE)
                self.refused(consent.grant, *args, sender=actor, **not_acting)
            elif action == "signed-grant":
                request = self.request(grantee, (kind, value), Purpose.TREATMENT, 1)
                signature = self.signature(actor, request)
                self.refused(
                    consent.grantWithSignature,
                    request,
                    signature,
                    sender=actor,
                    error=consent.ConsentInvalidSignature,
                    signer=actor,
                    patient=patient,
                )
            elif action == "revoke":
                self.refused(
                    consent.revoke, patient, grantee, kind, value, sender=actor, **not_acting
                )
            elif action == "cancel-signatures":
                self.refused(consent.cancelSignatures, patient, sender=actor, **not_acting)
            elif action == "deliver-keys":
                if pick % 2:
                    grantee, kind, value = (ems, paramedic)[pick % 4 // 2], ScopeKind.ALL, ZERO32
                self.refused(
                    consent.deliverKeys,
                    patient,
                    grantee,
                    kind,
                    value,
                    ENVELOPE,
                    sender=actor,
                    error=consent.ConsentNotKeyHolder,
                    caller=actor,
                    patient=patient,
                )
            elif action == "close-emergency":
                self.refused(consent.closeEmergencyAccess, patient, ems, sender=actor, **not_acting)
            elif action == "open-emergency":
                self.refused(
                    consent.openEmergencyAccess,
                    patient,
                    HOUR,
                    REASON,
                    sender=actor,
                    error=consent.ConsentNotEmergencyService,
                    caller=actor,
                )
            else:
                record = own_records[pick % len(own_records)]
                self.refused(consent.eraseRecord, record.id, sender=actor, **not_acting)

        # ------------------------------------------------------------ invariants
        # The first states the whole contract; the others single out the promises a patient
        # relies on, so that a failure names the one broken.

        @invariant()
        def access_matches_the_model_for_every_reader_and_record(self) -> None:
            for purpose, seen in self.observed().access.items():
                for (reader, record_id), got in seen.items():
                    want = self.expected(reader, record_id, purpose)
                    assert got == want, (purpose, reader, record_id.hex())

        @invariant()
        def only_the_patient_live_grantees_and_a_live_verified_service_read(self) -> None:
            hostile = {h.address for h in (*hostiles, guardian)}
            for (reader, record_id), allowed in self.observed().access[None].items():
                if not allowed:
                    continue
                record = next(r for r in records if bytes(r.id) == record_id)
                assert reader not in hostile, f"{reader} reads {record_id.hex()}"
                if reader == record.patient:
                    continue
                assert record.patient == patient.address, (reader, record_id.hex())
                granted = any(self.model.live(reader, k) for k in record.covering_keys)
                assert granted or self.emergency_covers(reader), (
                    f"{reader} reads {record_id.hex()} outside every live grant and opening"
                )

        @invariant()
        def grants_and_openings_are_only_what_the_patient_and_the_service_made(self) -> None:
            observed = self.observed()
            for (holder, grantee, key), got in observed.grants.items():
                mine = holder == patient.address
                stored = self.model.grants.get((grantee, key)) if mine else None
                want = stored.stored() if stored else (0, 0, 0, 0)
                assert got == want, (holder, grantee, key.hex())
            for institution, got in observed.emergencies.items():
                opening = self.model.opening if institution == ems.address else None
                want = (0, 0, 0, 0)
                if opening is not None:
                    want = (opening.opened_at, opening.expires_at, opening.closed_at, opening.round)
                assert got == want, institution

        @invariant()
        def every_change_of_access_is_an_event(self) -> None:
            observed = self.observed()
            assert self.logged == self.model.events, "the logs differ from the moves made"
            for purpose, seen in observed.access.items():
                for (reader, record_id), got in seen.items():
                    record = next(r for r in records if bytes(r.id) == record_id)
                    audited = self.auditor.allows(reader, record, purpose, self.model.now)
                    assert got == audited, ("not in the logs", purpose, reader, record_id.hex())

        @invariant()
        def no_access_after_revocation_or_expiry(self) -> None:
            observed, now = self.observed(), self.model.now
            for (reader, key), stored in self.model.grants.items():
                if stored.live(now) or self.emergency_covers(reader):
                    continue
                for record in records:
                    keys = record.covering_keys
                    other_live = any(self.model.live(reader, k) for k in keys if k != key)
                    if key in keys and not other_live and reader != record.patient:
                        assert not observed.access[None][(reader, bytes(record.id))], (
                            f"{reader} still reads {record.id.hex()} after its grant ended"
                        )

        @invariant()
        def erased_records_give_nobody_access(self) -> None:
            observed = self.observed()
            for record_id in self.model.erased:
                for reader in readers:
                    for seen in observed.access.values():
                        assert not seen[(reader.address, record_id)], reader

    run_state_machine_as_test(
        ConsentWorld,
        settings=settings(max_examples=examples(chain), stateful_step_count=25, deadline=None),
    )


def _is_address(abi: Any, name: str) -> bool:
    return any(i.name == name and i.canonical_type == "address" for i in abi.inputs)
