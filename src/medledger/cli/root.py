"""The ``medledger`` command line: thin click commands over the package.

Conventions shared by every verb: ``--network`` (default: the local devnet, started on demand),
``--account`` (an Ape account alias, ``dev:N`` on a devnet, or ``env:VAR``), ``--json`` for
machine-readable output. Errors print one line on stderr and exit non-zero; heavy modules are
imported inside the commands so that ``medledger --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from medledger.cli.support import Session, common, pass_session, progress, write_output
from medledger.config import load_settings
from medledger.errors import MedLedgerError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="medledger")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """MedLedger: encrypted FHIR records in IPFS, anchored and shared on an EVM chain.

    Local state lives under $MEDLEDGER_HOME (default ./.medledger).
    """
    ctx.obj = Session(settings=load_settings())


# --- devnet ---------------------------------------------------------------------------------------


@cli.group()
def devnet() -> None:
    """Start, stop and inspect the local Anvil devnet (state kept on disk)."""


@devnet.command("start")
@common
@pass_session
def devnet_start(session: Session) -> None:
    """Start the devnet (a no-op when it runs already)."""
    from medledger.chain import devnet as local

    info = local.start(session.settings)
    session.emit(
        {"url": info.url, "pid": info.pid}, f"devnet running at {info.url} (pid {info.pid})"
    )


@devnet.command("stop")
@common
@pass_session
def devnet_stop(session: Session) -> None:
    """Stop the devnet, writing its state to disk."""
    from medledger.chain import devnet as local

    stopped = local.stop(session.settings)
    session.emit({"stopped": stopped}, "devnet stopped" if stopped else "devnet was not running")


@devnet.command("status")
@common
@pass_session
def devnet_status(session: Session) -> None:
    """Say whether the devnet runs, where, and at which block."""
    from dataclasses import asdict

    from medledger.chain import devnet as local

    state = local.status(session.settings)
    text = (
        f"devnet running at {state.url} (pid {state.pid}), block {state.block}"
        if state.running
        else "devnet not running"
    ) + f"; state file {state.state_file} ({state.state_bytes or 0} bytes)"
    session.emit(asdict(state), text)


# --- accounts and deployment ---------------------------------------------------------------------


@cli.command("accounts")
@common
@pass_session
def accounts_list(session: Session) -> None:
    """List the devnet's funded test accounts (dev:0 ... dev:19)."""
    from medledger.accounts import DEV_ACCOUNT_COUNT, dev_account

    rows = [
        {"account": f"dev:{i}", "address": dev_account(i).address} for i in range(DEV_ACCOUNT_COUNT)
    ]
    session.emit(rows, "\n".join(f"{r['account']:7} {r['address']}" for r in rows))


@cli.command()
@click.option(
    "--registrar",
    "registrars",
    multiple=True,
    help="A registrar address (repeat for several; default: the deployer).",
)
@click.option(
    "--threshold",
    default=1,
    show_default=True,
    help="Registrar approvals needed to verify an institution.",
)
@common
@pass_session
def deploy(session: Session, registrars: tuple[str, ...], threshold: int) -> None:
    """Deploy the contracts (reusing those already deployed on this chain)."""
    from medledger.chain import deployments

    chain = session.chain
    recorded, fresh = deployments.deploy(
        chain, session.account(), list(registrars) or None, threshold
    )
    lines = [
        f"{name:18} {entry.address}  {'deployed' if name in fresh else 'reused'}"
        for name, entry in recorded.contracts.items()
    ]
    lines.append(f"written to {deployments.deployment_file(chain)}")
    session.emit(
        {"network": chain.network, "chain_id": chain.chain_id, "deployed": fresh,
         "contracts": {n: e.address for n, e in recorded.contracts.items()}},
        "\n".join(lines),
    )  # fmt: skip


# --- institutions and patients -------------------------------------------------------------------


