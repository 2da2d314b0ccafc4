"""The grants as the chain holds them: every grant a patient gave, its state now, its key
envelopes, and who receives the key of a new record at writing time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from medledger import documents, providers
from medledger.addresses import parse_address
from medledger.chain import events
from medledger.consent.contract import CONTRACT, ZERO, consent_contract
from medledger.consent.scopes import ALL_RECORDS, Purpose, Scope, ScopeKind
from medledger.errors import MedLedgerError, PreconditionFailed
from medledger.ipfs.cid import Cid

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from medledger.categories import Category
    from medledger.chain import Chain


@dataclass(frozen=True)
class GrantState:
    """A grant as it stands now."""

    patient: str
    grantee: str
    scope: Scope
    purpose: Purpose
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    envelopes: tuple[Cid, ...]
    undelivered: tuple[str, ...] = ()  # set by ``grant``: records in scope left without keys

    def live(self, now: datetime) -> bool:
        """Whether the grant gives access at ``now``."""
        return self.revoked_at is None and self.expires_at > now

    @property
    def given(self) -> bool:
        """Whether this grant was ever given (the contract answers zeros for one never given)."""
        return self.granted_at.timestamp() > 0

    def status(self, now: datetime) -> str:
        """``active``, ``expired``, ``revoked`` or (never given) ``none``."""
        if not self.given:
            return "none"
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > now else "expired"

    def as_dict(self, now: datetime) -> dict[str, object]:
        """A JSON-friendly view (:func:`medledger.documents.to_data`, with the scope's label
        and the status at ``now``)."""
        data: dict[str, object] = documents.to_data(self)
        envelopes = data.pop("envelopes")
        del data["undelivered"]  # known only to the grant that just ran: its caller says it
        return {
            **data,
            "scope": self.scope.label,
            "status": self.status(now),
            "envelopes": envelopes,
        }


def grant_state(
    chain: Chain, patient: str, grantee: str, scope: Scope, envelopes: tuple[Cid, ...] = ()
) -> GrantState:
    """The grant of ``scope`` from ``patient`` to ``grantee`` as the contract holds it now
    (never granted: granted and expiring at the epoch)."""
    granted_at, expires_at, revoked_at, purpose = chain.call(
        "reading the grant",
        consent_contract(chain).functions.getGrant(patient, grantee, scope.key),
    )
    return GrantState(
        patient=parse_address(patient),
        grantee=parse_address(grantee),
        scope=scope,
        purpose=Purpose(purpose) if purpose else Purpose.TREATMENT,
        granted_at=datetime.fromtimestamp(granted_at, tz=UTC),
        expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
        revoked_at=datetime.fromtimestamp(revoked_at, tz=UTC) if revoked_at else None,
        envelopes=envelopes,
    )


def grants(
    chain: Chain,
    patient: str,
    grantee: str | None = None,
    scopes: Iterable[Scope] | None = None,
) -> list[GrantState]:
    """Every grant a patient ever gave (optionally to one grantee, optionally only of the
    given ``scopes``), as it stands now.

    Callers that need only some scopes name them: the events are then filtered by their
    indexed scope key on the node, and only those grants are read. Listing every grant made a
    read by a reader holding 10,000 record grants from one patient decode 10,000 events and
    make 10,000 calls (found by the growth benchmark).
    """
    filters: dict[str, Any] = {"patient": parse_address(patient)}
    if grantee:
        filters["grantee"] = parse_address(grantee)
    if scopes is not None:
        filters["scopeKey"] = [scope.key for scope in scopes]
    seen: dict[tuple[str, bytes], Scope] = {}
    envelopes: dict[tuple[str, bytes], list[Cid]] = {}
    for log in events.logs(chain, CONTRACT, "AccessGranted", filters):
        key = (log["grantee"], log["scopeKey"])
        seen[key] = Scope.from_chain(log["scopeKind"], log["scope"])
        if log["envelopeDigest"] != ZERO:
            envelopes.setdefault(key, []).append(Cid.from_digest_v0(log["envelopeDigest"]))
    for log in events.logs(chain, CONTRACT, "KeysDelivered", filters):
        key = (log["grantee"], log["scopeKey"])
        envelopes.setdefault(key, []).append(Cid.from_digest_v0(log["envelopeDigest"]))
    return [
        grant_state(chain, filters["patient"], g, scope, tuple(envelopes.get((g, k), ())))
        for (g, k), scope in seen.items()
    ]


def readers_for(chain: Chain) -> Callable[[str, Category], Sequence[bytes]]:
    """The readers a new record gets besides its patient and issuer, as ``records.anchor``
    takes them: for a patient and a category, the public keys of the grantees whose live
    grants cover a new record of that category (a revoked or expired grantee is never among
    them, so it never receives a new key). Without a ConsentManager, nobody."""

    def readers(patient: str, category: Category) -> list[bytes]:
        try:
            consent_contract(chain)
        except MedLedgerError:
            return []
        now = chain.now()
        keys: list[bytes] = []
        wide = (ALL_RECORDS, Scope(ScopeKind.CATEGORY, category=category))
        for state in grants(chain, patient, scopes=wide):  # a record grant never covers a new one
            if state.live(now) and state.purpose is not Purpose.EMERGENCY:
                key = providers.participant(chain, state.grantee).encryption_key
                if key:
                    keys.append(key)
        return keys

    return readers


def grantee_key(chain: Chain, patient: str, grantee: str) -> bytes:
    """The grantee's published encryption key (refused for the patient, or without a key)."""
    if grantee == patient:
        raise PreconditionFailed("a patient does not need a grant to read their own records")
    key = providers.participant(chain, grantee).encryption_key
    if key is None:
        raise PreconditionFailed(f"{grantee} has published no encryption key in the registry")
    return key
