"""``medledger anchor``, ``read``, ``verify``, ``history`` and ``ipfs ...``: records and the
block store they live in (thin commands over ``medledger.records`` and ``medledger.ipfs``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from medledger.cli.support import (
    ADDRESS,
    OUTPUT,
    Session,
    common,
    pass_session,
    progress,
    writable,
    write_files,
    write_output,
)


@click.command("anchor")
@click.argument("inputs", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))  # fmt: skip
@click.option("--patient", required=True, type=ADDRESS, help="The patient's address.")
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
    from medledger import fhir, intake, records
    from medledger.ipfs.stores import open_store

    forced = records.Category.parse(category) if category else None
    loaded = fhir.load_files(inputs, strict=strict)
    for line in loaded.notices:
        click.echo(f"note: {line}", err=True)
    warnings = [str(w) for _file, ingest in loaded.ingests for w in ingest.warnings]
    for line in warnings[:10]:
        click.echo(f"warning: {line}", err=True)
    if len(warnings) > 10:
        click.echo(f"warning: ... and {len(warnings) - 10} more kinds of schema slip", err=True)
    chain = session.chain
    account = session.account()
    prior = records.RecordRef.parse(previous).id if previous else None
    store = open_store(session.settings)
    named = [(file.name, ingest) for file, ingest in loaded.ingests]
    total = sum(len(ingest.drafts) for _name, ingest in named)
    with progress(total, "anchoring") as advance:
        done = intake.anchor_fhir(
            chain, store, account, patient, named,
            category=forced, previous=prior, batch=batch, progress=advance,
        )  # fmt: skip
    skipped = done.skipped
    rows = [
        {**r.as_dict(), "label": label, "already_anchored": i in skipped}
        for i, (r, label) in enumerate(zip(done.records, done.labels, strict=True))
    ]
    lines = [
        f"{r['id']}  {r['cid']}  {r['category']:14} {r['label']}"
        + ("  (already anchored)" if r["already_anchored"] else "")
        for r in rows
    ]
    if skipped:
        lines.append(
            f"{len(rows) - len(skipped)} anchored, {len(skipped)} already on chain (not written "
            "again)"
        )
    session.emit(rows, "\n".join(lines))


@click.command("read")
@click.argument("record_id")
@click.option("--out", type=OUTPUT, help="Write to a file.")
@click.option("--no-log", is_flag=True, help="Do not log this read on chain (grantees log it).")
@common
@pass_session
def read(session: Session, record_id: str, out: Path | None, no_log: bool) -> None:
    """Fetch, verify and decrypt a record (with a live grant); print the FHIR JSON that went in."""
    from medledger import consent
    from medledger.ipfs.stores import open_store

    store = open_store(session.settings)
    body = consent.read(session.chain, store, session.account(), record_id, log=not no_log)
    write_output(body, out)


@click.command("export")
@click.option("--patient", required=True, type=ADDRESS, help="The patient whose records to export.")
@click.option("--out", type=OUTPUT, help="Write the Bundle to a file (default: standard output).")
@click.option(
    "--ndjson",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write Bulk Data NDJSON files (Observation.ndjson, ...) into this folder.",
)
@click.option(
    "--bundle-type",
    type=click.Choice(["collection", "searchset"]),
    default="collection",
    show_default=True,
    help="The Bundle's type.",
)
@common
@pass_session
def export(
    session: Session, patient: str, out: Path | None, folder: Path | None, bundle_type: str
) -> None:
    """Export every record of a patient the --account may read, as a FHIR Bundle or NDJSON.

    References between the records are made resolvable, each resource carries its MedLedger
    record URI (meta.tag), and a grantee's reads are logged on chain. Superseded versions and
    erased or unreadable records are left out, with a note.
    """
    from medledger import consent
    from medledger.errors import ConfigurationError
    from medledger.ipfs.stores import open_store

    if out is not None and folder is not None:
        raise ConfigurationError("export", "give --out FILE or --ndjson FOLDER, not both")
    for target in (out, folder):
        if target is not None:
            writable(target)
    done = consent.export(session.chain, open_store(session.settings), session.account(), patient)
    for line in done.notes:
        click.echo(f"note: {line}", err=True)
    if folder is not None:
        written = write_files(folder, done.ndjson())
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(done.counts.items()))
        session.emit(
            {"patient": done.patient, "resources": len(done.entries), "logged": done.logged,
             "files": [str(p) for p in written]},
            f"{len(done.entries)} resources ({kinds or 'none'}) in {len(written)} file(s) "
            f"under {folder}; {done.logged} read(s) logged on chain",
        )  # fmt: skip
        return
    write_output(done.bundle("searchset" if bundle_type == "searchset" else "collection"), out)
    if out is not None:  # on standard output, the Bundle is all there is
        session.emit(
            {"patient": done.patient, "resources": len(done.entries), "logged": done.logged,
             "files": [str(out)]},
            f"{len(done.entries)} resources written to {out}; {done.logged} read(s) logged on "
            "chain",
        )  # fmt: skip


@click.command("verify")
@click.argument("record_id", required=False)
@click.option("--patient", type=ADDRESS, help="Verify every record of this patient.")
@common
@pass_session
def verify(session: Session, record_id: str | None, patient: str | None) -> None:
    """Check bodies against CIDs and commitments; exit 1 naming each record that fails.

    A record the patient erased is reported as erased (when, by whom), not as a failure.
    """
    from medledger import consent, records
    from medledger.errors import ConfigurationError, MedLedgerError
    from medledger.ipfs.stores import open_store

    if (record_id is None) == (patient is None):
        raise ConfigurationError("verify", "give either RECORD_ID or --patient ADDRESS")
    chain = session.chain
    store = open_store(session.settings)
    reader, erased = session.account(), consent.erasures(chain)
    if record_id is not None:
        results = [records.verify(chain, store, record_id, reader, erased)]
    else:
        results = records.verify_patient(chain, store, patient or "", reader, erased)
        if not results:
            session.emit([], f"no records anchored for {patient}")
            return
    counts = {s: sum(r.status == s for r in results) for s in ("verified", "erased", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) + f" ({len(results)} in all)"
    session.emit(
        [r.as_dict() for r in results], "\n".join(map(_verification_line, results)) + "\n" + summary
    )
    failed = [r for r in results if not r.ok]
    if failed:
        raise MedLedgerError(
            f"{len(failed)} record(s) failed verification: "
            + ", ".join(r.record_id for r in failed[:5])
            + (" ..." if len(failed) > 5 else "")
        )


_MARKS = {"verified": "ok", "erased": "erased", "failed": "FAIL"}


def _verification_line(result: Any) -> str:
    if result.erased is not None:
        what = f"erased on {result.erased.at:%Y-%m-%d %H:%M:%S}Z by {result.erased.by}"
    else:
        what = result.problem or ", ".join(result.checks)
    return f"{_MARKS[result.status]:6} {result.record_id}  {what}"


@click.command("history")
@click.argument("record_id")
@common
@pass_session
def history(session: Session, record_id: str) -> None:
    """Show every version of a record: who wrote it, when.

    Each version is superseded, erased or current, and names the batch it came in (registered
    on its own or not yet).
    """
    from medledger import consent, records
    from medledger.ipfs.stores import open_store

    chain = session.chain
    versions = records.history(
        chain, record_id, open_store(session.settings), consent.erasures(chain)
    )
    lines = [
        f"v{n}  {v.hex_id}  {v.anchored_at:%Y-%m-%d %H:%M:%S}Z  by {v.issuer}  {_state(v)}"
        for n, v in enumerate(versions, start=1)
    ]
    session.emit([v.as_dict() for v in versions], "\n".join(lines))


def _state(version: Any) -> str:
    erased = version.erased
    state = (
        f"(erased on {erased.at:%Y-%m-%d %H:%M:%S}Z by {erased.by})" if erased
        else f"({version.state})"
    )  # fmt: skip
    if version.batch is None:
        return state
    pending = "" if version.registered else ", not yet registered"
    return f"{state}  in batch 0x{version.batch.hex()}{pending}"


# --- the block store ------------------------------------------------------------------------------


@click.group("ipfs")
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
@click.option("--out", type=OUTPUT, help="Write to a file.")
@common
@pass_session
def ipfs_cat(session: Session, cid: str, out: Path | None) -> None:
    """Print the bytes of a CID, verified block by block."""
    from medledger.ipfs.cid import Cid
    from medledger.ipfs.stores import open_store

    write_output(open_store(session.settings).cat(Cid.parse(cid)), out)


@ipfs.command("export-car")
@click.argument("cid")
@click.argument("out", type=OUTPUT)
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


@ipfs.command("remote-pins")
@click.option("--retry", is_flag=True, help="Ask again for every pin that failed.")
@common
@pass_session
def ipfs_remote_pins(session: Session, retry: bool) -> None:
    """List pins the pinning services have not finished; exit 1 if any failed."""
    from medledger.errors import ConfigurationError, MedLedgerError
    from medledger.ipfs.remotepins import RemotePinnedStore
    from medledger.ipfs.stores import open_store

    remote = open_store(session.settings)
    if not isinstance(remote, RemotePinnedStore):
        raise ConfigurationError("config.toml [[ipfs.pinning]]", "no pinning service is configured")
    retried = remote.retry_failed() if retry else 0
    found = remote.unfinished()
    rows = [
        {"service": service, "cid": str(p.cid), "status": p.status, "requestid": p.requestid,
         "created": p.created.isoformat(), "details": p.details}
        for service, statuses in found.items() for p in statuses
    ]  # fmt: skip
    lines = [f"{r['status']:8} {r['cid']}  {r['service']}  {r['details']}".rstrip() for r in rows]
    if retry:
        lines.append(f"{retried} failed pin(s) asked for again")
    failed = sum(r["status"] == "failed" for r in rows)
    lines.append(f"{len(rows) - failed} queued or pinning, {failed} failed")
    session.emit(rows, "\n".join(lines))
    if failed:
        raise MedLedgerError(
            f"{failed} remote pin(s) failed: run `medledger ipfs remote-pins --retry`"
        )


@ipfs.command("gc")
@common
@pass_session
def ipfs_gc(session: Session) -> None:
    """Remove every block that no pin needs, and the bodies of writes that never landed."""
    from medledger.ipfs.cid import Cid
    from medledger.ipfs.stores import open_store
    from medledger.records.consistency import forget_orphans, orphaned_bodies

    store = open_store(session.settings)
    orphans = orphaned_bodies(session.chain)
    for cid in orphans:
        store.unpin(Cid.parse(cid))
    removed = store.gc()
    forget_orphans(session.chain, orphans)
    session.emit(
        {"removed": removed, "orphans": len(orphans)},
        f"{removed} unpinned blocks removed ({len(orphans)} orphaned bodies among them)",
    )


# --- the consistency check ------------------------------------------------------------------------


@click.command("doctor")
@click.option("--resume", is_flag=True, help="Send again what an interrupted command left unmined.")
@click.option("--collect", is_flag=True, help="Remove bodies stored by writes that never landed.")
@common
@pass_session
def doctor(session: Session, resume: bool, collect: bool) -> None:
    """Compare the block store, the outbox and the chain; exit 1 unless the home is clean."""
    from medledger.errors import MedLedgerError
    from medledger.ipfs.stores import open_store
    from medledger.records.consistency import check

    found = check(session.chain, open_store(session.settings), resume, collect)
    lines = [f"{found.records} records on chain, {found.erased} erased"]
    if found.resumed is not None:
        done = found.resumed
        lines.append(
            f"resumed: {done.mined} found mined, {done.resent} sent again, {done.dropped} dropped"
        )
    if found.collected:
        lines.append(f"collected {found.collected} blocks of orphaned bodies")
    for label, items in (
        ("unmined transactions (run `medledger doctor --resume`)", found.pending),
        ("transactions the chain no longer has (run `medledger doctor --resume`)",
         found.rolled_back),
        ("orphaned bodies (run `medledger doctor --collect`)", found.orphans),
        ("records whose body no store holds", found.missing),
    ):  # fmt: skip
        if items:
            lines.append(
                f"{len(items)} {label}: "
                + ", ".join(items[:3])
                + (" ..." if len(items) > 3 else "")
            )
    if found.in_flight:
        lines.append(f"{found.in_flight} bodies belong to a command still running")
    lines.append("clean" if found.clean else "not clean")
    session.emit(
        {
            "clean": found.clean, "records": found.records, "erased": found.erased,
            "pending": list(found.pending), "rolled_back": list(found.rolled_back),
            "orphans": list(found.orphans), "missing": list(found.missing),
            "in_flight": found.in_flight, "collected": found.collected,
        },
        "\n".join(lines),
    )  # fmt: skip
    if not found.clean:
        raise MedLedgerError("the home is not clean: " + lines[-2])
