"""``medledger trial ...``: clinical trials (thin click commands over ``medledger.trials``).

Who runs what: the sponsor (a verified research sponsor) registers, amends, adds sites and
monitors; a participant, with a fresh study account of their own (``ape accounts generate
study-7`` or ``--account env:VAR``), signs consent and withdrawal; the enrolling site submits
the signed consent and the participant's data; readers read; anyone audits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger.cli.identity import EXPIRES
from medledger.cli.support import (
    ADDRESS,
    DURATION,
    OUTPUT,
    Session,
    common,
    pass_session,
    write_output,
)
from medledger.errors import ConfigurationError

if TYPE_CHECKING:
    from datetime import timedelta

    from medledger import trials as trials_module

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT = OUTPUT


def _study_text(s: trials_module.Study) -> str:
    first = f"{s.first_enrolment_at:%F %H:%M}Z" if s.first_enrolment_at else "nobody yet"
    return "\n".join(
        [
            f"study {s.id} ({s.identifier})",
            f"  sponsor {s.sponsor}; protocol v{s.current_version} in force"
            + (
                f", re-consent to v{s.reconsent_version} required"
                if s.reconsent_version > 1
                else ""
            ),
            f"  registered {s.registered_at:%F %H:%M}Z; first enrolment {first}",
            f"  {s.participants} participant(s), {s.data_count} data bodies",
            f"  sites: {', '.join(s.sites) or 'none'}"
            + ("; each attests the participants it enrols" if s.attested_participants else ""),
            f"  monitors: {', '.join(s.monitors) or 'none'}",
        ]
        + ([f"  summary {s.summary}"] if s.summary else [])
    )


def _participation_text(p: trials_module.Participation) -> str:
    readers = [r for r, on in (("sponsor", p.sponsor_reads), ("monitors", p.monitors_read)) if on]
    when = f" on {p.withdrawn_at:%F %H:%M}Z" if p.withdrawn_at else ""
    return (
        f"{p.participant}: {p.standing.value}{when}, consented to v{p.consented_version}"
        f" (v{p.required_version} required) at {p.site}; {p.purpose.label}; "
        f"readers: site{''.join(', ' + r for r in readers)}"
        + (f"; delegate {p.delegate}" if p.delegate else "")
    )


def _read_json(path: Path) -> dict[str, Any]:
    from medledger import documents

    return documents.read_object(path)


def _write_json(path: Path, document: dict[str, Any], private: bool = False) -> None:
    from medledger import documents

    documents.write(path, document)
    if private:
        path.chmod(0o600)


def _one_of(sign_only: bool, submit: Path | None, out: Path | None, verb: str) -> None:
    if sign_only and submit is not None:
        raise ConfigurationError(verb, "give either --sign-only or --submit, not both")
    if sign_only and out is None:
        raise ConfigurationError("--out", "--sign-only writes the signed document to --out FILE")


@click.group()
def trial() -> None:
    """Clinical trials: registered protocols, signed consent, traceable data, audits."""


# --- the sponsor ---------------------------------------------------------------------------------


@trial.command("register")
@click.argument("protocol", type=_FILE)
@click.option("--site", "sites", multiple=True, type=ADDRESS,
              help="A planned site's address (repeat).")  # fmt: skip
@click.option("--encrypt", is_flag=True, help="Seal the protocol for the sponsor and the sites.")
@click.option("--summary", type=_FILE, help="A public summary document to publish with it.")
@common
@pass_session
def trial_register(
    session: Session, protocol: Path, sites: tuple[str, ...], encrypt: bool, summary: Path | None
) -> None:
    """Register a study from its FHIR ResearchStudy PROTOCOL (the --account is the sponsor)."""
    from medledger import trials
    from medledger.ipfs.stores import open_store

    study = trials.register_study(
        session.chain,
        open_store(session.settings),
        session.account(),
        protocol.read_bytes(),
        list(sites),
        encrypt=encrypt,
        summary=summary.read_bytes() if summary else None,
        source=str(protocol),
    )
    session.emit(study.as_dict(), _study_text(study))


@trial.command("amend")
@click.argument("study_id", type=int)
@click.argument("protocol", type=_FILE)
@click.option("--reason", required=True, help="Why (public: a code or sentence, no personal data).")
@click.option("--reconsent", is_flag=True, help="Participants must consent again before more data.")
@click.option("--encrypt/--public", default=None, help="Default: as the version in force.")
@common
@pass_session
def trial_amend(
    session: Session,
    study_id: int,
    protocol: Path,
    reason: str,
    reconsent: bool,
    encrypt: bool | None,
) -> None:
    """Amend a study's protocol: PROTOCOL becomes the new version in force."""
    from medledger import trials
    from medledger.ipfs.stores import open_store

    version = trials.amend(
        session.chain,
        open_store(session.settings),
        session.account(),
        study_id,
        protocol.read_bytes(),
        requires_reconsent=reconsent,
        reason=reason,
        encrypt=encrypt,
        source=str(protocol),
    )
    text = f"study {study_id}: protocol v{version.version} in force ({version.reason})" + (
        "; every participant must re-consent" if version.requires_reconsent else ""
    )
    session.emit(version.as_dict(), text)