@cli.group()
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
    from medledger import providers as registry

    parsed = registry.InstitutionKind.parse(kind)
    account = session.account()
    receipt = registry.apply_institution(session.chain, account, parsed, name)
    session.emit(
        {
            "institution": account.address,
            "kind": parsed.label,
            "tx": receipt["transactionHash"].hex(),
        },
        f"{name} ({parsed.label}) applied as {account.address}; awaiting registrar approval",
    )


def _approve(session: Session, address: str, expected: str) -> None:
    from medledger import providers as registry
    from medledger.errors import PreconditionFailed

    chain = session.chain
    before = registry.participant(chain, address)
    wanted = registry.Status.PENDING if expected == "verify" else registry.Status.SUSPENDED
    if before.role is registry.Role.INSTITUTION and before.status is not wanted:
        raise PreconditionFailed(
            f"{before.address} is {before.status.name.lower()}, not {wanted.name.lower()}: "
            f"there is nothing to {expected}"
        )
    done = registry.approve_institution(chain, session.account(), address)
    after = registry.participant(chain, address)
    text = (
        f"{after.address} is now {after.status.name.lower()}"
        if done
        else f"approval recorded for {after.address}: {after.approvals} of {after.threshold}"
    )
    session.emit(after.as_dict(), text)


@institution.command("verify")
@click.argument("address")
@common
@pass_session
def institution_verify(session: Session, address: str) -> None:
    """Cast this registrar's approval to verify a pending institution."""
    _approve(session, address, "verify")


@institution.command("reinstate")
@click.argument("address")
@common
@pass_session
def institution_reinstate(session: Session, address: str) -> None:
    """Cast this registrar's approval to reinstate a suspended institution."""
    _approve(session, address, "reinstate")


@institution.command("suspend")
@click.argument("address")
@click.option("--reason", default="unspecified", show_default=True, help="A short reason code.")
@common
@pass_session
def institution_suspend(session: Session, address: str, reason: str) -> None:
    """Suspend a verified institution at once (one registrar suffices)."""
    from medledger import providers as registry

    registry.suspend_institution(session.chain, session.account(), address, reason)
    after = registry.participant(session.chain, address)
    session.emit(after.as_dict(), f"{after.address} is now suspended ({reason})")


@institution.command("show")
@click.argument("address", required=False)
@common
@pass_session
def institution_show(session: Session, address: str | None) -> None:
    """Show an institution (default: the --account's own)."""
    from medledger import providers as registry
    from medledger.errors import InstitutionNotFound

    target = address or session.account().address
    entry = registry.participant(session.chain, target)
    if entry.role is not registry.Role.INSTITUTION:
        raise InstitutionNotFound(entry.address)
    kind = entry.kind.label if entry.kind else "?"
    text = (
        f"{entry.address}: {kind}, {entry.status.name.lower()}"
        f" ({entry.approvals} of {entry.threshold} approvals this round)"
    )
    session.emit(entry.as_dict(), text)


@institution.command("add-practitioner")
@click.argument("address")
@common
@pass_session
def institution_add_practitioner(session: Session, address: str) -> None:
    """Invite ADDRESS to work for this (verified) institution; it must accept."""
    from medledger import providers as registry

    registry.add_practitioner(session.chain, session.account(), address)
    text = f"{address} is invited; it joins with: medledger institution join <this institution>"
    session.emit({"practitioner": address, "invited": True}, text)


@institution.command("join")
@click.argument("institution_address")
@common
@pass_session
def institution_join(session: Session, institution_address: str) -> None:
    """Accept INSTITUTION's invitation: the --account becomes its practitioner."""
    from medledger import providers as registry

    account = session.account()
    registry.accept_practitioner(session.chain, account, institution_address)
    session.emit({"practitioner": account.address, "institution": institution_address},
                 f"{account.address} now works for {institution_address}")  # fmt: skip


@institution.command("remove-practitioner")
@click.argument("address")
@common
@pass_session
def institution_remove_practitioner(session: Session, address: str) -> None:
    """Remove a practitioner (or withdraw an invitation); a practitioner may remove itself."""
    from medledger import providers as registry

    registry.remove_practitioner(session.chain, session.account(), address)
    session.emit({"practitioner": address, "removed": True}, f"{address} no longer works here")


