"""``medledger policy ...`` and ``medledger claim ...``: insurance (thin commands over
``medledger.claims``)."""

from __future__ import annotations

import click


@click.group()
def policy() -> None:
    """Insurance policies: issue, fund, show."""


@click.group()
def claim() -> None:
    """Insurance claims: submit, review, decide, dispute, get paid."""
