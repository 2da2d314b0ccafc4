"""SMART App Launch scopes as the gateway reads and grants them, and cutting them down.

A scope is ``<context>/<resource type or *>.<actions>``, context ``patient`` (one patient's
records per request: the caller's own when the caller is a patient), ``user`` (whatever the
caller may reach) or ``system`` (the institution running the gateway). Both forms of SMART
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html) are read:

- v1 (SMART 1.0): ``.read`` (read and search), ``.write`` (create, update, delete), ``.*``;
- v2 (SMART 2.x): ``.cruds`` letters in that order, any non-empty subset (``.rs``, ``.c``).

Scopes are always written back in the v2 form. Granular v2 scopes (``?category=...``) and
launch scopes (``openid``, ``launch/patient``) are refused with a one-line reason: a caller
here signs in with its Ethereum account and what it may see is decided per category by the
patient's grants, which :func:`cut_down` and the principal of each request apply.

A grant covers a MedLedger category, a scope a FHIR resource type; :func:`categories_of` says
which categories a resource of a type can be recorded under (the rule of
:func:`medledger.fhir.categorize`), so a grant of ``lab`` lets a scope keep ``Observation``,
``DiagnosticReport`` and ``Specimen``, and each record is still checked against the grant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from medledger.errors import InvalidScope
from medledger.fhir import R4_RESOURCE_TYPES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from medledger.gateway.standing import Standing

ANY_TYPE = "*"
_SCOPE = re.compile(r"(?P<context>[a-z]+)/(?P<type>\*|[A-Za-z]+)\.(?P<actions>[a-z*]+)")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


class Context(StrEnum):
    """Whose records a scope is about."""

    PATIENT = "patient"
    USER = "user"
    SYSTEM = "system"


class Action(StrEnum):
    """A FHIR interaction kind, as SMART v2 letters name them."""

    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"

    @classmethod
    def parse(cls, text: str | Action) -> Action:
        """An action from its letter or name (``r``, ``read``, ``search``...)."""
        if isinstance(text, Action):
            return text
        for action in cls:
            if text.lower() in (action.value, action.name.lower()):
                return action
        names = ", ".join(a.name.lower() for a in cls)
        raise ValueError(f"unknown action {text!r} (one of: {names})")


READS = frozenset({Action.READ, Action.SEARCH})
_ORDER = "cruds"


@dataclass(frozen=True)
class SmartScope:
    """One scope: a context, a resource type (or ``*``) and the actions it allows."""

    context: Context
    resource_type: str
    actions: frozenset[Action]

    def __str__(self) -> str:
        letters = "".join(letter for letter in _ORDER if Action(letter) in self.actions)
        return f"{self.context}/{self.resource_type}.{letters}"

    def allows(self, resource_type: str, action: Action) -> bool:
        """Whether the scope names ``action`` on ``resource_type``."""
        return action in self.actions and self.resource_type in (ANY_TYPE, resource_type)


def parse_scope(text: str) -> SmartScope:
    """Read one scope (v1 or v2 form), or raise :class:`InvalidScope` saying what is wrong."""
    if "?" in text:
        raise InvalidScope(text, "granular scopes (?...) are not supported")
    found = _SCOPE.fullmatch(text)
    if found is None:
        raise InvalidScope(text, "it is not <context>/<type>.<actions>")
    context, resource_type, actions = found.group("context", "type", "actions")
    if context not in Context.__members__.values():
        raise InvalidScope(text, f"context {context!r} is not patient, user or system")
    if resource_type != ANY_TYPE and resource_type not in R4_RESOURCE_TYPES:
        raise InvalidScope(text, f"{resource_type!r} is not a FHIR R4 resource type")
    letters = _V1.get(actions, actions)
    if not letters or letters != "".join(c for c in _ORDER if c in letters):
        raise InvalidScope(text, f"actions {actions!r} are not read, write, * or cruds in order")
    return SmartScope(Context(context), resource_type, frozenset(Action(c) for c in letters))


def parse_scopes(text: str | Iterable[str]) -> tuple[SmartScope, ...]:
    """Read space-separated scopes (or a list of them); at least one is needed."""
    words = text.split() if isinstance(text, str) else [w for t in text for w in t.split()]
    if not words:
        raise InvalidScope("", "no scope was requested")
    return tuple(dict.fromkeys(parse_scope(word) for word in words))


def render(scopes: Iterable[SmartScope]) -> str:
    """Scopes as one space-separated string (the OAuth ``scope`` form)."""
    return " ".join(str(scope) for scope in scopes)


def cut_down(scopes: Iterable[SmartScope], standing: Standing) -> tuple[SmartScope, ...]:
    """The part of ``scopes`` that ``standing`` (what the caller may do, read from the chain)
    allows: a wildcard the caller may not use on every type becomes the types it may use, and
    actions it may not take are dropped. Empty when nothing is left."""
    kept: dict[tuple[Context, str], set[Action]] = {}
    for scope in scopes:
        wildcard = scope.resource_type == ANY_TYPE
        types = sorted(R4_RESOURCE_TYPES) if wildcard else [scope.resource_type]
        allowed = {
            t: {a for a in scope.actions if standing.allows(scope.context, t, a)} for t in types
        }
        everywhere = set.intersection(*allowed.values()) if wildcard else set()
        if everywhere:
            kept.setdefault((scope.context, ANY_TYPE), set()).update(everywhere)
        for resource_type, actions in allowed.items():
            if actions - everywhere:
                kept.setdefault((scope.context, resource_type), set()).update(actions)
    for (context, resource_type), actions in kept.items():  # drop what a wildcard holds
        if resource_type != ANY_TYPE:
            actions -= kept.get((context, ANY_TYPE), set())
    return tuple(
        SmartScope(context, resource_type, frozenset(actions))
        for (context, resource_type), actions in kept.items()
        if actions
    )