@trial.command("add-site")
@click.argument("study_id", type=int)
@click.argument("site", type=ADDRESS)
@common
@pass_session
def trial_add_site(session: Session, study_id: int, site: str) -> None:
    """Add a verified hospital, clinic or laboratory as a site."""
    from medledger import trials

    study = trials.add_site(session.chain, session.account(), study_id, site)
    session.emit(study.as_dict(), f"study {study_id} sites: {', '.join(study.sites)}")


@trial.command("add-monitor")
@click.argument("study_id", type=int)
@click.argument("monitor", type=ADDRESS)
@click.option("--remove", is_flag=True, help="Remove the monitor instead.")
@common
@pass_session
def trial_add_monitor(session: Session, study_id: int, monitor: str, remove: bool) -> None:
    """Add (or remove) a monitor, who reads the data of participants that allow it."""
    from medledger import trials

    study = trials.set_monitor(session.chain, session.account(), study_id, monitor, not remove)
    session.emit(
        study.as_dict(), f"study {study_id} monitors: {', '.join(study.monitors) or 'none'}"
    )


@trial.command("require-attested")
@click.argument("study_id", type=int)
@common
@pass_session
def trial_require_attested(session: Session, study_id: int) -> None:
    """Require each participant to be attested by the site that enrols them (before the
    first enrolment)."""
    from medledger import trials

    study = trials.require_attested_participants(session.chain, session.account(), study_id)
    session.emit(
        study.as_dict(),
        f"study {study_id} requires participants attested by their enrolling site",
    )


@trial.command("publish-summary")
@click.argument("study_id", type=int)
@click.argument("summary", type=_FILE)
@common
@pass_session
def trial_publish_summary(session: Session, study_id: int, summary: Path) -> None:
    """Publish (or replace) a study's public summary document."""
    from medledger import trials
    from medledger.ipfs.stores import open_store

    cid = trials.publish_summary(
        session.chain,
        open_store(session.settings),
        session.account(),
        study_id,
        summary.read_bytes(),
    )
    session.emit({"study": study_id, "summary": str(cid)}, f"study {study_id} summary: {cid}")


# --- reading a study -----------------------------------------------------------------------------


@trial.command("list")
@click.option("--sponsor", type=ADDRESS, help="Only this sponsor's studies.")
@common
@pass_session
def trial_list(session: Session, sponsor: str | None) -> None:
    """List the registered studies."""
    from medledger import trials

    found = trials.studies(session.chain, sponsor)
    lines = [
        f"{s.id:4}  v{s.current_version}  {s.participants:4} participants  {s.data_count:5} data"
        f"  sponsor {s.sponsor}"
        for s in found
    ]
    session.emit([s.as_dict() for s in found], "\n".join(lines) or "no studies")


