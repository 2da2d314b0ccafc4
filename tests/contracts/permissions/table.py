"""Reads the permission tables of ``docs/permissions.md``.

Each contract is a ``## <Contract>`` section holding one markdown table whose header is
``| function | <actor> ... | why |`` and whose cells are ``allowed`` or ``refused: <Error>``;
sections whose table starts otherwise (the callers' legend) are not permission tables.
The reader is strict: a malformed cell, an unknown column or a repeated row is an error, so a
typo in the document fails the suite instead of silently dropping a check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "permissions.md"

ACTORS = (
    "admin",
    "registrar",
    "hospital",
    "clinic",
    "laboratory",
    "insurer",
    "sponsor",
    "emergency",
    "practitioner",
    "removed",
    "patient",
    "delegate",
    "suspended",
    "resolver",
    "stranger",
)
"""The table's caller columns, in order (see the document's "Callers")."""

ALLOWED = "allowed"
_REFUSED = re.compile(r"refused: ([A-Za-z_][A-Za-z0-9_]*)")
_SECTION = re.compile(r"^## (\w+)\s*$")
_FUNCTION = re.compile(r"`?([A-Za-z_][A-Za-z0-9_]*)`?")


@dataclass(frozen=True)
class Cell:
    """What the table says one caller gets from one function."""

    contract: str
    function: str
    actor: str
    error: str | None  # None: allowed
    why: str

    @property
    def row(self) -> str:
        return f"{self.contract}.{self.function}"

    @property
    def id(self) -> str:
        return f"{self.row}[{self.actor}]"

    @property
    def expected(self) -> str:
        return ALLOWED if self.error is None else f"refused: {self.error}"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse(text: str) -> dict[str, dict[str, list[Cell]]]:
    """Return ``{contract: {function: [cell per actor]}}`` in document order."""
    tables: dict[str, dict[str, list[Cell]]] = {}
    contract: str | None = None
    header_seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _SECTION.match(line):
            contract, header_seen = match[1], False
            continue
        if contract is None or not line.startswith("|"):
            continue
        cells = _cells(line)
        if not header_seen:
            if cells[0] != "function":  # another section's table (the callers' legend)
                contract = None
                continue
            expected = ["function", *ACTORS, "why"]
            if cells != expected:
                raise ValueError(f"line {number}: header {cells} is not {expected}")
            header_seen = True
            continue
        if set(line.replace("|", "").strip()) <= {"-", ":", " "}:
            continue  # the separator row
        if len(cells) != len(ACTORS) + 2:
            raise ValueError(f"line {number}: {len(cells)} cells, expected {len(ACTORS) + 2}")
        name = _FUNCTION.fullmatch(cells[0])
        if name is None:
            raise ValueError(f"line {number}: {cells[0]!r} is not a function name")
        function, why = name[1], cells[-1]
        rows = tables.setdefault(contract, {})
        if function in rows:
            raise ValueError(f"line {number}: {contract}.{function} has two rows")
        rows[function] = [
            Cell(contract, function, actor, _error(text_, number), why)
            for actor, text_ in zip(ACTORS, cells[1:-1], strict=True)
        ]
    return tables


def _error(text: str, number: int) -> str | None:
    if text == ALLOWED:
        return None
    if match := _REFUSED.fullmatch(text):
        return match[1]
    raise ValueError(f"line {number}: cell {text!r} is neither 'allowed' nor 'refused: <Error>'")


def load() -> dict[str, dict[str, list[Cell]]]:
    return parse(DOC.read_text(encoding="utf-8"))


def all_cells(tables: dict[str, dict[str, list[Cell]]]) -> list[Cell]:
    return [cell for rows in tables.values() for cells in rows.values() for cell in cells]
