"""Exporting a patient's records as FHIR: every record the caller may read, as one Bundle or as
Bulk Data style NDJSON, each read logged on chain.

:func:`export` is the one path, in stages the FHIR server (:mod:`medledger.gateway`) also runs
page by page: :func:`candidates` (what may be read, before anything is opened),
:func:`open_records`, :func:`log_opened` and :func:`as_fhir`. It reads what
:func:`~medledger.consent.reading.read` would let the caller read (the patient, the record's
author, a grantee with live access), opened and checked the same way; a grantee's reads are
logged in batched ``logAccess`` transactions (:func:`~medledger.consent.reading.log_reads`,
:data:`LOG_BATCH` records each), after every record has been opened. Left out, and said:
superseded versions (the current one is exported), erased records, records the caller has no
access to or no key for, bodies that are not FHIR.

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
from medledger.consent.reading import access_checks, erasures, log_reads, open_readable
from medledger.consent.scopes import Scope
from medledger.errors import AccessRefused, FhirError, NoKeyForReader
from medledger.records import origins

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
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
    found = candidates(chain, store, reader, patient)
    opened = open_records(chain, store, reader, found.records)
    logged = log_opened(chain, reader, opened.to_log) if log else 0
    entries = as_fhir(chain, opened.pairs, found.previous)
    skipped = {**found.skipped}
    for reason, ids in opened.skipped.items():
        skipped.setdefault(reason, []).extend(ids)
    return Export(found.patient, [r for r, _ in opened.pairs], entries, skipped, logged)


@dataclass(frozen=True)
class Candidates:
    """A patient's records that a reader may open, oldest first, before any is opened: current
    versions only, what was left out and why, and every version's previous one."""

    patient: str
    records: list[records.Record]
    skipped: dict[str, list[str]]
    previous: dict[bytes, bytes | None]


def candidates(
    chain: Chain,
    store: BlockStore,
    reader: Signer,
    patient: str,
    keep: Callable[[records.Record], bool] | None = None,
) -> Candidates:
    """The records of ``patient`` that ``reader`` may read (and ``keep`` keeps: a filter the
    caller adds, e.g. the gateway's caller's reach; records it drops are left out silently),
    those written in batches and not yet registered included.

    Raises PatientNotFound for an address that is not a registered patient.
    """
    patient = providers.require_patient(chain, patient)
    erased = erasures(chain)
    may_read = _access_check(chain, reader)
    found = records.for_patient(chain, patient, store)
    chosen: list[records.Record] = []
    skipped: dict[str, list[str]] = {}
    for record in found:
        if record.superseded:
            reason = "superseded"
        elif keep is not None and not keep(record):
            continue
        elif erased(record) is not None:
            reason = "erased"
        elif not may_read(record):
            reason = "refused"
        else:
            chosen.append(record)
            continue
        skipped.setdefault(reason, []).append(record.hex_id)
    return Candidates(patient, chosen, skipped, {r.id: r.previous for r in found})


@dataclass
class Opened:
    """Records opened: each with its FHIR resource, those that could not be, and the ids whose
    reads must be logged on chain (a grantee's reads)."""

    pairs: list[tuple[records.Record, dict[str, Any]]] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    to_log: list[bytes] = field(default_factory=list)


def open_records(
    chain: Chain,
    store: BlockStore,
    reader: Signer,
    chosen: Iterable[records.Record],
    ring: Keyring | None = None,
) -> Opened:
    """Open, check and parse ``chosen`` as ``reader`` (nothing is logged: see
    :func:`log_opened`); ``ring`` keeps the reader's opened key envelopes across calls."""
    ring = ring or Keyring(chain, store, reader, None)  # the envelopes, opened once each
    done = Opened()
    chosen = list(chosen)
    for record, checked in zip(chosen, access_checks(chain, reader, chosen), strict=True):
        try:
            body, logged = open_readable(chain, store, reader, record, ring, checked)
            done.to_log += [record.id] if logged else []  # opened: a read, FHIR or not
            done.pairs.append((record, fhir.parse_resource(body)))
            continue
        except AccessRefused:
            reason = "refused"
        except NoKeyForReader:
            reason = "no key"
        except FhirError:
            reason = "not fhir"
        done.skipped.setdefault(reason, []).append(record.hex_id)
    return done


def log_opened(chain: Chain, reader: Signer, record_ids: list[bytes]) -> int:
    """Log ``reader``'s reads on chain, :data:`LOG_BATCH` per transaction; how many."""
    for start in range(0, len(record_ids), LOG_BATCH):
        log_reads(chain, reader, record_ids[start : start + LOG_BATCH])
    return len(record_ids)


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


def as_fhir(
    chain: Chain,
    opened: list[tuple[records.Record, dict[str, Any]]],
    previous: dict[bytes, bytes | None],
    link: Callable[[bytes, str], str | None] | None = None,
) -> list[Exported]:
    """The opened records as exported resources, references resolved across the export.

    A record's references are looked up first in its own input, then in the inputs of its
    earlier versions (``previous``: a record id → the id it superseded), then by ``Type/id``
    or record URI among the exported resources. ``link`` (a record id and its type → a URL,
    or None) names records where a server serves them: an exported record's ``fullUrl``,
    and any record it names is referenced there, in the export or not."""
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
    kinds = {rid: o.resource_type for rid, o in known.items()}
    kinds.update({r.id: str(resource["resourceType"]) for r, resource in opened})
    exported = {r.id: (link and link(r.id, kinds[r.id])) or fhir.export_full_url(r.uri)
                for r, _ in opened}  # fmt: skip
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
            served = link(rid, kinds[rid]) if link is not None and rid in kinds else None
            if served is not None:
                return fhir.Target(kinds.get(rid), full_url=served)
            return fhir.Target(kinds.get(rid), uri=base + rid.hex())

        return resolve

    return [
        fhir.export_resource(
            resource,
            record.uri,
            resolver([noted[rid].input for rid in versions[record.id] if rid in noted]),
            exported[record.id],
        )
        for record, resource in opened
    ]