@trial.command("show")
@click.argument("study_id", type=int)
@click.option("--participant", type=ADDRESS, help="Show one participant's standing.")
@click.option(
    "--fhir", is_flag=True, help="Print a ResearchStudy (with --participant, a ResearchSubject)."
)
@click.option("--protocol", "show_protocol", is_flag=True, help="Print the protocol document.")
@click.option("--version", type=int, help="With --protocol: this version (default: in force).")
@common
@pass_session
def trial_show(
    session: Session,
    study_id: int,
    participant: str | None,
    fhir: bool,
    show_protocol: bool,
    version: int | None,
) -> None:
    """Show a study: versions, sites, participants and every step with its gas."""
    from medledger import trials
    from medledger.ipfs.stores import open_store

    chain = session.chain
    reader = session.account() if session.account_spec else None
    if show_protocol:
        store = open_store(session.settings)
        write_output(trials.read_protocol(chain, store, study_id, version, reader), None)
        return
    if participant is not None:
        standing = trials.participation(chain, study_id, participant)
        if fhir:
            write_output(trials.research_subject(chain, standing) + b"\n", None)
        else:
            session.emit(standing.as_dict(), _participation_text(standing))
        return
    study = trials.get_study(chain, study_id)
    if fhir:
        store = open_store(session.settings)
        write_output(trials.research_study(chain, store, study, reader) + b"\n", None)
        return
    found = trials.versions(chain, study_id)
    people = trials.participants(chain, study_id)
    steps = trials.history(chain, study_id)
    lines = [_study_text(study), "  protocol versions:"]
    lines += [
        f"    v{v.version}  {v.protocol}{' (encrypted)' if v.encrypted else ''}  "
        f"{v.registered_at:%F %H:%M}Z  {v.reason}{'  [re-consent]' if v.requires_reconsent else ''}"
        + (
            f"  outcomes frozen {v.outcomes_frozen_at:%F %H:%M}Z"
            if v.outcomes_frozen_at
            else "  outcomes not yet frozen"
        )
        for v in found
    ]
    lines.append("  participants:")
    lines += [f"    {_participation_text(p)}" for p in people] or ["    none"]
    lines.append("  steps:")
    seen: set[str] = set()
    for step in steps:
        gas = "" if step.transaction_hash in seen else f"  {step.gas_used:,} gas"
        seen.add(step.transaction_hash)
        lines.append(f"    {step.time:%F %H:%M:%S}  {step.event:20} {step.detail}{gas}")
    session.emit(
        {
            **study.as_dict(),
            "versions": [v.as_dict() for v in found],
            "participants_detail": [p.as_dict() for p in people],
            "history": [s.as_dict() for s in steps],
        },
        "\n".join(lines),
    )


# --- the participant and the site ----------------------------------------------------------------


@trial.command("consent")
@click.argument("study_id", type=int, required=False)
@click.option("--site", type=ADDRESS, help="The enrolling site (with --sign-only).")
@click.option(
    "--purpose",
    default="trial-only",
    show_default=True,
    help="trial-only or trial-and-future-research.",
)
@click.option("--no-sponsor", is_flag=True, help="Do not let the sponsor read my data.")
@click.option("--no-monitors", is_flag=True, help="Do not let the study's monitors read my data.")
@click.option("--delegate", type=ADDRESS, help="An account that may withdraw for me.")
@click.option("--valid-for", default="7d", show_default=True, type=DURATION,
              help="How long the signature holds (at most 10 years).")  # fmt: skip
