"""Stateful test of consent: random grants, revocations, delegates, time, writes and reads.

A Python model keeps every grant the patient (or their delegate) gave, and which record keys
each grantee holds: wrapped in the body's header at write time (key delivery on write, for
live category or all grants) or in the key envelope of a patient's grant. After every step the
chain, the client and the access trail must agree with the model:

* ``hasAccess`` equals the model for every (grantee, record) pair;
* ``consent.read`` returns the exact body iff the model says the grant is live and a key was
  delivered (a live grant without a key raises ``NoKeyForReader``: a delegate holds no keys),
  and is refused otherwise;
* a party without a live covering grant when a record or version was written is not among its
  readers, so (without a live grant) ``consent.secret_of`` raises ``NoKeyForReader``: revocation
  protects every later version;
* every grant and every logged read appears in ``consent.access_trail``.

Each example runs between its own ``evm_snapshot`` and ``evm_revert``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from medledger import consent, crypto, providers, records
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.errors import AccessRefused, NoKeyForReader, PreconditionFailed
from medledger.ipfs.local import LocalBlockStore

CATEGORIES = [Category.LAB, Category.VITALS, Category.IMAGING]
MAX_RECORDS = 5
# No expiry may fall this close after the clock once time moves: the wall clock keeps running
# while an example does (blocks are mined at wall-clock time plus the offset), and a grant
# expiring between two calls of one check would make the check ambiguous.
EXPIRY_MARGIN_SECONDS = 300
GRANT_ARGUMENTS = {
    "grantee": st.integers(0, 2),  # doctor, clinic, relative
    "kind": st.sampled_from(["all", "category", "record"]),
    "index": st.integers(0, 50),  # which anchored record the scope is taken from
    "hours": st.integers(1, 240),  # expiry: 1 h to 10 days
}


@dataclass
class Written:
    """A record as the model knows it."""

    record: records.Record
    body: bytes
    wrapped_for: frozenset[str]  # grantee addresses whose key went into the header
    current: bool = True


@dataclass
class Given:
    """The latest grant under one (grantee, scope key), and the keys its envelopes hold."""

    scope: consent.Scope
    expires_at: int
    revoked: bool = False
    envelope_keys: set[bytes] = field(default_factory=set)

    def live(self, now: int) -> bool:
        return not self.revoked and self.expires_at > now


def covers(scope: consent.Scope, written: Written) -> bool:
    return scope.covers(written.record)


def wide(scope: consent.Scope, cat: Category | int) -> bool:
    """Whether a grant of this scope receives the key of a new record of ``cat`` at write time."""
    return scope.kind is consent.ScopeKind.ALL or (
        scope.kind is consent.ScopeKind.CATEGORY and scope.category == cat
    )


@pytest.fixture
def world(
    chain, tmp_path, verified_institution, hospital, clinic, doctor, registered_patient, care
):
    """The cast, registered once per test; the machine snapshots and reverts around it."""
    chain.forget_blocks()  # see test_access.fresh_block_clock
    care(registered_patient, verified_institution(hospital))
    verified_institution(clinic, providers.InstitutionKind.CLINIC, "Riverside Clinic")
    providers.add_practitioner(chain, clinic, doctor.address)
    providers.accept_practitioner(chain, doctor, clinic.address)
    providers.publish_key(chain, doctor)
    relative = dev_account(7)
    providers.register_patient(chain, relative)
    store = LocalBlockStore(tmp_path / "ipfs")
    drafts = [
        records.Draft(b'{"resourceType":"Observation","id":"seed-lab"}', Category.LAB),
        records.Draft(b'{"resourceType":"Observation","id":"seed-vitals"}', Category.VITALS),
    ]
    seeds = records.anchor(
        chain, store, hospital, registered_patient.address, drafts,
        readers=consent.readers_for(chain),
    )  # fmt: skip
    return {
        "chain": chain,
        "store": store,
        "patient": registered_patient,
        "issuer": hospital,
        "grantees": [doctor, clinic, relative],
        "delegate": dev_account(8),
        "seeds": [(r, d.body) for r, d in zip(seeds, drafts, strict=True)],
    }


def make_machine(world: dict) -> type[RuleBasedStateMachine]:
    chain = world["chain"]
    store: LocalBlockStore = world["store"]
    patient = world["patient"]
    issuer = world["issuer"]
    grantees = world["grantees"]
    delegate = world["delegate"]
    manager = consent.consent_contract(chain)
    seeds = world["seeds"]

    def rpc(method: str, params: list) -> object:
        return chain.w3.provider.make_request(method, params)["result"]

    def now() -> int:
        return int(chain.w3.eth.get_block("latest")["timestamp"])

    def opened(record: records.Record) -> bytes:
        return store.cat(record.cid)

    class ConsentMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = rpc("evm_snapshot", [])
            chain.forget_blocks()
            self.written: list[Written] = [Written(r, b, frozenset()) for r, b in seeds]
            self.given: dict[tuple[str, str], Given] = {}
            self.delegate_on = False
            self.granted_log: list[tuple[str, str]] = []  # (grantor, grantee) in order
            self.read_log: list[tuple[str, str]] = []  # (reader, record id) in order
            self.serial = 0
            # Bodies differ between examples: the same body is anchored once (records.once),
            # and the chain keeps what earlier examples wrote.
            self.run = os.urandom(4).hex()
            self.trail_checked_at = -1
            # The client-side checks (a full ``consent.read`` costs a dozen RPC calls) run for a
            # pair when its expected outcome changed or the step changed a grant covering it;
            # ``hasAccess`` and the header's readers are checked for every pair at every step.
            self.checked: dict[tuple[str, bytes], tuple[bool, bool]] = {}
            self.touched: set[tuple[str, str]] = set()  # (grantee, scope label) changed

        def teardown(self) -> None:
            rpc("evm_revert", [self.snapshot])
            chain.forget_blocks()

        # --- model ---------------------------------------------------------------------------

        def live(self, grantee: str, written: Written, at: int) -> bool:
            return any(
                g == grantee and given.live(at) and covers(given.scope, written)
                for (g, _), given in self.given.items()
            )

        def has_key(self, grantee: str, written: Written, at: int) -> bool:
            if grantee in written.wrapped_for:
                return True
            return any(
                g == grantee and given.live(at) and covers(given.scope, written)
                and written.record.id in given.envelope_keys
                for (g, _), given in self.given.items()
            )  # fmt: skip

        def scope_for(self, kind: str, index: int) -> consent.Scope:
            target = self.written[index % len(self.written)].record
            if kind == "all":
                return consent.Scope(consent.ScopeKind.ALL)
            if kind == "category":
                return consent.Scope(consent.ScopeKind.CATEGORY, category=Category(target.category))
            return consent.Scope(consent.ScopeKind.RECORD, record=target.id)

        def give(self, signer, grantee_index: int, kind: str, index: int, hours: int) -> None:
            grantee = grantees[grantee_index]
            scope = self.scope_for(kind, index)
            state = consent.grant(
                chain, store, signer, patient.address, grantee.address, scope,
                consent.Purpose.TREATMENT, timedelta(hours=hours),
            )  # fmt: skip
            key = (grantee.address, scope.label)
            entry = self.given.get(key)
            keys = entry.envelope_keys if entry else set()
            if signer is patient:  # the patient holds every key; a delegate holds none
                keys |= {w.record.id for w in self.written if covers(scope, w)}
            self.given[key] = Given(scope, int(state.expires_at.timestamp()), False, keys)
            self.granted_log.append((signer.address, grantee.address))
            self.touched.add(key)

        def write(self, cat: Category, previous: Written | None) -> None:
            self.serial += 1
            content = json.dumps(
                {"resourceType": "Observation", "id": f"w{self.serial}-{self.run}"}
            ).encode()
            at = now()
            wrapped_for = frozenset(
                g
                for (g, _), given in self.given.items()
                if given.live(at) and wide(given.scope, cat)
            )
            (record,) = records.anchor(
                chain, store, issuer, patient.address, [records.Draft(content, cat)],
                previous.record.id if previous else None, readers=consent.readers_for(chain),
            )  # fmt: skip
            if previous is not None:
                previous.current = False
            self.written.append(Written(record, content, wrapped_for))

        # --- rules ---------------------------------------------------------------------------

        @initialize(**GRANT_ARGUMENTS)
        def first_grant(self, grantee: int, kind: str, index: int, hours: int) -> None:
            self.give(patient, grantee, kind, index, hours)

        @rule(**GRANT_ARGUMENTS)
        def grant(self, grantee: int, kind: str, index: int, hours: int) -> None:
            self.give(patient, grantee, kind, index, hours)

        @rule(**GRANT_ARGUMENTS)
        def grant_through_the_delegate(
            self, grantee: int, kind: str, index: int, hours: int
        ) -> None:
            if not self.delegate_on:
                providers.set_delegate(chain, patient, delegate.address, True)
                self.delegate_on = True
            self.give(delegate, grantee, kind, index, hours)

        @precondition(lambda self: self.delegate_on)
        @rule()
        def remove_the_delegate(self) -> None:
            providers.set_delegate(chain, patient, delegate.address, False)
            self.delegate_on = False
            with pytest.raises(PreconditionFailed):
                self.give(delegate, 0, "all", 0, 1)

        @precondition(lambda self: any(g.live(now()) for g in self.given.values()))
        @rule(pick=st.integers(0, 50), through_delegate=st.booleans())
        def revoke(self, pick: int, through_delegate: bool) -> None:
            at = now()
            live = sorted(k for k, g in self.given.items() if g.live(at))
            grantee, label = live[pick % len(live)]
            signer = delegate if through_delegate and self.delegate_on else patient
            consent.revoke(
                chain, signer, patient.address, grantee, self.given[(grantee, label)].scope
            )
            self.given[(grantee, label)].revoked = True
            self.touched.add((grantee, label))

        @rule(seconds=st.integers(600, 5 * 86400))
        def advance_time(self, seconds: int) -> None:
            target = now() + seconds
            while any(0 <= g.expires_at - target <= EXPIRY_MARGIN_SECONDS
                      for g in self.given.values()):  # fmt: skip
                target += EXPIRY_MARGIN_SECONDS
            rpc("evm_increaseTime", [target - now()])
            rpc("evm_mine", [])

        @precondition(lambda self: len(self.written) < MAX_RECORDS)
        @rule(cat=st.sampled_from(CATEGORIES), version_of=st.none() | st.integers(0, 50))
        def anchor(self, cat: Category, version_of: int | None) -> None:
            if version_of is None:
                self.write(cat, None)
                return
            current = [w for w in self.written if w.current]
            previous = current[version_of % len(current)]
            self.write(Category(previous.record.category), previous)

        @rule(grantee=st.integers(0, len(grantees) - 1), pick=st.integers(0, 50))
        def read(self, grantee: int, pick: int) -> None:
            reader = grantees[grantee]
            written = self.written[pick % len(self.written)]
            at = now()
            if not self.live(reader.address, written, at):
                with pytest.raises(AccessRefused):
                    consent.read(chain, store, reader, written.record.id)
            elif not self.has_key(reader.address, written, at):
                with pytest.raises(NoKeyForReader):
                    consent.read(chain, store, reader, written.record.id)
            else:
                assert consent.read(chain, store, reader, written.record.id) == written.body
                self.read_log.append((reader.address, written.record.hex_id))

        # --- invariants ----------------------------------------------------------------------

        @invariant()
        def chain_client_and_model_agree(self) -> None:
            at = now()
            for written in self.written:
                header = crypto.readers(opened(written.record))
                for reader in grantees:
                    pair = (reader.address, written.record.id)
                    label = f"{reader.address} / {written.record.hex_id}"
                    live = self.live(reader.address, written, at)
                    keyed = self.has_key(reader.address, written, at)
                    assert manager.functions.hasAccess(*pair).call() == live, label
                    wrapped = crypto.public_key(reader.key) in header
                    assert wrapped == (reader.address in written.wrapped_for), label
                    touched = any(
                        g == reader.address and covers(self.given[(g, label)].scope, written)
                        for g, label in self.touched
                    )
                    if not touched and self.checked.get(pair) == (live, keyed):
                        continue  # the client was checked in this very situation already
                    if live and keyed:
                        got = consent.read(chain, store, reader, written.record.id, log=False)
                        assert got == written.body, label
                    elif live:
                        with pytest.raises(NoKeyForReader):
                            consent.read(chain, store, reader, written.record.id, log=False)
                    else:
                        with pytest.raises(AccessRefused):
                            consent.read(chain, store, reader, written.record.id, log=False)
                        if not wrapped:  # revoked (or never granted) when it was written
                            with pytest.raises(NoKeyForReader):
                                consent.secret_of(chain, store, reader, written.record)
                    self.checked[pair] = (live, keyed)
            self.touched.clear()

        @invariant()
        def every_grant_and_logged_read_is_in_the_trail(self) -> None:
            block = int(chain.w3.eth.block_number)
            if block == self.trail_checked_at:
                return  # no block since the last check: no event can have appeared
            self.trail_checked_at = block
            trail = consent.access_trail(chain, patient.address)
            grants = [(e.actor, e.subject) for e in trail if e.event == "access granted"]
            reads = [(e.actor, e.subject) for e in trail if e.event == "record read"]
            assert grants == self.granted_log
            assert reads == self.read_log

    return ConsentMachine


@pytest.mark.slow  # runs in `make test`; kept out of `make test-fast` (seconds)
def test_consent_lifecycle_agrees_with_the_model(world):
    run_state_machine_as_test(
        make_machine(world),
        settings=settings(
            max_examples=8,
            stateful_step_count=12,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
