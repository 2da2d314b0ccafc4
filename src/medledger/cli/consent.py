"""``medledger grant``, ``revoke``, ``delegate``, ``emergency-access``, ``care ...``,
``deliver-keys``, ``erase``, ``grants``, ``audit`` and the other consent verbs: who may read and
write a patient's records (thin commands over ``medledger.consent`` and
``medledger.providers``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from medledger.cli.support import (
    ADDRESS,
    DURATION,
    OUTPUT,
    DurationType,
    Session,
    common,
    pass_session,
)

EMERGENCY = DurationType(timedelta(hours=24))


@click.command("grant")
@click.argument("grantee", required=False, type=ADDRESS)
@click.option("--patient", type=ADDRESS, help="Whose records (default: the --account).")
@click.option("--scope", default="all", show_default=True, help="record:ID, category:NAME or all.")
@click.option(
    "--purpose",
    default="treatment",
    show_default=True,
    help="treatment, payment, research, operations, patient-request.",
)
@click.option(
    "--expires",
    default="30d",
    show_default=True,
    type=DURATION,
    help="For how long: 30d, 12h, 2w... (at most 10 years).",
)
@click.option(
    "--sign-only", is_flag=True, help="Sign off chain (EIP-712) and write the grant to --out."
)
@click.option("--out", type=OUTPUT, help="Where --sign-only writes.")
@click.option("--fhir", is_flag=True, help="With --sign-only: write a proposed FHIR Consent.")
@click.option(
    "--submit",
    "submit_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Submit a signed grant file or proposed FHIR Consent (any account pays the gas).",
)
@common
@pass_session
def grant(
    session: Session,
    grantee: str | None,
    patient: str | None,
    scope: str,
    purpose: str,
    expires: timedelta,
    sign_only: bool,
    out: Path | None,
    fhir: bool,
    submit_file: Path | None,
) -> None:
    """Grant GRANTEE access to a patient's records, delivering the keys in scope."""
    from medledger import consent, documents
    from medledger.errors import ConfigurationError
    from medledger.ipfs.stores import open_store

    chain, store = session.chain, open_store(session.settings)
    now = chain.now()
    if submit_file is not None:
        document = documents.read_object(submit_file)
        fhir_consent = document.get("resourceType") == "Consent"
        submit = consent.submit_consent if fhir_consent else consent.submit_signed_grant
        state = submit(chain, store, session.account(), document)
        session.emit(state.as_dict(now), _grant_line(state))
        return
    if grantee is None:
        raise ConfigurationError("grant", "name the GRANTEE (or give --submit FILE)")
    if fhir and not sign_only:
        raise ConfigurationError("--fhir", "goes with --sign-only (it writes a proposed Consent)")
    signer = session.account()
    args = (chain, store, signer, patient or signer.address, grantee, consent.Scope.parse(scope),
            consent.Purpose.parse(purpose), expires)  # fmt: skip
    if sign_only:
        if out is None:
            raise ConfigurationError("--out", "--sign-only writes the signed grant to --out FILE")
        document = (consent.signed_consent if fhir else consent.sign_grant)(*args)
        documents.write(out, document)
        what = "proposed FHIR Consent" if fhir else "signed grant"
        session.emit({"file": str(out)}, f"{what} written to {out}: anyone can submit it")
        return
    state = consent.grant(*args)
    if state.undelivered:
        why = consent.no_keys_held(signer.address, state.patient, state.grantee, state.undelivered)
        click.echo(f"warning: keys not delivered: {why}", err=True)
    session.emit(state.as_dict(now) | {"undelivered": list(state.undelivered)}, _grant_line(state))


def _grant_line(state: Any) -> str:
    return (
        f"{state.grantee} may read {state.scope.label} of {state.patient} for "
        f"{state.purpose.label} until {state.expires_at:%Y-%m-%d %H:%M}Z"
    )


@click.command("revoke")
@click.argument("grantee", required=False, type=ADDRESS)
@click.option("--patient", type=ADDRESS, help="Whose records (default: the --account).")
@click.option("--scope", default="all", show_default=True, help="The grant's scope.")
@click.option(
    "--sign-only",
    is_flag=True,
    help="Sign off chain (EIP-712, as the --account, the patient) and write it to --out.",
)
@click.option("--out", type=OUTPUT, help="Where --sign-only writes.")
@click.option(
    "--submit",
    "submit_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Submit a signed revocation file (any account pays the gas).",
)
@common
@pass_session
def revoke(
    session: Session,
    grantee: str | None,
    patient: str | None,
    scope: str,
    sign_only: bool,
    out: Path | None,
    submit_file: Path | None,
) -> None:
    """Revoke GRANTEE's access at once."""
    from medledger import consent, documents
    from medledger.errors import ConfigurationError

    chain = session.chain
    if submit_file is not None:
        document = documents.read_object(submit_file)
        state = consent.submit_signed_revocation(chain, session.account(), document)
        session.emit(state.as_dict(chain.now()),
                     f"{state.grantee} no longer has {state.scope.label} access")  # fmt: skip
        return
    if grantee is None:
        raise ConfigurationError("revoke", "name the GRANTEE (or give --submit FILE)")
    signer = session.account()
    parsed = consent.Scope.parse(scope)
    if sign_only:
        if out is None:
            raise ConfigurationError("--out", "--sign-only writes the signed revocation to --out")
        if patient is not None and patient != signer.address:
            raise ConfigurationError("--patient", "--sign-only signs as the --account's patient")
        documents.write(out, consent.sign_revocation(chain, signer, grantee, parsed))
        session.emit({"file": str(out)},
                     f"signed revocation written to {out}: anyone can submit it")  # fmt: skip
        return
    consent.revoke(chain, signer, patient or signer.address, grantee, parsed)
    session.emit({"grantee": grantee, "scope": parsed.label, "revoked": True},
                 f"{grantee} no longer has {parsed.label} access")  # fmt: skip