@cli.group()
def registrar() -> None:
    """Registrars govern themselves: vote registrars in or out, vote the threshold."""


@registrar.command("add")
@click.argument("address")
@common
@pass_session
def registrar_add(session: Session, address: str) -> None:
    """Vote to add ADDRESS as a registrar (takes the threshold of registrars' votes)."""
    _vote_registrar(session, address, add=True)


@registrar.command("remove")
@click.argument("address")
@common
@pass_session
def registrar_remove(session: Session, address: str) -> None:
    """Vote to remove registrar ADDRESS."""
    _vote_registrar(session, address, add=False)


def _vote_registrar(session: Session, address: str, add: bool) -> None:
    from medledger import providers as registry

    done = registry.vote_registrar(session.chain, session.account(), address, add)
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
    from medledger import providers as registry

    done = registry.vote_threshold(session.chain, session.account(), threshold)
    text = "threshold is now" if done else "vote recorded for a threshold of"
    session.emit({"threshold": threshold, "done": done}, f"{text} {threshold}")


@cli.command("publish-key")
@common
@pass_session
def publish_key(session: Session) -> None:
    """Publish (or rotate to) the --account's own encryption key in the registry."""
    from medledger import crypto
    from medledger import providers as registry

    account = session.account()
    registry.publish_key(session.chain, account)
    key = "0x" + crypto.public_key(account.key).hex()
    session.emit({"account": account.address, "encryption_key": key}, f"published {key}")


@cli.group()
def patient() -> None:
    """Register as a patient; show a patient's registration."""


@patient.command("register")
@common
@pass_session
def patient_register(session: Session) -> None:
    """Register the --account as a patient, publishing its encryption key."""
    from medledger import providers as registry

    account = session.account()
    registry.register_patient(session.chain, account)
    session.emit({"patient": account.address}, f"patient {account.address} registered")


@patient.command("show")
@click.argument("address", required=False)
@common
@pass_session
def patient_show(session: Session, address: str | None) -> None:
    """Show a patient's registration (default: the --account's own)."""
    from medledger import providers as registry
    from medledger.errors import PatientNotFound

    target = address or session.account().address
    entry = registry.participant(session.chain, target)
    if entry.role is not registry.Role.PATIENT:
        raise PatientNotFound(entry.address)
    key = entry.encryption_key.hex() if entry.encryption_key else "none"
    session.emit(entry.as_dict(), f"patient {entry.address}, encryption key 0x{key}")


# --- IPFS ----------------------------------------------------------------------------------------


@cli.group()
def ipfs() -> None:
    """Use the block store directly (embedded by default, Kubo nodes by configuration)."""


@ipfs.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--only-hash", is_flag=True, help="Compute the CID without storing anything.")
@common
@pass_session
def ipfs_add(session: Session, file: Path, only_hash: bool) -> None:
    """Add a file (as `ipfs add` does with its defaults) and print its CID."""
    from medledger.ipfs.stores import open_store
    from medledger.ipfs.unixfs import hash_bytes

    if only_hash:
        cid = hash_bytes(file.read_bytes())
    else:
        cid = open_store(session.settings).add_file(file)
    session.emit({"cid": str(cid)}, str(cid))


@ipfs.command("cat")
@click.argument("cid")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@common
@pass_session
def ipfs_cat(session: Session, cid: str, out: Path | None) -> None:
    """Print the bytes of a CID, verified block by block."""
    from medledger.ipfs.cid import Cid
    from medledger.ipfs.stores import open_store

    write_output(open_store(session.settings).cat(Cid.parse(cid)), out)


@ipfs.command("export-car")
@click.argument("cid")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@common
@pass_session
def ipfs_export_car(session: Session, cid: str, out: Path) -> None:
    """Export a DAG as a CAR file (load it into any node with `ipfs dag import`)."""
    from medledger.ipfs.car import export_car
    from medledger.ipfs.cid import Cid
    from medledger.ipfs.stores import open_store

    root = Cid.parse(cid)
    export_car(open_store(session.settings), root, out)
    session.emit({"cid": str(root), "car": str(out)}, f"{root} exported to {out}")


