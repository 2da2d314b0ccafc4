"""``medledger patient attest``, ``patient revoke-attestation`` and the attestations that
``patient show`` lists (thin commands over ``medledger.identity``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medledger.cli.support import ADDRESS, OUTPUT, DurationType, Session, common, pass_session

if TYPE_CHECKING:
    from medledger.identity import Attestation

#: ``--expires`` of every attestation command (``medledger.identity.MAX_TERM`` at the most; not
#: imported from there, so that loading the CLI does not load the package).
EXPIRES = click.option(
    "--expires", default="365d", show_default=True, type=DurationType(timedelta(days=5 * 365)),
    help="How long the attestation holds (at most 5 years).",
)  # fmt: skip


@click.command("attest")
@click.option("--patient", required=True, type=ADDRESS, help="The patient's address.")
@EXPIRES
@click.option("--commitment-of", "document",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A file of what was checked (an identity document, the institution's own "
                   "record): only a salted commitment to it is published.")  # fmt: skip
@click.option("--opening", type=OUTPUT,
              help="Where the commitment's opening (salt and digest) is written: the institution "
                   "keeps it (default: FILE.opening.json beside --commitment-of).")  # fmt: skip
@common
@pass_session
def attest(
    session: Session,
    patient: str,
    expires: timedelta,
    document: Path | None,
    opening: Path | None,
) -> None:
    """Attest that PATIENT is a person the --account's care institution identified (the
    --account is a verified hospital, clinic, laboratory or emergency service, or a
    practitioner of one)."""
    from medledger import documents, identity
    from medledger.errors import ConfigurationError

    if opening is not None and document is None:
        raise ConfigurationError("--opening", "is written only with --commitment-of FILE")
    opened = identity.commit(document.read_bytes()) if document is not None else None
    made = identity.attest(
        session.chain, session.account(), patient, expires,
        opened.commitment if opened is not None else None,
    )  # fmt: skip
    data = made.as_dict()
    if opened is not None and document is not None:
        where = opening or document.with_name(document.name + ".opening.json")
        documents.write(where, {"patient": made.patient, **opened.as_dict()})
        data["opening_file"] = str(where)
    session.emit(data, describe(made))


@click.command("revoke-attestation")
@click.option("--patient", required=True, type=ADDRESS, help="The patient's address.")
@common
@pass_session
def revoke_attestation(session: Session, patient: str) -> None:
    """Revoke the --account's institution's attestation of PATIENT."""
    from medledger import identity

    revoked = identity.revoke(session.chain, session.account(), patient)
    session.emit(revoked.as_dict(), describe(revoked))


def describe(made: Attestation) -> str:
    """One line: who attested whom, when, until when, and whether it holds now."""
    if made.revoked:
        state = f"revoked {made.revoked_at:%F %H:%M} UTC" if made.revoked_at else "revoked"
    elif made.holds:
        state = "holds"
    else:
        state = "no longer holds (expired, or the institution was suspended since)"
    by = "" if made.attester == made.institution else f" (by {made.attester})"
    return (
        f"{made.patient} attested by {made.institution}{by} on {made.attested_at:%F %H:%M} UTC, "
        f"until {made.expires_at:%F %H:%M} UTC: {state}"
    )
