"""Exported records as FHIR: references made resolvable, the record URI tagged, Bundle or NDJSON.

The stored bodies are never changed (a read gives back the exact bytes that went in); only an
export rewrites them. Every exported resource gets a ``fullUrl`` of its own,
``urn:uuid:<uuid5(URL namespace, record URI)>`` (the same record always gets the same one, and
two records never share one), and a ``meta.tag`` ``{system: "urn:medledger:record", code:
<the medledger:// record URI>}``.

What a reference becomes (``resolve`` finds its target, see :class:`Target`):

- ``#id`` (a contained resource): kept.
- a resource in the export: ``reference`` is the target's ``fullUrl``.
- a MedLedger record not in the export (not readable by the caller, erased, superseded): a
  *logical* reference: no ``reference``; ``type`` and ``identifier`` ``{system:
  "urn:ietf:rfc:3986", value: <its medledger:// URI>}``, which ``medledger read`` resolves for
  whoever may read it.
- a conditional reference ``Type?identifier=system|value`` (Synthea's practitioners,
  organisations, locations): a logical reference with that ``type`` and ``identifier``.
- an absolute URL (``https://server/fhir/Patient/1``): kept; it names a resource on that server.
- anything else that does not resolve (a ``urn:uuid:`` or ``Type/id`` with no target here): a
  logical reference with the ``type`` it names; a ``urn:`` becomes the ``identifier`` as above.

A reference made logical keeps its ``display`` and the original text in an extension
``{url: "urn:medledger:original-reference", valueString: ...}``; an ``identifier`` the
Reference already had is kept. So every ``reference`` left in an exported Bundle resolves to an
entry's ``fullUrl``, is ``#`` local, or is an absolute URL.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

RECORD_TAG_SYSTEM = "urn:medledger:record"
ORIGINAL_REFERENCE = "urn:medledger:original-reference"
URI_SYSTEM = "urn:ietf:rfc:3986"
BundleType = Literal["collection", "searchset"]

_LITERAL = re.compile(
    r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?identifier=([^&|]*)\|([^&]+)$")
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True)
class Target:
    """What a reference points to: an exported entry (``full_url``), or a MedLedger record
    outside the export (``uri``), of ``resource_type``."""

    resource_type: str | None
    full_url: str | None = None
    uri: str | None = None


@dataclass(frozen=True)
class Exported:
    """One resource of an export: its entry ``full_url`` and the rewritten resource."""

    full_url: str
    resource: dict[str, Any]

    @property
    def resource_type(self) -> str:
        """The resource's type (names its NDJSON file)."""
        return str(self.resource["resourceType"])


def full_url_of(record_uri: str) -> str:
    """The ``fullUrl`` a record gets in every export: a name-based UUID of its URI."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, record_uri)}"


def literal(reference: str) -> tuple[str, str] | None:
    """``(type, id)`` of a relative ``Type/id[/_history/v]`` reference, else None."""
    found = _LITERAL.match(reference)
    return (found[1], found[2]) if found else None


def export_resource(
    resource: dict[str, Any],
    record_uri: str,
    resolve: Callable[[str], Target | None],
    full_url: str | None = None,
) -> Exported:
    """A stored resource as exported: references rewritten by the rules above, record tagged;
    its ``fullUrl`` is ``full_url`` (where a server serves it) or :func:`full_url_of`."""
    out = copy.deepcopy(resource)
    _rewrite(out, resolve)
    meta = out["meta"] if isinstance(out.get("meta"), dict) else {}
    tags = meta["tag"] if isinstance(meta.get("tag"), list) else []
    tags = [t for t in tags if not _is_record_tag(t)]
    out["meta"] = {**meta, "tag": [*tags, {"system": RECORD_TAG_SYSTEM, "code": record_uri}]}
    return Exported(full_url or full_url_of(record_uri), out)


def bundle(entries: Iterable[Exported], kind: BundleType = "collection") -> bytes:
    """A FHIR Bundle (``collection``, or ``searchset`` with ``total`` and search mode
    ``match``) of the exported resources, in order."""
    items: list[dict[str, Any]] = []
    for entry in entries:
        item: dict[str, Any] = {"fullUrl": entry.full_url, "resource": entry.resource}
        if kind == "searchset":
            item["search"] = {"mode": "match"}
        items.append(item)
    document: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if kind == "searchset":
        document["total"] = len(items)
    document["entry"] = items
    return _dumps(document)


def ndjson(entries: Iterable[Exported]) -> dict[str, bytes]:
    """Bulk Data style NDJSON: for each resource type, one resource per line, in order."""
    lines: dict[str, list[bytes]] = {}
    for entry in entries:
        lines.setdefault(entry.resource_type, []).append(_dumps(entry.resource))
    return {name: b"\n".join(found) + b"\n" for name, found in lines.items()}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _is_record_tag(tag: object) -> bool:
    return isinstance(tag, dict) and tag.get("system") == RECORD_TAG_SYSTEM


def _rewrite(value: Any, resolve: Callable[[str], Target | None]) -> None:
    """Rewrite every Reference (an object with a string ``reference``) inside ``value``."""
    if isinstance(value, list):
        for item in value:
            _rewrite(item, resolve)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key == "reference" and isinstance(item, str):
            continue
        _rewrite(item, resolve)
    reference = value.get("reference")
    if isinstance(reference, str) and not reference.startswith("#"):
        _rewrite_reference(value, reference, resolve(reference))


def _rewrite_reference(ref: dict[str, Any], text: str, target: Target | None) -> None:
    if target is not None and target.full_url is not None:
        ref["reference"] = target.full_url
        return
    kind, identifier = None, None
    if target is not None:
        kind, identifier = target.resource_type, {"system": URI_SYSTEM, "value": target.uri}
    elif conditional := _CONDITIONAL.match(unquote(text)):  # the bar may come as %7C
        kind = conditional[1]
        identifier = {"value": conditional[3]}
        if conditional[2]:
            identifier = {"system": conditional[2], **identifier}
    elif _ABSOLUTE.match(text):
        return  # a resource on another server: resolvable there
    elif named := literal(text):
        kind = named[0]
    elif text.startswith("urn:"):
        identifier = {"system": URI_SYSTEM, "value": text}
    del ref["reference"]
    if kind and "type" not in ref:
        ref["type"] = kind
    if identifier and "identifier" not in ref:
        ref["identifier"] = identifier
    extensions = ref["extension"] if isinstance(ref.get("extension"), list) else []
    ref["extension"] = [*extensions, {"url": ORIGINAL_REFERENCE, "valueString": text}]
