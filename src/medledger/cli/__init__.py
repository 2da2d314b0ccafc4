"""The ``medledger`` command line: thin click commands over the package.

Conventions shared by every verb: ``--network`` (default: the local devnet, started on demand),
``--account`` (an Ape account alias, ``dev:N`` on a devnet, or ``env:VAR``), ``--json`` for
machine-readable output. Errors, usage errors included, print one line on stderr and exit
non-zero.

The root group knows each command's name, module and one-line help (:data:`COMMANDS`) and
imports a command's module only when it runs or shows its own help, so ``medledger --help``
imports click and nothing else of weight; the command modules in turn import the package
inside their commands. The modules: :mod:`~medledger.cli.devnet` (the devnet, its accounts,
deployment), :mod:`~medledger.cli.institutions` (institutions, registrars, patients, keys),
:mod:`~medledger.cli.records` (anchoring, reading, verifying, history, the block store),
:mod:`~medledger.cli.consent` (grants, care, emergencies, key delivery, erasure, the audit
trail), :mod:`~medledger.cli.claims`, :mod:`~medledger.cli.trials`,
:mod:`~medledger.cli.demo`, :mod:`~medledger.cli.bench`; what they share is in
:mod:`~medledger.cli.support`.
"""

from __future__ import annotations

import os

import click

from medledger.cli.lazy import Lazy, LazyGroup

__all__ = ["COMMANDS", "cli", "main"]


def _in(module: str, attribute: str, help: str) -> Lazy:
    return Lazy(f"medledger.cli.{module}:{attribute}", help)


COMMANDS: dict[str, Lazy] = {
    # the chain
    "devnet": _in("devnet", "devnet",
                  "Start, stop and inspect the local Anvil devnet (state kept on disk)."),
    "accounts": _in("devnet", "accounts_list",
                    "List the devnet's funded test accounts (dev:0 ... dev:19)."),
    "deploy": _in("devnet", "deploy",
                  "Deploy the contracts (reusing those already deployed on this chain)."),
    # who is who
    "institution": _in("institutions", "institution",
                       "Apply, verify, suspend and reinstate institutions; manage practitioners."),
    "registrar": _in("institutions", "registrar",
                     "Registrars govern themselves: vote registrars in or out, vote the "
                     "threshold."),
    "patient": _in("institutions", "patient",
                   "Register as a patient; show a patient; attest or revoke a patient's "
                   "identity; guardians and recovery."),
    "publish-key": _in("institutions", "publish_key",
                       "Publish (or rotate to) the --account's own encryption key in the "
                       "registry."),
    # records
    "anchor": _in("records", "anchor",
                  "Encrypt, store and anchor FHIR files (resources or Bundles, or folders of "
                  "them)."),
    "read": _in("records", "read",
                "Fetch, verify and decrypt a record (with a live grant); print the FHIR JSON "
                "that went in."),
    "export": _in("records", "export",
                  "Export every record of a patient the --account may read, as a FHIR Bundle or "
                  "NDJSON."),
    "verify": _in("records", "verify",
                  "Check bodies against CIDs and commitments; exit 1 naming each record that "
                  "fails."),
    "history": _in("records", "history", "Show every version of a record: who wrote it, when."),
    "doctor": _in("records", "doctor",
                  "Compare the block store, the outbox and the chain; exit 1 unless the home is "
                  "clean."),
    "ipfs": _in("records", "ipfs",
                "Use the block store directly (embedded by default, Kubo nodes by "
                "configuration)."),
    # consent
    "grant": _in("consent", "grant",
                 "Grant GRANTEE access to a patient's records, delivering the keys in scope."),
    "revoke": _in("consent", "revoke", "Revoke GRANTEE's access at once."),
    "delegate": _in("consent", "delegate",
                    "Name a guardian or proxy who may act for the --account (a patient)."),
    "emergency-access": _in("consent", "emergency_access",
                            "Open break-glass access to a patient's records (a verified "
                            "emergency service)."),
    "close-emergency-access": _in("consent", "close_emergency_access",
                                  "End an emergency service's live break-glass access at once "
                                  "(the patient or a delegate)."),
    "cancel-signatures": _in("consent", "cancel_signatures",
                             "Cancel signed grants and care relationships not yet submitted "
                             "(burns the next nonces)."),
    "care": _in("consent", "care",
                "Care relationships: which institutions may write a patient's records."),
    "deliver-keys": _in("consent", "deliver_keys",
                        "Wrap the record keys the --account holds for a grantee's live grant, "
                        "and publish them."),
    "erase": _in("consent", "erase",
                 "Erase a record (right to erasure): destroy its keys and unpin its body."),
    "grants": _in("consent", "grants_list",
                  "List a patient's grants and emergency openings, with their status."),
    "audit": _in("consent", "audit",
                 "A patient's timeline from chain events: writes, grants, revocations, reads, "
                 "emergencies, identity attestations."),
    # insurance and trials
    "policy": _in("claims", "policy",
                  "Insurance policies: issue, fund, show, take back an ended policy's pool."),
    "claim": _in("claims", "claim",
                 "Insurance claims: submit, review, decide, dispute, escalate, get paid."),
    "trial": _in("trials", "trial",
                 "Clinical trials: registered protocols, signed consent, traceable data, "
                 "audits."),
    # the FHIR gateway
    "serve": _in("serve", "serve",
                 "Serve FHIR R4 over REST as the --account's institution (Sign-In with "
                 "Ethereum)."),
    "sign-in": _in("serve", "sign_in",
                   "Sign in to a MedLedger gateway with the --account's key; print the bearer "
                   "token."),
    # the walk-through and the measurements
    "demo": _in("demo", "demo",
                "The main job: deploy, register, anchor the sample records, read, detect "
                "tampering."),
    "bench": _in("bench", "bench",
                 "Measure gas, anchoring throughput, the read path, growth, start-up and the "
                 "FHIR gateway on fresh devnets."),
}  # fmt: skip
"""Every ``medledger`` command: its module and attribute, and its one-line help (the first
paragraph of its docstring, which ``test_cli_lazy`` holds them to)."""


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="medledger")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """MedLedger: encrypted FHIR records in IPFS, anchored and shared on an EVM chain.

    Local state lives under $MEDLEDGER_HOME (default ./.medledger).
    """
    from medledger.cli.support import Session, show_notices
    from medledger.config import load_settings

    show_notices()
    ctx.obj = Session(settings=load_settings())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn MedLedger errors into one line on stderr and an exit code."""
    try:
        cli.main(args=argv, prog_name="medledger", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as exc:  # a missing argument, an unknown option, a bad integer
        where = exc.ctx.command_path if exc.ctx is not None else "medledger"
        click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:
        from medledger.errors import MedLedgerError  # not needed before something failed

        if isinstance(exc, MedLedgerError):
            click.echo(f"error: {exc}", err=True)
            return exc.exit_code
        if os.environ.get("MEDLEDGER_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (set MEDLEDGER_DEBUG=1 for the trace)",
            err=True,
        )
        return 70
    return 0
