"""Recovery of a patient by guardians: the client of PatientRecovery (which ProviderRegistry
deploys and alone trusts to move control of a patient).

A patient's on-chain id never changes: records, grants and care stay keyed by it. What a
recovery moves is the *controller*, the address that acts as the patient (the id itself until a
first recovery). The patient names guardians, a threshold and a delay; ``threshold`` guardians
approve a move to a new address; after the delay anyone completes it, unless the controlling
key cancelled it first. The controller, or ``threshold`` guardians, freeze a stolen key at once;
a frozen patient has nobody acting for it until a recovery completes. Every function checks
what the contract would refuse before sending, and says what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medledger.addresses import parse_address
from medledger.chain import deployments, events
from medledger.errors import PatientNotFound, PreconditionFailed
from medledger.providers.participants import Role, participant, registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.contracts import Contract, ContractCall
    from medledger.chain.pipeline import Receipt

CONTRACT = deployments.RECOVERY
MAX_GUARDIANS = 8
MIN_DELAY = timedelta(hours=1)
MAX_DELAY = timedelta(days=365)


@dataclass(frozen=True)
class Guardians:
    """A patient's guardians and their rules."""

    patient: str
    guardians: tuple[str, ...]
    threshold: int
    delay: timedelta
    #: When a proposed guardian change may be applied (None: none pending).
    change_at: datetime | None
    #: Guardians who voted to freeze (in the current round).
    freeze_votes: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "patient": self.patient,
            "guardians": list(self.guardians),
            "threshold": self.threshold,
            "delay_seconds": int(self.delay.total_seconds()),
            "change_at": self.change_at.isoformat() if self.change_at else None,
            "freeze_votes": list(self.freeze_votes),
        }


@dataclass(frozen=True)
class Recovery:
    """A proposed move of a patient's control to ``to``."""

    patient: str
    to: str
    approvals: tuple[str, ...]
    #: When it may complete (None while below the threshold, or when void).
    ready_at: datetime | None
    #: False when cancelled, completed or voided by a guardian change.
    current: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "patient": self.patient,
            "to": self.to,
            "approvals": list(self.approvals),
            "ready_at": self.ready_at.isoformat() if self.ready_at else None,
            "current": self.current,
        }


def recovery_contract(chain: Chain) -> Contract:
    """The deployed PatientRecovery."""
    return deployments.contract(chain, CONTRACT)


# --- reading ------------------------------------------------------------------------------------


def controller_of(chain: Chain, patient: str) -> str | None:
    """The address acting as the patient now (the id itself until a recovery), or None while
    the patient is frozen."""
    return as_controller(chain.call("reading the controller", controller_call(chain, patient)))


def controller_call(chain: Chain, patient: str) -> ContractCall:
    """The call :func:`controller_of` makes (to batch it with others: ``Chain.call_many``)."""
    call: ContractCall = registry(chain).functions.controllerOf(parse_address(patient))
    return call


def as_controller(found: str) -> str | None:
    """What ``controllerOf`` answered, as :func:`controller_of` returns it."""
    return None if int(found, 16) == 0 else to_checksum_address(found)


def patient_of(chain: Chain, account: str) -> str | None:
    """The patient ``account`` controls now (itself for a patient never recovered), or None."""
    found = chain.call(
        "reading the controller", registry(chain).functions.patientOf(parse_address(account))
    )
    return None if int(found, 16) == 0 else to_checksum_address(found)


def is_frozen(chain: Chain, patient: str) -> bool:
    """True while the patient is frozen."""
    return bool(chain.call("reading the controller", registry(chain).functions.isFrozen(patient)))


def guardians_of(chain: Chain, patient: str) -> Guardians:
    """The patient's guardians, threshold, delay, pending change and freeze votes."""
    patient = parse_address(patient, "patient")
    listed, rules = chain.call(
        "reading the guardians", recovery_contract(chain).functions.guardiansOf(patient)
    )
    threshold, delay, _round, votes, change_at = rules
    guardians = tuple(to_checksum_address(g) for g in listed)
    return Guardians(
        patient=patient,
        guardians=guardians,
        threshold=int(threshold),
        delay=timedelta(seconds=int(delay)),
        change_at=_time(change_at),
        freeze_votes=tuple(g for i, g in enumerate(guardians) if int(votes) >> i & 1),
    )


