"""Schema validation of FHIR resources with the ``fhir.resources`` R4B models.

``fhir.resources`` 8.3.0 ships R5 and R4B (4.3) models and no R4 ones; R4B is the closest to
R4, so that is what resources are checked against. Each resource is validated once with its own
model class, looked up once per type (``get_fhir_model_class`` imports a module per type):
pydantic validates the 2,192 entries of a 3 MB Synthea Bundle in about half a second, so no
shortcut is needed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from medledger.fhir._types import FhirWarning

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from pydantic_core import ErrorDetails

_NO_MODEL = "not validated: fhir.resources has no R4B model for this R4 resource type"

# pydantic's wording for the errors real exports produce, said the FHIR way.
_MESSAGES = {
    "extra_forbidden": "unknown field (not in FHIR R4B)",
    "missing": "required field is missing",
    "model_field_validation.missing": "required field is missing",
}


@dataclass(frozen=True)
class Problem:
    """One schema problem at one place of one resource."""

    entry_index: int | None
    resource_type: str
    resource_id: str | None
    path: str
    message: str


@functools.cache
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except ValueError:  # an R4 type that R4B dropped
        return None


def json_kind(value: object) -> str:
    """How a JSON value is called in messages: ``a string``, ``an array``, ``null``..."""
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"


def _path(location: Sequence[int | str]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += "[*]"
        else:
            path += f".{part}" if path else part
    return path


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "json_invalid":  # fhir_core parses a string it got for an element as JSON
        return f"expected an object, got {json_kind(error.get('input'))}"
    message = " ".join(error["msg"].split()).removeprefix("Value error, ")
    if kind.endswith("_type"):  # "Input should be a valid string": say what it was instead
        message += f", got {json_kind(error.get('input'))}"
    return message


def _errors(
    resource: Mapping[str, Any], resource_type: str
) -> list[tuple[tuple[int | str, ...], str]]:
    """``(location, message)`` for each schema error of ``resource``."""
    model = _model(resource_type)
    if model is None:
        return [((), _NO_MODEL)]
    try:
        model.model_validate(resource)
    except ValidationError as error:
        return [(tuple(e["loc"]), _message(e)) for e in error.errors(include_url=False)]
    except Exception as error:  # fhir_core raises KeyError & co. on some malformed input
        return [((), f"the R4B validator failed ({type(error).__name__})")]
    return []


def problems_of(
    resource: Mapping[str, Any], resource_type: str, entry_index: int | None
) -> list[Problem]:
    """Validate one resource against its R4B model."""
    identifier = resource.get("id")
    resource_id = identifier if isinstance(identifier, str) else None
    return [
        Problem(entry_index, resource_type, resource_id, _path(location), message)
        for location, message in _errors(resource, resource_type)
    ]


def bundle_problems(
    bundle: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]
) -> list[Problem]:
    """Validate a Bundle's own fields and its entries' ``fullUrl``, ``request``, ``search``...

    The entries' resources are left out: each is validated on its own by :func:`problems_of`.
    """
    shell = {**bundle, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in entries]}
    identifier = bundle.get("id")
    bundle_id = identifier if isinstance(identifier, str) else None
    found = []
    for location, message in _errors(shell, "Bundle"):
        index = location[1] if location[:1] == ("entry",) and len(location) > 1 else None
        entry_index = index if isinstance(index, int) else None
        found.append(Problem(entry_index, "Bundle", bundle_id, _path(location), message))
    return found


def summarise(source: str, problems: Iterable[Problem]) -> list[FhirWarning]:
    """Group identical problems (same type, path and message), in order of first appearance."""
    groups: dict[tuple[str, str, str], tuple[Problem, int, set[tuple[int | None, str | None]]]]
    groups = {}
    for problem in problems:
        key = (problem.resource_type, problem.path, problem.message)
        first, count, resources = groups.get(key, (problem, 0, set()))
        resources.add((problem.entry_index, problem.resource_id))
        groups[key] = (first, count + 1, resources)
    return [
        FhirWarning(
            source,
            first.entry_index,
            first.resource_type,
            first.resource_id,
            first.path,
            first.message,
            count,
            len(resources),
        )
        for first, count, resources in groups.values()
    ]