@click.option("--sign-only", is_flag=True, help="Sign (the --account is the participant).")
@click.option("--out", type=_OUT, help="Where --sign-only writes the signed consent.")
@click.option("--submit", "submit_file", type=_FILE, help="Submit a signed consent (the site).")
@common
@pass_session
def trial_consent(
    session: Session,
    study_id: int | None,
    site: str | None,
    purpose: str,
    no_sponsor: bool,
    no_monitors: bool,
    delegate: str | None,
    valid_for: timedelta,
    sign_only: bool,
    out: Path | None,
    submit_file: Path | None,
) -> None:
    """Consent to a study: the participant signs (--sign-only), the site submits (--submit)."""
    from medledger import trials

    _one_of(sign_only, submit_file, out, "consent")
    chain = session.chain
    if submit_file is not None:
        standing = trials.submit_consent(chain, session.account(), _read_json(submit_file))
        session.emit(standing.as_dict(), _participation_text(standing))
        return
    if not sign_only:
        raise ConfigurationError(
            "consent",
            "the participant signs (--sign-only --out FILE) and the site submits (--submit FILE)",
        )
    if study_id is None or site is None:
        raise ConfigurationError("consent", "--sign-only needs STUDY_ID and --site")
    assert out is not None
    document = trials.sign_consent(
        chain,
        session.account(),
        study_id,
        site,
        purpose=trials.ConsentPurpose.parse(purpose),
        sponsor_reads=not no_sponsor,
        monitors_read=not no_monitors,
        delegate=delegate,
        valid_for=valid_for,
    )
    _write_json(out, document)
    session.emit(
        {"file": str(out), **document},
        f"consent to study {study_id} v{document['request']['version']} signed by "
        f"{document['request']['participant']}: written to {out} for the site to submit",
    )


@trial.command("withdraw")
@click.argument("study_id", type=int, required=False)
@click.option(
    "--participant",
    type=ADDRESS,
    help="Whom to withdraw (default: the --account; a delegate names it).",
)
@click.option("--valid-for", default="7d", show_default=True, type=DURATION,
              help="How long a signature holds (at most 10 years).")  # fmt: skip
@click.option("--sign-only", is_flag=True, help="Sign a withdrawal anyone can submit.")
@click.option("--out", type=_OUT, help="Where --sign-only writes the signed withdrawal.")
@click.option("--submit", "submit_file", type=_FILE, help="Submit a signed withdrawal.")
@common
@pass_session
def trial_withdraw(
    session: Session,
    study_id: int | None,
    participant: str | None,
    valid_for: timedelta,
    sign_only: bool,
    out: Path | None,
    submit_file: Path | None,
) -> None:
    """Withdraw from a study at once; final. Direct, or signed (--sign-only) and relayed."""
    from medledger import trials

    _one_of(sign_only, submit_file, out, "withdraw")
    chain = session.chain
    if submit_file is not None:
        standing = trials.submit_withdrawal(chain, session.account(), _read_json(submit_file))
        session.emit(standing.as_dict(), _participation_text(standing))
        return
    if study_id is None:
        raise ConfigurationError("withdraw", "name the STUDY_ID (or give --submit FILE)")
    account = session.account()
    if sign_only:
        assert out is not None
        document = trials.sign_withdrawal(chain, account, study_id, valid_for)
        _write_json(out, document)
        session.emit(
            {"file": str(out), **document},
            f"withdrawal from study {study_id} signed: written to {out}; anyone can submit it",
        )
        return
    standing = trials.withdraw(chain, account, study_id, participant or account.address)
    session.emit(standing.as_dict(), _participation_text(standing))


@trial.command("cancel-signatures")
@click.option(
    "--signed", "signed_file", type=_FILE,
    help="The signed consent or withdrawal to cancel (checked to be still usable first).",
)  # fmt: skip
@common
@pass_session
def trial_cancel_signatures(session: Session, signed_file: Path | None) -> None:
    """Cancel a consent or withdrawal you signed that nobody submitted yet (the --account is
    the participant, who pays the gas): burns your next nonce, for every study."""
    from medledger import trials

    account = session.account()
    document = _read_json(signed_file) if signed_file is not None else None
    nonce = trials.cancel_signatures(session.chain, account, document)
    session.emit(
        {"participant": account.address, "cancelled_nonce": nonce},
        f"consents and withdrawals {account.address} signed with nonce {nonce} can no longer be "
        "submitted",
    )