def recovery_of(chain: Chain, patient: str, to: str) -> Recovery:
    """The state of a recovery of ``patient`` to ``to``."""
    patient, to = parse_address(patient, "patient"), parse_address(to, "new address")
    contract = recovery_contract(chain)
    round_, bits, ready_at = chain.call(
        "reading the recovery", contract.functions.recoveryOf(patient, to)
    )
    listed, rules = chain.call("reading the guardians", contract.functions.guardiansOf(patient))
    current = int(round_) == int(rules[2])
    approvals = tuple(
        to_checksum_address(g) for i, g in enumerate(listed) if current and int(bits) >> i & 1
    )
    return Recovery(patient, to, approvals, _time(ready_at) if current else None, current)


def pending_recoveries(chain: Chain, patient: str) -> list[Recovery]:
    """The patient's current recoveries (approved in this round), oldest first."""
    patient = parse_address(patient, "patient")
    found = events.logs(chain, CONTRACT, "RecoveryApproved", {"patient": patient})
    targets = dict.fromkeys(to_checksum_address(log["newController"]) for log in found)
    states = [recovery_of(chain, patient, to) for to in targets]
    return [s for s in states if s.current and s.approvals]


# --- acting -------------------------------------------------------------------------------------


def set_guardians(
    chain: Chain,
    controller: Signer,
    guardians: Sequence[str],
    threshold: int,
    delay: timedelta,
    patient: str | None = None,
) -> bool:
    """Name the patient's guardians (an empty list and threshold 0: none). Returns True when
    they apply now (the first guardians), False when the change waits the current delay (then
    ``apply_guardians``)."""
    patient = _controlled(chain, controller, patient)
    chosen = [parse_address(g, "guardian") for g in guardians]
    seconds = int(delay.total_seconds())
    if chosen or threshold:
        if not 1 <= len(chosen) <= MAX_GUARDIANS:
            raise PreconditionFailed(f"name 1 to {MAX_GUARDIANS} guardians, not {len(chosen)}")
        if len(set(chosen)) != len(chosen):
            raise PreconditionFailed("a guardian is named twice")
        if patient in chosen or controller.address in chosen:
            raise PreconditionFailed("the patient's own key cannot be one of its guardians")
        if not 1 <= threshold <= len(chosen):
            raise PreconditionFailed(
                f"the threshold must be between 1 and the {len(chosen)} guardian(s), "
                f"not {threshold}"
            )
        if not MIN_DELAY <= timedelta(seconds=seconds) <= MAX_DELAY:
            raise PreconditionFailed("the recovery delay must be between 1 hour and 365 days")
    first = guardians_of(chain, patient).threshold == 0
    chain.transact(
        "naming the guardians",
        controller,
        recovery_contract(chain).functions.setGuardians(patient, chosen, threshold, seconds),
    )
    return first


def apply_guardians(chain: Chain, signer: Signer, patient: str) -> Receipt:
    """Apply a proposed guardian change whose delay has run out."""
    patient = parse_address(patient, "patient")
    pending = guardians_of(chain, patient).change_at
    if pending is None:
        raise PreconditionFailed(f"no guardian change of {patient} is pending")
    if chain.now() < pending:
        raise PreconditionFailed(f"the guardian change applies from {pending:%Y-%m-%d %H:%M}Z")
    if is_frozen(chain, patient):
        raise PreconditionFailed(f"{patient} is frozen: complete a recovery first")
    return chain.transact(
        "applying the guardians", signer, recovery_contract(chain).functions.applyGuardians(patient)
    )


