"""The demo walk-through (``medledger demo``): the whole record loop, insurance and a clinical
trial on the local devnet, through the same package functions the CLI verbs use.

:func:`run` is the walk-through (:mod:`~medledger.demo.walkthrough`); its insurance and trial
parts are :mod:`~medledger.demo.claims` and :mod:`~medledger.demo.trials`; ``data/`` holds the
sample FHIR Bundles.
"""

from medledger.demo.walkthrough import run

__all__ = ["run"]