@click.command("delegate")
@click.argument("delegate_address", type=ADDRESS)
@click.option("--remove", is_flag=True, help="Remove the delegate instead.")
@common
@pass_session
def delegate(session: Session, delegate_address: str, remove: bool) -> None:
    """Name a guardian or proxy who may act for the --account (a patient)."""
    from medledger import providers

    providers.set_delegate(session.chain, session.account(), delegate_address, not remove)
    verb = "removed as" if remove else "is now"
    session.emit({"delegate": delegate_address, "allowed": not remove},
                 f"{delegate_address} {verb} a delegate")  # fmt: skip


@click.command("emergency-access")
@click.argument("patient", type=ADDRESS)
@click.option(
    "--reason", required=True, help="Why (public: a code or sentence, no clinical detail)."
)
@click.option("--duration", default="12h", show_default=True, type=EMERGENCY, help="At most 24h.")
@common
@pass_session
def emergency_access(session: Session, patient: str, reason: str, duration: timedelta) -> None:
    """Open break-glass access to a patient's records (a verified emergency service)."""
    from medledger import consent

    until = consent.open_emergency_access(
        session.chain, session.account(), patient, duration, reason
    )
    text = f"emergency access to {patient} open until {until:%Y-%m-%d %H:%M}Z (audited)"
    session.emit({"patient": patient, "until": until.isoformat()}, text)


@click.command("close-emergency-access")
@click.argument("institution_address", type=ADDRESS)
@click.option("--patient", type=ADDRESS, help="Whose records (default: the --account).")
@common
@pass_session
def close_emergency_access(session: Session, institution_address: str, patient: str | None) -> None:
    """End an emergency service's live break-glass access at once (the patient or a delegate)."""
    from medledger import consent

    signer = session.account()
    consent.close_emergency_access(
        session.chain, signer, patient or signer.address, institution_address
    )
    session.emit({"institution": institution_address, "closed": True},
                 f"emergency access of {institution_address} closed")  # fmt: skip


@click.command("cancel-signatures")
@click.option("--patient", type=ADDRESS, help="Whose signatures (default: the --account).")
@common
@pass_session
def cancel_signatures(session: Session, patient: str | None) -> None:
    """Cancel signed grants and care relationships not yet submitted (burns the next nonces)."""
    from medledger import consent, providers

    signer = session.account()
    target = patient or signer.address
    grants = consent.cancel_signatures(session.chain, signer, target)
    care = providers.cancel_care_signatures(session.chain, signer, target)
    session.emit({"grant_nonce": grants, "care_nonce": care},
                 f"signed grants with nonce {grants} and care requests with nonce {care} "
                 "can no longer be submitted")  # fmt: skip


@click.group("care")
def care() -> None:
    """Care relationships: which institutions may write a patient's records."""


@care.command("authorize")
@click.argument("institution_address", type=ADDRESS)
@click.option("--patient", type=ADDRESS, help="Whose records (default: the --account).")
@click.option(
    "--for",
    "duration",
    type=DURATION,
    help="How long (30d, 26w, at most 10 years; default: until revoked).",
)
@click.option("--sign-only", is_flag=True, help="Sign it for the institution to submit.")
@click.option("--out", type=OUTPUT, help="With --sign-only.")
@click.option("--submit", "submit_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Submit a signed care relationship (any account pays the gas).")  # fmt: skip
@common
@pass_session
def care_authorize(
    session: Session,
    institution_address: str,
    patient: str | None,
    duration: timedelta | None,
    sign_only: bool,
    out: Path | None,
    submit_file: Path | None,
) -> None:
    """Let INSTITUTION (a care provider) write the patient's records."""
    from medledger import documents, providers
    from medledger.errors import ConfigurationError

    chain, signer = session.chain, session.account()
    if submit_file is not None:
        done = providers.submit_signed_care(chain, signer, documents.read_object(submit_file))
    else:
        until = None if duration is None else chain.now() + duration
        target = patient or signer.address
        if sign_only:
            if out is None:
                raise ConfigurationError("--out", "--sign-only writes the request to --out FILE")
            signed = providers.sign_care(chain, signer, target, institution_address, until)
            documents.write(out, signed)
            text = f"signed care relationship written to {out}: the institution submits it"
            session.emit({"file": str(out)}, text)
            return
        done = providers.authorize_care(chain, signer, target, institution_address, until)
    text = f"{done.institution} may now write {done.patient}'s records"
    session.emit(done.as_dict(), text)


