"""Exporting a patient's records as FHIR: every record the caller may read, as one Bundle or as
Bulk Data style NDJSON, each read logged on chain.

:func:`export` is the one path (``medledger export`` and, later, the FHIR server's search and
``$export`` call it). It reads what :func:`~medledger.consent.reading.read` would let the
caller read (the patient, the record's author, a grantee with live access), opened and checked
the same way; a grantee's reads are logged in batched ``logAccess`` transactions
(:func:`~medledger.consent.reading.log_reads`, :data:`LOG_BATCH` records each), after every
record has been opened. Left out, and said: superseded versions (the current one is exported),
erased records, records the caller has no access to or no key for, bodies that are not FHIR.

References are made resolvable with the ``fullUrl`` → record mapping noted at anchoring
(:mod:`medledger.records.origins`); what each kind of reference becomes is in
:mod:`medledger.fhir._references`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medledger import fhir, providers, records
from medledger.consent.contract import consent_contract
from medledger.consent.emergency import emergency_of
from medledger.consent.envelopes import Keyring
from medledger.consent.grants import grants
from medledger.consent.reading import erasures, log_reads, open_readable
from medledger.consent.scopes import Scope
from medledger.errors import AccessRefused, FhirError, NoKeyForReader
from medledger.records import origins

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.fhir import BundleType, Exported
    from medledger.ipfs.blockstore import BlockStore

LOG_BATCH = 200
"""Reads logged per ``logAccess`` transaction (each costs about 10k gas)."""

_REASONS = {
    "superseded": "superseded by a newer version (the current one is exported)",
    "erased": "erased by the patient",
    "refused": "not readable by this account (no live grant)",
    "no key": "no key delivered for this account (ask the patient to deliver keys)",
    "not fhir": "not a FHIR resource",
}


@dataclass(frozen=True)
class Export:
    """The records exported (``entries[i]`` is ``exported[i]`` as FHIR), what was left out and
    why (a reason → record ids), and how many reads were logged on chain."""

    patient: str
    exported: list[records.Record]
    entries: list[Exported]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    logged: int = 0

    def bundle(self, kind: BundleType = "collection") -> bytes:
        """The export as one FHIR Bundle (``collection`` or ``searchset``)."""
        return fhir.export_bundle(self.entries, kind)

    def ndjson(self) -> dict[str, bytes]:
        """The export as Bulk Data NDJSON files, by name: ``Observation.ndjson``, ..."""
        return {f"{name}.ndjson": data for name, data in fhir.export_ndjson(self.entries).items()}

    @property
    def counts(self) -> Counter[str]:
        """How many resources of each type the export holds."""
        return Counter(entry.resource_type for entry in self.entries)

    @property
    def notes(self) -> list[str]:
        """One line per reason records were left out."""
        return [
            f"{len(ids)} record(s) left out: {_REASONS[reason]}"
            for reason, ids in self.skipped.items()
        ]


def export(
    chain: Chain, store: BlockStore, reader: Signer, patient: str, *, log: bool = True
) -> Export:
    """Every record of ``patient`` that ``reader`` may read, as FHIR (see the module docstring).

    Raises PatientNotFound for an address that is not a registered patient, before anything is
    read or sent.
    """
    patient = providers.require_patient(chain, patient)
    erased = erasures(chain)
    may_read = _access_check(chain, reader)
    ring = Keyring(chain, store, reader, None)  # the reader's envelopes, opened once each
    opened: list[tuple[records.Record, dict[str, Any]]] = []
    skipped: dict[str, list[str]] = {}
    to_log: list[bytes] = []
    found = records.for_patient(chain, patient, store)
    for record in found:
        reason = None
        if record.superseded:
            reason = "superseded"
        elif erased(record) is not None:
            reason = "erased"
        elif not may_read(record):
            reason = "refused"
        else:
            try:
                body, logged = open_readable(chain, store, reader, record, ring)
                to_log += [record.id] if logged else []  # opened: a read, FHIR or not
                opened.append((record, fhir.parse_resource(body)))
            except AccessRefused:
                reason = "refused"
            except NoKeyForReader:
                reason = "no key"
            except FhirError:
                reason = "not fhir"
        if reason is not None:
            skipped.setdefault(reason, []).append(record.hex_id)
    if log:
        for start in range(0, len(to_log), LOG_BATCH):
            log_reads(chain, reader, to_log[start : start + LOG_BATCH])
    entries = _as_fhir(chain, opened, {r.id: r.previous for r in found})
    return Export(patient, [r for r, _ in opened], entries, skipped, len(to_log) if log else 0)


def _access_check(chain: Chain, reader: Signer) -> Callable[[records.Record], bool]:
    """A cheap look before opening: may ``reader`` read a record at all? (Registering a
    batched record costs gas, so it is done only for a reader with a live grant covering it.)"""
    contract = consent_contract(chain)
    employers: dict[str, str | None] = {}
    now = chain.now()

    def may_read(record: records.Record) -> bool:
        if reader.address in (record.patient, record.issuer):
            return True
        if record.issuer not in employers:
            employers[record.issuer] = providers.participant(chain, record.issuer).employer
        if employers[record.issuer] == reader.address:
            return True
        if record.registered:
            allowed = contract.functions.hasAccess(reader.address, record.id)
            return bool(chain.call("checking access", allowed))
        covering = grants(chain, record.patient, reader.address, Scope.covering(record))
        if any(g.live(now) for g in covering):
            return True
        service = providers.verified_institution_of(chain, reader.address)
        opening = emergency_of(chain, record.patient, service) if service else None
        return opening is not None and opening.live(now)

    return may_read


def _as_fhir(
    chain: Chain,
    opened: list[tuple[records.Record, dict[str, Any]]],
    previous: dict[bytes, bytes | None],
) -> list[Exported]:
    """The opened records as exported resources, references resolved across the export.

    A record's references are looked up first in its own input, then in the inputs of its
    earlier versions (``previous``: a record id → the id it superseded), then by ``Type/id``
    or record URI among the exported resources."""
    if not opened:
        return []
    versions: dict[bytes, list[bytes]] = {}
    for record, _resource in opened:
        chain_of = versions[record.id] = [record.id]
        while (earlier := previous.get(chain_of[-1])) and earlier not in chain_of:
            chain_of.append(earlier)
    noted = origins.origins_of(chain, {rid for ids in versions.values() for rid in ids})
    known = origins.records_of_inputs(chain, (o.input for o in noted.values()))
    here = opened[0][0]
    base = f"medledger://eip155:{here.chain_id}/{here.registry}/0x"
    exported = {r.id: fhir.export_full_url(r.uri) for r, _ in opened}
    kinds = {rid: o.resource_type for rid, o in known.items()}
    kinds.update({r.id: str(resource["resourceType"]) for r, resource in opened})
    by_url = {(o.input, o.full_url): rid for rid, o in known.items() if o.full_url}
    names = {rid: f"{o.resource_type}/{o.resource_id}" for rid, o in known.items() if o.resource_id}
    by_name = {(known[rid].input, name): rid for rid, name in names.items()}
    in_export: dict[str, bytes] = {r.uri: r.id for r, _ in opened}
    for record, resource in opened:  # newest last, so a Type/id names its newest record
        if isinstance(resource.get("id"), str):
            names[record.id] = f"{resource['resourceType']}/{resource['id']}"
            in_export[names[record.id]] = record.id

    def resolver(inputs: list[str]) -> Callable[[str], fhir.Target | None]:
        def resolve(text: str) -> fhir.Target | None:
            named = fhir.literal_reference(text)
            rid = None
            for key in inputs:
                rid = by_url.get((key, text))
                if rid is None and named:
                    rid = by_name.get((key, f"{named[0]}/{named[1]}"))
                if rid is not None:
                    break
            if rid is None:
                rid = in_export.get(f"{named[0]}/{named[1]}" if named else text)
            if rid is None:
                return None
            if rid not in exported and rid in names:  # another version of it may be here
                rid = in_export.get(names[rid], rid)
            if rid in exported:
                return fhir.Target(kinds.get(rid), full_url=exported[rid])
            return fhir.Target(kinds.get(rid), uri=base + rid.hex())

        return resolve

    return [
        fhir.export_resource(
            resource,
            record.uri,
            resolver([noted[rid].input for rid in versions[record.id] if rid in noted]),
        )
        for record, resource in opened
    ]