@ipfs.command("import-car")
@click.argument("car", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common
@pass_session
def ipfs_import_car(session: Session, car: Path) -> None:
    """Import a CAR file, verifying every block, and pin its roots."""
    from medledger.ipfs.car import import_car
    from medledger.ipfs.stores import open_store

    roots = import_car(open_store(session.settings), car)  # pins the roots
    session.emit({"roots": [str(r) for r in roots]}, "\n".join(str(r) for r in roots))


@ipfs.command("gc")
@common
@pass_session
def ipfs_gc(session: Session) -> None:
    """Remove every block that no pin needs."""
    from medledger.ipfs.stores import open_store

    removed = open_store(session.settings).gc()
    session.emit({"removed": removed}, f"{removed} unpinned blocks removed")


# --- records -------------------------------------------------------------------------------------


@cli.command()
@click.argument("inputs", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))  # fmt: skip
@click.option("--patient", required=True, help="The patient's address.")
@click.option("--category", help="Force one category for every record (default: from FHIR).")
@click.option("--update", "previous", help="Anchor FILE as a new version of this record.")
@click.option("--strict", is_flag=True, help="Refuse input with any FHIR schema error.")
@click.option("--batch", is_flag=True, help="Anchor all records in one transaction (Merkle root).")
@common
@pass_session
def anchor(
    session: Session,
    inputs: tuple[Path, ...],
    patient: str,
    category: str | None,
    previous: str | None,
    strict: bool,
    batch: bool,
) -> None:
    """Encrypt, store and anchor FHIR files (resources or Bundles, or folders of them).

    Every file is read and checked first: if one is not usable FHIR, nothing is anchored.
    """
    from medledger import records
    from medledger.ipfs.stores import open_store
    from medledger.records.categories import Category

    forced = Category.parse(category) if category else None
    drafts, warnings = _load_fhir(inputs, strict)
    if forced is not None:
        drafts = [records.Draft(d.body, forced, d.label) for d in drafts]
    for line in warnings[:10]:
        click.echo(f"warning: {line}", err=True)
    if len(warnings) > 10:
        click.echo(f"warning: ... and {len(warnings) - 10} more kinds of schema slip", err=True)
    chain = session.chain
    account = session.account()
    prior = records.RecordRef.parse(previous).id if previous else None
    store = open_store(session.settings)
    with progress(len(drafts), "anchoring") as advance:
        if batch:
            from medledger.records import batches

            entries = [batches.Entry(patient, d, prior) for d in drafts]
            anchored = list(batches.anchor_batch(chain, store, account, entries, advance).records)
        else:
            anchored = records.anchor(chain, store, account, patient, drafts, prior, advance)
    rows = [{**r.as_dict(), "label": d.label} for r, d in zip(anchored, drafts, strict=True)]
    session.emit(
        rows, "\n".join(f"{r['id']}  {r['cid']}  {r['category']:14} {r['label']}" for r in rows)
    )