def approve_recovery(chain: Chain, guardian: Signer, patient: str, to: str) -> Recovery:
    """A guardian approves moving the patient's control to ``to`` (an address with no role)."""
    patient, to = _patient(chain, patient), parse_address(to, "--to")
    named = guardians_of(chain, patient)
    if guardian.address not in named.guardians:
        raise PreconditionFailed(f"{guardian.address} is not a guardian of {patient}")
    if participant(chain, to).role is not Role.NONE or patient_of(chain, to) is not None:
        raise PreconditionFailed(
            f"{to} already has a role (or controls a patient): recover to a fresh address"
        )
    if guardian.address in recovery_of(chain, patient, to).approvals:
        raise PreconditionFailed(f"{guardian.address} already approved this recovery")
    chain.transact(
        "approving the recovery",
        guardian,
        recovery_contract(chain).functions.approveRecovery(patient, to),
    )
    return recovery_of(chain, patient, to)


def cancel_recovery(chain: Chain, controller: Signer, patient: str | None = None) -> Receipt:
    """The controlling key cancels every pending recovery of the patient."""
    patient = _controlled(chain, controller, patient)
    return chain.transact(
        "cancelling the recovery",
        controller,
        recovery_contract(chain).functions.cancelRecovery(patient),
    )


def complete_recovery(chain: Chain, signer: Signer, patient: str, to: str | None = None) -> str:
    """Complete a recovery whose delay has run out (anyone may); returns the new controller.
    Without ``to``, the one recovery of the patient that reached the threshold."""
    patient = _patient(chain, patient)
    if to is None:
        started = [r for r in pending_recoveries(chain, patient) if r.ready_at is not None]
        if len(started) != 1:
            raise PreconditionFailed(
                f"{len(started)} recoveries of {patient} reached the threshold: give --to"
            )
        to = started[0].to
    state = recovery_of(chain, patient, parse_address(to, "--to"))
    if state.ready_at is None:
        raise PreconditionFailed(
            f"the recovery of {patient} to {state.to} has not reached the guardians' threshold "
            "(or was cancelled or completed)"
        )
    if chain.now() < state.ready_at:
        raise PreconditionFailed(
            f"the recovery of {patient} to {state.to} completes from "
            f"{state.ready_at:%Y-%m-%d %H:%M}Z (the old key may cancel it until then)"
        )
    chain.transact(
        "completing the recovery",
        signer,
        recovery_contract(chain).functions.completeRecovery(patient, state.to),
    )
    return state.to


def freeze(chain: Chain, signer: Signer, patient: str | None = None) -> bool:
    """Freeze the patient: at once from its controller, else a guardian's vote. Returns True
    when the patient is frozen now."""
    patient = _patient(chain, patient or patient_of(chain, signer.address) or signer.address)
    if is_frozen(chain, patient):
        raise PreconditionFailed(f"{patient} is frozen already")
    named = guardians_of(chain, patient)
    if signer.address != controller_of(chain, patient):
        if signer.address not in named.guardians:
            raise PreconditionFailed(
                f"{signer.address} is neither the controller nor a guardian of {patient}"
            )
        if signer.address in named.freeze_votes:
            raise PreconditionFailed(f"{signer.address} already voted to freeze {patient}")
    freezing = recovery_contract(chain).functions.freeze(patient)
    chain.transact("freezing the patient", signer, freezing)
    return is_frozen(chain, patient)


# --- helpers ------------------------------------------------------------------------------------


def _patient(chain: Chain, patient: str) -> str:
    patient = parse_address(patient, "--patient")
    if participant(chain, patient).role is not Role.PATIENT:
        raise PatientNotFound(patient)
    return patient


def _controlled(chain: Chain, controller: Signer, patient: str | None) -> str:
    """The patient the signer controls (``patient`` when given, checked)."""
    mine = patient_of(chain, controller.address) or controller.address
    patient = _patient(chain, patient or mine)
    if controller_of(chain, patient) != controller.address:
        frozen = " (it is frozen: complete a recovery)" if is_frozen(chain, patient) else ""
        raise PreconditionFailed(f"{controller.address} does not control {patient}{frozen}")
    return patient


def _time(seconds: int) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), UTC) if int(seconds) else None
