"""``medledger institution ...``, ``registrar ...``, ``patient ...`` and ``publish-key``: who is
who in the ProviderRegistry (thin commands over ``medledger.providers``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from medledger.cli.identity import attest, describe, revoke_attestation
from medledger.cli.support import ADDRESS, OUTPUT, Session, common, pass_session

if TYPE_CHECKING:
    from medledger.providers import Participant


@click.group("institution")
def institution() -> None:
    """Apply, verify, suspend and reinstate institutions; manage practitioners."""


@institution.command("apply")
@click.option(
    "--kind",
    required=True,
    help="hospital, clinic, laboratory, insurer, research-sponsor, emergency-service",
)
@click.option("--name", required=True, help="The institution's public name.")
@common
@pass_session
def institution_apply(session: Session, kind: str, name: str) -> None:
    """Apply to join as an institution (registrars then verify)."""
    from medledger import providers

    parsed = providers.InstitutionKind.parse(kind)
    account = session.account()
    receipt = providers.apply_institution(session.chain, account, parsed, name)
    session.emit(
        {
            "institution": account.address,
            "kind": parsed.label,
            "tx": receipt.transaction_hash.removeprefix("0x"),
        },
        f"{name} ({parsed.label}) applied as {account.address}; awaiting registrar approval",
    )


def _approve(session: Session, address: str, expected: str) -> None:
    from medledger import providers
    from medledger.errors import PreconditionFailed

    chain = session.chain
    before = providers.participant(chain, address)
    wanted = providers.Status.PENDING if expected == "verify" else providers.Status.SUSPENDED
    if before.role is providers.Role.INSTITUTION and before.status is not wanted:
        raise PreconditionFailed(
            f"{before.address} is {before.status.name.lower()}, not {wanted.name.lower()}: "
            f"there is nothing to {expected}"
        )
    done = providers.approve_institution(chain, session.account(), address)
    after = providers.participant(chain, address)
    text = (
        f"{after.address} is now {after.status.name.lower()}"
        if done
        else f"approval recorded for {after.address}: {after.approvals} of {after.threshold}"
    )
    session.emit(after.as_dict(), text)


@institution.command("verify")
@click.argument("address", type=ADDRESS)
@common
@pass_session
def institution_verify(session: Session, address: str) -> None:
    """Cast this registrar's approval to verify a pending institution."""
    _approve(session, address, "verify")


@institution.command("reinstate")
@click.argument("address", type=ADDRESS)
@common
@pass_session
def institution_reinstate(session: Session, address: str) -> None:
    """Cast this registrar's approval to reinstate a suspended institution."""
    _approve(session, address, "reinstate")


@institution.command("suspend")
@click.argument("address", type=ADDRESS)
@click.option("--reason", default="unspecified", show_default=True, help="A short reason code.")
@common
@pass_session
def institution_suspend(session: Session, address: str, reason: str) -> None:
    """Suspend a verified institution at once (one registrar suffices)."""
    from medledger import providers

    providers.suspend_institution(session.chain, session.account(), address, reason)
    after = providers.participant(session.chain, address)
    session.emit(after.as_dict(), f"{after.address} is now suspended ({reason})")


@institution.command("show")
@click.argument("address", required=False, type=ADDRESS)
@common
@pass_session
def institution_show(session: Session, address: str | None) -> None:
    """Show an institution (default: the --account's own)."""
    from medledger import providers
    from medledger.errors import InstitutionNotFound

    target = address or session.account().address
    entry = providers.participant(session.chain, target)
    if entry.role is not providers.Role.INSTITUTION:
        raise InstitutionNotFound(entry.address)
    kind = entry.kind.label if entry.kind else "?"
    text = (
        f"{entry.address}: {kind}, {entry.status.name.lower()}"
        f" ({entry.approvals} of {entry.threshold} approvals this round)"
    )
    session.emit(entry.as_dict(), text)


