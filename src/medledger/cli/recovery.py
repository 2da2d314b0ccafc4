"""``medledger patient guardians|recover|freeze|deliver-recovery-keys``: a patient's guardians
and the way back when a key is lost or stolen (thin commands over
``medledger.providers.recovery`` and ``medledger.consent.recovery_keys``)."""

from __future__ import annotations

from datetime import timedelta

import click

from medledger.cli.support import ADDRESS, DurationType, Session, common, pass_session


@click.command("guardians")
@click.option("--set", "chosen", help="Comma-separated guardian addresses ('' for none).")
@click.option("--threshold", type=int, help="Guardian approvals needed (with --set).")
@click.option("--delay", type=DurationType(timedelta(days=365)),
              help="Wait between the approvals and completion, e.g. 2d (with --set).")  # fmt: skip
@click.option("--apply", "apply_change", is_flag=True,
              help="Apply a proposed guardian change whose delay has run out.")  # fmt: skip
@click.option("--patient", type=ADDRESS, help="The patient (default: the one --account controls).")
@common
@pass_session
def guardians(
    session: Session,
    chosen: str | None,
    threshold: int | None,
    delay: timedelta | None,
    apply_change: bool,
    patient: str | None,
) -> None:
    """Show the patient's guardians, or name them (--set A,B,C --threshold 2 --delay 2d): the
    first guardians apply at once, a change only after the current delay (--apply)."""
    from medledger.addresses import parse_address
    from medledger.errors import ConfigurationError
    from medledger.providers import recovery

    chain = session.chain
    if chosen is not None:
        if threshold is None or (delay is None and chosen.strip()):
            raise ConfigurationError("--set", "give --threshold and --delay with --set")
        listed = [parse_address(a.strip(), "--set") for a in chosen.split(",") if a.strip()]
        account = session.account()
        now = recovery.set_guardians(
            chain, account, listed, threshold, delay or timedelta(0), patient
        )
        patient = recovery.patient_of(chain, account.address) or account.address
        state = recovery.guardians_of(chain, patient)
        if now:
            text = f"guardians of {patient}: {threshold} of {len(listed)}, named now"
        else:
            text = (
                f"guardian change of {patient} proposed: it applies from "
                f"{state.change_at:%Y-%m-%d %H:%M}Z (medledger patient guardians --apply)"
            )
        session.emit(state.as_dict(), text)
        return
    if patient is None:
        mine = session.account().address
        patient = recovery.patient_of(chain, mine) or mine
    if apply_change:
        recovery.apply_guardians(chain, session.account(), patient)
    state = recovery.guardians_of(chain, patient)
    listed_text = ", ".join(state.guardians) or "none"
    text = f"guardians of {patient}: {listed_text} ({state.threshold} needed, delay {state.delay})"
    session.emit(state.as_dict(), text)


@click.command("recover")
@click.option("--patient", "patient", type=ADDRESS, help="The patient being recovered.")
@click.option("--to", "to", type=ADDRESS, help="The new address (a guardian approves it).")
@click.option("--complete", is_flag=True, help="Complete a recovery whose delay has run out.")
@click.option("--cancel", is_flag=True, help="Cancel every pending recovery (the patient's key).")
@common
@pass_session
def recover(
    session: Session, patient: str | None, to: str | None, complete: bool, cancel: bool
) -> None:
    """A guardian approves moving a patient's control to a new address (--patient OLD --to NEW);
    after the delay anyone completes it (--complete); until then the old key cancels (--cancel)."""
    from medledger.errors import ConfigurationError
    from medledger.providers import recovery

    if complete and cancel:
        raise ConfigurationError("recover", "give either --complete or --cancel, not both")
    chain, account = session.chain, session.account()
    if cancel:
        recovery.cancel_recovery(chain, account, patient)
        shown = patient or recovery.patient_of(chain, account.address) or account.address
        session.emit({"patient": shown, "cancelled": True}, f"recoveries of {shown} cancelled")
        return
    if patient is None:
        raise ConfigurationError("--patient", "name the patient being recovered")
    if complete:
        new = recovery.complete_recovery(chain, account, patient, to)
        text = (
            f"{new} now controls patient {patient}; the old key has no right left. Next: "
            f"the new key runs `medledger publish-key`, then the institutions that wrote the "
            f"records run `medledger patient deliver-recovery-keys --patient {patient}`"
        )
        session.emit({"patient": patient, "controller": new}, text)
        return
    if to is None:
        raise ConfigurationError("--to", "name the new address (or give --complete or --cancel)")
    state = recovery.approve_recovery(chain, account, patient, to)
    threshold = recovery.guardians_of(chain, patient).threshold
    if state.ready_at is None:
        text = f"approval recorded: {len(state.approvals)} of {threshold} for {to}"
    else:
        text = (
            f"recovery of {patient} to {to} started: it completes from "
            f"{state.ready_at:%Y-%m-%d %H:%M}Z unless the patient's key cancels it"
        )
    session.emit(state.as_dict(), text)


@click.command("freeze")
@click.option("--patient", type=ADDRESS, help="The patient (default: the one --account controls).")
@common
@pass_session
def freeze(session: Session, patient: str | None) -> None:
    """Freeze a patient whose key was stolen: at once from the patient's key, or as a guardian's
    vote (the threshold of votes freezes). Nobody acts as a frozen patient until a recovery."""
    from medledger.providers import recovery

    chain, account = session.chain, session.account()
    frozen = recovery.freeze(chain, account, patient)
    shown = patient or account.address
    text = f"{shown} is frozen" if frozen else f"freeze vote recorded for {shown}"
    session.emit({"patient": shown, "frozen": frozen}, text)


@click.command("deliver-recovery-keys")
@click.option("--patient", type=ADDRESS, required=True, help="The recovered patient.")
@common
@pass_session
def deliver_recovery_keys(session: Session, patient: str) -> None:
    """Re-wrap the keys of the patient's records the --account holds (an institution that wrote
    them) for the patient's new key, and publish the envelope."""
    from medledger.consent.recovery_keys import deliver_recovery_keys as deliver
    from medledger.ipfs.stores import open_store

    store = open_store(session.settings)
    envelope, count = deliver(session.chain, store, session.account(), patient)
    text = f"delivered {count} record key(s) of {patient} for its new key (envelope {envelope})"
    session.emit({"patient": patient, "envelope": str(envelope), "keys": count}, text)
