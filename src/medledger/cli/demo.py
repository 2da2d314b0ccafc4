"""``medledger demo``: the walk-through of :mod:`medledger.demo`."""

from __future__ import annotations

import click

from medledger.cli.support import Session, common, pass_session


@click.command("demo")
@click.option("--fresh", is_flag=True, help="Run in a new empty home under $MEDLEDGER_HOME/demo.")
@common
@pass_session
def demo(session: Session, fresh: bool) -> None:
    """The main job: deploy, register, anchor the sample records, read, detect tampering."""
    from medledger.demo import run

    run(session.settings, session.network, fresh=fresh)
