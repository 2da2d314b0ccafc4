"""Stateful test of the trust core across all four registries, honest and hostile actors mixed.

Hypothesis plays thousands of random moves per run on ProviderRegistry, RecordRegistry,
ConsentManager and ClaimsManager (with the DevStablecoin), deployed fresh for this test:

* actors: three registrars, a hospital and a clinic (care providers), an insurer, a research
  sponsor, an emergency service with its paramedic, the hospital's doctor, three patients, a
  delegate (named by the first patient), a stranger and the claims resolver;
* honest moves (rules ``honest_*``): patients open care relationships; whoever may write for a
  patient writes records and its own next versions, and batches of them that anyone then
  registers; patients (and the delegate) grant; providers (their practitioners, now and then
  the patient) claim for care under live policies; the insurer approves (fully, partly, at
  zero), denies or asks; parties dispute in their window and the resolver resolves; the
  paramedic breaks the glass and the patient closes it. ``honest_move`` (no arguments) draws
  one of these from the example's seeded random generator, so that even the simplest example
  hypothesis tries, this rule at every step, is a real walk;
* everyone's moves: care opened (directly or by a signature the institution relays, also
  signed by a stranger, replayed or expired), extended and revoked by anyone; signatures
  cancelled; delegates named and dropped; institutions suspended and reinstated (also by
  non-registrars); practitioners invited, accepting, leaving, removed, moving between
  institutions; records anchored by everyone for everyone (a new record, the issuer's own next
  version, any record as previous, an unknown one); batches by everyone, entries chained inside
  the batch or naming a direct anchor made only after the batch, registered at their position
  or a wrong one; grants and revocations (directly and signed) by anyone; emergency openings by
  everyone, closings by anyone; erasures; policies issued by anyone, funded by anyone; claims
  submitted by the writer, its practitioner, the patient and everyone else, on claimable,
  claimed and foreign records, with service and identifier keys from small sets so that the
  same care comes back re-encrypted; decisions, answers, disputes, escalations, resolutions,
  reclaims and withdrawals by the right and the wrong party; time moving by hours to weeks, so
  that care periods, grants, openings, cooldowns, terms, decision periods and windows end.

An independent Python model of README "Who may do what" (:class:`World`) predicts every move:
a move it accepts is sent and must emit exactly the events it predicts; a move it refuses is
called (``eth_call``) at the second its transaction would run and must revert with exactly the
custom error and arguments it predicts. So every anchor attempt's outcome (who, for whom,
which previous version) is predicted, not only observed. A second reader, :class:`Auditor`,
knows nothing but the contracts' logs: it rebuilds participants, care periods, records,
grants, openings and money from the events alone.

After every step the invariants check, against the chain (one JSON-RPC batch of reads):

1. a record's successor is written only by an allowed writer: in the model and, from
   ``RecordAnchored``/``RecordSuperseded``/``RecordProven`` alone, for the auditor, every
   version is written by its previous version's writer, for the same patient, by an issuer
   allowed to write for the patient then (a batched one: the batch's issuer, with a care
   relationship at the batch's time, never predating its previous version); the chain's
   records (``lookup``) are exactly the model's;
2. no record of an unauthorised writer exists: every refused anchor or registration left no
   record (``lookup`` of its id is empty), and every record in the logs is one the model
   allowed;
3. a piece of care is paid at most once: a claim's id is its record; each care key and
   identifier key names one claim (``claimOfKey``); no two claims holding keys share one (a
   provider's claim holds them from submission, a patient's from its approval) and nothing is
   paid to a claim that does not hold its keys; the claims on chain (``getClaim``) and in the
   logs are exactly the model's;
4. nobody but the patient, the patient's live grantees (by record, category or all) and the
   accounts (institution and active practitioners) of a live, verified emergency service with
   an opening made in its current approval round passes ``hasAccess``: every actor against the
   records a step touched and a sample of pairs at each step, every actor against every
   record every ``FULL_EVERY`` steps; chain == model == auditor;
5. every change of access is an event the audit shows: the logs hold, per patient, exactly as
   many ``AccessGranted``, ``AccessRevoked``, ``EmergencyAccessOpened``,
   ``EmergencyAccessClosed``, ``CareAuthorized`` and ``CareRevoked`` events as the model made
   changes, and the auditor, from the logs alone, gives the same access as the chain;
6. money in equals pools plus credits plus what was paid out: funded == pools + paid +
   reclaimed; the manager's token balance == pools + outstanding credits; paid at once +
   withdrawn + outstanding credits == paid; every account's balance is the model's; the same
   totals from the logs alone;
7. a grant is only changed by the patient or a delegate: every ``AccessGranted`` and
   ``AccessRevoked`` (and care, closing and erasure event) names the patient or a delegate of
   the patient at that time as its author, and every grant a move touched or tried to touch
   (``getGrant``) is exactly the model's; so are care relationships, emergency openings,
   participants and delegates.

Time is exact: the test sets Anvil's block timestamp interval to one second, so every
transaction runs one second after the head, a refused move is called at that very second
(``eth_call`` block override) and time moves by mining a block at a chosen timestamp.

Speed: transactions go from impersonated accounts over bare JSON-RPC (no gas estimation, no
Ape receipt; ``trust_rpc.py``), and the reads of a step go in one batch. The default run is
``DEFAULT_STEPS`` steps (examples of ``STEPS_PER_EXAMPLE``); ``MEDLEDGER_STATEFUL_STEPS`` sets
another total, ``MEDLEDGER_STATEFUL_REPORT=1`` prints how each kind of move ended (with ``-s``).
Each example runs between a chain snapshot and its restore. Anvil only (impersonation, the
timestamp interval and call overrides): skipped on eth-tester.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import coincurve
import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from .claims.model import patient_claim_id, record_key
from .support import indexed_tree, merkle_leaf, merkle_tree, record_id, sign_digest
from .trust_rpc import Codec, Node, Receipt, Rpc, as_int

if TYPE_CHECKING:
    from collections.abc import Callable

# ---------------------------------------------------------------------------- run size

DEFAULT_STEPS = 2000
STEPS_PER_EXAMPLE = 200
FULL_EVERY = 100
"""Every this many steps of an example, the invariants read everything (every actor against
every record, every grant, record, claim and key); in between, the touched items and a sample."""
ACCESS_SAMPLE = 40
"""Random (reader, record) pairs checked per step besides every reader on the touched records."""

STATS: Counter[str] = Counter()
MOVES: Counter[str] = Counter()
"""How many moves of each kind ended how (printed with ``-s``)."""

# ---------------------------------------------------------------------------- constants

HOUR = 3600
DAY = 24 * HOUR
USD = 10**6
MAX_UINT40 = 2**40 - 1
MAX_UINT256 = 2**256 - 1
ZERO = "0x" + "00" * 20
ZERO32 = b"\0" * 32
THRESHOLD = 2
REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")
RESOLVER_ROLE = keccak(text="RESOLVER_ROLE")
SUSPENSION = b"licence-lapsed".ljust(32, b"\0")
ENVELOPE = keccak(text="envelope")
TERMS = keccak(text="terms")
REASON = "unconscious"

# IProviderRegistry
R_NONE, R_PATIENT, R_INSTITUTION, R_PRACTITIONER = 0, 1, 2, 3
K_HOSPITAL, K_CLINIC, K_LABORATORY, K_INSURER, K_SPONSOR, K_EMS = 1, 2, 3, 4, 5, 6
CARE_KINDS = (K_HOSPITAL, K_CLINIC, K_LABORATORY, K_EMS)
S_PENDING, S_VERIFIED, S_SUSPENDED = 1, 2, 3

# IConsentManager
SCOPE_RECORD, SCOPE_CATEGORY, SCOPE_ALL = 0, 1, 2
P_NONE, P_TREATMENT, P_PAYMENT, P_RESEARCH = 0, 1, 2, 3
P_PATIENT_REQUEST, P_EMERGENCY = 5, 6
EMERGENCY_COOLDOWN = 7 * DAY
MAX_EMERGENCY = DAY

# IClaimsManager
C_NONE, C_SUBMITTED, C_INFO, C_APPROVED, C_PARTIAL, C_DENIED, C_DISPUTED, C_RESOLVED = range(8)
REV_NONE, REV_DISABLED, REV_ABOVE, REV_CODES, REV_LIMIT, REV_POOL, REV_PATIENT, REV_INSURER = range(
    8
)
DECISION_PERIOD = 30 * DAY
DISPUTE_WINDOW = 7 * DAY
MAX_INFO_REQUESTS = 3

# medledger.categories.Category
LAB, IMAGING, FINANCIAL = 4, 6, 13

PR, RR, CM, CL, TK = (
    "ProviderRegistry",
    "RecordRegistry",
    "ConsentManager",
    "ClaimsManager",
    ("DevStablecoin"),
)

# ---------------------------------------------------------------------------- actors

REGISTRARS = ("registrar0", "registrar1", "registrar2")
INSTITUTIONS = {
    "hospital": K_HOSPITAL,
    "clinic": K_CLINIC,
    "insurer": K_INSURER,
    "sponsor": K_SPONSOR,
    "ems": K_EMS,
}
PATIENTS = ("patient0", "patient1", "patient2")
NAMES = (
    *REGISTRARS,
    *INSTITUTIONS,
    "doctor",
    "paramedic",
    *PATIENTS,
    "delegate",
    "stranger",
    "resolver",
    "admin",
)
SECRETS = {name: keccak(text=f"medledger-trust-actor-{name}") for name in NAMES}
ADDRESS = {name: Account.from_key(SECRETS[name]).address for name in NAMES}
NAME_OF = {address: name for name, address in ADDRESS.items()}
READERS = tuple(ADDRESS[n] for n in NAMES)
"""Every account, each checked against every record for access."""
MONEY_HOLDERS = tuple(
    ADDRESS[n] for n in ("hospital", "clinic", "ems", *PATIENTS, "insurer", "stranger")
)
"""Everyone who can be paid (a care provider that submits, a patient) or pays (funders)."""


def who(address: str) -> str:
    return NAME_OF.get(address, address)


# ---------------------------------------------------------------------------- hashing rules


def scope_key(kind: int, scope: bytes) -> bytes:
    """``keccak256(abi.encode(scopeKind, scope))``."""
    return keccak(encode(["uint8", "bytes32"], [kind, scope]))


def category_scope(category: int) -> bytes:
    return category.to_bytes(32, "big")


ALL_KEY = scope_key(SCOPE_ALL, ZERO32)


def care_key(patient: str, provider: int, service: bytes, codes: tuple[bytes, ...]) -> Any:
    """The care key: ``keccak256(abi.encode("care", patient, provider, service, codes))``."""
    types = ["string", "address", "uint32", "bytes32", "bytes32[]"]
    return keccak(encode(types, ["care", patient, provider, service, list(codes)]))


def identifier_key(provider: int, identifier: bytes) -> bytes:
    """``identifierKeyOf``: ``keccak256(abi.encode("identifier", provider, identifierKey))``."""
    return keccak(encode(["string", "uint32", "bytes32"], ["identifier", provider, identifier]))


def indexed_verify(proof: list[bytes], root: bytes, leaf: bytes, index: int, count: int) -> bool:
    """``IndexedMerkle.verifyCalldata`` as its NatSpec states it."""
    depth = (count - 1).bit_length() if count > 1 else 0
    if index >= count or len(proof) != depth:
        return False
    node = leaf
    for level, sibling in enumerate(proof):
        node = keccak(node + sibling) if (index >> level) & 1 == 0 else keccak(sibling + node)
    return node == bytes(root)


def oz_verify(proof: list[bytes], root: bytes, leaf: bytes) -> bool:
    """OpenZeppelin ``MerkleProof.verify`` (sorted pairs)."""
    node = bytes(leaf)
    for sibling in proof:
        node = keccak(b"".join(sorted((node, bytes(sibling)))))
    return node == bytes(root)


def code_hash(code: str) -> bytes:
    return keccak(b"trust-salt" + code.encode())


COVERED = [code_hash(c) for c in ("99213", "80053", "85025")]
UNCOVERED = code_hash("27447")
CODES_ROOT, _CODE_PROOFS = merkle_tree(COVERED)
CODE_PROOFS = {bytes(k): [bytes(p) for p in v] for k, v in _CODE_PROOFS.items()}
CODE_SETS = (
    (COVERED[0],),
    tuple(sorted((COVERED[1], COVERED[2]))),
    (UNCOVERED,),
)
"""Three claimable sets of codes (strictly ascending hashes): covered, covered, not covered."""
SERVICES = (keccak(text="service-2026-03-01"), keccak(text="service-2026-03-08"))
IDENTIFIERS = (ZERO32, keccak(text="claim-identifier-1"), keccak(text="claim-identifier-2"))
FRESH = -1
"""A service or identifier key of its own (derived from the claim record): new care."""


def service_key(index: int, record: bytes) -> bytes:
    return keccak(b"service" + record) if index == FRESH else SERVICES[index]


def identifier_of(index: int, record: bytes) -> bytes:
    return keccak(b"identifier" + record) if index == FRESH else IDENTIFIERS[index]


def manifest_of(root: bytes) -> bytes:
    return keccak(b"manifest" + root)


def content(n: int) -> tuple[bytes, bytes]:
    """``(cidDigest, commitment)`` of the ``n``-th of a few contents (a small set, so that the
    same record comes back)."""
    return keccak(text=f"trust-cid-{n}"), keccak(text=f"trust-commitment-{n}")


# ---------------------------------------------------------------------------- the model


@dataclass
class Party:
    """``IProviderRegistry.Participant`` plus the approvals of the current round."""

    role: int
    kind: int = 0
    status: int = 0
    key_prefix: int = 0
    round: int = 0
    employer: str = ZERO
    number: int = 0
    votes: set[str] = field(default_factory=set)

    def stored(self) -> tuple[Any, ...]:
        return (
            self.role,
            self.kind,
            self.status,
            self.key_prefix,
            self.round,
            self.employer,
            self.number,
        )


def verified_institution(parts: dict[str, Party], account: str) -> str | None:
    """``verifiedInstitutionOf``: the verified institution ``account`` is or works for."""
    p = parts.get(account)
    institution = account
    if p is not None and p.role == R_PRACTITIONER:
        institution = p.employer
        p = parts.get(institution)
    if p is None or p.role != R_INSTITUTION or p.status != S_VERIFIED:
        return None
    return institution


def writer_of(parts: dict[str, Party], account: str) -> tuple[bool, int]:
    """``writerOf``: a patient writes as 0, a verified care institution (or its practitioner)
    as its number; nobody else writes."""
    p = parts.get(account)
    q = parts.get(p.employer) if p is not None and p.role == R_PRACTITIONER else p
    if q is None or q.role != R_INSTITUTION or q.status != S_VERIFIED:
        return (q is not None and q.role == R_PATIENT), 0
    if q.kind not in CARE_KINDS:
        return False, 0
    return True, q.number


def live_period(periods: list[list[int]] | None, at: int) -> bool:
    """The current care period holds at ``at`` (``since <= at < until``)."""
    return bool(periods) and periods[-1][0] <= at < periods[-1][1]  # type: ignore[index]


def held_period(periods: list[list[int]] | None, at: int) -> bool:
    """Some care period, current or earlier, held at ``at``."""
    return any(since <= at < until for since, until in periods or ())


@dataclass
class Rec:
    patient: str
    issuer: str
    writer: int
    category: int
    anchored_at: int
    previous: bytes
    superseded: bool = False
    batch: bytes | None = None

    def stored(self) -> tuple[Any, ...]:
        return (self.patient, self.anchored_at, self.category, self.superseded, self.writer)


@dataclass
class Entry:
    patient: str
    cid: bytes
    commitment: bytes
    category: int
    previous: bytes
    id: bytes
    proof: list[bytes]


@dataclass
class Batch:
    id: bytes
    issuer: str
    root: bytes
    anchored_at: int
    writer: int
    entries: list[Entry]


@dataclass
class Grant:
    granted_at: int
    expires_at: int
    purpose: int
    revoked_at: int = 0

    def live(self, at: int) -> bool:
        return self.revoked_at == 0 and self.expires_at > at

    def stored(self) -> tuple[int, int, int, int]:
        return (self.granted_at, self.expires_at, self.revoked_at, self.purpose)


@dataclass
class Opening:
    opened_at: int
    expires_at: int
    closed_at: int = 0
    round: int = 0
    """The service's approval round when it opened (see ``World.round_bound``)."""

    def live(self, at: int) -> bool:
        return self.closed_at == 0 and self.expires_at > at

    @property
    def cooldown_until(self) -> int:
        return (self.closed_at or self.expires_at) + EMERGENCY_COOLDOWN


@dataclass
class Policy:
    id: int
    insurer: str
    patient: str
    valid_from: int
    valid_until: int
    coverage_bps: int
    deductible: int
    annual_limit: int
    auto_settle_limit: int
    paid: int = 0
    deductible_met: int = 0
    funded: int = 0
    open_claims: int = 0
    last_decision_at: int = 0

    @property
    def pool(self) -> int:
        return self.funded - self.paid

    @property
    def limit_left(self) -> int:
        return self.annual_limit - self.paid

    def stored(self) -> tuple[Any, ...]:
        return (
            self.insurer,
            self.valid_from,
            self.valid_until,
            self.coverage_bps,
            self.patient,
            self.deductible,
            self.annual_limit,
            self.paid,
            self.auto_settle_limit,
            self.deductible_met,
            self.funded,
            bytes(CODES_ROOT),
        )


@dataclass
class Claim:
    id: int
    record: bytes
    submitter: str
    policy_id: int
    state: int
    pay_patient: bool
    billed: int
    submitted_at: int
    care_key: bytes
    identifier_key: bytes | None
    info_requests: int = 0
    paid: int = 0
    decided_at: int = 0
    deductible_applied: int = 0
    answered_at: int = 0
    pending: bool = False
    """A patient's claim: its keys (and its record) wait until it is approved (or awarded)."""
    by_patient: bool = False
    """Submitted by the patient: under ``patientClaimIdOf(record)``, not the record's id."""

    def stored(self) -> tuple[Any, ...]:
        return (
            self.submitter,
            self.policy_id,
            self.state,
            self.pay_patient,
            self.info_requests,
            self.billed,
            self.paid,
            self.decided_at,
            self.deductible_applied,
            self.submitted_at,
            self.answered_at,
        )


Event = tuple[str, str, dict[str, Any]]


def ev(contract: str, event: str, /, **args: Any) -> Event:
    return contract, event, args


