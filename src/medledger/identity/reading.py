"""Reading attestations: one institution's of one patient, and every attestation of a patient
(who attested whom and when), from the registry's slot and its events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medledger.addresses import parse_address
from medledger.chain import events
from medledger.chain.events import moment
from medledger.errors import PreconditionFailed
from medledger.identity.model import CONTRACT, Attestation, registry
from medledger.providers import participant
from medledger.providers.participants import Participant, Role, Status

if TYPE_CHECKING:
    from datetime import datetime

    from medledger.chain import Chain


def institution_acting_for(chain: Chain, account: str) -> Participant:
    """The verified care institution ``account`` is or works for; ``PreconditionFailed``
    otherwise (the contract's rule for who may attest and revoke)."""
    entry = participant(chain, account)
    if entry.role is Role.PRACTITIONER and entry.employer is not None:
        entry = participant(chain, entry.employer)
    if (
        entry.role is not Role.INSTITUTION
        or entry.status is not Status.VERIFIED
        or not entry.is_care_provider
    ):
        raise PreconditionFailed(
            f"{parse_address(account)} is not a verified care institution or its practitioner: "
            "only hospitals, clinics, laboratories and emergency services attest patients"
        )
    return entry


def is_attested(chain: Chain, patient: str, institution: str | int) -> bool:
    """True when ``institution`` (an address, or its directory number) attests ``patient`` now
    (the contract's ``isAttested``)."""
    number = institution if isinstance(institution, int) else participant(chain, institution).number
    if number == 0:
        return False
    return bool(
        chain.call(
            "reading attestations",
            registry(chain).functions.isAttested(parse_address(patient), number),
        )
    )


def attestation(chain: Chain, patient: str, institution: str) -> Attestation | None:
    """The attestation of ``patient`` by ``institution`` (its latest), or None."""
    wanted = parse_address(institution)
    found = [a for a in attestations_of(chain, patient) if a.institution == wanted]
    return found[-1] if found else None


def attestations_of(chain: Chain, patient: str) -> list[Attestation]:
    """Every institution's current attestation of ``patient``, oldest first."""
    patient = parse_address(patient)
    attested = events.logs(chain, CONTRACT, "IdentityAttested", {"patient": patient})
    revoked = events.logs(chain, CONTRACT, "IdentityRevoked", {"patient": patient})
    latest = {to_checksum_address(log["institution"]): log for log in attested}
    contract = registry(chain)
    out = []
    for institution, log in latest.items():
        number = int(log["number"])
        _inst, _round, expires_at, is_revoked = chain.call(
            "reading attestations", contract.functions.attestation(patient, number)
        )
        holds = chain.call("reading attestations", contract.functions.isAttested(patient, number))
        revocations = [
            r for r in revoked
            if to_checksum_address(r["institution"]) == institution
            and (r.block, r.index) > (log.block, log.index)
        ]  # fmt: skip
        commitment = bytes(log["commitment"])
        out.append(
            Attestation(
                patient=patient,
                institution=institution,
                number=number,
                attester=to_checksum_address(log["attester"]),
                attested_at=_time(chain, log),
                expires_at=moment(int(expires_at)),
                revoked=bool(is_revoked),
                holds=bool(holds),
                commitment=commitment if any(commitment) else None,
                revoked_at=_time(chain, revocations[-1]) if revocations else None,
            )
        )
    return out


def _time(chain: Chain, log: events.Log) -> datetime:
    return moment(log.timestamp) if log.timestamp is not None else chain.block_time(log.block)