@trial.command("submit-data")
@click.argument("study_id", type=int)
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("--participant", required=True, type=ADDRESS, help="The participant's study address.")
@click.option("--visit", required=True, help="The protocol's visit label (baseline, week-4...).")
@click.option("--batch", is_flag=True, help="Anchor all FILES in one transaction (Merkle root).")
@common
@pass_session
def trial_submit_data(
    session: Session,
    study_id: int,
    files: tuple[Path, ...],
    participant: str,
    visit: str,
    batch: bool,
) -> None:
    """Seal FHIR FILES for the participant's readers and anchor them (the enrolling site)."""
    from medledger import trials
    from medledger.ipfs.stores import open_store

    done = trials.submit_data(
        session.chain,
        open_store(session.settings),
        session.account(),
        study_id,
        participant,
        visit,
        [f.read_bytes() for f in files],
        batch=batch,
    )
    lines = [
        f"{i.hex_id}  {i.cid}  {f.name}" + ("  (already submitted)" if n in done.skipped else "")
        for n, (i, f) in enumerate(zip(done.items, files, strict=True))
    ]
    how = (
        f"batch 0x{done.batch.hex()}" if done.batch else f"{len(done.transactions)} transaction(s)"
    )
    written = len(done.items) - len(done.skipped)
    lines.append(f"{written} bodies anchored in {how}, {done.gas_used:,} gas")
    if done.skipped:
        lines.append(f"{len(done.skipped)} already on chain (not written again)")
    session.emit(done.as_dict(), "\n".join(lines))


@trial.command("data")
@click.argument("study_id", type=int)
@click.option("--participant", type=ADDRESS, help="Only this participant's data.")
@common
@pass_session
def trial_data(session: Session, study_id: int, participant: str | None) -> None:
    """List a study's anchored data bodies (batched ones from their manifests)."""
    from medledger import trials
    from medledger.ipfs.stores import open_store

    found = trials.data(session.chain, open_store(session.settings), study_id, participant)
    lines = [
        f"{d.hex_id}  v{d.version}  {d.submitted_at:%F %H:%M}Z  {d.participant}"
        + ("  (batch)" if d.batch else "")
        for d in found
    ]
    session.emit([d.as_dict() for d in found], "\n".join(lines) or "no data")


@trial.command("read")
@click.argument("study_id", type=int)
@click.argument("data_id")
@click.option("--out", type=_OUT, help="Write to a file.")
@common
@pass_session
def trial_read(session: Session, study_id: int, data_id: str, out: Path | None) -> None:
    """Fetch, verify and decrypt one data body (if the chain lets the --account read it)."""
    from medledger import trials
    from medledger.ipfs.stores import open_store

    body = trials.read_data(
        session.chain, open_store(session.settings), session.account(), study_id, data_id
    )
    write_output(body, out)


# --- anyone --------------------------------------------------------------------------------------


@trial.command("audit")
@click.argument("study_id", type=int)
@common
@pass_session
def trial_audit(session: Session, study_id: int) -> None:
    """Check that the study ran as registered; exit 1 naming each violation.

    With --account, bodies that account can decrypt are also checked against their commitments.
    """
    from medledger import trials
    from medledger.errors import AuditFailed
    from medledger.ipfs.stores import open_store

    reader = session.account() if session.account_spec else None
    report = trials.audit(session.chain, open_store(session.settings), study_id, reader)
    lines = [f"study {study_id} audit: {'passed' if report.ok else 'FAILED'}"]
    for check in report.checks:
        lines.append(f"  {'ok  ' if check.ok else 'FAIL'}  {check.rule} ({check.checked} checked)")
        lines += [f"        violation: {v}" for v in check.violations]
        lines += [f"        note: {n}" for n in check.notes]
    session.emit(report.as_dict(), "\n".join(lines))
    if not report.ok:
        raise AuditFailed(study_id, report.violations)


