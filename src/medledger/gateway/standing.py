"""What a caller of the gateway may do, read live from the chain.

A caller stands in up to three ways: it acts for the institution running the gateway (the
institution's own account, or a practitioner it employs: everything the gateway does is done
with the institution's account, and the chain still decides each write and read); it is the
patient asked about (or one of their delegates: their own records, read and search, and their
``Consent`` resources, create and delete, which grant and revoke); or it holds live grants
from the patient (read and search of the categories and records those grants cover), or
acts for an emergency service with a live break-glass opening for the patient (read and search
of everything, until the opening ends).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medledger import consent, providers, records
from medledger.addresses import parse_address
from medledger.categories import Category
from medledger.chain import events
from medledger.consent.contract import CONTRACT
from medledger.fhir import categories_of
from medledger.gateway.scopes import READS, Action, Context

if TYPE_CHECKING:
    from datetime import datetime

    from medledger.chain import Chain
    from medledger.consent import GrantState

_CONSENT_WRITES = frozenset({Action.CREATE, Action.DELETE})
STUDY_TYPES = frozenset({"Group", "ResearchStudy"})
"""Read by any verified institution: a study's description, and its data as a ``Group``
export (each participant's consent, on chain, decides what is in it)."""


@dataclass(frozen=True)
class Standing:
    """What ``address`` may do now, about one ``patient`` (or, without one, any patient)."""

    address: str
    gateway: str  # the institution running the gateway
    patient: str | None
    institution: bool = False  # acts for the gateway's institution
    own: bool = False  # the patient asked about, a delegate, or (no patient) a patient
    verified: bool = False  # acts for a verified institution (a study's sponsor, a monitor...)
    categories: frozenset[Category] = frozenset()  # covered by live category and all grants
    records: dict[bytes, Category] = field(default_factory=dict)  # live record grants
    lapsed: str | None = None  # why the last grant is not live, when none is

    def allows(self, context: Context, resource_type: str, action: Action) -> bool:
        """Whether the caller may take ``action`` on ``resource_type`` in ``context``."""
        return self.why_not(context, resource_type, action) is None

    def why_not(self, context: Context, resource_type: str, action: Action) -> str | None:
        """Why the caller may not take ``action`` on ``resource_type`` (None: it may)."""
        if self.institution:
            return None
        if context is Context.SYSTEM:
            return f"{self.address} does not act for {self.gateway}, which runs this gateway"
        if self.own:
            if action in READS or (resource_type == "Consent" and action in _CONSENT_WRITES):
                return None
            return (
                "a patient creates and deletes Consent resources (grants) only; records are "
                "written by the patient's care institutions"
            )
        if self.verified and resource_type in STUDY_TYPES and action in READS:
            return None  # what a study's data may be read by, the chain decides per participant
        verb = _VERBS[action]
        if action not in READS:
            return f"a grantee may only read and search, not {verb} {resource_type} resources"
        whose = f"patient {self.patient}" if self.patient else "any patient"
        if not self.reach:
            return self.lapsed or f"{whose} has given {self.address} no live grant"
        if categories_of(resource_type) & self.reach:
            return None
        covered = ", ".join(sorted(c.label for c in self.reach))
        return f"the live grants from {whose} cover {covered} records, not {resource_type}"

    @property
    def reach(self) -> frozenset[Category]:
        """Every category that a live grant covers, at least in part (a record grant: its
        record's category)."""
        return self.categories | frozenset(self.records.values())


_VERBS = {
    Action.CREATE: "create",
    Action.READ: "read",
    Action.UPDATE: "update",
    Action.DELETE: "delete",
    Action.SEARCH: "search",
}


def standing_of(chain: Chain, caller: str, gateway: str, patient: str | None = None) -> Standing:
    """Read the caller's standing from the chain now (about ``patient``, or any patient)."""
    caller, gateway = parse_address(caller), parse_address(gateway)
    patient = parse_address(patient, "patient") if patient else None
    service = providers.verified_institution_of(chain, caller)
    if service == gateway:
        return Standing(caller, gateway, patient, institution=True)
    if patient is None:
        own = providers.patient_of(chain, caller) is not None  # a replaced key is nobody
    else:
        own = providers.acts_for(chain, caller, patient)
    states = _grants_held(chain, caller, patient)
    now = chain.now()
    live = [s for s in states if s.live(now)]
    categories: set[Category] = set()
    held: dict[bytes, Category] = {}
    for state in live:
        scope = state.scope
        if scope.kind is consent.ScopeKind.ALL:
            categories.update(Category)
        elif scope.kind is consent.ScopeKind.CATEGORY and scope.category is not None:
            categories.add(scope.category)
        elif scope.record is not None:
            found = records.get(chain, scope.record).category
            held[scope.record] = found if isinstance(found, Category) else Category.OTHER
    lapsed = None if live or not states else _lapsed(max(states, key=lambda s: s.granted_at))
    if service is not None and _breaks_glass(chain, service, patient, now):
        categories.update(Category)
    return Standing(
        caller, gateway, patient, own=own, categories=frozenset(categories), records=held,
        lapsed=lapsed, verified=service is not None,
    )  # fmt: skip


def granting_patients(chain: Chain, grantee: str) -> list[str]:
    """The patients who have a live grant to ``grantee`` now, in the order they first granted."""
    now = chain.now()
    held = _grants_held(chain, parse_address(grantee), None)
    return list(dict.fromkeys(s.patient for s in held if s.live(now)))


def _grants_held(chain: Chain, grantee: str, patient: str | None) -> list[GrantState]:
    """The grants ``grantee`` holds from ``patient`` (or from anyone), as they stand now."""
    if patient is not None:
        return consent.grants(chain, patient, grantee)
    found = events.logs(chain, CONTRACT, "AccessGranted", {"grantee": grantee})
    patients = dict.fromkeys(str(log["patient"]) for log in found)
    return [state for p in patients for state in consent.grants(chain, p, grantee)]


def _breaks_glass(chain: Chain, service: str, patient: str | None, now: datetime) -> bool:
    """Whether ``service`` is an emergency service with a live opening for ``patient`` (without
    a patient: whether it is an emergency service at all, which may open one for anyone)."""
    if (
        providers.participant(chain, service).kind
        is not providers.InstitutionKind.EMERGENCY_SERVICE
    ):
        return False
    if patient is None:
        return True
    opening = consent.emergency_of(chain, patient, service)
    return opening is not None and opening.live(now)


def _lapsed(state: GrantState) -> str:
    if state.revoked_at is not None:
        return (
            f"patient {state.patient} revoked the grant to {state.grantee} on "
            f"{state.revoked_at:%Y-%m-%d %H:%M}Z"
        )
    return (
        f"the grant of patient {state.patient} to {state.grantee} expired on "
        f"{state.expires_at:%Y-%m-%d %H:%M}Z"
    )
