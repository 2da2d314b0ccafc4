"""Checking what the FHIR gateway answered: every response body validated with the package's
validator (``fhir.resources`` R4B models, :mod:`medledger.fhir._validate`), and the references
of a Bundle resolved (to a ``fullUrl`` in the Bundle, or by GETting the absolute URL)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from medledger.fhir._validate import _NO_MODEL, Problem, bundle_problems, problems_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping


def schema_errors(body: Mapping[str, Any]) -> list[str]:
    """The schema errors of a response body (a resource, or a Bundle and its entries), one line
    each. A resource type that R4B dropped (no model to check it with) is not counted here:
    :func:`unvalidated_types` names those."""
    return [
        f"{p.resource_type}/{p.resource_id} {p.path}: {p.message}"
        for p in _problems(body) if p.message != _NO_MODEL
    ]  # fmt: skip


def unvalidated_types(body: Mapping[str, Any]) -> set[str]:
    """The resource types in ``body`` that fhir.resources 8.3.0 has no R4B model for."""
    return {p.resource_type for p in _problems(body) if p.message == _NO_MODEL}


def bundle_errors(bundle: Mapping[str, Any]) -> list[str]:
    """The schema errors of a Bundle's own fields and its entries' (``fullUrl``, ``search``,
    ``request``, ``response``...), its entries' resources left out."""
    return [f"{p.path}: {p.message}" for p in bundle_problems(bundle, bundle.get("entry") or [])]


def resource_problems(bundle: Mapping[str, Any]) -> Counter[str]:
    """How often each schema problem (type, path, message: not which resource) occurs in the
    resources of ``bundle``: an input's own problems, to compare with what came back."""
    found: Counter[str] = Counter()
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource")
        if isinstance(resource, dict):
            kind = str(resource.get("resourceType"))
            problems = problems_of(resource, kind, None)
            found.update(
                f"{kind} {p.path}: {p.message}" for p in problems if p.message != _NO_MODEL
            )
    return found


def _problems(body: Mapping[str, Any]) -> list[Problem]:
    kind = str(body.get("resourceType"))
    if kind != "Bundle":
        return problems_of(body, kind, None)
    entries = body.get("entry") or []
    found = bundle_problems(body, entries)
    for entry in entries:
        if isinstance(entry.get("resource"), dict):
            resource = entry["resource"]
            found += problems_of(resource, str(resource.get("resourceType")), None)
    return found


def references(value: object) -> Iterator[str]:
    """Every ``reference`` string anywhere in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def dangling(bundle: Mapping[str, Any], fetch: Callable[[str], int]) -> list[str]:
    """The references of ``bundle``'s resources that resolve neither to an entry's ``fullUrl``
    nor, being absolute URLs, to a 200 from ``fetch(url)`` (each URL fetched once)."""
    full_urls = {e.get("fullUrl") for e in bundle.get("entry") or []}
    fetched: dict[str, int] = {}
    unresolved = []
    for entry in bundle.get("entry") or []:
        for reference in references(entry.get("resource")):
            if reference in full_urls or reference.startswith("#"):
                continue
            if reference.startswith(("http://", "https://")):
                if reference not in fetched:
                    fetched[reference] = fetch(reference)
                if fetched[reference] == 200:
                    continue
            unresolved.append(reference)
    return unresolved


def counts(bundle: Mapping[str, Any]) -> Counter[str]:
    """How many resources of each type ``bundle`` holds."""
    return Counter(e["resource"]["resourceType"] for e in bundle.get("entry") or [])
