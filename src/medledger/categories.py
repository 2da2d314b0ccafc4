"""Record categories: the coarse kinds of medical record a patient can grant access to.

The contract stores a category as one byte; these codes are part of the on-chain format and
must never be renumbered (append new ones at the end). ``0`` is reserved and means "unset".
"""

from __future__ import annotations

from medledger.labels import Labelled


class Category(Labelled):
    """A record's category, as stored on chain (one byte)."""

    DEMOGRAPHICS = 1
    ENCOUNTER = 2
    CONDITION = 3
    LAB = 4
    VITALS = 5
    IMAGING = 6
    MEDICATION = 7
    IMMUNIZATION = 8
    PROCEDURE = 9
    ALLERGY = 10
    CARE_PLAN = 11
    DOCUMENT = 12
    FINANCIAL = 13
    RESEARCH = 14
    ADMINISTRATIVE = 15
    OTHER = 16

    @classmethod
    def parse(cls, text: str) -> Category:
        """Return the category named ``text`` (case-insensitive, ``-`` or ``_``), or raise."""
        return cls.lookup(text, "category", "category")