@institution.command("add-practitioner")
@click.argument("address", type=ADDRESS)
@common
@pass_session
def institution_add_practitioner(session: Session, address: str) -> None:
    """Invite ADDRESS to work for this (verified) institution; it must accept."""
    from medledger import providers

    providers.add_practitioner(session.chain, session.account(), address)
    text = f"{address} is invited; it joins with: medledger institution join <this institution>"
    session.emit({"practitioner": address, "invited": True}, text)


@institution.command("join")
@click.argument("institution_address", type=ADDRESS)
@common
@pass_session
def institution_join(session: Session, institution_address: str) -> None:
    """Accept INSTITUTION's invitation: the --account becomes its practitioner."""
    from medledger import providers

    account = session.account()
    providers.accept_practitioner(session.chain, account, institution_address)
    session.emit({"practitioner": account.address, "institution": institution_address},
                 f"{account.address} now works for {institution_address}")  # fmt: skip


@institution.command("remove-practitioner")
@click.argument("address", type=ADDRESS)
@common
@pass_session
def institution_remove_practitioner(session: Session, address: str) -> None:
    """Remove a practitioner (or withdraw an invitation); a practitioner may remove itself."""
    from medledger import providers

    providers.remove_practitioner(session.chain, session.account(), address)
    session.emit({"practitioner": address, "removed": True}, f"{address} no longer works here")


@click.group("registrar")
def registrar() -> None:
    """Registrars govern themselves: vote registrars in or out, vote the threshold."""


@registrar.command("add")
@click.argument("address", type=ADDRESS)
@common
@pass_session
def registrar_add(session: Session, address: str) -> None:
    """Vote to add ADDRESS as a registrar (takes the threshold of registrars' votes)."""
    _vote_registrar(session, address, add=True)


@registrar.command("remove")
@click.argument("address", type=ADDRESS)
@common
@pass_session
def registrar_remove(session: Session, address: str) -> None:
    """Vote to remove registrar ADDRESS."""
    _vote_registrar(session, address, add=False)


def _vote_registrar(session: Session, address: str, add: bool) -> None:
    from medledger import providers

    done = providers.vote_registrar(session.chain, session.account(), address, add)
    if done:
        text = f"{address} {'added as' if add else 'removed as'} a registrar"
    else:
        text = f"vote recorded to {'add' if add else 'remove'} {address}"
    session.emit({"registrar": address, "add": add, "done": done}, text)


@registrar.command("threshold")
@click.argument("threshold", type=click.IntRange(1, 16))
@common
@pass_session
def registrar_threshold(session: Session, threshold: int) -> None:
    """Vote for a new approval threshold."""
    from medledger import providers

    done = providers.vote_threshold(session.chain, session.account(), threshold)
    text = "threshold is now" if done else "vote recorded for a threshold of"
    session.emit({"threshold": threshold, "done": done}, f"{text} {threshold}")


@click.command("publish-key")
@common
@pass_session
def publish_key(session: Session) -> None:
    """Publish (or rotate to) the --account's own encryption key in the registry."""
    from medledger import crypto, providers

    account = session.account()
    providers.publish_key(session.chain, account)
    key = "0x" + crypto.public_key(account.key).hex()
    session.emit({"account": account.address, "encryption_key": key}, f"published {key}")


@click.group("patient")
def patient() -> None:
    """Register as a patient; show a patient; attest or revoke a patient's identity; guardians
    and recovery."""


@patient.command("register")
@click.option(
    "--sign-only",
    is_flag=True,
    help="Sign the registration (no ETH needed) for an institution to relay.",
)
@click.option("--out", type=OUTPUT, help="Where --sign-only writes.")
@click.option("--submit", "submit_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Relay a patient's signed registration (the --account acts for a verified "
                   "institution and pays the gas).")  # fmt: skip
