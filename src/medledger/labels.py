"""Enums named on the command line by their lower-case, dash-separated member names."""

from __future__ import annotations

from enum import IntEnum
from typing import Self

from medledger.errors import ConfigurationError


class Labelled(IntEnum):
    """An on-chain code whose members the CLI names ``care-plan``, ``research-sponsor``..."""

    @property
    def label(self) -> str:
        """The command-line name."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def choices(cls) -> list[Self]:
        """The members a user may name (all, unless a subclass keeps some for its own verb)."""
        return list(cls)

    @classmethod
    def lookup(cls, text: str, setting: str, noun: str) -> Self:
        """Return the member named ``text`` (case-insensitive, ``-`` or ``_``), or raise."""
        member = cls.__members__.get(text.strip().upper().replace("-", "_"))
        if member is None or member not in cls.choices():
            names = ", ".join(m.label for m in cls.choices())
            raise ConfigurationError(setting, f"unknown {noun} {text!r} (one of: {names})")
        return member