@dataclass
class Ok:
    """A move the model accepts: the events it must emit, and how the world changes."""

    events: list[Event]
    commit: Callable[[], None]


@dataclass
class Refused:
    """A move the model refuses: the exact custom error."""

    contract: str
    error: str
    args: tuple[Any, ...]


def refused(contract: str, error: str, *args: Any) -> Refused:
    return Refused(contract, error, args)


Outcome = Ok | Refused


def coverage(policy: Policy, billed: int, deductible: int) -> int:
    return (billed - deductible) * policy.coverage_bps // 10_000


def allowed_now(policy: Policy, billed: int) -> tuple[int, int]:
    """``(allowed, deductible)``: ``deductible = min(billed, deductible left)``, ``allowed =
    min(coverage of the rest, annual limit left)``."""
    deductible = min(billed, policy.deductible - policy.deductible_met)
    return min(coverage(policy, billed, deductible), policy.limit_left), deductible


class World:
    """What the four contracts should hold, and what each move should do, from the README."""

    def __init__(self, contracts: dict[str, str]) -> None:
        self.contracts = contracts
        self.claims_manager = contracts[CL]
        self.now = 0
        self.block = 0
        self.parts: dict[str, Party] = {}
        self.institution_count = 0
        self.invitations: set[tuple[str, str]] = set()
        self.worked_for: set[tuple[str, str]] = set()  # (account, institution)
        self.delegates: set[tuple[str, str]] = set()  # (patient, delegate)
        self.care: dict[tuple[str, int], list[list[int]]] = {}
        self.nonces: Counter[tuple[str, str]] = Counter()  # (contract, patient)
        self.records: dict[bytes, Rec] = {}
        self.batches: dict[bytes, Batch] = {}
        self.grants: dict[tuple[str, str, bytes], Grant] = {}
        self.openings: dict[tuple[str, str], Opening] = {}
        self.erased: set[bytes] = set()
        self.policies: dict[int, Policy] = {}
        self.claims: dict[int, Claim] = {}
        self.keys: dict[bytes, int] = {}
        self.credits: Counter[str] = Counter()
        self.balances: Counter[str] = Counter()
        self.allowances: dict[str, int] = {}
        self.money: Counter[str] = Counter()  # funded, at_once, withdrawn, reclaimed
        self.changes: Counter[tuple[str, str]] = Counter()  # (event, patient)
        self.registrars = {ADDRESS[r] for r in REGISTRARS}
        self.resolver = ADDRESS["resolver"]

    # ------------------------------------------------------------------ who is who

    def role(self, account: str) -> int:
        p = self.parts.get(account)
        return p.role if p is not None else R_NONE

    def acts_for(self, account: str, patient: str) -> bool:
        return account == patient or (patient, account) in self.delegates

    def number(self, account: str) -> int:
        p = self.parts.get(account)
        return p.number if p is not None else 0

    def may_write_for(self, issuer: str, patient: str, at: int) -> tuple[bool, int]:
        """``mayWriteFor``: the patient for themself, a care provider during a live care
        relationship."""
        may, writer = writer_of(self.parts, issuer)
        if not may:
            return False, writer
        if writer == 0:
            return issuer == patient, 0
        return live_period(self.care.get((patient, writer)), at), writer

    def care_provider_of(self, account: str) -> tuple[str | None, int]:
        institution = verified_institution(self.parts, account)
        if institution is None or self.parts[institution].kind not in CARE_KINDS:
            return None, 0
        return institution, self.parts[institution].number

    # ------------------------------------------------------------------ access

    def has_access(self, reader: str, rid: bytes, at: int, purpose: int = P_NONE) -> bool:
        record = self.records.get(rid)
        if record is None or rid in self.erased:
            return False
        if reader == record.patient:
            return purpose in (P_NONE, P_PATIENT_REQUEST)
        for key in (
            scope_key(SCOPE_RECORD, rid),
            scope_key(SCOPE_CATEGORY, category_scope(record.category)),
            ALL_KEY,
        ):
            grant = self.grants.get((record.patient, reader, key))
            if grant is not None and grant.live(at) and purpose in (P_NONE, grant.purpose):
                return True
        if purpose not in (P_NONE, P_EMERGENCY):
            return False
        institution = verified_institution(self.parts, reader)
        opening = self.openings.get((record.patient, institution or ZERO))
        return opening is not None and self.opening_covers(opening, institution, at)

    round_bound = True
    """README: "a suspension ends the opening for good, even if the service is reinstated": an
    opening covers only in the service's approval round it was made in (``Emergency.round``).
    Set from the deployed ConsentManager's ABI: one whose ``Emergency`` has no round (before
    the trust core bound openings to rounds) lets an unexpired opening give access again after
    a reinstatement, and the model then follows that older rule."""

    def opening_covers(self, opening: Opening, institution: str | None, at: int) -> bool:
        if institution is None or not opening.live(at):
            return False
        return not self.round_bound or self.parts[institution].round == opening.round

    # ------------------------------------------------------------------ registry: set-up moves

    def register_patient(self, sender: str, key: bytes) -> Outcome:
        if self.role(sender) != R_NONE:
            return refused(PR, "ProviderAlreadyRegistered", sender)

        def commit() -> None:
            self.parts[sender] = Party(R_PATIENT, key_prefix=key[0])

        return Ok(
            [
                ev(PR, "EncryptionKeyPublished", account=sender, key=key),
                ev(PR, "PatientRegistered", patient=sender),
            ],
            commit,
        )

    def apply_institution(self, sender: str, kind: int, name: str, key: bytes) -> Outcome:
        if self.role(sender) != R_NONE:
            return refused(PR, "ProviderAlreadyRegistered", sender)
        number = self.institution_count + 1

        def commit() -> None:
            self.institution_count = number
            self.parts[sender] = Party(
                R_INSTITUTION, kind, S_PENDING, key_prefix=key[0], number=number
            )

        return Ok(
            [
                ev(PR, "EncryptionKeyPublished", account=sender, key=key),
                ev(
                    PR,
                    "InstitutionApplied",
                    institution=sender,
                    kind=kind,
                    number=number,
                    name=name,
                ),
            ],
            commit,
        )

    # ------------------------------------------------------------------ registry: governance

    def approve_institution(self, sender: str, institution: str) -> Outcome:
        if sender not in self.registrars:
            return refused(PR, "AccessControlUnauthorizedAccount", sender, REGISTRAR_ROLE)
        p = self.parts.get(institution)
        if p is None or p.role != R_INSTITUTION:
            return refused(PR, "ProviderNotInstitution", institution)
        if p.status not in (S_PENDING, S_SUSPENDED):
            return refused(PR, "ProviderInvalidStatus", institution, p.status)
        if (
            institution == sender
            or (sender, institution) in self.worked_for
            or (institution, sender) in self.invitations
        ):
            return refused(PR, "ProviderSelfApproval", sender, institution)
        if sender in p.votes:
            return refused(PR, "ProviderAlreadyApproved", institution, sender)
        approvals = len(p.votes) + 1
        events = [
            ev(
                PR,
                "InstitutionApproved",
                institution=institution,
                registrar=sender,
                approvals=approvals,
                threshold=THRESHOLD,
            )
        ]
        if approvals >= THRESHOLD:
            name = "InstitutionVerified" if p.status == S_PENDING else "InstitutionReinstated"
            events.append(ev(PR, name, institution=institution))

        def commit() -> None:
            p.votes.add(sender)
            if approvals >= THRESHOLD:
                p.status = S_VERIFIED
                p.votes = set()
                p.round += 1

        return Ok(events, commit)

    def suspend_institution(self, sender: str, institution: str) -> Outcome:
        if sender not in self.registrars:
            return refused(PR, "AccessControlUnauthorizedAccount", sender, REGISTRAR_ROLE)
        p = self.parts.get(institution)
        if p is None or p.role != R_INSTITUTION:
            return refused(PR, "ProviderNotInstitution", institution)
        if p.status != S_VERIFIED:
            return refused(PR, "ProviderInvalidStatus", institution, p.status)

        def commit() -> None:
            p.status = S_SUSPENDED
            p.votes = set()
            p.round += 1

        return Ok(
            [
                ev(
                    PR,
                    "InstitutionSuspended",
                    institution=institution,
                    registrar=sender,
                    reason=SUSPENSION,
                )
            ],
            commit,
        )

    # ------------------------------------------------------------------ registry: practitioners

    def invite(self, sender: str, account: str) -> Outcome:
        p = self.parts.get(sender)
        if p is None or p.role != R_INSTITUTION:
            return refused(PR, "ProviderNotInstitution", sender)
        if p.status != S_VERIFIED:
            return refused(PR, "ProviderInvalidStatus", sender, p.status)
        if account in (ZERO, sender):
            return refused(PR, "ProviderInvalidPractitioner", account)
        if self.role(account) != R_NONE:
            return refused(PR, "ProviderAlreadyRegistered", account)

        def commit() -> None:
            self.invitations.add((sender, account))

        return Ok([ev(PR, "PractitionerInvited", institution=sender, practitioner=account)], commit)

    def accept(self, sender: str, institution: str) -> Outcome:
        if (institution, sender) not in self.invitations:
            return refused(PR, "ProviderNotInvited", institution, sender)
        p = self.parts[institution]
        if p.status != S_VERIFIED:
            return refused(PR, "ProviderInvalidStatus", institution, p.status)
        if self.role(sender) != R_NONE:
            return refused(PR, "ProviderAlreadyRegistered", sender)

        def commit() -> None:
            self.invitations.discard((institution, sender))
            me = self.parts.setdefault(sender, Party(R_NONE))
            me.role = R_PRACTITIONER
            me.employer = institution
            self.worked_for.add((sender, institution))

        return Ok(
            [ev(PR, "PractitionerAdded", institution=institution, practitioner=sender)], commit
        )

    def remove_practitioner(self, sender: str, practitioner: str) -> Outcome:
        p = self.parts.get(practitioner)
        if p is not None and p.role == R_PRACTITIONER and sender in (p.employer, practitioner):
            institution = p.employer

            def commit() -> None:
                p.role = R_NONE
                p.employer = ZERO
                p.key_prefix = 0

        elif (sender, practitioner) in self.invitations:
            institution = sender

            def commit() -> None:
                self.invitations.discard((sender, practitioner))

        else:
            return refused(PR, "ProviderNotPractitioner", sender, practitioner)
        return Ok(
            [
                ev(
                    PR,
                    "PractitionerRemoved",
                    institution=institution,
                    practitioner=practitioner,
                    by=sender,
                )
            ],
            commit,
        )

    # ------------------------------------------------------------------ registry: patients

    def set_delegate(self, sender: str, delegate: str, allowed: bool) -> Outcome:
        if self.role(sender) != R_PATIENT:
            return refused(PR, "ProviderNotPatient", sender)
        if delegate in (ZERO, sender):
            return refused(PR, "ProviderInvalidDelegate", delegate)

        def commit() -> None:
            if allowed:
                self.delegates.add((sender, delegate))
            else:
                self.delegates.discard((sender, delegate))

        return Ok(
            [ev(PR, "DelegateChanged", patient=sender, delegate=delegate, allowed=allowed)], commit
        )

    def cancel_signatures(self, contract: str, sender: str, patient: str) -> Outcome:
        if not self.acts_for(sender, patient):
            error = (
                "ProviderNotPatientOrDelegate"
                if contract == PR
                else ("ConsentNotPatientOrDelegate")
            )
            return refused(contract, error, sender, patient)
        nonce = self.nonces[(contract, patient)]

        def commit() -> None:
            self.nonces[(contract, patient)] += 1

        return Ok(
            [ev(contract, "SignaturesCancelled", patient=patient, nonce=nonce, by=sender)], commit
        )

    def authorize_care(self, sender: str, patient: str, institution: str, until: int) -> Outcome:
        if not self.acts_for(sender, patient):
            return refused(PR, "ProviderNotPatientOrDelegate", sender, patient)
        return self._authorize_care(patient, institution, until, sender)

    def authorize_care_signed(
        self, signer: str, patient: str, institution: str, until: int, nonce: int, deadline: int
    ) -> Outcome:
        at = self.now + 1
        if at > deadline:
            return refused(PR, "ProviderSignatureExpired", deadline)
        expected = self.nonces[(PR, patient)]
        if nonce != expected:
            return refused(PR, "ProviderSignatureReplayed", patient, nonce, expected)
        if not self.acts_for(signer, patient):
            return refused(PR, "ProviderInvalidSignature", signer, patient)
        outcome = self._authorize_care(patient, institution, until, signer)
        if isinstance(outcome, Ok):
            inner = outcome.commit

            def commit() -> None:
                self.nonces[(PR, patient)] += 1
                inner()

            outcome.commit = commit
        return outcome

    def _authorize_care(self, patient: str, institution: str, until: int, by: str) -> Outcome:
        at = self.now + 1
        if self.role(patient) != R_PATIENT:
            return refused(PR, "ProviderNotPatient", patient)
        p = self.parts.get(institution)
        if (
            p is None
            or p.role != R_INSTITUTION
            or p.status != S_VERIFIED
            or p.kind not in CARE_KINDS
        ):
            return refused(PR, "ProviderNotCareProvider", institution)
        if until <= at:
            return refused(PR, "ProviderInvalidCareExpiry", until)

        def commit() -> None:
            periods = self.care.setdefault((patient, p.number), [])
            if live_period(periods, at):
                periods[-1][1] = until
            else:
                periods.append([at, until])
            self.changes[("CareAuthorized", patient)] += 1

        return Ok(
            [
                ev(
                    PR,
                    "CareAuthorized",
                    patient=patient,
                    institution=institution,
                    until=until,
                    by=by,
                )
            ],
            commit,
        )

    def revoke_care(self, sender: str, patient: str, institution: str) -> Outcome:
        at = self.now + 1
        if sender != institution and not self.acts_for(sender, patient):
            return refused(PR, "ProviderNotCareParty", sender, patient, institution)
        number = self.number(institution)
        periods = self.care.get((patient, number))
        if number == 0 or not live_period(periods, at):
            return refused(PR, "ProviderNoCare", patient, institution)

        def commit() -> None:
            periods[-1][1] = at  # type: ignore[index]
            self.changes[("CareRevoked", patient)] += 1

        return Ok(
            [ev(PR, "CareRevoked", patient=patient, institution=institution, by=sender)], commit
        )

    # ------------------------------------------------------------------ records

    def _store_check(
        self, rid: bytes, patient: str, writer: int, previous: bytes, at: int
    ) -> Refused | None:
        if rid in self.records:
            return refused(RR, "RecordAlreadyAnchored", rid)
        if previous == ZERO32:
            return None
        old = self.records.get(previous)
        if old is None:
            return refused(RR, "RecordNotFound", previous)
        if old.patient != patient:
            return refused(RR, "RecordPatientMismatch", previous, old.patient, patient)
        if old.writer != writer:
            return refused(RR, "RecordNotPreviousWriter", previous, writer, old.writer)
        if old.superseded:
            return refused(RR, "RecordAlreadySuperseded", previous)
        if old.anchored_at > at:
            return refused(RR, "RecordPreviousNotEarlier", previous)
        return None

    def _store(self, rid: bytes, record: Rec) -> None:
        self.records[rid] = record
        if record.previous != ZERO32:
            self.records[record.previous].superseded = True

    def record_id(self, patient: str, issuer: str, n: int, category: int, previous: bytes) -> bytes:
        cid, commitment = content(n)
        return bytes(
            record_id(
                self.chain_id,
                self.contracts[RR],
                patient,
                issuer,
                cid,
                commitment,
                category,
                previous,
            )
        )

    chain_id = 0

    def anchor(self, sender: str, patient: str, n: int, category: int, previous: bytes) -> Outcome:
        at = self.now + 1
        allowed, writer = self.may_write_for(sender, patient, at)
        if not allowed:
            return refused(RR, "RecordIssuerNotAuthorized", sender, patient)
        rid = self.record_id(patient, sender, n, category, previous)
        if (problem := self._store_check(rid, patient, writer, previous, at)) is not None:
            return problem
        cid, commitment = content(n)
        events = (
            [ev(RR, "RecordSuperseded", previous=previous, next=rid)] if previous != ZERO32 else []
        )
        events.append(
            ev(
                RR,
                "RecordAnchored",
                id=rid,
                patient=patient,
                issuer=sender,
                previous=previous,
                cidDigest=cid,
                commitment=commitment,
                category=category,
            )
        )

        def commit() -> None:
            self._store(rid, Rec(patient, sender, writer, category, at, previous))

        return Ok(events, commit)

    def anchor_batch(
        self, sender: str, specs: list[tuple[str, int, int, bytes]]
    ) -> tuple[Outcome, Batch]:
        """``specs``: ``(patient, content, category, previous)`` per entry. Returns the outcome
        and the batch the move would anchor."""
        at = self.now + 1
        may, writer = writer_of(self.parts, sender)
        ids = [self.record_id(p, sender, n, c, v) for p, n, c, v in specs]
        root, proofs = indexed_tree(ids)
        root = bytes(root)
        batch_id = keccak(encode(["address", "bytes32"], [sender, root]))
        entries = [
            Entry(p, *content(n), c, v, ids[i], [bytes(x) for x in proofs[i]])
            for i, (p, n, c, v) in enumerate(specs)
        ]
        batch = Batch(batch_id, sender, root, at, writer, entries)
        if not may:
            return refused(RR, "RecordBatchIssuerNotAuthorized", sender), batch
        if batch_id in self.batches:
            return refused(RR, "RecordBatchAlreadyAnchored", batch_id), batch

        def commit() -> None:
            self.batches[batch_id] = batch

        event = ev(
            RR,
            "BatchAnchored",
            batchId=batch_id,
            issuer=sender,
            root=root,
            manifestDigest=manifest_of(root),
            count=len(entries),
        )
        return Ok([event], commit), batch

    def register_from_batch(self, batch: Batch, index: int, position: int) -> Outcome:
        entry = batch.entries[index]
        leaf = bytes(merkle_leaf(entry.id))
        if not indexed_verify(entry.proof, batch.root, leaf, position, len(batch.entries)):
            return refused(RR, "RecordNotInBatch", batch.id, entry.id)
        if batch.writer == 0:
            allowed = entry.patient == batch.issuer
        else:
            allowed = held_period(self.care.get((entry.patient, batch.writer)), batch.anchored_at)
        if not allowed:
            return refused(RR, "RecordIssuerNotAuthorized", batch.issuer, entry.patient)
        problem = self._store_check(
            entry.id, entry.patient, batch.writer, entry.previous, batch.anchored_at
        )
        if problem is not None:
            return problem
        events = (
            [ev(RR, "RecordSuperseded", previous=entry.previous, next=entry.id)]
            if entry.previous != ZERO32
            else []
        )
        events += [
            ev(
                RR,
                "RecordAnchored",
                id=entry.id,
                patient=entry.patient,
                issuer=batch.issuer,
                previous=entry.previous,
                cidDigest=entry.cid,
                commitment=entry.commitment,
                category=entry.category,
            ),
            ev(RR, "RecordProven", id=entry.id, batchId=batch.id),
        ]

        def commit() -> None:
            self._store(
                entry.id,
                Rec(
                    entry.patient,
                    batch.issuer,
                    batch.writer,
                    entry.category,
                    batch.anchored_at,
                    entry.previous,
                    batch=batch.id,
                ),
            )

        return Ok(events, commit)

    # ------------------------------------------------------------------ consent

    def grant(
        self,
        sender: str,
        patient: str,
        grantee: str,
        kind: int,
        scope: bytes,
        purpose: int,
        expires_at: int,
    ) -> Outcome:
        if not self.acts_for(sender, patient):
            return refused(CM, "ConsentNotPatientOrDelegate", sender, patient)
        return self._grant(patient, grantee, kind, scope, purpose, expires_at, sender)

    def grant_signed(
        self,
        signer: str,
        request: tuple[Any, ...],
    ) -> Outcome:
        patient, grantee, kind, scope, purpose, expires_at, _, nonce, deadline = request
        at = self.now + 1
        if at > deadline:
            return refused(CM, "ConsentSignatureExpired", deadline)
        expected = self.nonces[(CM, patient)]
        if nonce != expected:
            return refused(CM, "ConsentSignatureReplayed", patient, nonce, expected)
        if not self.acts_for(signer, patient):
            return refused(CM, "ConsentInvalidSignature", signer, patient)
        outcome = self._grant(patient, grantee, kind, scope, purpose, expires_at, signer)
        if isinstance(outcome, Ok):
            inner = outcome.commit

            def commit() -> None:
                self.nonces[(CM, patient)] += 1
                inner()

            outcome.commit = commit
        return outcome

    def _grant(
        self,
        patient: str,
        grantee: str,
        kind: int,
        scope: bytes,
        purpose: int,
        expires_at: int,
        grantor: str,
    ) -> Outcome:
        at = self.now + 1
        if purpose in (P_NONE, P_EMERGENCY):
            return refused(CM, "ConsentInvalidPurpose", purpose)
        if expires_at <= at:
            return refused(CM, "ConsentInvalidExpiry", expires_at)
        if grantee in (patient, ZERO):
            return refused(CM, "ConsentInvalidGrantee", grantee)
        key = scope_key(kind, scope)

        def commit() -> None:
            self.grants[(patient, grantee, key)] = Grant(at, expires_at, purpose)
            self.changes[("AccessGranted", patient)] += 1

        return Ok(
            [
                ev(
                    CM,
                    "AccessGranted",
                    patient=patient,
                    grantee=grantee,
                    scopeKey=key,
                    scopeKind=kind,
                    scope=scope,
                    purpose=purpose,
                    expiresAt=expires_at,
                    envelopeDigest=ENVELOPE,
                    grantor=grantor,
                )
            ],
            commit,
        )

    def revoke(self, sender: str, patient: str, grantee: str, kind: int, scope: bytes) -> Outcome:
        at = self.now + 1
        if not self.acts_for(sender, patient):
            return refused(CM, "ConsentNotPatientOrDelegate", sender, patient)
        key = scope_key(kind, scope)
        grant = self.grants.get((patient, grantee, key))
        if grant is None or not grant.live(at):
            return refused(CM, "ConsentNotGranted", patient, grantee, key)

        def commit() -> None:
            grant.revoked_at = at
            self.changes[("AccessRevoked", patient)] += 1

        return Ok(
            [
                ev(
                    CM,
                    "AccessRevoked",
                    patient=patient,
                    grantee=grantee,
                    scopeKey=key,
                    revoker=sender,
                )
            ],
            commit,
        )

    def open_emergency(self, sender: str, patient: str, duration: int) -> Outcome:
        at = self.now + 1
        institution = verified_institution(self.parts, sender)
        if institution is None or self.parts[institution].kind != K_EMS:
            return refused(CM, "ConsentNotEmergencyService", sender)
        if duration == 0 or duration > MAX_EMERGENCY:
            return refused(CM, "ConsentEmergencyTooLong", duration, MAX_EMERGENCY)
        if self.role(patient) != R_PATIENT:
            return refused(CM, "ConsentNotPatient", patient)
        opening = self.openings.get((patient, institution))
        if opening is not None and at < opening.cooldown_until:
            return refused(
                CM, "ConsentEmergencyCoolingDown", patient, institution, opening.cooldown_until
            )

        def commit() -> None:
            service_round = self.parts[institution].round
            self.openings[(patient, institution)] = Opening(at, at + duration, round=service_round)
            self.changes[("EmergencyAccessOpened", patient)] += 1

        return Ok(
            [
                ev(
                    CM,
                    "EmergencyAccessOpened",
                    patient=patient,
                    opener=sender,
                    institution=institution,
                    expiresAt=at + duration,
                    reason=REASON,
                )
            ],
            commit,
        )

    def close_emergency(self, sender: str, patient: str, institution: str) -> Outcome:
        at = self.now + 1
        if not self.acts_for(sender, patient):
            return refused(CM, "ConsentNotPatientOrDelegate", sender, patient)
        opening = self.openings.get((patient, institution))
        if opening is None or not opening.live(at):
            return refused(CM, "ConsentNoEmergencyAccess", patient, institution)

        def commit() -> None:
            opening.closed_at = at
            self.changes[("EmergencyAccessClosed", patient)] += 1

        return Ok(
            [
                ev(
                    CM,
                    "EmergencyAccessClosed",
                    patient=patient,
                    institution=institution,
                    by=sender,
                )
            ],
            commit,
        )

    def erase(self, sender: str, rid: bytes) -> Outcome:
        record = self.records.get(rid)
        if record is None:
            return refused(CM, "ConsentUnknownRecord", rid)
        if not self.acts_for(sender, record.patient):
            return refused(CM, "ConsentNotPatientOrDelegate", sender, record.patient)

        def commit() -> None:
            self.erased.add(rid)

        return Ok([ev(CM, "RecordErased", id=rid, patient=record.patient, by=sender)], commit)

    # ------------------------------------------------------------------ claims: policies

    def issue_policy(self, sender: str, terms: tuple[Any, ...]) -> Outcome:
        patient, valid_from, valid_until, bps, deductible, limit, auto, root, digest_ = terms
        institution = verified_institution(self.parts, sender)
        if institution is None or self.parts[institution].kind != K_INSURER:
            return refused(CL, "ClaimNotInsurer", sender)
        if self.role(patient) != R_PATIENT:
            return refused(CL, "ClaimPatientNotRegistered", patient)
        pid = len(self.policies) + 1
        policy = Policy(
            pid, institution, patient, valid_from, valid_until, bps, deductible, limit, auto
        )

        def commit() -> None:
            self.policies[pid] = policy

        return Ok(
            [
                ev(
                    CL,
                    "PolicyIssued",
                    policyId=pid,
                    insurer=institution,
                    patient=patient,
                    validFrom=valid_from,
                    validUntil=valid_until,
                    coverageBps=bps,
                    deductible=deductible,
                    annualLimit=limit,
                    autoSettleLimit=auto,
                    codesRoot=root,
                    termsDigest=digest_,
                )
            ],
            commit,
        )

    def fund(self, sender: str, pid: int, amount: int) -> Outcome:
        policy = self.policies.get(pid)
        if policy is None:
            return refused(CL, "ClaimUnknownPolicy", pid)
        allowance = self.allowances.get(sender, 0)
        if allowance < amount:
            return refused(TK, "ERC20InsufficientAllowance", self.claims_manager, allowance, amount)
        if self.balances[sender] < amount:
            return refused(TK, "ERC20InsufficientBalance", sender, self.balances[sender], amount)

        def commit() -> None:
            self.balances[sender] -= amount
            self.balances[self.claims_manager] += amount
            policy.funded += amount
            self.money["funded"] += amount

        return Ok(
            [
                ev(TK, "Transfer", **{"from": sender, "to": self.claims_manager, "value": amount}),
                ev(
                    CL,
                    "PolicyFunded",
                    policyId=pid,
                    funder=sender,
                    amount=amount,
                    funded=policy.funded + amount,
                ),
            ],
            commit,
        )

    def reclaim(self, sender: str, pid: int) -> Outcome:
        at = self.now + 1
        policy = self.policies.get(pid)
        if policy is None:
            return refused(CL, "ClaimUnknownPolicy", pid)
        if sender != policy.insurer:
            return refused(CL, "ClaimNotPolicyInsurer", sender, pid)
        until = max(policy.valid_until + 1, policy.last_decision_at + DISPUTE_WINDOW)
        if policy.open_claims:
            until = 0
        if until == 0 or at < until:
            return refused(CL, "ClaimPolicyNotSettled", pid, until)
        amount = policy.pool
        if amount == 0:
            return refused(CL, "ClaimNothingToWithdraw", sender)

        def commit() -> None:
            policy.funded = policy.paid
            self._transfer(policy.insurer, amount)
            self.money["reclaimed"] += amount

        return Ok(
            [
                ev(CL, "PoolReclaimed", policyId=pid, insurer=policy.insurer, amount=amount),
                ev(TK, "Transfer", **{"from": self.claims_manager, "to": sender, "value": amount}),
            ],
            commit,
        )

    def withdraw(self, sender: str) -> Outcome:
        amount = self.credits[sender]
        if amount == 0:
            return refused(CL, "ClaimNothingToWithdraw", sender)

        def commit() -> None:
            self.credits[sender] = 0
            self._transfer(sender, amount)
            self.money["withdrawn"] += amount

        return Ok(
            [
                ev(CL, "PaymentWithdrawn", payee=sender, amount=amount, holder=sender),
                ev(TK, "Transfer", **{"from": self.claims_manager, "to": sender, "value": amount}),
            ],
            commit,
        )

    def _transfer(self, to: str, amount: int) -> None:
        self.balances[self.claims_manager] -= amount
        self.balances[to] += amount

    def _pay(self, policy: Policy, payee: str, amount: int, deductible: int) -> None:
        policy.paid += amount
        self.credits[payee] += amount
        policy.deductible_met += deductible

    # ------------------------------------------------------------------ claims: submission

    def _evidence_problem(self, rid: bytes, policy: Policy, at: int) -> Refused | None:
        record = self.records.get(rid)
        if (record.patient if record else ZERO) != policy.patient:
            return refused(CL, "ClaimEvidenceNotPatients", rid, policy.patient)
        if not self.has_access(policy.insurer, rid, at, P_PAYMENT):
            return refused(CL, "ClaimEvidenceNotConsented", rid, policy.insurer)
        return None

    def submit(self, sender: str, submission: tuple[Any, ...]) -> Outcome:
        pid, billed, pay_patient, rid, evidence, codes, proofs, service, identifier = submission
        at = self.now + 1
        policy = self.policies.get(pid)
        if policy is None:
            return refused(CL, "ClaimUnknownPolicy", pid)
        record = self.records.get(rid)
        provider = record.writer if record is not None else 0
        submitter = sender
        if sender != policy.patient:
            institution, number = self.care_provider_of(sender)
            if institution is None:
                return refused(CL, "ClaimNotProviderOrPatient", sender, pid)
            if number != provider:
                return refused(CL, "ClaimNotRecordWriter", sender, rid)
            submitter = institution
        if at < policy.valid_from or at > policy.valid_until:
            return refused(CL, "ClaimPolicyNotActive", pid, at)
        if (
            record is None
            or record.patient != policy.patient
            or record.category != FINANCIAL
            or provider == 0
        ):
            return refused(CL, "ClaimRecordNotProviders", rid)
        if not self.has_access(policy.insurer, rid, at, P_PAYMENT):
            return refused(CL, "ClaimEvidenceNotConsented", rid, policy.insurer)
        for item in evidence:
            if (problem := self._evidence_problem(item, policy, at)) is not None:
                return problem
        by_patient = submitter == policy.patient
        cid = patient_claim_id(rid) if by_patient else int.from_bytes(rid, "big")
        if cid in self.claims:
            return refused(CL, "ClaimDuplicate", cid)
        # The patient's approved claim of this record took it: the provider's is the same care.
        if not by_patient and (holder := self.keys.get(bytes(record_key(rid)))) is not None:
            return refused(CL, "ClaimDuplicate", holder)
        ckey = care_key(policy.patient, provider, service, codes)
        if ckey in self.keys:
            return refused(CL, "ClaimDuplicate", self.keys[ckey])
        ikey = identifier_key(provider, identifier) if identifier != ZERO32 else None
        if ikey is not None and ikey in self.keys:
            return refused(CL, "ClaimDuplicate", self.keys[ikey])
        review, allowed, deductible = self._review(policy, billed, codes, proofs, by_patient)
        automatic = review == REV_NONE
        payee = policy.patient if pay_patient else submitter
        events = [
            ev(
                CL,
                "ClaimSubmitted",
                claimId=cid,
                policyId=pid,
                submitter=submitter,
                claimRecord=bytes(rid),
                billed=billed,
                payPatient=pay_patient,
                evidence=tuple(evidence),
                codeHashes=tuple(codes),
                automatic=automatic,
                review=review,
            )
        ]
        if automatic:
            events.append(
                ev(
                    CL,
                    "ClaimApproved",
                    claimId=cid,
                    payee=payee,
                    amount=allowed,
                    allowed=allowed,
                    deductibleApplied=deductible,
                    automatic=True,
                    decider=self.claims_manager,
                )
            )
            if allowed:
                events.append(
                    ev(
                        TK,
                        "Transfer",
                        **{"from": self.claims_manager, "to": payee, "value": allowed},
                    )
                )

        def commit() -> None:
            claim = Claim(
                cid,
                rid,
                submitter,
                pid,
                C_APPROVED if automatic else C_SUBMITTED,
                pay_patient,
                billed,
                at,
                ckey,
                ikey,
            )
            self.claims[cid] = claim
            claim.by_patient = by_patient
            if by_patient:
                claim.pending = True
            else:
                self.keys[ckey] = cid
                if ikey is not None:
                    self.keys[ikey] = cid
            if automatic:
                claim.paid = allowed
                claim.decided_at = at
                claim.deductible_applied = deductible
                policy.paid += allowed
                policy.deductible_met += deductible
                self._transfer(payee, allowed)
                self.money["at_once"] += allowed
            else:
                policy.open_claims += 1

        return Ok(events, commit)

    def _review(
        self,
        policy: Policy,
        billed: int,
        codes: tuple[bytes, ...],
        proofs: list[list[bytes]],
        by_patient: bool,
    ) -> tuple[int, int, int]:
        """Why a submission waits for the insurer (``REV_NONE``: it settles at once), and what
        it would be paid: README "a claim the patient submits is always reviewed", then the
        automatic limit, the code proofs, the annual limit, the pool, the insurer's standing."""
        if by_patient:
            return REV_PATIENT, 0, 0
        if policy.auto_settle_limit == 0:
            return REV_DISABLED, 0, 0
        if billed > policy.auto_settle_limit:
            return REV_ABOVE, 0, 0
        if not proofs:
            return REV_CODES, 0, 0
        for code, proof in zip(codes, proofs, strict=True):
            if not oz_verify(proof, CODES_ROOT, merkle_leaf(code)):
                return REV_CODES, 0, 0
        allowed, deductible = allowed_now(policy, billed)
        if allowed == 0 and deductible != billed:
            return REV_LIMIT, 0, 0
        if policy.pool < allowed:
            return REV_POOL, 0, 0
        if self.parts[policy.insurer].status != S_VERIFIED:
            return REV_INSURER, 0, 0
        return REV_NONE, allowed, deductible

    # ------------------------------------------------------------------ claims: decisions

    def _decidable(self, sender: str, cid: int, or_info: bool) -> Refused | tuple[Claim, Policy]:
        claim = self.claims.get(cid)
        if claim is None:
            return refused(CL, "ClaimUnknownClaim", cid)
        policy = self.policies[claim.policy_id]
        if verified_institution(self.parts, sender) != policy.insurer:
            return refused(CL, "ClaimNotPolicyInsurer", sender, claim.policy_id)
        if claim.state != C_SUBMITTED and (not or_info or claim.state != C_INFO):
            return refused(CL, "ClaimInvalidState", cid, claim.state)
        return claim, policy

    def _party(self, sender: str, cid: int) -> Refused | tuple[Claim, Policy]:
        claim = self.claims.get(cid)
        if claim is None:
            return refused(CL, "ClaimUnknownClaim", cid)
        policy = self.policies[claim.policy_id]
        if sender in (claim.submitter, policy.patient):
            return claim, policy
        institution = verified_institution(self.parts, sender)
        if institution == claim.submitter:
            return claim, policy
        # The provider that wrote the claim record is a party to the patient's claim.
        writer = self.records[claim.record].writer
        if institution is None or writer == 0 or self.parts[institution].number != writer:
            return refused(CL, "ClaimNotSubmitterOrPatient", sender, cid)
        return claim, policy

    def _close(self, policy: Policy, at: int, disputable: bool) -> None:
        """A claim leaves the open count; a decision that can be disputed (partial approval,
        denial) keeps the pool until its dispute window closes."""
        policy.open_claims -= 1
        if disputable:
            policy.last_decision_at = at

    def _taken(self, claim: Claim) -> Refused | None:
        """Before a claim is paid or covered. A patient's claim takes its keys and its record:
        refused while the provider's claim of the record stands (unless settled for nothing) or
        when another claim took a key. A provider's claim: refused once the patient's claim
        took its record (its denial, disputed, cannot pay the record twice)."""
        if not claim.by_patient:
            holder = self.keys.get(bytes(record_key(claim.record)))
            return None if holder is None else refused(CL, "ClaimDuplicate", holder)
        if not claim.pending:
            return None
        theirs = self.claims.get(int.from_bytes(claim.record, "big"))
        if theirs is not None and not (
            theirs.state == C_DENIED
            or (theirs.state == C_RESOLVED and theirs.paid == 0 and theirs.deductible_applied == 0)
        ):
            return refused(CL, "ClaimDuplicate", theirs.id)
        for key in (claim.care_key, claim.identifier_key):
            if key is not None and key in self.keys:
                return refused(CL, "ClaimDuplicate", self.keys[key])
        return None

    def _reserve(self, claim: Claim) -> None:
        if claim.pending:
            claim.pending = False
            self.keys[claim.care_key] = claim.id
            if claim.identifier_key is not None:
                self.keys[claim.identifier_key] = claim.id
            self.keys[bytes(record_key(claim.record))] = claim.id

    def approve(self, sender: str, cid: int, choice: str) -> tuple[Outcome, int]:
        at = self.now + 1
        found = self._decidable(sender, cid, True)
        if isinstance(found, Refused):
            return found, 0
        claim, policy = found
        allowed, deductible = allowed_now(policy, claim.billed)
        amount = {"full": allowed, "half": allowed // 2, "zero": 0, "over": allowed + 1}[choice]
        if amount == 0 and deductible != claim.billed:
            return refused(CL, "ClaimInvalidAmount", 0), amount
        if amount > allowed:
            return refused(CL, "ClaimAmountExceedsAllowed", amount, allowed), amount
        if policy.pool < amount:
            return refused(CL, "ClaimPoolInsufficient", policy.id, amount, policy.pool), amount
        if (taken := self._taken(claim)) is not None:
            return taken, amount
        payee = policy.patient if claim.pay_patient else claim.submitter

        def commit() -> None:
            claim.state = C_APPROVED if amount == allowed else C_PARTIAL
            claim.paid = amount
            claim.decided_at = at
            claim.deductible_applied = deductible
            self._close(policy, at, amount != allowed)
            self._reserve(claim)
            self._pay(policy, payee, amount, deductible)

        event = ev(
            CL,
            "ClaimApproved",
            claimId=cid,
            payee=payee,
            amount=amount,
            allowed=allowed,
            deductibleApplied=deductible,
            automatic=False,
            decider=sender,
        )
        return Ok([event], commit), amount

    def deny(self, sender: str, cid: int, reason: int) -> Outcome:
        at = self.now + 1
        found = self._decidable(sender, cid, True)
        if isinstance(found, Refused):
            return found
        claim, policy = found

        def commit() -> None:
            claim.state = C_DENIED
            claim.decided_at = at
            self._close(policy, at, True)

        return Ok([ev(CL, "ClaimDenied", claimId=cid, reasonCode=reason, decider=sender)], commit)

    def request_info(self, sender: str, cid: int, reason: int) -> Outcome:
        found = self._decidable(sender, cid, False)
        if isinstance(found, Refused):
            return found
        claim, _ = found
        if claim.info_requests >= MAX_INFO_REQUESTS:
            return refused(CL, "ClaimTooManyInfoRequests", cid)

        def commit() -> None:
            claim.info_requests += 1
            claim.state = C_INFO

        return Ok(
            [ev(CL, "ClaimInfoRequested", claimId=cid, reasonCode=reason, requester=sender)],
            commit,
        )

    def provide_info(self, sender: str, cid: int, evidence: tuple[bytes, ...]) -> Outcome:
        at = self.now + 1
        found = self._party(sender, cid)
        if isinstance(found, Refused):
            return found
        claim, policy = found
        if claim.state != C_INFO:
            return refused(CL, "ClaimInvalidState", cid, claim.state)
        if not evidence:
            return refused(CL, "ClaimEvidenceRequired")
        for item in evidence:
            if (problem := self._evidence_problem(item, policy, at)) is not None:
                return problem

        def commit() -> None:
            claim.state = C_SUBMITTED
            claim.answered_at = at

        return Ok(
            [ev(CL, "ClaimInfoProvided", claimId=cid, evidence=tuple(evidence), provider=sender)],
            commit,
        )

    def dispute(self, sender: str, cid: int, reason: int) -> Outcome:
        at = self.now + 1
        found = self._party(sender, cid)
        if isinstance(found, Refused):
            return found
        claim, policy = found
        if claim.state not in (C_PARTIAL, C_DENIED):
            return refused(CL, "ClaimInvalidState", cid, claim.state)
        closed_at = claim.decided_at + DISPUTE_WINDOW
        if at >= closed_at:
            return refused(CL, "ClaimDisputeWindowClosed", cid, closed_at)

        def commit() -> None:
            claim.state = C_DISPUTED
            policy.open_claims += 1

        return Ok(
            [ev(CL, "ClaimDisputed", claimId=cid, reasonCode=reason, disputer=sender)], commit
        )

    def escalate(self, sender: str, cid: int) -> Outcome:
        at = self.now + 1
        known = self.claims.get(cid)
        insurer = self.policies[known.policy_id].insurer if known is not None else None
        # A suspended insurer's own account escalates its undecided claims (its pool could be
        # stranded otherwise); everyone else must be a party to the claim.
        if sender == insurer and self.parts[insurer].status != S_VERIFIED:
            assert known is not None
            found: Refused | tuple[Claim, Policy] = (known, self.policies[known.policy_id])
        else:
            found = self._party(sender, cid)
        if isinstance(found, Refused):
            return found
        claim, policy = found
        verified = self.parts[policy.insurer].status == S_VERIFIED
        # Overdue: 30 days after submission or the last answer; at once, also while waiting
        # for an answer, when the insurer is suspended.
        if claim.state != C_SUBMITTED and (claim.state != C_INFO or verified):
            return refused(CL, "ClaimInvalidState", cid, claim.state)
        until = max(claim.answered_at, claim.submitted_at) + DECISION_PERIOD
        if at < until and verified:
            return refused(CL, "ClaimNotOverdue", cid, until)

        def commit() -> None:
            claim.state = C_DISPUTED

        return Ok([ev(CL, "ClaimEscalated", claimId=cid, by=sender)], commit)

    def resolve(self, sender: str, cid: int, choice: str, covered: bool) -> tuple[Outcome, int]:
        at = self.now + 1
        if sender != self.resolver:
            return refused(CL, "ClaimNotResolver", sender), 0
        claim = self.claims.get(cid)
        if claim is None:
            return refused(CL, "ClaimUnknownClaim", cid), 0
        if claim.state != C_DISPUTED:
            return refused(CL, "ClaimInvalidState", cid, claim.state), 0
        policy = self.policies[claim.policy_id]
        unpaid = claim.paid == 0
        if unpaid:
            allowed, deductible = allowed_now(policy, claim.billed)
        else:
            deductible = claim.deductible_applied
            allowed = min(
                coverage(policy, claim.billed, deductible) - claim.paid, policy.limit_left
            )
        award = {"full": allowed, "half": allowed // 2, "zero": 0, "over": allowed + 1}[choice]
        if unpaid and not covered:
            if award != 0:
                return refused(CL, "ClaimInvalidAmount", award), award
            deductible = 0
        if award > allowed:
            return refused(CL, "ClaimAmountExceedsAllowed", award, allowed), award
        if policy.pool < award:
            return refused(CL, "ClaimPoolInsufficient", policy.id, award, policy.pool), award
        pays = award != 0 or (unpaid and covered)
        if pays and (taken := self._taken(claim)) is not None:
            return taken, award
        payee = policy.patient if claim.pay_patient else claim.submitter

        def commit() -> None:
            claim.state = C_RESOLVED
            claim.paid += award
            if unpaid:
                claim.deductible_applied = deductible
            self._close(policy, at, False)
            if pays:
                self._reserve(claim)
            self._pay(policy, payee, award, deductible if unpaid else 0)

        event = ev(CL, "DisputeResolved", claimId=cid, payee=payee, award=award, resolver=sender)
        return Ok([event], commit), award


# ---------------------------------------------------------------------------- the auditor


CHANGE_EVENTS = (
    "AccessGranted",
    "AccessRevoked",
    "EmergencyAccessOpened",
    "EmergencyAccessClosed",
    "CareAuthorized",
    "CareRevoked",
)


class Auditor:
    """Who may read and who wrote what, rebuilt from the contracts' logs alone.

    It starts from an empty chain and reads every event of the four contracts (and the
    token), in order, with each event's block time. Whatever it finds against the rules is a
    ``problem``; the invariants require none.
    """

    def __init__(self, manager: str) -> None:
        self.manager = manager
        self.parts: dict[str, Party] = {}
        self.by_number: dict[int, str] = {}
        self.delegates: set[tuple[str, str]] = set()
        self.care: dict[tuple[str, int], list[list[int]]] = {}
        self.records: dict[bytes, Rec] = {}
        self.batches: dict[bytes, tuple[str, int, int]] = {}  # id -> (issuer, time, writer)
        self.grants: dict[tuple[str, str, bytes], Grant] = {}
        self.openings: dict[tuple[str, str], Opening] = {}
        self.erased: set[bytes] = set()
        self.claims: Counter[int] = Counter()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.money: Counter[str] = Counter()
        self.problems: list[str] = []
        self.round_bound = False

    def problem(self, text: str) -> None:
        self.problems.append(text)

    # ------------------------------------------------------------------ reading

    def feed(self, events: list[tuple[str, str, dict[str, Any], int, str]]) -> None:
        """``events``: ``(contract, event, arguments, block time, transaction hash)``, in
        chain order."""
        index = 0
        while index < len(events):
            tx = events[index][4]
            group = []
            while index < len(events) and events[index][4] == tx:
                group.append(events[index])
                index += 1
            self._transaction(group)

    def _transaction(self, group: list[tuple[str, str, dict[str, Any], int, str]]) -> None:
        anchored: list[bytes] = []
        superseded: list[tuple[bytes, bytes]] = []
        for contract, name, args, at, _ in group:
            handler = getattr(self, f"_on_{name}", None)
            if name in CHANGE_EVENTS:
                self.counts[(name, args["patient"])] += 1
            if name == "RecordAnchored":
                anchored.append(args["id"])
            if name == "RecordSuperseded":
                superseded.append((args["previous"], args["next"]))
            if handler is not None and contract != "?":
                handler(args, at)
        for rid in anchored:
            self._check_writer(rid)
        for previous, rid in superseded:
            self._check_successor(previous, rid)

    # ------------------------------------------------------------------ registry

    def _on_PatientRegistered(self, args: dict[str, Any], at: int) -> None:
        self.parts[args["patient"]] = Party(R_PATIENT)

    def _on_InstitutionApplied(self, args: dict[str, Any], at: int) -> None:
        self.parts[args["institution"]] = Party(
            R_INSTITUTION, args["kind"], S_PENDING, number=args["number"]
        )
        self.by_number[args["number"]] = args["institution"]

    def _status(self, institution: str, status: int) -> None:
        self.parts[institution].status = status
        self.parts[institution].round += 1  # every status change starts a new approval round

    def _on_InstitutionVerified(self, args: dict[str, Any], at: int) -> None:
        self._status(args["institution"], S_VERIFIED)

    def _on_InstitutionReinstated(self, args: dict[str, Any], at: int) -> None:
        self._status(args["institution"], S_VERIFIED)

    def _on_InstitutionSuspended(self, args: dict[str, Any], at: int) -> None:
        self._status(args["institution"], S_SUSPENDED)

    def _on_PractitionerAdded(self, args: dict[str, Any], at: int) -> None:
        p = self.parts.setdefault(args["practitioner"], Party(R_NONE))
        p.role = R_PRACTITIONER
        p.employer = args["institution"]

    def _on_PractitionerRemoved(self, args: dict[str, Any], at: int) -> None:
        # The same event withdraws an invitation: it ends a job only at the named employer.
        p = self.parts.get(args["practitioner"])
        if p is not None and p.role == R_PRACTITIONER and p.employer == args["institution"]:
            p.role = R_NONE
            p.employer = ZERO

    def _on_DelegateChanged(self, args: dict[str, Any], at: int) -> None:
        pair = (args["patient"], args["delegate"])
        if args["allowed"]:
            self.delegates.add(pair)
        else:
            self.delegates.discard(pair)

    def _acts_for(self, account: str, patient: str, what: str) -> None:
        if account != patient and (patient, account) not in self.delegates:
            self.problem(f"{what} by {who(account)}, neither {who(patient)} nor a delegate")

    def _on_CareAuthorized(self, args: dict[str, Any], at: int) -> None:
        patient, institution = args["patient"], args["institution"]
        self._acts_for(args["by"], patient, f"care of {who(patient)} with {who(institution)}")
        p = self.parts.get(institution)
        if p is None or p.role != R_INSTITUTION or p.status != S_VERIFIED:
            self.problem(f"care opened with {who(institution)}, not a verified institution")
            return
        periods = self.care.setdefault((patient, p.number), [])
        if live_period(periods, at):
            periods[-1][1] = args["until"]
        else:
            periods.append([at, args["until"]])

    def _on_CareRevoked(self, args: dict[str, Any], at: int) -> None:
        patient, institution = args["patient"], args["institution"]
        if args["by"] != institution:
            self._acts_for(args["by"], patient, f"care of {who(patient)} ended")
        periods = self.care.get((patient, self.parts[institution].number))
        if not live_period(periods, at):
            self.problem(f"care of {who(patient)} with {who(institution)} ended while not live")
            return
        periods[-1][1] = at  # type: ignore[index]

    # ------------------------------------------------------------------ records

    def _on_BatchAnchored(self, args: dict[str, Any], at: int) -> None:
        may, writer = writer_of(self.parts, args["issuer"])
        if not may:
            self.problem(f"batch anchored by {who(args['issuer'])}, who may not write")
        self.batches[args["batchId"]] = (args["issuer"], at, writer)

    def _on_RecordAnchored(self, args: dict[str, Any], at: int) -> None:
        rid = args["id"]
        if rid in self.records:
            self.problem(f"record {rid.hex()} anchored twice")
        _, writer = writer_of(self.parts, args["issuer"])
        self.records[rid] = Rec(
            args["patient"], args["issuer"], writer, args["category"], at, args["previous"]
        )

    def _on_RecordProven(self, args: dict[str, Any], at: int) -> None:
        record = self.records[args["id"]]
        issuer, batch_at, writer = self.batches[args["batchId"]]
        if issuer != record.issuer:
            self.problem(f"record proven from {who(issuer)}'s batch names {who(record.issuer)}")
        record.batch = args["batchId"]
        record.writer = writer
        record.anchored_at = batch_at

    def _check_writer(self, rid: bytes) -> None:
        """No record of an unauthorised writer: the issuer may write for the patient (at the
        batch's time, for a batched record)."""
        record = self.records[rid]
        if record.batch is not None:
            if record.writer == 0:
                allowed = record.patient == record.issuer
            else:
                periods = self.care.get((record.patient, record.writer))
                allowed = held_period(periods, record.anchored_at)
        else:
            may, writer = writer_of(self.parts, record.issuer)
            if writer == 0:
                allowed = may and record.issuer == record.patient
            else:
                periods = self.care.get((record.patient, writer))
                allowed = may and live_period(periods, record.anchored_at)
        if not allowed:
            self.problem(
                f"record {rid.hex()[:12]} of {who(record.patient)} written by "
                f"{who(record.issuer)} (writer {record.writer}), who may not write for them"
            )

    def _check_successor(self, previous: bytes, rid: bytes) -> None:
        """A record's successor only by its writer, for the same patient, once, not earlier."""
        old, new = self.records.get(previous), self.records[rid]
        if old is None:
            self.problem(f"{rid.hex()[:12]} supersedes an unknown record")
            return
        if new.previous != previous:
            self.problem(f"{rid.hex()[:12]} supersedes {previous.hex()[:12]}, not its previous")
        if old.writer != new.writer or old.patient != new.patient:
            self.problem(
                f"{rid.hex()[:12]} (writer {new.writer}, by {who(new.issuer)}) supersedes "
                f"{previous.hex()[:12]} (writer {old.writer}) of {who(old.patient)}"
            )
        if old.superseded:
            self.problem(f"{previous.hex()[:12]} superseded twice")
        if old.anchored_at > new.anchored_at:
            self.problem(f"{rid.hex()[:12]} predates the version it supersedes")
        old.superseded = True

    # ------------------------------------------------------------------ consent

    def _on_AccessGranted(self, args: dict[str, Any], at: int) -> None:
        patient = args["patient"]
        self._acts_for(args["grantor"], patient, f"grant of {who(patient)}")
        key = (patient, args["grantee"], args["scopeKey"])
        self.grants[key] = Grant(at, args["expiresAt"], args["purpose"])

    def _on_AccessRevoked(self, args: dict[str, Any], at: int) -> None:
        patient = args["patient"]
        self._acts_for(args["revoker"], patient, f"revocation of {who(patient)}'s grant")
        grant = self.grants.get((patient, args["grantee"], args["scopeKey"]))
        if grant is None or not grant.live(at):
            self.problem(f"revocation of a grant of {who(patient)} that was not live")
        else:
            grant.revoked_at = at

    def _on_EmergencyAccessOpened(self, args: dict[str, Any], at: int) -> None:
        institution = verified_institution(self.parts, args["opener"])
        if institution != args["institution"] or self.parts[institution].kind != K_EMS:
            self.problem(f"emergency access opened by {who(args['opener'])}")
        service_round = self.parts[args["institution"]].round
        key = (args["patient"], args["institution"])
        self.openings[key] = Opening(at, args["expiresAt"], round=service_round)

    def _on_EmergencyAccessClosed(self, args: dict[str, Any], at: int) -> None:
        patient = args["patient"]
        self._acts_for(args["by"], patient, f"closing of {who(patient)}'s emergency access")
        self.openings[(patient, args["institution"])].closed_at = at

    def _on_RecordErased(self, args: dict[str, Any], at: int) -> None:
        self._acts_for(args["by"], args["patient"], "erasure")
        self.erased.add(args["id"])

    def has_access(self, reader: str, rid: bytes, at: int) -> bool:
        record = self.records.get(rid)
        if record is None or rid in self.erased:
            return False
        if reader == record.patient:
            return True
        for key in (
            scope_key(SCOPE_RECORD, rid),
            scope_key(SCOPE_CATEGORY, category_scope(record.category)),
            ALL_KEY,
        ):
            grant = self.grants.get((record.patient, reader, key))
            if grant is not None and grant.live(at):
                return True
        institution = verified_institution(self.parts, reader)
        if institution is None or self.parts[institution].kind != K_EMS:
            return False
        opening = self.openings.get((record.patient, institution))
        if opening is None or not opening.live(at):
            return False
        return not self.round_bound or self.parts[institution].round == opening.round

    # ------------------------------------------------------------------ money

    def _on_PolicyFunded(self, args: dict[str, Any], at: int) -> None:
        self.money["funded"] += args["amount"]

    def _on_ClaimSubmitted(self, args: dict[str, Any], at: int) -> None:
        self.claims[args["claimId"]] += 1
        if self.claims[args["claimId"]] > 1:
            self.problem(f"claim {args['claimId']:#x} submitted twice")

    def _on_ClaimApproved(self, args: dict[str, Any], at: int) -> None:
        self.money["paid"] += args["amount"]
        if args["automatic"]:
            self.money["at_once"] += args["amount"]

    def _on_DisputeResolved(self, args: dict[str, Any], at: int) -> None:
        self.money["paid"] += args["award"]

    def _on_PaymentWithdrawn(self, args: dict[str, Any], at: int) -> None:
        self.money["withdrawn"] += args["amount"]

    def _on_PoolReclaimed(self, args: dict[str, Any], at: int) -> None:
        self.money["reclaimed"] += args["amount"]


# ---------------------------------------------------------------------------- chain plumbing


@dataclass
class Base:
    """The world every example starts from: deployed, set up, snapshotted by the caller."""

    node: Node
    codecs: dict[str, Codec]
    world: World
    auditor: Auditor


def deploy(node: Node, project: Any, name: str, types: list[str], args: list[Any]) -> Codec:
    contract_type = project.get_contract(name).contract_type
    abi = [item.model_dump(mode="json", by_alias=True) for item in contract_type.abi]
    code = contract_type.deployment_bytecode.bytecode
    data = code + encode(types, args).hex() if types else code
    receipt = node.send(ADDRESS["admin"], None, data, gas=29_000_000)
    assert receipt.status == 1, f"deploying {name} failed"
    return node.track(Codec(name, abi, receipt.raw["contractAddress"]))


def encryption_key(name: str) -> tuple[bytes, bytes]:
    """``(compressed public key, secret)`` of an actor's encryption key."""
    secret = keccak(text=f"medledger-trust-encryption-{name}")
    return coincurve.PrivateKey(secret).public_key.format(compressed=True), secret


class Driver:
    """Sends moves the model predicted and checks them; shared by the set-up and the rules."""

    def __init__(self, node: Node, codecs: dict[str, Codec], world: World) -> None:
        self.node = node
        self.codecs = codecs
        self.world = world

    def view(self, contract: str, function: str, *args: Any) -> Any:
        codec = self.codecs[contract]
        ok, data = self.node.call(ADDRESS["admin"], codec.address, codec.data(function, *args))
        assert ok, f"{function} reverted"
        return codec.result(function, data)

    def describe(self, data: bytes) -> str:
        for codec in self.codecs.values():
            if bytes(data[:4]) in codec.error_selectors:
                return codec.describe_error(data)
        return f"<revert data 0x{bytes(data).hex()}>"

    def attempt(
        self, sender: str, contract: str, function: str, args: tuple[Any, ...], outcome: Outcome
    ) -> Receipt | None:
        """Sends an accepted move and checks its events, or calls a refused one (at the second
        it would run) and checks its error; then the model follows."""
        codec = self.codecs[contract]
        data = codec.data(function, *args)
        w = self.world
        move = f"{function} by {who(sender)}"
        if isinstance(outcome, Refused):
            STATS["refused"] += 1
            MOVES[f"{function} -> {outcome.error}"] += 1
            ok, out = self.node.call(sender, codec.address, data, time=w.now + 1)
            want = self.codecs[outcome.contract].error_data(outcome.error, *outcome.args)
            assert not ok, f"{move}: the model refuses it ({outcome.error}) but the chain accepts"
            assert out == want, (
                f"{move}: expected {self.describe(want)}, chain reverted with {self.describe(out)}"
            )
            return None
        STATS["sent"] += 1
        MOVES[f"{function} -> ok"] += 1
        receipt = self.node.send(sender, codec.address, data)
        if receipt.status != 1:
            _, out = self.node.call(sender, codec.address, data, time=receipt.timestamp)
            raise AssertionError(
                f"{move}: the model accepts it but the chain reverted with {self.describe(out)}"
            )
        assert receipt.timestamp == w.now + 1, "the block time is not the model's"
        got = [(c, n, dict(a)) for c, n, a in receipt.events]
        want_events = [(c, n, normalised(a)) for c, n, a in outcome.events]
        assert got == want_events, f"{move}: events\n  expected {want_events}\n  got      {got}"
        w.now = receipt.timestamp
        w.block = receipt.block
        outcome.commit()
        return receipt

    def ok(self, sender: str, contract: str, function: str, *args: Any) -> Receipt:
        """A set-up transaction outside the model (token and roles)."""
        codec = self.codecs[contract]
        receipt = self.node.send(sender, codec.address, codec.data(function, *args))
        assert receipt.status == 1, f"{function} failed"
        self.world.now = receipt.timestamp
        self.world.block = receipt.block
        return receipt

    def expect_ok(self, *move: Any) -> Receipt:
        receipt = self.attempt(*move)
        assert receipt is not None, f"set-up move {move[2]} was refused by the model"
        return receipt


def normalised(args: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in args.items():
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value)
        elif isinstance(value, list | tuple):
            value = tuple(bytes(v) if isinstance(v, bytes | bytearray) else v for v in value)
        out[key] = value
    return out


def set_up(node: Node, project: Any, chain_id: int) -> Base:
    """Deploys the contracts and builds the starting world through the model."""
    rpc = node.rpc
    for name in NAMES:
        rpc.request("anvil_impersonateAccount", [ADDRESS[name]])
        rpc.request("anvil_setBalance", [ADDRESS[name], hex(10**24)])
    registrars = [ADDRESS[r] for r in REGISTRARS]
    codecs = {}
    codecs[PR] = deploy(node, project, PR, ["address[]", "uint8"], [registrars, THRESHOLD])
    codecs[RR] = deploy(node, project, RR, ["address"], [codecs[PR].address])
    codecs[CM] = deploy(
        node, project, CM, ["address", "address"], [codecs[PR].address, codecs[RR].address]
    )
    codecs[TK] = deploy(node, project, TK, ["address"], [ADDRESS["admin"]])
    codecs[CL] = deploy(
        node,
        project,
        CL,
        ["address", "address", "address", "address", "uint40", "address"],
        [
            codecs[PR].address,
            codecs[RR].address,
            codecs[CM].address,
            codecs[TK].address,
            DISPUTE_WINDOW,
            ADDRESS["admin"],
        ],
    )
    world = World({name: codec.address for name, codec in codecs.items()})
    world.chain_id = chain_id
    emergency = codecs[CM].functions["emergencyOf"].outputs[0]
    world.round_bound = emergency.count(",") >= 3
    head = rpc.request("eth_getBlockByNumber", ["latest", False])
    world.now, world.block = int(head["timestamp"], 16), int(head["number"], 16)
    auditor = Auditor(codecs[CL].address)
    auditor.round_bound = world.round_bound
    drive = Driver(node, codecs, world)
    a = ADDRESS

    def key_proof(name: str) -> tuple[bytes, bytes]:
        key, secret = encryption_key(name)
        key_digest = drive.view(PR, "keyDigest", a[name], key)
        return key, bytes(sign_digest(secret, key_digest))

    for name in PATIENTS:
        key, proof = key_proof(name)
        drive.expect_ok(
            a[name], PR, "registerPatient", (key, proof), world.register_patient(a[name], key)
        )
    for name, kind in INSTITUTIONS.items():
        key, proof = key_proof(name)
        title = f"Trust {name}"
        drive.expect_ok(
            a[name],
            PR,
            "applyAsInstitution",
            (kind, title, key, proof),
            world.apply_institution(a[name], kind, title, key),
        )
        for registrar in REGISTRARS[:THRESHOLD]:
            drive.expect_ok(
                a[registrar],
                PR,
                "approveInstitution",
                (a[name],),
                world.approve_institution(a[registrar], a[name]),
            )
    for employer, practitioner in (("hospital", "doctor"), ("ems", "paramedic")):
        drive.expect_ok(
            a[employer],
            PR,
            "addPractitioner",
            (a[practitioner],),
            world.invite(a[employer], a[practitioner]),
        )
        drive.expect_ok(
            a[practitioner],
            PR,
            "acceptPractitioner",
            (a[employer],),
            world.accept(a[practitioner], a[employer]),
        )
    drive.expect_ok(
        a["patient0"],
        PR,
        "setDelegate",
        (a["delegate"], True),
        world.set_delegate(a["patient0"], a["delegate"], True),
    )
    for patient, institution, until in (
        ("patient0", "hospital", MAX_UINT40),
        ("patient0", "clinic", MAX_UINT40),
        ("patient1", "hospital", world.now + 3 * DAY),
        ("patient1", "clinic", MAX_UINT40),
    ):
        drive.expect_ok(
            a[patient],
            PR,
            "authorizeCare",
            (a[patient], a[institution], until),
            world.authorize_care(a[patient], a[patient], a[institution], until),
        )
    # The insurer may read the first two patients' financial records for payment.
    for patient in PATIENTS[:2]:
        expires = world.now + 400 * DAY
        scope = category_scope(FINANCIAL)
        drive.expect_ok(
            a[patient],
            CM,
            "grant",
            (a[patient], a["insurer"], SCOPE_CATEGORY, scope, P_PAYMENT, expires, ENVELOPE),
            world.grant(
                a[patient], a[patient], a["insurer"], SCOPE_CATEGORY, scope, P_PAYMENT, expires
            ),
        )
    # Money: the insurer and the stranger hold tokens and let the manager take them.
    drive.ok(a["admin"], CL, "grantRole", RESOLVER_ROLE, a["resolver"])
    for name in ("insurer", "stranger"):
        drive.ok(a["admin"], TK, "mint", a[name], 10**7 * USD)
        world.balances[a[name]] += 10**7 * USD
        drive.ok(a[name], TK, "approve", codecs[CL].address, MAX_UINT256)
        world.allowances[a[name]] = MAX_UINT256
    terms = (
        a["patient0"],
        world.now - HOUR,
        world.now + 200 * DAY + HOUR // 2,
        8000,
        100 * USD,
        3000 * USD,
        500 * USD,
        bytes(CODES_ROOT),
        TERMS,
    )
    drive.expect_ok(
        a["insurer"], CL, "issuePolicy", (terms,), world.issue_policy(a["insurer"], terms)
    )
    drive.expect_ok(
        a["insurer"], CL, "fundPolicy", (1, 2000 * USD), world.fund(a["insurer"], 1, 2000 * USD)
    )
    # A few records: the patient's own, and financial records by the hospital and the clinic.
    for issuer, patient, n, category in (
        ("patient0", "patient0", 0, LAB),
        ("hospital", "patient0", 0, FINANCIAL),
        ("clinic", "patient0", 1, FINANCIAL),
        ("hospital", "patient1", 0, FINANCIAL),
    ):
        move = (a[patient], content(n)[0], content(n)[1], category, ZERO32)
        drive.expect_ok(
            a[issuer], RR, "anchor", move, world.anchor(a[issuer], a[patient], n, category, ZERO32)
        )
    logs = node.rpc.request(
        "eth_getLogs",
        [
            {
                "fromBlock": "0x0",
                "toBlock": hex(world.block),
                "address": [c.address for c in codecs.values()],
            }
        ],
    )
    auditor.feed(audit_events(node, logs))
    assert not auditor.problems, auditor.problems
    return Base(node, codecs, world, auditor)


def audit_events(
    node: Node, logs: list[dict[str, Any]]
) -> list[tuple[str, str, dict[str, Any], int, str]]:
    decoded = node.decode_logs(logs)
    return [
        (c, n, a, as_int(log["blockTimestamp"]), log["transactionHash"])
        for (c, n, a), log in zip(decoded, logs, strict=True)
    ]


# ---------------------------------------------------------------------------- signatures

DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
CARE_TYPEHASH = keccak(
    text="CareRequest(address patient,address institution,uint40 until,uint256 nonce,"
    "uint256 deadline)"
)
GRANT_TYPEHASH = keccak(
    text="GrantRequest(address patient,address grantee,uint8 scopeKind,bytes32 scope,"
    "uint8 purpose,uint40 expiresAt,bytes32 envelopeDigest,uint256 nonce,uint256 deadline)"
)


def typed_digest(name: str, chain_id: int, contract: str, struct_hash: bytes) -> bytes:
    """The EIP-712 digest of a struct hash for ``name`` version 1 at ``contract``."""
    domain = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text=name), keccak(text="1"), chain_id, contract],
        )
    )
    return keccak(b"\x19\x01" + domain + struct_hash)