@cli.command()
@click.argument("record_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option("--no-log", is_flag=True, help="Do not log this read on chain (grantees log it).")
@common
@pass_session
def read(session: Session, record_id: str, out: Path | None, no_log: bool) -> None:
    """Fetch, verify and decrypt a record (with a live grant); print the FHIR JSON that went in."""
    from medledger import consent as access
    from medledger.ipfs.stores import open_store

    store = open_store(session.settings)
    body = access.read(session.chain, store, session.account(), record_id, log=not no_log)
    write_output(body, out)


# --- access --------------------------------------------------------------------------------------


@cli.command()
@click.argument("grantee", required=False)
@click.option("--patient", help="Whose records (default: the --account).")
@click.option("--scope", default="all", show_default=True, help="record:ID, category:NAME or all.")
@click.option(
    "--purpose",
    default="treatment",
    show_default=True,
    help="treatment, payment, research, operations, patient-request.",
)
@click.option("--expires", default="30d", show_default=True, help="For how long: 30d, 12h, 2w...")
@click.option(
    "--sign-only", is_flag=True, help="Sign off chain (EIP-712) and write the grant to --out."
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Where --sign-only writes."
)
@click.option(
    "--submit",
    "submit_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Submit a signed grant file (any account pays the gas).",
)
@common
@pass_session
def grant(
    session: Session,
    grantee: str | None,
    patient: str | None,
    scope: str,
    purpose: str,
    expires: str,
    sign_only: bool,
    out: Path | None,
    submit_file: Path | None,
) -> None:
    """Grant GRANTEE access to a patient's records, delivering the keys in scope."""
    from medledger import consent as access
    from medledger import documents
    from medledger.errors import ConfigurationError
    from medledger.ipfs.stores import open_store

    chain, store = session.chain, open_store(session.settings)
    now = access.chain_now(chain)
    if submit_file is not None:
        document = documents.read_object(submit_file)
        state = access.submit_signed_grant(chain, store, session.account(), document)
        session.emit(state.as_dict(now), _grant_line(state))
        return
    if grantee is None:
        raise ConfigurationError("grant", "name the GRANTEE (or give --submit FILE)")
    signer = session.account()
    args = (chain, store, signer, patient or signer.address, grantee, access.Scope.parse(scope),
            access.Purpose.parse(purpose), access.parse_duration(expires))  # fmt: skip
    if sign_only:
        if out is None:
            raise ConfigurationError("--out", "--sign-only writes the signed grant to --out FILE")
        document = access.sign_grant(*args)
        documents.write(out, document)
        session.emit({"file": str(out)}, f"signed grant written to {out}: anyone can submit it")
        return
    state = access.grant(*args)
    session.emit(state.as_dict(now), _grant_line(state))


def _grant_line(state: Any) -> str:
    return (
        f"{state.grantee} may read {state.scope.label} of {state.patient} for "
        f"{state.purpose.label} until {state.expires_at:%Y-%m-%d %H:%M}Z"
    )


@cli.command()
@click.argument("grantee")
@click.option("--patient", help="Whose records (default: the --account).")
@click.option("--scope", default="all", show_default=True, help="The grant's scope.")
@common
@pass_session
def revoke(session: Session, grantee: str, patient: str | None, scope: str) -> None:
    """Revoke GRANTEE's access at once."""
    from medledger import consent as access

    signer = session.account()
    parsed = access.Scope.parse(scope)
    access.revoke(session.chain, signer, patient or signer.address, grantee, parsed)
    session.emit({"grantee": grantee, "scope": parsed.label, "revoked": True},
                 f"{grantee} no longer has {parsed.label} access")  # fmt: skip


@cli.command()
@click.argument("delegate_address")
@click.option("--remove", is_flag=True, help="Remove the delegate instead.")
@common
@pass_session
def delegate(session: Session, delegate_address: str, remove: bool) -> None:
    """Name a guardian or proxy who may act for the --account (a patient)."""
    from medledger import providers as registry

    registry.set_delegate(session.chain, session.account(), delegate_address, not remove)
    verb = "removed as" if remove else "is now"
    session.emit({"delegate": delegate_address, "allowed": not remove},
                 f"{delegate_address} {verb} a delegate")  # fmt: skip


@cli.command("emergency-access")
@click.argument("patient")
@click.option(
    "--reason", required=True, help="Why (public: a code or sentence, no clinical detail)."
)
@click.option("--duration", default="12h", show_default=True, help="At most 24h.")
@common
@pass_session
def emergency_access(session: Session, patient: str, reason: str, duration: str) -> None:
    """Open break-glass access to a patient's records (a verified emergency service)."""
    from medledger import consent as access

    until = access.open_emergency_access(
        session.chain, session.account(), patient, access.parse_duration(duration), reason
    )
    text = f"emergency access to {patient} open until {until:%Y-%m-%d %H:%M}Z (audited)"
    session.emit({"patient": patient, "until": until.isoformat()}, text)


@cli.command("close-emergency-access")
@click.argument("institution_address")
@click.option("--patient", help="Whose records (default: the --account).")
@common
@pass_session
def close_emergency_access(session: Session, institution_address: str, patient: str | None) -> None:
    """End an emergency service's live break-glass access at once (the patient or a delegate)."""
    from medledger import consent as access

    signer = session.account()
    access.close_emergency_access(
        session.chain, signer, patient or signer.address, institution_address
    )
    session.emit({"institution": institution_address, "closed": True},
                 f"emergency access of {institution_address} closed")  # fmt: skip


@cli.command("cancel-signatures")
@click.option("--patient", help="Whose signatures (default: the --account).")
@common
@pass_session
def cancel_signatures(session: Session, patient: str | None) -> None:
    """Cancel signed grants and care relationships not yet submitted (burns the next nonces)."""
    from medledger import consent as access
    from medledger import providers as registry

    signer = session.account()
    target = patient or signer.address
    grants = access.cancel_signatures(session.chain, signer, target)
    care = registry.cancel_care_signatures(session.chain, signer, target)
    session.emit({"grant_nonce": grants, "care_nonce": care},
                 f"signed grants with nonce {grants} and care requests with nonce {care} "
                 "can no longer be submitted")  # fmt: skip


@cli.group()
def care() -> None:
    """Care relationships: which institutions may write a patient's records."""


@care.command("authorize")
@click.argument("institution_address")
@click.option("--patient", help="Whose records (default: the --account).")
@click.option("--for", "duration", help="How long (30d, 26w; default: until revoked).")
@click.option("--sign-only", is_flag=True, help="Sign it for the institution to submit.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="With --sign-only.")
@click.option("--submit", "submit_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Submit a signed care relationship (any account pays the gas).")  # fmt: skip
@common
@pass_session
def care_authorize(
    session: Session,
    institution_address: str,
    patient: str | None,
    duration: str | None,
    sign_only: bool,
    out: Path | None,
    submit_file: Path | None,
) -> None:
    """Let INSTITUTION (a care provider) write the patient's records."""
    from medledger import consent as access
    from medledger import documents
    from medledger import providers as registry
    from medledger.errors import ConfigurationError

    chain, signer = session.chain, session.account()
    if submit_file is not None:
        done = registry.submit_signed_care(chain, signer, documents.read_object(submit_file))
    else:
        until = None if duration is None else chain.now() + access.parse_duration(duration)
        target = patient or signer.address
        if sign_only:
            if out is None:
                raise ConfigurationError("--out", "--sign-only writes the request to --out FILE")
            signed = registry.sign_care(chain, signer, target, institution_address, until)
            documents.write(out, signed)
            text = f"signed care relationship written to {out}: the institution submits it"
            session.emit({"file": str(out)}, text)
            return
        done = registry.authorize_care(chain, signer, target, institution_address, until)
    text = f"{done.institution} may now write {done.patient}'s records"
    session.emit(done.as_dict(), text)


@care.command("revoke")
@click.argument("institution_address")
@click.option("--patient", help="Whose records (default: the --account).")
@common
@pass_session
def care_revoke(session: Session, institution_address: str, patient: str | None) -> None:
    """End INSTITUTION's care relationship (the patient, a delegate or the institution)."""
    from medledger import providers as registry

    signer = session.account()
    target = patient or signer.address
    registry.revoke_care(session.chain, signer, target, institution_address)
    session.emit({"patient": target, "institution": institution_address, "revoked": True},
                 f"{institution_address} may no longer write {target}'s records")  # fmt: skip


@care.command("show")
@click.argument("institution_address")
@click.option("--patient", help="Whose records (default: the --account).")
@common
@pass_session
def care_show(session: Session, institution_address: str, patient: str | None) -> None:
    """Show the care relationship between a patient and INSTITUTION."""
    from medledger import providers as registry

    target = patient or session.account().address
    found = registry.care_of(session.chain, target, institution_address)
    live = found.live(registry.chain_time(session.chain))
    session.emit(found.as_dict() | {"live": live},
                 f"{found.institution} {'may' if live else 'may not'} write {found.patient}'s "
                 "records")  # fmt: skip


@cli.command("deliver-keys")
@click.argument("grantee")
@click.option("--patient", required=True, help="Whose records.")
@click.option("--scope", default="all", show_default=True, help="The live grant's scope.")
@common
@pass_session
def deliver_keys(session: Session, grantee: str, patient: str, scope: str) -> None:
    """Wrap the record keys the --account holds for a grantee's live grant, and publish them."""
    from medledger import consent as access
    from medledger.ipfs.stores import open_store

    cid = access.deliver_keys(session.chain, open_store(session.settings), session.account(),
                              patient, grantee, access.Scope.parse(scope))  # fmt: skip
    session.emit({"envelope": str(cid) if cid else None},
                 f"keys delivered in envelope {cid}" if cid else "no keys to deliver")  # fmt: skip


@cli.command()
@click.argument("record_id")
@common
@pass_session
def erase(session: Session, record_id: str) -> None:
    """Erase a record (right to erasure): destroy its keys and unpin its body."""
    from medledger import consent as access
    from medledger.ipfs.stores import open_store

    removed = access.erase(
        session.chain, open_store(session.settings), session.account(), record_id
    )
    text = f"record {record_id} erased; {removed} blocks removed from the local store"
    session.emit({"erased": record_id, "blocks_removed": removed}, text)


@cli.command("grants")
@click.option("--patient", help="Whose grants (default: the --account).")
@common
@pass_session
def grants_list(session: Session, patient: str | None) -> None:
    """List a patient's grants and emergency openings, with their status."""
    from medledger import consent as access

    chain = session.chain
    now = access.chain_now(chain)
    target = patient or session.account().address
    states = access.grants(chain, target)
    openings = access.emergencies(chain, target)
    lines = [f"{s.status(now):8} {_grant_line(s)}" for s in states] + [
        f"{o.status(now):8} {o.institution} may read all of {o.patient} in an EMERGENCY until "
        f"{o.ended_at:%Y-%m-%d %H:%M}Z"
        for o in openings
    ]
    rows = [s.as_dict(now) for s in states] + [o.as_dict(now) for o in openings]
    session.emit(rows, "\n".join(lines) or "no grants")


@cli.command()
@click.option("--patient", required=True, help="Whose audit trail.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)  # fmt: skip
@common
@pass_session
def audit(session: Session, patient: str, fmt: str) -> None:
    """A patient's timeline from chain events: writes, grants, revocations, reads, emergencies."""
    from medledger.consent import trail as trail

    click.echo(
        trail.render(trail.trail(session.chain, patient), "json" if session.as_json else fmt)
    )


@cli.command()
@click.argument("record_id", required=False)
@click.option("--patient", help="Verify every record of this patient.")
@common
@pass_session
def verify(session: Session, record_id: str | None, patient: str | None) -> None:
    """Check bodies against CIDs and commitments; exit 1 naming each record that fails."""
    from medledger import records
    from medledger.errors import ConfigurationError, MedLedgerError
    from medledger.ipfs.stores import open_store

    if (record_id is None) == (patient is None):
        raise ConfigurationError("verify", "give either RECORD_ID or --patient ADDRESS")
    chain = session.chain
    store = open_store(session.settings)
    reader = session.account()
    ids = (
        [record_id]
        if record_id
        else [r.hex_id for r in records.for_patient(chain, patient or "", store)]
    )
    results = [records.verify(chain, store, i, reader) for i in ids]
    failed = [r for r in results if not r.ok]
    lines = [
        f"{'ok  ' if r.ok else 'FAIL'} {r.record_id}  {r.problem or ', '.join(r.checks)}"
        for r in results
    ]
    session.emit(
        [
            {"id": r.record_id, "ok": r.ok, "checks": r.checks, "problem": r.problem}
            for r in results
        ],
        "\n".join(lines) + f"\n{len(results) - len(failed)} of {len(results)} records verified",
    )
    if failed:
        error = MedLedgerError(
            f"{len(failed)} record(s) failed verification: "
            + ", ".join(r.record_id for r in failed[:5])
            + (" ..." if len(failed) > 5 else "")
        )
        raise error


@cli.command()
@click.argument("record_id")
@common
@pass_session
def history(session: Session, record_id: str) -> None:
    """Show every version of a record: who wrote it, when."""
    from medledger import records

    versions = records.history(session.chain, record_id)
    lines = [
        f"v{n}  {v.hex_id}  {v.anchored_at:%Y-%m-%d %H:%M:%S}Z  by {v.issuer}"
        + ("  (superseded)" if v.superseded else "  (current)")
        for n, v in enumerate(versions, start=1)
    ]
    session.emit([v.as_dict() for v in versions], "\n".join(lines))


@cli.command()
@click.option("--fresh", is_flag=True, help="Run in a new empty home under $MEDLEDGER_HOME/demo.")
@common
@pass_session
def demo(session: Session, fresh: bool) -> None:
    """The main job: deploy, register, anchor the sample records, read, detect tampering."""
    from medledger.demo import run

    run(session, fresh=fresh)


@cli.command()
@click.option("--quick", is_flag=True, help="A run of a few minutes (smaller counts, 1 run each).")
@click.option(
    "--only", "sections", multiple=True,
    type=click.Choice(["gas", "throughput", "read_path", "growth", "startup"]),
    help="Run only this section (repeatable).",
)  # fmt: skip
@click.option("--runs", type=click.IntRange(1, 20), help="Repetitions per figure (median).")
@click.option(
    "--max-on-chain", "up_to", type=click.IntRange(100), help="Stop growth at this many records."
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench/results"),
    show_default=True, help="Where latest.json, latest.md and the plots go.",
)  # fmt: skip
def bench(
    quick: bool, sections: tuple[str, ...], runs: int | None, up_to: int | None, out: Path
) -> None:
    """Measure gas, anchoring throughput, the read path, growth and start-up on fresh devnets."""
    from medledger import benchmarks

    results = benchmarks.run(quick, sections or benchmarks.SECTIONS, runs, click.echo, up_to)
    for path in benchmarks.write(results, out):
        click.echo(f"wrote {path}")
    checked = [t for t in results["targets"] if t["met"] is not None]
    met = sum(1 for t in checked if t["met"])
    click.echo(f"targets met: {met} of {len(checked)} measured")
    if results.get("errors"):
        raise MedLedgerError(f"bench sections failed: {', '.join(results['errors'])}")


def _load_fhir(inputs: tuple[Path, ...], strict: bool) -> tuple[list[Any], list[str]]:
    from medledger import fhir, records
    from medledger.errors import FhirPatientMismatch

    files: list[Path] = []
    for item in inputs:
        files.extend(sorted(item.rglob("*.json")) if item.is_dir() else [item])
    drafts: list[records.Draft] = []
    warnings: list[str] = []
    first: tuple[Path, fhir.PatientRef] | None = None
    for file in files:
        ingest = fhir.load(file.read_bytes(), str(file), strict=strict)
        if ingest.patient is not None:
            # One command anchors for one patient: files about different patients are refused.
            if first is None:
                first = (file, ingest.patient)
            elif not first[1].same_patient(ingest.patient):
                raise FhirPatientMismatch(
                    str(file), "the file", ingest.patient.label, f"{first[1].label} ({first[0]})"
                )
        warnings.extend(str(w) for w in ingest.warnings)
        drafts.extend(
            records.Draft(
                d.body, d.category, f"{file.name}: {d.resource_type}/{d.resource_id or '-'}"
            )
            for d in ingest.drafts
        )
    return drafts, warnings


# --- command groups kept in their own modules ----------------------------------------------------

from medledger.cli.claims import claim, policy  # noqa: E402 - registered after the core verbs
from medledger.cli.trials import trial  # noqa: E402

cli.add_command(policy)
cli.add_command(claim)
cli.add_command(trial)


# --- entry point ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn MedLedger errors into one line on stderr and an exit code."""
    try:
        cli.main(args=argv, prog_name="medledger", standalone_mode=False)
    except MedLedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:
        if os.environ.get("MEDLEDGER_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (set MEDLEDGER_DEBUG=1 for the trace)",
            err=True,
        )
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