@care.command("revoke")
@click.argument("institution_address", type=ADDRESS)
@click.option("--patient", type=ADDRESS, help="Whose records (default: the --account).")
@common
@pass_session
def care_revoke(session: Session, institution_address: str, patient: str | None) -> None:
    """End INSTITUTION's care relationship (the patient, a delegate or the institution)."""
    from medledger import providers

    signer = session.account()
    target = patient or signer.address
    providers.revoke_care(session.chain, signer, target, institution_address)
    session.emit({"patient": target, "institution": institution_address, "revoked": True},
                 f"{institution_address} may no longer write {target}'s records")  # fmt: skip


@care.command("show")
@click.argument("institution_address", type=ADDRESS)
@click.option("--patient", type=ADDRESS, help="Whose records (default: the --account).")
@common
@pass_session
def care_show(session: Session, institution_address: str, patient: str | None) -> None:
    """Show the care relationship between a patient and INSTITUTION."""
    from medledger import providers

    target = patient or session.account().address
    found = providers.care_of(session.chain, target, institution_address)
    live = found.live(providers.chain_time(session.chain))
    session.emit(found.as_dict() | {"live": live},
                 f"{found.institution} {'may' if live else 'may not'} write {found.patient}'s "
                 "records")  # fmt: skip


@click.command("deliver-keys")
@click.argument("grantee", type=ADDRESS)
@click.option("--patient", required=True, type=ADDRESS, help="Whose records.")
@click.option("--scope", help="One live grant's scope (default: every live grant of GRANTEE).")
@common
@pass_session
def deliver_keys(session: Session, grantee: str, patient: str, scope: str | None) -> None:
    """Wrap the record keys the --account holds for a grantee's live grant, and publish them.

    Without --scope, for every live grant of GRANTEE (and its service's emergency opening).
    """
    from medledger import consent
    from medledger.ipfs.stores import open_store

    chain, store, holder = session.chain, open_store(session.settings), session.account()
    if scope is None:
        done = consent.deliver_keys_for_live_grants(chain, store, holder, patient, grantee)
    else:
        parsed = consent.Scope.parse(scope)
        cid = consent.deliver_keys(chain, store, holder, patient, grantee, parsed)
        done = [(parsed, cid)] if cid else []
    session.emit(
        {"envelope": str(done[-1][1]) if done else None,
         "envelopes": {s.label: str(cid) for s, cid in done}},
        "\n".join(f"keys delivered for {s.label} in envelope {cid}" for s, cid in done)
        or "no keys to deliver: no record in scope",
    )  # fmt: skip


@click.command("erase")
@click.argument("record_id")
@common
@pass_session
def erase(session: Session, record_id: str) -> None:
    """Erase a record (right to erasure): destroy its keys and unpin its body."""
    from medledger import consent
    from medledger.ipfs.stores import open_store

    removed = consent.erase(
        session.chain, open_store(session.settings), session.account(), record_id
    )
    text = f"record {record_id} erased; {removed} blocks removed from the local store"
    session.emit({"erased": record_id, "blocks_removed": removed}, text)


@click.command("grants")
@click.option("--patient", type=ADDRESS, help="Whose grants (default: the --account).")
@common
@pass_session
def grants_list(session: Session, patient: str | None) -> None:
    """List a patient's grants and emergency openings, with their status."""
    from medledger import consent

    chain = session.chain
    now = chain.now()
    target = patient or session.account().address
    states = consent.grants(chain, target)
    openings = consent.emergencies(chain, target)
    lines = [f"{s.status(now):8} {_grant_line(s)}" for s in states] + [
        f"{o.status(now):8} {o.institution} may read all of {o.patient} in an EMERGENCY until "
        f"{o.ended_at:%Y-%m-%d %H:%M}Z"
        for o in openings
    ]
    rows = [s.as_dict(now) for s in states] + [o.as_dict(now) for o in openings]
    session.emit(rows, "\n".join(lines) or "no grants")


@click.command("audit")
@click.option("--patient", required=True, type=ADDRESS, help="Whose audit trail.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)  # fmt: skip
@common
@pass_session
def audit(session: Session, patient: str, fmt: str) -> None:
    """A patient's timeline from chain events: writes, grants, revocations, reads, emergencies,
    identity attestations."""
    from medledger import consent
    from medledger.ipfs.stores import open_store

    entries = consent.access_trail(session.chain, patient, open_store(session.settings))
    click.echo(consent.render_trail(entries, "json" if session.as_json else fmt))