def care_digest(chain_id: int, registry: str, request: tuple[Any, ...]) -> bytes:
    types = ["bytes32", "address", "address", "uint40", "uint256", "uint256"]
    struct_hash = keccak(encode(types, [CARE_TYPEHASH, *request]))
    return typed_digest("MedLedger ProviderRegistry", chain_id, registry, struct_hash)


def grant_digest(chain_id: int, manager: str, request: tuple[Any, ...]) -> bytes:
    types = [
        "bytes32",
        "address",
        "address",
        "uint8",
        "bytes32",
        "uint8",
        "uint40",
        "bytes32",
        "uint256",
        "uint256",
    ]
    struct_hash = keccak(encode(types, [GRANT_TYPEHASH, *request]))
    return typed_digest("MedLedger ConsentManager", chain_id, manager, struct_hash)


# ---------------------------------------------------------------------------- strategies

PICK = st.integers(0, 1 << 16)
PATIENT = st.sampled_from(PATIENTS)
ANY_PATIENT = st.sampled_from((*PATIENTS, *PATIENTS, "stranger"))
"""A patient, now and then an account that is not one."""
EVERYONE = st.sampled_from(tuple(n for n in NAMES if n != "admin"))
ISSUER = st.sampled_from(
    (
        "hospital",
        "hospital",
        "clinic",
        "clinic",
        "doctor",
        "doctor",
        "ems",
        "paramedic",
        "patient0",
        "patient1",
        "patient2",
        "insurer",
        "sponsor",
        "delegate",
        "stranger",
        "registrar0",
    )
)
CARE_INSTITUTION = st.sampled_from(
    ("hospital", "hospital", "clinic", "clinic", "ems", "insurer", "sponsor", "doctor")
)
CARE_HOURS = st.sampled_from((0, 0, 2, 30, 24 * 10))
"""How long a care relationship lasts (0: until revoked)."""
INSTITUTION_TARGET = st.sampled_from(
    ("hospital", "clinic", "insurer", "ems", "ems", "sponsor", "doctor")
)
MOVABLE = st.sampled_from(("doctor", "paramedic", "delegate"))
"""Accounts that may become, stay or stop being practitioners."""
EMPLOYER = st.sampled_from(("hospital", "ems", "clinic", "insurer", "sponsor"))
CATEGORY = st.sampled_from((FINANCIAL, FINANCIAL, LAB, IMAGING))
GRANTEE = st.sampled_from(
    (
        "insurer",
        "insurer",
        "hospital",
        "clinic",
        "doctor",
        "ems",
        "paramedic",
        "sponsor",
        "stranger",
        "delegate",
        "patient0",
        "patient1",
        "registrar0",
    )
)
SCOPE = st.sampled_from(("record", "category", "category", "all"))
PURPOSE = st.sampled_from((P_TREATMENT, P_PAYMENT, P_PAYMENT, P_RESEARCH, P_EMERGENCY))
GRANT_HOURS = st.sampled_from((2, 30, 24 * 10, 24 * 400))
USD_AMOUNT = st.sampled_from((100, 500, 1500))


