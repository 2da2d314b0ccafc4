"""A FHIR search's parameters, as the gateway supports them, checked before anything is read.

Supported on record types (``GET /{type}?...``): ``patient`` / ``subject`` (``0x...``,
``Patient/0x...`` or a URL ending so), ``_count`` (1 to :data:`MAX_COUNT`, default
:data:`DEFAULT_COUNT`), ``_offset`` (the page: what ``next`` links use), ``_lastUpdated``
(when the record was anchored; prefixes ``eq`` ``ne`` ``gt`` ``ge`` ``lt`` ``le`` on a date or
date-time, repeatable: all must hold), ``category`` and ``code`` (tokens ``code``,
``system|code``, ``system|`` or ``|code``; comma-separated values are alternatives), ``_id``, and
``_format``/``_pretty`` (answers are JSON either way). Any other parameter is refused with a
one-line reason (a filter silently ignored would answer more than was asked for).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from medledger.addresses import parse_address
from medledger.errors import InvalidRequest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

DEFAULT_COUNT = 100
MAX_COUNT = 1_000
_IGNORED = frozenset({"_format", "_pretty", "_summary"})
_PATIENT = ("patient", "subject")
_KNOWN = frozenset({*_PATIENT, "_count", "_offset", "_lastUpdated", "category", "code", "_id"})
_PREFIXES: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge,
    "lt": operator.lt, "le": operator.le, "sa": operator.gt, "eb": operator.lt,
}  # fmt: skip
_ADDRESS = re.compile(r"(?:^|/)(?:Patient/)?(0x[0-9a-fA-F]{40})$")


@dataclass(frozen=True)
class Token:
    """A token search value: ``system|code`` (either side may be empty: any)."""

    system: str | None
    code: str | None

    def matches(self, codings: Iterable[Mapping[str, Any]]) -> bool:
        """Whether one of ``codings`` (FHIR ``Coding`` objects) matches."""
        return any(
            (self.system is None or c.get("system") == self.system)
            and (self.code is None or c.get("code") == self.code)
            for c in codings
        )


@dataclass(frozen=True)
class Query:
    """A checked search."""

    patient: str | None = None
    count: int = DEFAULT_COUNT
    offset: int = 0
    updated: tuple[tuple[str, datetime], ...] = ()
    categories: tuple[Token, ...] = ()
    codes: tuple[Token, ...] = ()
    ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def needs_bodies(self) -> bool:
        """Whether matching needs each resource opened (category and code are in the body)."""
        return bool(self.categories or self.codes)

    def admits_time(self, anchored_at: datetime) -> bool:
        """Whether a record anchored at ``anchored_at`` passes ``_lastUpdated``."""
        return all(_PREFIXES[p](anchored_at, at) for p, at in self.updated)

    def admits(self, resource: Mapping[str, Any]) -> bool:
        """Whether an opened resource passes ``category`` and ``code``."""
        return _any_token(self.categories, _codings(resource.get("category"))) and _any_token(
            self.codes, _codings(resource.get("code"))
        )

    def with_offset(self, offset: int) -> list[tuple[str, str]]:
        """This search's parameters with another ``_offset`` (for paging links)."""
        out = [("patient", self.patient)] if self.patient else []
        out += [("_lastUpdated", f"{prefix}{at.isoformat()}") for prefix, at in self.updated]
        if self.categories:
            out.append(("category", ",".join(_render(t) for t in self.categories)))
        if self.codes:
            out.append(("code", ",".join(_render(t) for t in self.codes)))
        if self.ids:
            out.append(("_id", ",".join(sorted(self.ids))))
        return [*out, ("_count", str(self.count)), ("_offset", str(offset))]


def parse_query(items: Iterable[tuple[str, str]]) -> Query:
    """Check a search's parameters (``(name, value)`` pairs as they came); raise
    :class:`~medledger.errors.InvalidRequest` naming the first problem."""
    values: dict[str, list[str]] = {}
    for name, value in items:
        if name in _IGNORED:
            continue
        base = name.split(":", 1)[0]
        if base not in _KNOWN or ":" in name:
            supported = ", ".join(sorted(_KNOWN))
            raise InvalidRequest(
                f"search parameter {name!r} is not supported (supported: {supported})"
            )
        values.setdefault(base, []).append(value)
    patients = {patient_address(v) for n in _PATIENT for v in values.get(n, [])}
    if len(patients) > 1:
        raise InvalidRequest("name one patient per search (patient and subject disagree)")
    return Query(
        patient=next(iter(patients), None),
        count=_number(values, "_count", DEFAULT_COUNT, 1, MAX_COUNT),
        offset=_number(values, "_offset", 0, 0, 10**9),
        updated=tuple(_date_filter(v) for v in values.get("_lastUpdated", [])),
        categories=_tokens(values, "category"),
        codes=_tokens(values, "code"),
        ids=frozenset(i for v in values.get("_id", []) for i in v.split(",") if i),
    )


def patient_address(text: str) -> str:
    """A patient reference's address: ``0x...``, ``Patient/0x...`` or a URL ending so."""
    found = _ADDRESS.search(text.strip())
    if found is None:
        raise InvalidRequest(
            f"{text!r} does not name a MedLedger patient: give the patient's address as "
            "0x... or Patient/0x..."
        )
    return parse_address(found[1], "patient")


def _number(values: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    given = values.get(name)
    if not given:
        return default
    if len(given) > 1 or not given[0].isdigit() or not low <= int(given[0]) <= high:
        raise InvalidRequest(f"{name} must be one whole number from {low} to {high}")
    return int(given[0])


def _date_filter(value: str) -> tuple[str, datetime]:
    prefix, text = (value[:2], value[2:]) if value[:2] in _PREFIXES else ("eq", value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            at = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if prefix in ("gt", "le", "sa"):
                at += timedelta(days=1) - timedelta(microseconds=1)
        else:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidRequest(
            f"_lastUpdated {value!r} is not a date: write e.g. ge2026-01-31 or "
            "lt2026-01-31T12:00:00Z"
        ) from None
    return prefix, at


def _tokens(values: dict[str, list[str]], name: str) -> tuple[Token, ...]:
    found = []
    for value in values.get(name, []):
        for text in value.split(","):
            system, bar, code = text.partition("|")
            if not bar:
                system, code = "", text
            if not (system or code):
                raise InvalidRequest(f"{name} {value!r} names no code")
            found.append(Token(system or None, code or None))
    return tuple(found)


def _render(token: Token) -> str:
    return f"{token.system or ''}|{token.code or ''}" if token.system else token.code or ""


def _codings(value: object) -> list[Mapping[str, Any]]:
    concepts = value if isinstance(value, list) else [value]
    return [
        c
        for concept in concepts
        if isinstance(concept, dict)
        for c in (concept.get("coding") or [])
        if isinstance(c, dict)
    ]


def _any_token(tokens: tuple[Token, ...], codings: list[Mapping[str, Any]]) -> bool:
    return not tokens or any(t.matches(codings) for t in tokens)
