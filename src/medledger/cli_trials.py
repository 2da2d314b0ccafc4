"""``medledger trial ...``: clinical trials (thin click commands over ``medledger.trials``)."""

from __future__ import annotations

import click


@click.group()
def trial() -> None:
    """Clinical trials: registered protocols, signed consent, traceable data, audits."""