def pick(items: list[Any] | tuple[Any, ...], n: int) -> Any:
    return items[n % len(items)]


# ---------------------------------------------------------------------------- the test


def test_trust_core_holds_among_honest_and_hostile_actors(
    chain: Any, project: Any, isolated: Callable[[], Any]
) -> None:
    if chain.provider.name != "foundry":
        pytest.skip("Anvil only: impersonated senders, a fixed block interval, call overrides")
    total = int(os.environ.get("MEDLEDGER_STATEFUL_STEPS", DEFAULT_STEPS))
    per_example = min(STEPS_PER_EXAMPLE, total)
    rpc = Rpc(chain.provider.uri)
    node = Node(rpc)
    rpc.request("anvil_setBlockTimestampInterval", [1])
    try:
        base = set_up(node, project, chain.chain_id)
        STATS.clear()
        MOVES.clear()
        started = time.perf_counter()
        run_state_machine_as_test(
            machine(base, isolated),
            settings=settings(
                # Hypothesis ends some examples a little early: about 10% more examples.
                max_examples=max(1, math.ceil(1.1 * total / per_example)),
                stateful_step_count=per_example,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
        elapsed = time.perf_counter() - started
        print(
            f"\ntrust stateful: {STATS['steps']} steps in {STATS['examples']} examples, "
            f"{elapsed:.1f} s ({STATS['steps'] / elapsed:.1f} steps/s); "
            f"{STATS['sent']} transactions, {STATS['refused']} refusals checked, "
            f"{STATS['reads']} reads in {STATS['batches']} batches ({STATS['read_ms']} ms)"
        )
        if os.environ.get("MEDLEDGER_STATEFUL_REPORT"):
            for move, count in sorted(MOVES.items()):
                print(f"  {count:6d}  {move}")
        assert STATS["steps"] >= total // 2, f"only {STATS['steps']} of {total} steps ran"
    finally:
        rpc.request("anvil_removeBlockTimestampInterval", [])
        for name in NAMES:
            rpc.request("anvil_stopImpersonatingAccount", [ADDRESS[name]])


def machine(base: Base, isolated: Callable[[], Any]) -> type[RuleBasedStateMachine]:
    a = ADDRESS
    chain_id = base.world.chain_id

    class TrustCore(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._isolation = isolated()
            self._isolation.__enter__()
            self.world = copy.deepcopy(base.world)
            self.auditor = copy.deepcopy(base.auditor)
            self.drive = Driver(base.node, base.codecs, self.world)
            self.audited = self.world.block
            self.steps = 0
            self.rng = random.Random(0)
            self.touched_records: set[bytes] = set()
            self.touched_grants: set[tuple[str, str, bytes]] = set()
            self.touched_claims: set[int] = set()
            self.touched_keys: set[bytes] = set()
            self.signed_care: tuple[tuple[Any, ...], bytes, str] | None = None
            self.signed_grant: tuple[tuple[Any, ...], bytes, str] | None = None
            STATS["examples"] += 1

        def teardown(self) -> None:
            self._isolation.__exit__(None, None, None)

        # ------------------------------------------------------------ helpers

        def step(self) -> None:
            self.steps += 1
            STATS["steps"] += 1

        def attempt(self, sender: str, contract: str, function: str, args: tuple, outcome: Outcome):
            return self.drive.attempt(sender, contract, function, args, outcome)

        def employees(self, institution: str) -> list[str]:
            return [
                account
                for account, p in self.world.parts.items()
                if p.role == R_PRACTITIONER and p.employer == institution
            ]

        def institution_numbered(self, number: int) -> str | None:
            for account, p in self.world.parts.items():
                if p.role == R_INSTITUTION and p.number == number:
                    return account
            return None

        def other_patient(self, patient: str) -> str:
            names = [a[n] for n in PATIENTS if a[n] != patient]
            return names[0]

        def head_of(self, patient: str, issuer: str, n: int) -> bytes:
            """The issuer's own latest version of one of the patient's records (its honest
            next version's previous), or none."""
            _, writer = writer_of(self.world.parts, issuer)
            heads = [
                rid
                for rid, r in self.world.records.items()
                if r.patient == patient and r.writer == writer and not r.superseded
            ]
            return pick(heads, n) if heads else ZERO32

        # ------------------------------------------------------------ setup

        @initialize(seed=st.integers(0, 2**32 - 1))
        def seed(self, seed: int) -> None:
            self.rng.seed(seed)

        # ------------------------------------------------------------ time

        @rule(hours=st.sampled_from((1, 1, 3, 12, 25, 49, 24 * 8, 24 * 31)))
        def time_passes(self, hours: int) -> None:
            self.step()
            self.pass_time(hours)

        def pass_time(self, hours: int) -> None:
            target = self.world.now + hours * HOUR
            base.node.rpc.request("evm_mine", [target])
            self.world.now = target
            self.world.block += 1

        # ------------------------------------------------------------ care

        def care_party(self, by: str, patient: str, institution: str) -> str:
            """The account ``by`` names: a role relative to the patient and the institution
            (``patient``, ``institution``, ``other_patient``, ``other_institution``), or an
            actor by name."""
            if by == "patient":
                return patient
            if by == "institution":
                return institution
            if by == "other_patient":
                return self.other_patient(patient)
            if by == "other_institution":
                return a["clinic"] if institution != a["clinic"] else a["ems"]
            return a[by]

        @rule(
            by=st.sampled_from(
                (
                    "patient",
                    "patient",
                    "delegate",
                    "stranger",
                    "institution",
                    "doctor",
                    "other_patient",
                )
            ),
            patient=ANY_PATIENT,
            institution=CARE_INSTITUTION,
            hours=CARE_HOURS,
        )
        def care_opened(self, by: str, patient: str, institution: str, hours: int) -> None:
            self.step()
            p, i = a[patient], a[institution]
            sender = self.care_party(by, p, i)
            until = MAX_UINT40 if hours == 0 else self.world.now + 1 + hours * HOUR
            outcome = self.world.authorize_care(sender, p, i, until)
            self.attempt(sender, PR, "authorizeCare", (p, i, until), outcome)

        @rule(
            signer=st.sampled_from(("patient", "patient", "delegate", "stranger")),
            relayer=st.sampled_from(("institution", "institution", "stranger")),
            patient=PATIENT,
            institution=CARE_INSTITUTION,
            hours=CARE_HOURS,
            replay=st.sampled_from((False, False, False, True)),
        )
        def care_signed(
            self,
            signer: str,
            relayer: str,
            patient: str,
            institution: str,
            hours: int,
            replay: bool,
        ) -> None:
            self.step()
            w = self.world
            p, i = a[patient], a[institution]
            if replay and self.signed_care is not None:
                request, signature, signed_by = self.signed_care
            else:
                signed_by = self.care_party(signer, p, i)
                until = MAX_UINT40 if hours == 0 else w.now + 1 + hours * HOUR
                request = (p, i, until, w.nonces[(PR, p)], w.now + 1 + 2 * HOUR)
                digest_ = care_digest(chain_id, base.codecs[PR].address, request)
                signature = bytes(sign_digest(SECRETS[NAME_OF[signed_by]], digest_))
            outcome = w.authorize_care_signed(signed_by, *request)
            sender = self.care_party(relayer, request[0], request[1])
            self.attempt(sender, PR, "authorizeCareWithSignature", (request, signature), outcome)
            self.signed_care = (request, signature, signed_by)

        @rule(
            by=st.sampled_from(
                (
                    "patient",
                    "delegate",
                    "institution",
                    "institution",
                    "stranger",
                    "doctor",
                    "other_institution",
                )
            ),
            patient=PATIENT,
            institution=CARE_INSTITUTION,
        )
        def care_revoked(self, by: str, patient: str, institution: str) -> None:
            self.step()
            p, i = a[patient], a[institution]
            sender = self.care_party(by, p, i)
            self.attempt(sender, PR, "revokeCare", (p, i), self.world.revoke_care(sender, p, i))

        @rule(
            by=st.sampled_from(("patient", "delegate", "stranger")),
            patient=PATIENT,
            contract=st.sampled_from((PR, CM)),
        )
        def signatures_cancelled(self, by: str, patient: str, contract: str) -> None:
            self.step()
            p = a[patient]
            sender = self.care_party(by, p, a["hospital"])
            outcome = self.world.cancel_signatures(contract, sender, p)
            self.attempt(sender, contract, "cancelSignatures", (p,), outcome)

        @rule(
            by=st.sampled_from((*PATIENTS, "patient0", "stranger", "delegate")),
            allowed=st.booleans(),
        )
        def delegate_named(self, by: str, allowed: bool) -> None:
            self.step()
            outcome = self.world.set_delegate(a[by], a["delegate"], allowed)
            self.attempt(a[by], PR, "setDelegate", (a["delegate"], allowed), outcome)

        # ------------------------------------------------------------ governance

        @rule(
            by=st.sampled_from((*REGISTRARS, "stranger", "hospital")),
            institution=INSTITUTION_TARGET,
        )
        def institution_suspended(self, by: str, institution: str) -> None:
            self.step()
            outcome = self.world.suspend_institution(a[by], a[institution])
            self.attempt(a[by], PR, "suspendInstitution", (a[institution], SUSPENSION), outcome)

        @rule(
            by=st.sampled_from((*REGISTRARS, *REGISTRARS, "stranger", "insurer")),
            institution=INSTITUTION_TARGET,
            reinstate=st.booleans(),
        )
        def institution_approved(self, by: str, institution: str, reinstate: bool) -> None:
            """A registrar (or not) approves an institution: a suspended one when there is one
            (its reinstatement), half of the time."""
            self.step()
            w = self.world
            suspended = sorted(
                account
                for account, p in w.parts.items()
                if p.role == R_INSTITUTION and p.status == S_SUSPENDED
            )
            target = a[institution]
            if suspended and reinstate:
                target = suspended[len(institution) % len(suspended)]
            outcome = w.approve_institution(a[by], target)
            self.attempt(a[by], PR, "approveInstitution", (target,), outcome)

        @rule(
            by=st.sampled_from(("hospital", "ems", "clinic", "insurer", "stranger", "doctor")),
            account=MOVABLE,
        )
        def practitioner_invited(self, by: str, account: str) -> None:
            self.step()
            outcome = self.world.invite(a[by], a[account])
            self.attempt(a[by], PR, "addPractitioner", (a[account],), outcome)

        @rule(account=MOVABLE, institution=EMPLOYER, invited=st.booleans())
        def practitioner_accepts(self, account: str, institution: str, invited: bool) -> None:
            """An invited account accepts (or anyone accepts any institution)."""
            self.step()
            invitations = sorted(self.world.invitations)
            if invited and invitations:
                employer, sender = invitations[len(account) % len(invitations)]
            else:
                employer, sender = a[institution], a[account]
            outcome = self.world.accept(sender, employer)
            self.attempt(sender, PR, "acceptPractitioner", (employer,), outcome)

        @rule(
            by=st.sampled_from(("employer", "employer", "self", "stranger", "hospital", "ems")),
            account=MOVABLE,
        )
        def practitioner_removed(self, by: str, account: str) -> None:
            self.step()
            target = a[account]
            p = self.world.parts.get(target)
            employer = p.employer if p is not None and p.role == R_PRACTITIONER else a["hospital"]
            sender = {"employer": employer, "self": target}.get(by) or a[by]
            outcome = self.world.remove_practitioner(sender, target)
            self.attempt(sender, PR, "removePractitioner", (target,), outcome)

        # ------------------------------------------------------------ records

        @rule(
            issuer=ISSUER,
            whom=st.sampled_from((*PATIENTS, "self", "stranger")),
            n=st.integers(0, 2),
            category=CATEGORY,
            previous=st.sampled_from(("none", "none", "head", "head", "any", "unknown")),
            choice=PICK,
        )
        def record_anchored(
            self, issuer: str, whom: str, n: int, category: int, previous: str, choice: int
        ) -> None:
            self.step()
            w = self.world
            sender = a[issuer]
            patient = sender if whom == "self" else a[whom]
            before = ZERO32
            if previous == "head":
                before = self.head_of(patient, sender, choice)
            elif previous == "any" and w.records:
                before = pick(list(w.records), choice)
            elif previous == "unknown":
                before = keccak(text=f"unknown-record-{choice % 3}")
            cid, commitment = content(n)
            outcome = w.anchor(sender, patient, n, category, before)
            self.touched_records.add(w.record_id(patient, sender, n, category, before))
            if before != ZERO32:
                self.touched_records.add(before)
            self.attempt(
                sender, RR, "anchor", (patient, cid, commitment, category, before), outcome
            )

        @rule(
            issuer=ISSUER,
            specs=st.lists(
                st.tuples(
                    st.sampled_from((*PATIENTS, "self")),
                    st.integers(0, 2),
                    CATEGORY,
                    st.sampled_from(("none", "none", "head", "earlier", "planned")),
                ),
                min_size=1,
                max_size=3,
            ),
            choice=PICK,
        )
        def batch_anchored(self, issuer: str, specs: list[tuple], choice: int) -> None:
            self.step()
            w = self.world
            sender = a[issuer]
            entries: list[tuple[str, int, int, bytes]] = []
            for whom, n, category, mode in specs:
                patient = sender if whom == "self" else a[whom]
                before = ZERO32
                if mode == "head":
                    before = self.head_of(patient, sender, choice)
                elif mode == "earlier" and entries:
                    p0, n0, c0, v0 = entries[-1]
                    before = w.record_id(p0, sender, n0, c0, v0)
                elif mode == "planned":
                    # The id the issuer's direct anchor of another content would get: anchored
                    # after this batch, it makes this entry predate its previous version.
                    before = w.record_id(patient, sender, (n + 1) % 3, category, ZERO32)
                entries.append((patient, n, category, before))
            outcome, batch = w.anchor_batch(sender, entries)
            args = (batch.root, manifest_of(batch.root), len(entries))
            self.attempt(sender, RR, "anchorBatch", args, outcome)

        @rule(
            caller=EVERYONE,
            choice=PICK,
            index=st.integers(0, 2),
            wrong=st.sampled_from((False, False, False, False, False, True)),
        )
        def batch_record_registered(
            self, caller: str, choice: int, index: int, wrong: bool
        ) -> None:
            self.step()
            w = self.world
            if not w.batches:
                return
            batch = pick(list(w.batches.values()), choice)
            index %= len(batch.entries)
            self.register(a[caller], batch, index, index + 1 if wrong else index)

        # ------------------------------------------------------------ consent

        def scope_of(
            self, patient: str, scope: str, category: int, choice: int
        ) -> tuple[int, bytes]:
            if scope == "record":
                mine = [rid for rid, r in self.world.records.items() if r.patient == patient]
                rid = pick(mine, choice) if mine else keccak(text="no-record")
                return SCOPE_RECORD, rid
            if scope == "category":
                return SCOPE_CATEGORY, category_scope(category)
            return SCOPE_ALL, ZERO32

        @rule(
            by=st.sampled_from(
                (
                    "patient",
                    "patient",
                    "patient",
                    "delegate",
                    "stranger",
                    "doctor",
                    "hospital",
                    "other_patient",
                )
            ),
            patient=PATIENT,
            grantee=GRANTEE,
            scope=SCOPE,
            category=CATEGORY,
            purpose=PURPOSE,
            hours=GRANT_HOURS,
            choice=PICK,
        )
        def access_granted(
            self,
            by: str,
            patient: str,
            grantee: str,
            scope: str,
            category: int,
            purpose: int,
            hours: int,
            choice: int,
        ) -> None:
            self.step()
            w = self.world
            p = a[patient]
            sender = self.care_party(by, p, a["hospital"])
            kind, value = self.scope_of(p, scope, category, choice)
            expires = w.now + 1 + hours * HOUR
            outcome = w.grant(sender, p, a[grantee], kind, value, purpose, expires)
            self.touched_grants.add((p, a[grantee], scope_key(kind, value)))
            args = (p, a[grantee], kind, value, purpose, expires, ENVELOPE)
            self.attempt(sender, CM, "grant", args, outcome)

        @rule(
            signer=st.sampled_from(("patient", "patient", "delegate", "stranger")),
            relayer=EVERYONE,
            patient=PATIENT,
            grantee=GRANTEE,
            scope=SCOPE,
            purpose=PURPOSE,
            hours=GRANT_HOURS,
            replay=st.sampled_from((False, False, False, True)),
        )
        def access_granted_by_signature(
            self,
            signer: str,
            relayer: str,
            patient: str,
            grantee: str,
            scope: str,
            purpose: int,
            hours: int,
            replay: bool,
        ) -> None:
            self.step()
            w = self.world
            p = a[patient]
            if replay and self.signed_grant is not None:
                request, signature, signed_by = self.signed_grant
            else:
                signed_by = self.care_party(signer, p, a["hospital"])
                kind, value = self.scope_of(p, scope, FINANCIAL, hours)
                expires = w.now + 1 + hours * HOUR
                request = (
                    p,
                    a[grantee],
                    kind,
                    value,
                    purpose,
                    expires,
                    ENVELOPE,
                    w.nonces[(CM, p)],
                    w.now + 1 + 2 * HOUR,
                )
                digest_ = grant_digest(chain_id, base.codecs[CM].address, request)
                signature = bytes(sign_digest(SECRETS[NAME_OF[signed_by]], digest_))
            outcome = w.grant_signed(signed_by, request)
            self.touched_grants.add((request[0], request[1], scope_key(request[2], request[3])))
            self.attempt(a[relayer], CM, "grantWithSignature", (request, signature), outcome)
            self.signed_grant = (request, signature, signed_by)

        @rule(
            by=st.sampled_from(
                ("patient", "patient", "delegate", "stranger", "grantee", "hospital")
            ),
            choice=PICK,
        )
        def access_revoked(self, by: str, choice: int) -> None:
            self.step()
            w = self.world
            if not w.grants:
                return
            patient, grantee, key = pick(list(w.grants), choice)
            # The scope behind the key: a record, a category or all.
            for kind, value in (
                (SCOPE_ALL, ZERO32),
                *((SCOPE_CATEGORY, category_scope(c)) for c in (FINANCIAL, LAB, IMAGING)),
                *((SCOPE_RECORD, rid) for rid in w.records),
                (SCOPE_RECORD, keccak(text="no-record")),
            ):
                if scope_key(kind, value) == key:
                    break
            else:
                raise AssertionError("a grant whose scope the test cannot name")
            sender = grantee if by == "grantee" else self.care_party(by, patient, a["hospital"])
            outcome = w.revoke(sender, patient, grantee, kind, value)
            self.touched_grants.add((patient, grantee, key))
            self.attempt(sender, CM, "revoke", (patient, grantee, kind, value), outcome)

        @rule(
            by=st.sampled_from(
                (
                    "paramedic",
                    "paramedic",
                    "paramedic",
                    "ems",
                    "hospital",
                    "doctor",
                    "stranger",
                    "insurer",
                )
            ),
            patient=ANY_PATIENT,
            hours=st.sampled_from((1, 6, 24, 24, 25)),
        )
        def emergency_opened(self, by: str, patient: str, hours: int) -> None:
            self.step()
            outcome = self.world.open_emergency(a[by], a[patient], hours * HOUR)
            self.attempt(
                a[by], CM, "openEmergencyAccess", (a[patient], hours * HOUR, REASON), outcome
            )

        @rule(
            by=st.sampled_from(("patient", "patient", "delegate", "stranger", "paramedic", "ems")),
            patient=PATIENT,
            institution=st.sampled_from(("ems", "ems", "hospital")),
        )
        def emergency_closed(self, by: str, patient: str, institution: str) -> None:
            self.step()
            p = a[patient]
            sender = self.care_party(by, p, a["hospital"])
            outcome = self.world.close_emergency(sender, p, a[institution])
            self.attempt(sender, CM, "closeEmergencyAccess", (p, a[institution]), outcome)

        @rule(
            by=st.sampled_from(("patient", "delegate", "stranger", "hospital", "doctor")),
            choice=PICK,
        )
        def record_erased(self, by: str, choice: int) -> None:
            self.step()
            w = self.world
            rid = pick(list(w.records), choice) if w.records else keccak(text="no-record")
            patient = w.records[rid].patient if rid in w.records else a["patient0"]
            sender = self.care_party(by, patient, a["hospital"])
            self.touched_records.add(rid)
            self.attempt(sender, CM, "eraseRecord", (rid,), w.erase(sender, rid))

        # ------------------------------------------------------------ policies

        @rule(
            by=st.sampled_from(
                ("insurer", "insurer", "insurer", "hospital", "stranger", "doctor", "sponsor")
            ),
            patient=ANY_PATIENT,
            days=st.sampled_from((3, 20, 60)),
            bps=st.sampled_from((5000, 8000, 10_000)),
            deductible=st.sampled_from((0, 50, 200)),
            limit=st.sampled_from((300, 1000)),
            auto=st.sampled_from((0, 100, 500)),
        )
        def policy_issued(
            self,
            by: str,
            patient: str,
            days: int,
            bps: int,
            deductible: int,
            limit: int,
            auto: int,
        ) -> None:
            self.step()
            w = self.world
            at = w.now + 1
            terms = (
                a[patient],
                at - HOUR,
                at + days * DAY,
                bps,
                deductible * USD,
                limit * USD,
                auto * USD,
                bytes(CODES_ROOT),
                TERMS,
            )
            self.attempt(a[by], CL, "issuePolicy", (terms,), w.issue_policy(a[by], terms))

        @rule(
            by=st.sampled_from(("insurer", "insurer", "stranger", "patient2")),
            choice=PICK,
            amount=USD_AMOUNT,
        )
        def policy_funded(self, by: str, choice: int, amount: int) -> None:
            self.step()
            w = self.world
            pid = 1 + choice % (len(w.policies) + 1)
            outcome = w.fund(a[by], pid, amount * USD)
            self.attempt(a[by], CL, "fundPolicy", (pid, amount * USD), outcome)

        @rule(by=st.sampled_from(("insurer", "insurer", "stranger", "patient0")), choice=PICK)
        def pool_reclaimed(self, by: str, choice: int) -> None:
            self.step()
            w = self.world
            pid = 1 + choice % (len(w.policies) + 1)
            self.attempt(a[by], CL, "reclaimPool", (pid,), w.reclaim(a[by], pid))

        @rule(
            by=st.sampled_from(
                ("creditor", "creditor", "hospital", "clinic", "ems", *PATIENTS, "stranger")
            )
        )
        def payment_withdrawn(self, by: str) -> None:
            """A payee with a credit withdraws it (or someone tries without one)."""
            self.step()
            w = self.world
            creditors = sorted(account for account, amount in w.credits.items() if amount)
            sender = (
                creditors[0]
                if by == "creditor" and creditors
                else a[by.replace("creditor", "stranger")]
            )
            self.attempt(sender, CL, "withdrawPayment", (), w.withdraw(sender))

        # ------------------------------------------------------------ claims

        @rule(
            choice=PICK,
            by=st.sampled_from(("writer", "writer", "writer", "practitioner", "patient", "other")),
            record=st.sampled_from(("claimable", "claimable", "claimable", "claimed", "any")),
            service=st.integers(0, 1),
            identifier=st.integers(0, 2),
            billed=st.sampled_from((40, 250, 600)),
            codes=st.integers(0, 2),
            proven=st.booleans(),
            pay_patient=st.booleans(),
            evidence=st.sampled_from(("none", "none", "none", "patient", "any")),
        )
        def claim_submitted(
            self,
            choice: int,
            by: str,
            record: str,
            service: int,
            identifier: int,
            billed: int,
            codes: int,
            proven: bool,
            pay_patient: bool,
            evidence: str,
        ) -> None:
            self.step()
            w = self.world
            live = [pid for pid, p in w.policies.items() if p.valid_until > w.now]
            pid = pick(live, choice) if live and choice % 8 else 1 + choice % (len(w.policies) + 1)
            policy = w.policies.get(pid)
            patient = policy.patient if policy is not None else a["patient0"]
            claimable = [
                rid
                for rid, r in w.records.items()
                if r.patient == patient
                and r.category == FINANCIAL
                and r.writer != 0
                and int.from_bytes(rid, "big") not in w.claims
            ]
            claimed = [c.record for c in w.claims.values()]
            everything = list(w.records) or [keccak(text="no-record")]
            pool = {"claimable": claimable, "claimed": claimed}.get(record) or everything
            rid = pick(pool, choice // 7)
            writer = w.records[rid].writer if rid in w.records else 0
            institution = self.institution_numbered(writer) if writer else None
            if by == "writer" and institution is not None:
                sender = institution
            elif by == "practitioner" and institution is not None and self.employees(institution):
                sender = pick(self.employees(institution), choice)
            elif by == "patient":
                sender = patient
            else:
                sender = a[pick([n for n in NAMES if n != "admin"], choice // 3)]
            mine = [r for r in w.records if w.records[r].patient == patient] or everything
            items = {
                "none": (),
                "patient": (pick(mine, choice // 5),),
                "any": (pick(everything, choice // 5),),
            }[evidence]
            self.submit(
                sender, pid, rid, items, service, identifier, billed, codes, proven, pay_patient
            )

        def submit(
            self,
            sender: str,
            pid: int,
            rid: bytes,
            items: tuple[bytes, ...],
            service: int,
            identifier: int,
            billed: int,
            codes: int,
            proven: bool,
            pay_patient: bool,
        ) -> None:
            w = self.world
            hashes = CODE_SETS[codes]
            proofs = (
                [CODE_PROOFS.get(h, CODE_PROOFS[bytes(COVERED[0])]) for h in hashes]
                if proven
                else []
            )
            service_ = service_key(service, rid)
            identifier_ = identifier_of(identifier, rid)
            submission = (
                pid,
                billed * USD,
                pay_patient,
                rid,
                items,
                hashes,
                proofs,
                service_,
                identifier_,
            )
            outcome = w.submit(sender, submission)
            self.touched_claims.add(int.from_bytes(rid, "big"))
            policy = w.policies.get(pid)
            if policy is not None:
                writer = w.records[rid].writer if rid in w.records else 0
                self.touched_keys.add(
                    care_key(policy.patient, writer, service_, hashes)
                )
                if identifier_ != ZERO32:
                    self.touched_keys.add(identifier_key(writer, identifier_))
            wire = (
                pid,
                billed * USD,
                pay_patient,
                rid,
                list(items),
                list(hashes),
                proofs,
                service_,
                identifier_,
            )
            self.attempt(sender, CL, "submitClaim", (wire,), outcome)

        def claim_pick(self, states: tuple[int, ...], focused: bool, choice: int) -> Claim | None:
            claims = list(self.world.claims.values())
            matching = [c for c in claims if c.state in states]
            pool = matching if focused and matching else claims
            return pick(pool, choice) if pool else None

        def party(self, by: str, claim: Claim) -> str:
            w = self.world
            policy = w.policies[claim.policy_id]
            staff = self.employees(claim.submitter)
            return {
                "submitter": claim.submitter,
                "patient": policy.patient,
                "practitioner": staff[0] if staff else a["doctor"],
                "insurer": policy.insurer,
                "stranger": a["stranger"],
                "hospital": a["hospital"],
                "doctor": a["doctor"],
                "other": a["clinic"] if claim.submitter != a["clinic"] else a["hospital"],
            }[by]

        @rule(
            choice=PICK,
            focused=st.sampled_from((True, True, True, False)),
            by=st.sampled_from(("insurer", "insurer", "insurer", "stranger", "hospital", "doctor")),
            action=st.sampled_from(("approve", "approve", "deny", "info")),
            amount=st.sampled_from(("full", "full", "half", "zero", "over")),
        )
        def claim_decided(
            self, choice: int, focused: bool, by: str, action: str, amount: str
        ) -> None:
            self.step()
            claim = self.claim_pick((C_SUBMITTED, C_INFO), focused, choice)
            if claim is None:
                return
            self.decide(self.party(by, claim), claim, action, amount, choice)

        def decide(self, sender: str, claim: Claim, action: str, amount: str, choice: int) -> None:
            w = self.world
            reason = 1 + choice % 5
            self.touched_claims.add(claim.id)
            if action == "approve":
                outcome, value = w.approve(sender, claim.id, amount)
                self.attempt(sender, CL, "approveClaim", (claim.id, value), outcome)
            elif action == "deny":
                self.attempt(
                    sender, CL, "denyClaim", (claim.id, reason), w.deny(sender, claim.id, reason)
                )
            else:
                outcome = w.request_info(sender, claim.id, reason)
                self.attempt(sender, CL, "requestInfo", (claim.id, reason), outcome)

        @rule(
            choice=PICK,
            focused=st.sampled_from((True, True, True, False)),
            by=st.sampled_from(
                (
                    "submitter",
                    "submitter",
                    "patient",
                    "practitioner",
                    "stranger",
                    "insurer",
                    "other",
                )
            ),
            action=st.sampled_from(("provide", "dispute", "dispute", "escalate")),
        )
        def claimant_moves(self, choice: int, focused: bool, by: str, action: str) -> None:
            self.step()
            w = self.world
            states = {
                "provide": (C_INFO,),
                "dispute": (C_PARTIAL, C_DENIED),
                "escalate": (C_SUBMITTED, C_INFO),
            }[action]
            claim = self.claim_pick(states, focused, choice)
            if claim is None:
                return
            sender = self.party(by, claim)
            self.touched_claims.add(claim.id)
            reason = 1 + choice % 5
            if action == "provide":
                evidence = (claim.record,) if choice % 4 else ()
                outcome = w.provide_info(sender, claim.id, evidence)
                self.attempt(sender, CL, "provideInfo", (claim.id, list(evidence)), outcome)
            elif action == "dispute":
                outcome = w.dispute(sender, claim.id, reason)
                self.attempt(sender, CL, "disputeClaim", (claim.id, reason), outcome)
            else:
                self.attempt(sender, CL, "escalateClaim", (claim.id,), w.escalate(sender, claim.id))

        @rule(
            choice=PICK,
            focused=st.sampled_from((True, True, True, False)),
            by=st.sampled_from(("resolver", "resolver", "resolver", "stranger", "insurer")),
            award=st.sampled_from(("full", "full", "half", "zero", "over")),
            covered=st.sampled_from((True, True, False)),
        )
        def dispute_resolved(
            self, choice: int, focused: bool, by: str, award: str, covered: bool
        ) -> None:
            self.step()
            w = self.world
            claim = self.claim_pick((C_DISPUTED,), focused, choice)
            if claim is None:
                return
            sender = w.policies[claim.policy_id].insurer if by == "insurer" else a[by]
            self.touched_claims.add(claim.id)
            outcome, value = w.resolve(sender, claim.id, award, covered)
            self.attempt(sender, CL, "resolveDispute", (claim.id, value, covered), outcome)

        # ------------------------------------------------------------ honest actors

        def do_honest_care(self, choice: int, hours: int) -> None:
            """A patient (or patient0's delegate) opens or extends care with a provider."""
            w = self.world
            patient = a[pick(PATIENTS, choice)]
            institution = a[pick(("hospital", "clinic", "ems"), choice // 3)]
            sender = (
                a["delegate"] if choice % 5 == 0 and w.acts_for(a["delegate"], patient) else patient
            )
            until = MAX_UINT40 if hours == 0 else w.now + 1 + hours * HOUR
            outcome = w.authorize_care(sender, patient, institution, until)
            self.attempt(sender, PR, "authorizeCare", (patient, institution, until), outcome)

        def do_honest_record(self, choice: int, n: int, category: int, fresh: bool) -> None:
            """Someone who may write for a patient writes a record, or its own next version."""
            w = self.world
            at = w.now + 1
            writers = [
                (a[issuer], a[patient])
                for issuer in ("hospital", "clinic", "ems", "doctor", "paramedic", "delegate")
                for patient in PATIENTS
                if w.may_write_for(a[issuer], a[patient], at)[0]
            ]
            writers += [(a[patient], a[patient]) for patient in PATIENTS]
            issuer, patient = pick(writers, choice)
            before = ZERO32 if fresh else self.head_of(patient, issuer, choice // 7)
            cid, commitment = content(n)
            outcome = w.anchor(issuer, patient, n, category, before)
            self.touched_records.add(w.record_id(patient, issuer, n, category, before))
            self.attempt(
                issuer, RR, "anchor", (patient, cid, commitment, category, before), outcome
            )

        def do_honest_grant(
            self, choice: int, grantee: str, scope: str, purpose: int, hours: int
        ) -> None:
            """A patient (or a delegate) grants access."""
            w = self.world
            patient = a[pick(PATIENTS, choice)]
            sender = (
                a["delegate"] if choice % 4 == 0 and w.acts_for(a["delegate"], patient) else patient
            )
            kind, value = self.scope_of(patient, scope, FINANCIAL, choice // 3)
            expires = w.now + 1 + hours * HOUR
            outcome = w.grant(sender, patient, a[grantee], kind, value, purpose, expires)
            self.touched_grants.add((patient, a[grantee], scope_key(kind, value)))
            args = (patient, a[grantee], kind, value, purpose, expires, ENVELOPE)
            self.attempt(sender, CM, "grant", args, outcome)

        def do_honest_claim(
            self,
            choice: int,
            service: int,
            identifier: int,
            billed: int,
            codes: int,
            proven: bool,
            pay_patient: bool,
        ) -> None:
            """A provider (or its practitioner, or now and then the patient) claims for care it
            wrote a financial record of, under a live policy."""
            w = self.world
            at = w.now + 1
            options = [
                (pid, rid)
                for pid, policy in w.policies.items()
                if policy.valid_from <= at <= policy.valid_until
                for rid, r in w.records.items()
                if r.patient == policy.patient
                and r.category == FINANCIAL
                and r.writer != 0
                and int.from_bytes(rid, "big") not in w.claims
            ]
            if not options:
                return
            pid, rid = pick(options, choice)
            institution = self.institution_numbered(w.records[rid].writer)
            staff = self.employees(institution) if institution else []
            if choice % 9 == 0:
                sender = w.policies[pid].patient
            elif choice % 3 == 0 and staff:
                sender = pick(staff, choice)
            else:
                sender = institution or a["hospital"]
            # Mostly new care (keys of its own); now and then a service or identifier from the
            # small sets, so that the same care comes back re-encrypted in a new record.
            service = FRESH if choice % 3 else service
            identifier = FRESH if choice % 4 else identifier
            self.submit(
                sender, pid, rid, (), service, identifier, billed, codes, proven, pay_patient
            )

        def do_honest_decision(self, choice: int, action: str, amount: str) -> None:
            """The insurer decides one of its open claims."""
            claim = self.claim_pick((C_SUBMITTED, C_INFO), True, choice)
            if claim is None or claim.state not in (C_SUBMITTED, C_INFO):
                return
            self.decide(self.world.policies[claim.policy_id].insurer, claim, action, amount, choice)

        @rule(choice=PICK, hours=CARE_HOURS)
        def honest_care(self, choice: int, hours: int) -> None:
            self.step()
            self.do_honest_care(choice, hours)

        @rule(choice=PICK, n=st.integers(0, 2), category=CATEGORY, fresh=st.booleans())
        def honest_record(self, choice: int, n: int, category: int, fresh: bool) -> None:
            self.step()
            self.do_honest_record(choice, n, category, fresh)

        @rule(choice=PICK, grantee=GRANTEE, scope=SCOPE, purpose=PURPOSE, hours=GRANT_HOURS)
        def honest_grant(
            self, choice: int, grantee: str, scope: str, purpose: int, hours: int
        ) -> None:
            self.step()
            self.do_honest_grant(choice, grantee, scope, purpose, hours)

        @rule(
            choice=PICK,
            service=st.integers(0, 1),
            identifier=st.integers(0, 2),
            billed=st.sampled_from((40, 250, 600)),
            codes=st.integers(0, 2),
            proven=st.booleans(),
            pay_patient=st.booleans(),
        )
        def honest_claim(
            self,
            choice: int,
            service: int,
            identifier: int,
            billed: int,
            codes: int,
            proven: bool,
            pay_patient: bool,
        ) -> None:
            self.step()
            self.do_honest_claim(choice, service, identifier, billed, codes, proven, pay_patient)

        @rule(
            choice=PICK,
            action=st.sampled_from(("approve", "approve", "approve", "deny", "info")),
            amount=st.sampled_from(("full", "full", "half", "zero")),
        )
        def honest_decision(self, choice: int, action: str, amount: str) -> None:
            self.step()
            self.do_honest_decision(choice, action, amount)

        def do_honest_batch(self, choice: int, size: int, category: int) -> None:
            """A provider (or its practitioner) with care relationships anchors a batch of
            records for its patients, some of them next versions of its own records."""
            w = self.world
            at = w.now + 1
            writers = {}
            for issuer in ("hospital", "clinic", "ems", "doctor", "paramedic", *PATIENTS):
                patients = [a[p] for p in PATIENTS if w.may_write_for(a[issuer], a[p], at)[0]]
                if patients:
                    writers[a[issuer]] = patients
            if not writers:
                return
            issuer = pick(sorted(writers), choice)
            specs = []
            for i in range(size):
                patient = pick(writers[issuer], choice // (i + 2))
                before = self.head_of(patient, issuer, choice // 3) if (choice >> i) & 1 else ZERO32
                if any(v == before for *_, v in specs):
                    before = ZERO32
                specs.append((patient, (choice + i) % 3, category, before))
            outcome, batch = w.anchor_batch(issuer, specs)
            args = (batch.root, manifest_of(batch.root), len(specs))
            self.attempt(issuer, RR, "anchorBatch", args, outcome)

        def do_honest_registration(self, choice: int) -> None:
            """Anyone registers a batched record not registered yet."""
            w = self.world
            waiting = [
                (batch, index)
                for batch in w.batches.values()
                for index, entry in enumerate(batch.entries)
                if entry.id not in w.records
            ]
            if not waiting:
                return
            batch, index = pick(waiting, choice)
            self.register(a["stranger"], batch, index, index)

        def register(self, caller: str, batch: Batch, index: int, position: int) -> None:
            entry = batch.entries[index]
            outcome = self.world.register_from_batch(batch, index, position)
            self.touched_records.add(entry.id)
            fields = (entry.patient, entry.cid, entry.commitment, entry.category, entry.previous)
            args = (batch.issuer, batch.root, fields, position, entry.proof)
            self.attempt(caller, RR, "registerFromBatch", args, outcome)

        def do_honest_dispute(self, choice: int) -> None:
            """A party disputes a partial approval or denial in its window, answers a request or
            escalates a claim left undecided; the resolver resolves a dispute (covered, the
            most allowed or half)."""
            w = self.world
            disputed = [c for c in w.claims.values() if c.state == C_DISPUTED]
            if disputed and choice % 2:
                claim = pick(disputed, choice)
                award = "full" if choice % 3 else "half"
                outcome, value = w.resolve(a["resolver"], claim.id, award, True)
                self.touched_claims.add(claim.id)
                args = (claim.id, value, True)
                self.attempt(a["resolver"], CL, "resolveDispute", args, outcome)
                return
            waiting = [c for c in w.claims.values() if c.state in (C_SUBMITTED, C_INFO)]
            if waiting and choice % 3 == 0:
                # The claimant answers a request, or escalates a claim left undecided.
                claim = pick(waiting, choice)
                sender = claim.submitter
                self.touched_claims.add(claim.id)
                if claim.state == C_INFO and choice % 2:
                    outcome = w.provide_info(sender, claim.id, (claim.record,))
                    args = (claim.id, [claim.record])
                    self.attempt(sender, CL, "provideInfo", args, outcome)
                else:
                    outcome = w.escalate(sender, claim.id)
                    self.attempt(sender, CL, "escalateClaim", (claim.id,), outcome)
                return
            open_ = [
                c
                for c in w.claims.values()
                if c.state in (C_PARTIAL, C_DENIED) and w.now + 1 < c.decided_at + DISPUTE_WINDOW
            ]
            if not open_:
                return
            claim = pick(open_, choice)
            sender = claim.submitter if choice % 3 else w.policies[claim.policy_id].patient
            self.touched_claims.add(claim.id)
            reason = 1 + choice % 5
            outcome = w.dispute(sender, claim.id, reason)
            self.attempt(sender, CL, "disputeClaim", (claim.id, reason), outcome)

        def do_honest_emergency(self, choice: int) -> None:
            """The paramedic breaks the glass for a patient, or the patient closes it."""
            w = self.world
            patient = a[pick(PATIENTS, choice)]
            opening = w.openings.get((patient, a["ems"]))
            if opening is not None and opening.live(w.now + 1) and choice % 3 == 0:
                outcome = w.close_emergency(patient, patient, a["ems"])
                self.attempt(patient, CM, "closeEmergencyAccess", (patient, a["ems"]), outcome)
                return
            duration = pick((HOUR, 6 * HOUR, DAY), choice // 3)
            outcome = w.open_emergency(a["paramedic"], patient, duration)
            args = (patient, duration, REASON)
            self.attempt(a["paramedic"], CM, "openEmergencyAccess", args, outcome)

        @rule(choice=PICK, size=st.integers(1, 3), category=CATEGORY)
        def honest_batch(self, choice: int, size: int, category: int) -> None:
            self.step()
            self.do_honest_batch(choice, size, category)

        @rule(choice=PICK)
        def honest_registration(self, choice: int) -> None:
            self.step()
            self.do_honest_registration(choice)

        @rule(choice=PICK)
        def honest_dispute(self, choice: int) -> None:
            self.step()
            self.do_honest_dispute(choice)

        @rule(choice=PICK)
        def honest_emergency(self, choice: int) -> None:
            self.step()
            self.do_honest_emergency(choice)

        @rule()
        def honest_move(self) -> None:
            """One honest move chosen by the example's random generator: so that even the
            simplest example hypothesis tries (every choice zero, this rule every step) is a
            real walk through care, records, grants, claims, decisions and time."""
            self.step()
            r = self.rng
            move = r.randrange(14)
            choice = r.randrange(1 << 16)
            if move == 8:
                self.do_honest_batch(choice, r.randrange(1, 4), r.choice((FINANCIAL, LAB)))
            elif move == 9:
                self.do_honest_registration(choice)
            elif move in (10, 11):
                self.do_honest_dispute(choice)
            elif move == 12:
                self.do_honest_emergency(choice)
            elif move == 0:
                self.do_honest_care(r.randrange(1 << 16), r.choice((0, 0, 2, 30, 240)))
            elif move in (1, 2):
                self.do_honest_record(
                    r.randrange(1 << 16),
                    r.randrange(3),
                    r.choice((FINANCIAL, FINANCIAL, LAB)),
                    r.random() < 0.5,
                )
            elif move == 3 and r.random() < 0.4:
                patient = r.randrange(3)
                self.do_honest_grant(patient * 4 + 1, "insurer", "category", P_PAYMENT, 9600)
            elif move == 3:
                self.do_honest_grant(
                    r.randrange(1 << 16),
                    r.choice(("insurer", "insurer", "hospital", "doctor", "sponsor", "ems")),
                    r.choice(("record", "category", "category", "all")),
                    r.choice((P_TREATMENT, P_PAYMENT, P_PAYMENT, P_RESEARCH)),
                    r.choice((2, 30, 240, 9600)),
                )
            elif move in (4, 5):
                self.do_honest_claim(
                    r.randrange(1 << 16),
                    r.randrange(2),
                    r.randrange(3),
                    r.choice((40, 250, 600)),
                    r.randrange(3),
                    r.random() < 0.7,
                    r.random() < 0.3,
                )
            elif move == 6:
                self.do_honest_decision(
                    r.randrange(1 << 16),
                    r.choice(("approve", "approve", "deny", "info")),
                    r.choice(("full", "half", "half", "zero")),
                )
            else:
                self.pass_time(r.choice((1, 3, 12, 49, 24 * 8)))

        # ------------------------------------------------------------ invariants

        @invariant()
        def trust_holds(self) -> None:
            check_everything(self)

    return TrustCore


# ---------------------------------------------------------------------------- the invariants


class Reads:
    """View calls gathered into one JSON-RPC batch, each with the check of its answer."""

    def __init__(self, node: Node, codecs: dict[str, Codec], at: int) -> None:
        self.node = node
        self.codecs = codecs
        self.at = at
        self.requests: list[tuple[str, list[Any]]] = []
        self.checks: list[tuple[str, Callable[[Any], None]]] = []
        self.expected_errors: dict[int, bytes] = {}

    def view(self, contract: str, function: str, args: tuple, check: Callable[[Any], None]) -> None:
        codec = self.codecs[contract]
        self.requests.append(
            Node.call_request(ADDRESS["admin"], codec.address, codec.data(function, *args), self.at)
        )
        self.checks.append(
            (f"{contract}.{function}", lambda raw: check(codec.result(function, raw)))
        )

    def reverting(self, contract: str, function: str, args: tuple, error: tuple[Any, ...]) -> None:
        """A view call that must revert with ``error`` (name, then arguments)."""
        codec = self.codecs[contract]
        self.requests.append(
            Node.call_request(ADDRESS["admin"], codec.address, codec.data(function, *args), self.at)
        )
        self.checks.append((f"!{contract}.{function}", lambda data: None))
        self.expected_errors[len(self.requests) - 1] = codec.error_data(error[0], *error[1:])

    def raw(self, method: str, params: list[Any], check: Callable[[Any], None]) -> None:
        self.requests.append((method, params))
        self.checks.append((method, check))

    def run(self) -> None:
        started = time.perf_counter()
        answers = self.node.rpc.batch(self.requests)
        STATS["read_ms"] += int((time.perf_counter() - started) * 1000)
        STATS["reads"] += len(self.requests)
        STATS["batches"] += 1
        for i, (answer, (label, check)) in enumerate(zip(answers, self.checks, strict=True)):
            expected_error = self.expected_errors.get(i)
            if expected_error is not None:
                data = bytes.fromhex((answer.get("error") or {}).get("data", "0x")[2:] or "")
                assert "error" in answer and data == expected_error, (
                    f"{label}: expected a revert, got {answer}"
                )
                continue
            assert "error" not in answer, f"{label} failed: {answer['error']}"
            check(answer["result"])


def sample(items: list[Any], count: int, rng: random.Random) -> list[Any]:
    return items if len(items) <= count else rng.sample(items, count)


def check_everything(m: Any) -> None:
    w: World = m.world
    auditor: Auditor = m.auditor
    codecs = m.drive.codecs
    rng: random.Random = m.rng
    full = m.steps % FULL_EVERY == 0
    now = w.now
    reads = Reads(m.drive.node, codecs, now)

    # ---- the audit: every log since the last step, read by someone who sees nothing else
    def audit(logs: list[dict[str, Any]]) -> None:
        auditor.feed(audit_events(m.drive.node, logs))

    if m.audited < w.block:
        reads.raw(
            "eth_getLogs",
            [
                {
                    "fromBlock": hex(m.audited + 1),
                    "toBlock": hex(w.block),
                    "address": [c.address for c in codecs.values()],
                }
            ],
            audit,
        )

    # ---- (4) only the patient, live grantees and a live verified emergency service read
    rids = list(w.records)
    if full or len(rids) * len(READERS) <= 3 * ACCESS_SAMPLE:
        pairs = [(reader, rid) for rid in rids for reader in READERS]
    else:
        focus = [r for r in m.touched_records if r in w.records] + sample(rids, 2, rng)
        pairs = [(reader, rid) for rid in focus for reader in READERS]
        pairs += [(rng.choice(READERS), rng.choice(rids)) for _ in range(ACCESS_SAMPLE)]
    readers_of: dict[bytes, set[str]] = {}

    def allowed_readers(rid: bytes) -> set[str]:
        """README: the patient, the live grantees of the record, its category or all, and
        the accounts of a verified emergency service with a live opening."""
        if rid in readers_of:
            return readers_of[rid]
        record = w.records[rid]
        allowed: set[str] = set()
        if rid not in w.erased:
            keys = {
                scope_key(SCOPE_RECORD, rid),
                scope_key(SCOPE_CATEGORY, category_scope(record.category)),
                ALL_KEY,
            }
            allowed.add(record.patient)
            allowed |= {
                grantee
                for (patient, grantee, key), grant in w.grants.items()
                if patient == record.patient and key in keys and grant.live(now)
            }
            services = {
                institution
                for (patient, institution), opening in w.openings.items()
                if patient == record.patient
                and opening.live(now)
                and w.parts[institution].kind == K_EMS
                and w.parts[institution].status == S_VERIFIED
                and (not w.round_bound or w.parts[institution].round == opening.round)
            }
            allowed |= {r for r in READERS if verified_institution(w.parts, r) in services}
        readers_of[rid] = allowed
        return allowed

    def access(reader: str, rid: bytes) -> Callable[[Any], None]:
        def check(chain_says: bool) -> None:
            model = w.has_access(reader, rid, now)
            audited = auditor.has_access(reader, rid, now)
            what = f"hasAccess({who(reader)}, {rid.hex()[:12]} of {who(w.records[rid].patient)})"
            assert not chain_says or reader in allowed_readers(rid), (
                f"only allowed readers: {what} is true for a reader the rules do not allow"
            )
            assert chain_says == model, f"access: {what} is {chain_says}, the model says {model}"
            assert audited == chain_says, (
                f"every change of access is an event: from the logs alone, {what} would be "
                f"{audited}, the chain says {chain_says}"
            )

        return check

    for reader, rid in pairs:
        reads.view(CM, "hasAccess", (reader, rid), access(reader, rid))

    # ---- (1, 2) records: the chain holds exactly the model's, refused ones left nothing
    record_ids = set(rids) if full else set(m.touched_records) | set(sample(rids, 5, rng))

    def record(rid: bytes) -> Callable[[Any], None]:
        def check(stored: tuple) -> None:
            expected = w.records[rid].stored() if rid in w.records else (ZERO, 0, 0, False, 0)
            assert stored == expected, (
                f"record {rid.hex()[:12]}: chain {stored}, model {expected} (a record no "
                "allowed writer wrote, or a version the model did not predict)"
            )

        return check

    for rid in record_ids:
        reads.view(RR, "lookup", (rid,), record(rid))

    # ---- (7) grants: only the patient's and delegates' moves changed them
    grant_keys = (
        set(w.grants) if full else set(m.touched_grants) | set(sample(list(w.grants), 5, rng))
    )

    def grant(key: tuple[str, str, bytes]) -> Callable[[Any], None]:
        def check(stored: tuple) -> None:
            expected = w.grants[key].stored() if key in w.grants else (0, 0, 0, 0)
            assert stored == expected, (
                f"grant of {who(key[0])} to {who(key[1])}: chain {stored}, model {expected}"
            )

        return check

    for key in grant_keys:
        reads.view(CM, "getGrant", key, grant(key))

    # ---- emergency openings, care relationships, participants, delegates
    def opening(patient: str, institution: str) -> Callable[[Any], None]:
        def check(stored: tuple) -> None:
            o = w.openings.get((patient, institution))
            expected: tuple[int, ...] = (o.opened_at, o.expires_at, o.closed_at) if o else (0, 0, 0)
            if w.round_bound:
                expected += (o.round if o else 0,)
            assert stored == expected, f"emergency {who(patient)}/{who(institution)}: {stored}"

        return check

    def care(patient: str, institution: str) -> Callable[[Any], None]:
        def check(stored: tuple) -> None:
            periods = w.care.get((patient, w.number(institution)))
            expected = tuple(periods[-1]) if periods else (0, 0)
            assert stored == expected, f"care {who(patient)}/{who(institution)}: {stored}"

        return check

    def participant(account: str) -> Callable[[Any], None]:
        def check(stored: tuple) -> None:
            p = w.parts.get(account)
            expected = p.stored() if p else (0, 0, 0, 0, 0, ZERO, 0)
            assert stored == expected, f"participant {who(account)}: {stored} != {expected}"

        return check

    def delegate(patient: str) -> Callable[[Any], None]:
        def check(stored: bool) -> None:
            assert stored == ((patient, ADDRESS["delegate"]) in w.delegates), "delegate"

        return check

    for name in PATIENTS:
        patient = ADDRESS[name]
        for institution in ("ems", "hospital"):
            reads.view(
                CM,
                "emergencyOf",
                (patient, ADDRESS[institution]),
                opening(patient, ADDRESS[institution]),
            )
        for institution in ("hospital", "clinic", "ems"):
            reads.view(
                PR, "careOf", (patient, ADDRESS[institution]), care(patient, ADDRESS[institution])
            )
        reads.view(PR, "isDelegate", (patient, ADDRESS["delegate"]), delegate(patient))
    for account in READERS if full else sample(list(READERS), 5, rng):
        reads.view(PR, "participant", (account,), participant(account))

    # ---- (3) claims and their keys
    chain_policies: dict[int, tuple] = {}

    def policy(pid: int) -> Callable[[Any], None]:
        def check(stored: tuple) -> None:
            chain_policies[pid] = stored
            assert stored == w.policies[pid].stored(), f"policy {pid}: {stored}"

        return check

    def open_claims(pid: int) -> Callable[[Any], None]:
        def check(count: int) -> None:
            assert count == w.policies[pid].open_claims, f"policy {pid} open claims {count}"

        return check

    for pid in w.policies:
        reads.view(CL, "getPolicy", (pid,), policy(pid))
        reads.view(CL, "openClaimsOf", (pid,), open_claims(pid))

    claim_ids = (
        set(w.claims) if full else set(m.touched_claims) | set(sample(list(w.claims), 6, rng))
    )

    def claim(cid: int) -> Callable[[Any], None]:
        def check(stored: tuple) -> None:
            assert stored == w.claims[cid].stored(), f"claim {cid:#x}: {stored}"

        return check

    for cid in claim_ids:
        if cid in w.claims:
            reads.view(CL, "getClaim", (cid,), claim(cid))
        else:
            reads.reverting(CL, "getClaim", (cid,), ("ClaimUnknownClaim", cid))

    key_ids = set(w.keys) if full else set(m.touched_keys) | set(sample(list(w.keys), 6, rng))

    def claim_key(key: bytes) -> Callable[[Any], None]:
        def check(cid: int) -> None:
            assert cid == w.keys.get(key, 0), f"care is paid at most once: key {key.hex()[:12]}"

        return check

    for key in key_ids:
        reads.view(CL, "claimOfKey", (key,), claim_key(key))

    # ---- (6) money
    credits: dict[str, int] = {}
    balances: dict[str, int] = {}

    def credit(account: str) -> Callable[[Any], None]:
        def check(amount: int) -> None:
            credits[account] = amount
            assert amount == w.credits[account], f"credit of {who(account)}: {amount}"

        return check

    def balance(account: str) -> Callable[[Any], None]:
        def check(amount: int) -> None:
            balances[account] = amount
            assert amount == w.balances[account], f"token balance of {who(account)}: {amount}"

        return check

    for account in READERS if full else MONEY_HOLDERS:
        reads.view(CL, "creditOf", (account,), credit(account))
        reads.view(TK, "balanceOf", (account,), balance(account))
    reads.view(TK, "balanceOf", (w.claims_manager,), balance(w.claims_manager))

    reads.run()
    m.audited = w.block

    # ---- checks over what was read
    assert not auditor.problems, "the audit found: " + "; ".join(auditor.problems)

    pools = sum(p[10] - p[7] for p in chain_policies.values())
    paid = sum(p[7] for p in chain_policies.values())
    owed = sum(credits.values())
    assert w.money["funded"] == pools + paid + w.money["reclaimed"], (
        f"money in: funded {w.money['funded']} != pools {pools} + paid {paid} + reclaimed "
        f"{w.money['reclaimed']}"
    )
    assert balances[w.claims_manager] == pools + owed, (
        f"the manager holds {balances[w.claims_manager]}, pools {pools} + credits {owed}"
    )
    assert w.money["at_once"] + w.money["withdrawn"] + owed == paid, (
        f"paid {paid} != paid at once {w.money['at_once']} + withdrawn {w.money['withdrawn']} "
        f"+ credits {owed}"
    )
    for item in ("funded", "at_once", "withdrawn", "reclaimed"):
        assert auditor.money[item] == w.money[item], f"the logs show {item} {auditor.money[item]}"
    assert auditor.money["paid"] == paid, f"the logs show {auditor.money['paid']} paid, not {paid}"

    # (3) a piece of care is paid at most once
    assert set(auditor.claims) == set(w.claims), "claims in the logs are not the model's"
    # A claim holds its keys from submission (a provider's) or from approval (a patient's):
    # no two holders share a key, and a claim paid anything, or approved, holds its keys.
    holders = [c for c in w.claims.values() if not c.pending]
    care_keys = Counter(c.care_key for c in holders)
    identifier_keys = Counter(c.identifier_key for c in holders if c.identifier_key)
    assert max(care_keys.values(), default=0) <= 1, "two claims for the same care"
    assert max(identifier_keys.values(), default=0) <= 1, "two claims with the same identifier"
    paid_records = Counter(c.record for c in w.claims.values() if c.paid > 0)
    assert max(paid_records.values(), default=0) <= 1, "a claim record paid twice"
    for c in w.claims.values():
        decided_for = c.paid > 0 or c.state in (C_APPROVED, C_PARTIAL)
        assert not (c.pending and decided_for), f"claim {c.id:#x} paid without its keys"
        if not c.pending:
            assert w.keys[c.care_key] == c.id, f"claim {c.id:#x} does not hold its care key"
        own = patient_claim_id(c.record) if c.by_patient else int.from_bytes(c.record, "big")
        assert c.id == own, "a provider's claim's id is its record, the patient's its own"
        assert w.records[c.record].writer != 0, "a claim on a record no provider wrote"

    # (1) a successor only by its previous version's writer
    for rid, r in w.records.items():
        if r.previous != ZERO32:
            before = w.records[r.previous]
            assert (
                before.superseded and before.writer == r.writer and before.patient == r.patient
            ), f"{rid.hex()[:12]} succeeds {r.previous.hex()[:12]} written by another writer"

    # (5) every change of access is an event
    for key in set(auditor.counts) | set(w.changes):
        assert auditor.counts[key] == w.changes[key], (
            f"{key[0]} of {who(key[1])}: {auditor.counts[key]} events, {w.changes[key]} changes"
        )

    m.touched_records.clear()
    m.touched_grants.clear()
    m.touched_claims.clear()
    m.touched_keys.clear()