@common
@pass_session
def patient_register(
    session: Session, sign_only: bool, out: Path | None, submit_file: Path | None
) -> None:
    """Register the --account as a patient, publishing its encryption key (or, with
    --sign-only, sign the registration for a verified institution to relay with --submit)."""
    from medledger import documents, providers
    from medledger.errors import ConfigurationError

    if sign_only and submit_file is not None:
        raise ConfigurationError("register", "give either --sign-only or --submit, not both")
    account = session.account()
    if submit_file is not None:
        document = documents.read_object(submit_file)
        entry = providers.submit_signed_registration(session.chain, account, document)
        text = f"patient {entry.address} registered (relayed by {account.address})"
        session.emit({"patient": entry.address, "relayer": account.address}, text)
        return
    if sign_only:
        if out is None:
            raise ConfigurationError("--out", "--sign-only writes the registration to --out FILE")
        documents.write(out, providers.sign_registration(session.chain, account))
        text = f"signed registration written to {out}: a verified institution relays it"
        session.emit({"file": str(out), "patient": account.address}, text)
        return
    providers.register_patient(session.chain, account)
    session.emit({"patient": account.address}, f"patient {account.address} registered")


@patient.command("show")
@click.argument("address", required=False, type=ADDRESS)
@common
@pass_session
def patient_show(session: Session, address: str | None) -> None:
    """Show a patient's registration and who attested them (default: the patient the --account
    controls). A pseudonymous study account shows who attested it."""
    from medledger import identity, providers

    if address is None:
        own = session.account().address
        address = providers.patient_of(session.chain, own) or own
    entry = providers.participant(session.chain, address)
    if entry.role is not providers.Role.PATIENT:
        _show_pseudonym(session, entry)
        return
    key = entry.encryption_key.hex() if entry.encryption_key else "none"
    attestations = identity.attestations_of(session.chain, entry.address)
    data = {**entry.as_dict(), "attestations": [a.as_dict() for a in attestations]}
    control = _control(session, entry.address, data)
    lines = [f"patient {entry.address}, encryption key 0x{key}{control}"]
    lines += [f"  {describe(a)}" for a in attestations] or ["  not attested by any institution"]
    session.emit(data, "\n".join(lines))


def _show_pseudonym(session: Session, entry: Participant) -> None:
    """``patient show`` of an account with no role that an institution attested (a study
    account); ``PatientNotFound`` for any other."""
    from medledger import identity, providers
    from medledger.errors import PatientNotFound

    attested = identity.attestations_of(session.chain, entry.address)
    if entry.role is not providers.Role.NONE or not attested:
        raise PatientNotFound(entry.address)
    data = {"account": entry.address, "attestations": [a.as_dict() for a in attested]}
    lines = [f"{entry.address} is no registered patient: a pseudonymous account"]
    session.emit(data, "\n".join(lines + [f"  {describe(a)}" for a in attested]))


patient.add_command(attest)
patient.add_command(revoke_attestation)


def _control(session: Session, patient: str, data: dict[str, object]) -> str:
    """Who controls the patient (after a recovery, its new key) and its guardians: added to
    ``data``, and returned as text for the line."""
    from medledger.providers import recovery

    chain = session.chain
    named = recovery.guardians_of(chain, patient)
    controller = recovery.controller_of(chain, patient)
    data.update(controller=controller, frozen=recovery.is_frozen(chain, patient),
                guardians=list(named.guardians), threshold=named.threshold)  # fmt: skip
    text = ""
    if controller != patient:
        text += f", controlled by {controller or 'nobody: frozen'}"
    if named.guardians:
        text += f", guardians {', '.join(named.guardians)} ({named.threshold} needed)"
    return text


def _recovery_commands() -> None:
    from medledger.cli import recovery

    for command in (recovery.guardians, recovery.recover, recovery.freeze,
                    recovery.deliver_recovery_keys):  # fmt: skip
        patient.add_command(command)


_recovery_commands()
