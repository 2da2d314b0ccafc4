"""Emergency (break-glass) access: a verified emergency service opens all of a patient's
records for at most 24 hours, with a stated reason; the patient or a delegate may close it.

An opening counts only in the service's approval round it was made in, so a suspension ends it
for good. The same service may open again 7 days after its last opening ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from medledger import documents, providers
from medledger.addresses import parse_address
from medledger.chain import deployments, events
from medledger.consent.contract import CONTRACT, consent_contract
from medledger.errors import ConfigurationError, PatientNotFound, PreconditionFailed

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain


@dataclass(frozen=True)
class EmergencyState:
    """An emergency service's last break-glass opening for a patient."""

    patient: str
    institution: str
    opened_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    superseded: bool = False
    """True once the service was suspended after opening it (the opening then never counts
    again, even if the service is reinstated)."""

    def live(self, now: datetime) -> bool:
        """True while neither expired, closed nor ended by a suspension."""
        return self.closed_at is None and not self.superseded and self.expires_at > now

    @property
    def ended_at(self) -> datetime:
        """When it ended (or will end)."""
        return self.closed_at or self.expires_at

    def status(self, now: datetime) -> str:
        """``active``, ``closed``, ``ended`` (by a suspension) or ``expired``."""
        if self.closed_at is not None:
            return "closed"
        if self.superseded:
            return "ended"
        return "active" if self.expires_at > now else "expired"

    def as_dict(self, now: datetime) -> dict[str, object]:
        """A JSON-friendly view shaped like a grant's (scope all, purpose emergency), from
        :func:`medledger.documents.to_data`."""
        data = documents.to_data(self)
        return {
            "patient": data["patient"],
            "grantee": data["institution"],
            "scope": "all",
            "purpose": "emergency",
            "granted_at": data["opened_at"],
            "expires_at": data["expires_at"],
            "revoked_at": data["closed_at"],
            "status": self.status(now),
            "envelopes": [],
        }


#: Seconds after an opening ends before the same service may open again (the contract's
#: ``EMERGENCY_COOLDOWN``).
EMERGENCY_COOLDOWN = timedelta(days=7)


def emergency_of(chain: Chain, patient: str, institution: str) -> EmergencyState | None:
    """The last emergency opening of ``institution`` for ``patient``, or None."""
    opened, expires, closed, opened_in = chain.call(
        "reading emergency access",
        consent_contract(chain).functions.emergencyOf(
            parse_address(patient), parse_address(institution)
        ),
    )
    if not opened:
        return None
    _service, round_now = chain.call(
        "reading the registry",
        deployments.contract(chain, "ProviderRegistry").functions.actingInstitution(
            parse_address(institution)
        ),
    )

    def when(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, tz=UTC)

    return EmergencyState(
        parse_address(patient),
        parse_address(institution),
        when(opened),
        when(expires),
        when(closed) if closed else None,
        superseded=int(round_now) != int(opened_in),
    )


def emergencies(chain: Chain, patient: str) -> list[EmergencyState]:
    """The last emergency opening of every service that ever opened one for ``patient``."""
    patient = parse_address(patient)
    opened = events.logs(chain, CONTRACT, "EmergencyAccessOpened", {"patient": patient})
    services = dict.fromkeys(log["institution"] for log in opened)
    found = (emergency_of(chain, patient, service) for service in services)
    return [state for state in found if state is not None]


def open_emergency_access(
    chain: Chain, opener: Signer, patient: str, duration: timedelta, reason: str
) -> datetime:
    """Open break-glass access (a verified emergency service); return when it ends."""
    institution = providers.verified_institution_of(chain, opener.address)
    kind = providers.participant(chain, institution).kind if institution else None
    if institution is None or kind is not providers.InstitutionKind.EMERGENCY_SERVICE:
        raise PreconditionFailed(f"{opener.address} does not act for a verified emergency service")
    if not reason.strip():
        raise ConfigurationError("--reason", "emergency access needs a stated reason")
    if not timedelta(0) < duration <= timedelta(hours=24):
        raise ConfigurationError("--duration", "emergency access lasts at most 24 hours")
    if providers.participant(chain, patient).role is not providers.Role.PATIENT:
        raise PatientNotFound(parse_address(patient))
    last = emergency_of(chain, patient, institution)
    if last is not None and chain.now() < last.ended_at + EMERGENCY_COOLDOWN:
        state = "is still open" if last.live(chain.now()) else "ended less than 7 days ago"
        raise PreconditionFailed(
            f"{institution}'s last emergency opening for {patient} {state}: it may open again "
            f"from {last.ended_at + EMERGENCY_COOLDOWN:%Y-%m-%d %H:%M}Z"
        )
    receipt = chain.transact(
        "opening emergency access",
        opener,
        consent_contract(chain).functions.openEmergencyAccess(
            parse_address(patient), int(duration.total_seconds()), reason
        ),
    )
    (opened,) = events.from_receipt(receipt, CONTRACT, "EmergencyAccessOpened")
    return datetime.fromtimestamp(opened["expiresAt"], tz=UTC)


def close_emergency_access(chain: Chain, signer: Signer, patient: str, institution: str) -> None:
    """End a live emergency opening at once (the patient or a delegate)."""
    patient, institution = parse_address(patient), parse_address(institution)
    providers.require_acts_for(chain, signer.address, patient)
    last = emergency_of(chain, patient, institution)
    if last is None or not last.live(chain.now()):
        raise PreconditionFailed(f"{institution} has no live emergency opening for {patient}")
    chain.transact(
        "closing emergency access",
        signer,
        consent_contract(chain).functions.closeEmergencyAccess(patient, institution),
    )