@trial.command("link-proof")
@click.argument("study_id", type=int)
@click.option("--record-account", required=True, help="The record account (alias, env:VAR...).")
@click.option("--out", type=_OUT, required=True, help="Where to write the signed statement.")
@common
@pass_session
def trial_link_proof(session: Session, study_id: int, record_account: str, out: Path) -> None:
    """Sign, with the study account (--account) and the record account, that both are yours."""
    from medledger import trials

    chain = session.chain
    document = trials.link_proof(
        chain, study_id, session.account(), session.account(record_account)
    )
    _write_json(out, document, private=True)
    session.emit(
        {"file": str(out), **document},
        f"identity link written to {out} (it links your study and record addresses: share it "
        "only with whom should know)",
    )


@trial.command("verify-link")
@click.argument("file", type=_FILE)
@common
@pass_session
def trial_verify_link(session: Session, file: Path) -> None:
    """Check an identity link: both signatures, by the two addresses it names."""
    from medledger import trials
    from medledger.errors import IntegrityError

    document = _read_json(file)
    if not trials.verify_link(document):
        raise IntegrityError(f"{file}: not a valid identity link (a signature or the statement)")
    session.emit(
        {"valid": True, "participant": document["participant"],
         "record_address": document["record_address"], "study": document["study"]},
        f"valid: {document['participant']} and {document['record_address']} are one person's "
        f"(study {document['study']})",
    )  # fmt: skip


@trial.command("attest-participant")
@click.option("--link", "link_file", required=True, type=_FILE,
              help="The participant's identity link (medledger trial link-proof).")  # fmt: skip
@EXPIRES
@click.option("--opening", type=_OUT,
              help="Where the opening of the commitment to the link is written: the site keeps "
                   "it (default: FILE.opening.json beside --link).")  # fmt: skip
@common
@pass_session
def trial_attest_participant(
    session: Session, link_file: Path, expires: timedelta, opening: Path | None
) -> None:
    """Attest the study account of a participant whose record address the --account's care
    institution attests (the site identified the person): only a commitment to the link goes
    on chain."""
    from medledger import identity

    made, opened = identity.attest_study_account(
        session.chain, session.account(), _read_json(link_file), expires
    )
    where = opening or link_file.with_name(link_file.name + ".opening.json")
    _write_json(where, {"study_account": made.patient, "institution": made.institution,
                        **opened.as_dict()}, private=True)  # fmt: skip
    session.emit(
        {**made.as_dict(), "opening_file": str(where)},
        f"{made.patient} attested by {made.institution} until {made.expires_at:%F} "
        f"(opening of the link's commitment written to {where}: keep it)",
    )


@trial.command("check-link")
@click.option("--link", "link_file", required=True, type=_FILE, help="The identity link.")
@click.option("--opening", "opening_file", required=True, type=_FILE,
              help="The opening the attesting site kept.")  # fmt: skip
@common
@pass_session
def trial_check_link(session: Session, link_file: Path, opening_file: Path) -> None:
    """Prove why a study account is attested: the site's commitment opens to this link, whose
    record address the same site attested."""
    from medledger import identity

    opened = identity.Opening.from_dict(_read_json(opening_file), str(opening_file))
    made = identity.check_study_link(session.chain, _read_json(link_file), opened)
    state = "holds" if made.holds else "no longer holds"
    session.emit(
        made.as_dict(),
        f"proven: {made.institution} attested {made.patient} for the person it identified "
        f"behind the link's record address (the attestation {state})",
    )
