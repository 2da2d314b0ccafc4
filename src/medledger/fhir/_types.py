"""The values :func:`medledger.fhir.load` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from medledger.categories import Category


@dataclass(frozen=True)
class RecordDraft:
    """One FHIR resource of the input, ready to be encrypted and anchored as its own record.

    ``body`` is the exact bytes of the resource in the input: the whole input for a single
    resource, the byte span of ``entry[i].resource`` for a Bundle entry. ``entry_index`` is
    ``None`` for a single resource.
    """

    body: bytes
    resource_type: str
    resource_id: str | None
    full_url: str | None
    category: Category
    entry_index: int | None


@dataclass(frozen=True)
class PatientRef:
    """The patient the records are about, as the input names it (never written on chain).

    Built from the Bundle's Patient entry, or, when the input has none, from the first reference
    to a patient (then ``full_url`` is a bundle-local reference or ``None``, and ``resource_id``
    the id in a ``Patient/<id>`` reference). ``identifiers`` holds ``(system, value)`` pairs.
    """

    full_url: str | None
    resource_id: str | None
    identifiers: tuple[tuple[str | None, str], ...] = ()

    @property
    def label(self) -> str:
        """A short human name for messages: the fullUrl, ``Patient/<id>`` or an identifier."""
        if self.full_url:
            return self.full_url
        if self.resource_id:
            return f"Patient/{self.resource_id}"
        if self.identifiers:
            system, value = self.identifiers[0]
            return f"identifier {system or ''}|{value}"
        return "(unnamed patient)"

    def same_patient(self, other: PatientRef) -> bool:
        """Whether ``other`` names this patient: same fullUrl, same id or a shared identifier."""
        return bool(
            (self.full_url and self.full_url == other.full_url)
            or (self.resource_id and self.resource_id == other.resource_id)
            or set(self.identifiers) & set(other.identifiers)
        )


@dataclass(frozen=True)
class FhirWarning:
    """A schema problem that did not stop the load; identical problems are reported once.

    ``path`` is the field path inside the resource with list indexes written ``[*]`` (empty for
    the resource as a whole); ``entry_index`` and ``resource_id`` name the first resource that
    shows the problem, ``count`` how many times it occurs and ``resources`` in how many
    resources. Messages never quote field values, which may be patient data.
    """

    source: str
    entry_index: int | None
    resource_type: str
    resource_id: str | None
    path: str
    message: str
    count: int = 1
    resources: int = 1

    def __str__(self) -> str:
        where = f"entry[{self.entry_index}] " if self.entry_index is not None else ""
        who = f"{self.resource_type}/{self.resource_id}" if self.resource_id else self.resource_type
        field = f" {self.path}" if self.path else ""
        repeats = ""
        if self.count > self.resources:
            repeats = f" ({self.count} times in {self.resources} resources)"
        elif self.resources > 1:
            repeats = f" (in {self.resources} resources)"
        return f"{self.source}: {where}{who}{field}: {self.message}{repeats}"


@dataclass(frozen=True)
class Ingest:
    """The records found in one input, the patient they are about and what was wrong with them.

    ``kind`` is ``"resource"`` for a single resource and ``"bundle"`` for a Bundle, whose
    entries become one record each.
    """

    source: str
    kind: Literal["resource", "bundle"]
    drafts: list[RecordDraft]
    warnings: list[FhirWarning]
    patient: PatientRef | None
