"""Records served as FHIR REST resources: read, version read, history, search, ``$everything``.

Every answer comes from the export path (:mod:`medledger.consent.exporting`), page by page:
the records of a patient that the gateway's account may open (:func:`~medledger.consent.
exporting.candidates`), cut down to what the caller may see (:meth:`Principal.covers`, read
live from the chain at each request), opened and checked, with references made resolvable.

What a record looks like over REST:

- Its logical id is the 64-hex id of its *first* version (the versions of a record are one
  resource); ``meta.versionId`` counts versions from 1; ``meta.lastUpdated`` is when that
  version was anchored; ``meta.tag`` carries the version's ``medledger://`` URI.
- ``fullUrl`` and every reference to a record the gateway knows is ``{base}/{type}/{id}``; a
  reference it cannot serve stays logical (see :mod:`medledger.fhir._references`).
- A patient is ``Patient/<address>``: a Patient that names the MedLedger account and links
  (``seealso``) to the Patient records the caller may see.

Reads are logged on chain as ``medledger read`` logs them: the gateway account's own
reads as a grantee (``logAccess``), and a caller who reads under a grant (not the patient, not
the institution) with ``logAccessFor`` naming the caller as reader and the gateway as server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medledger import consent, providers, records
from medledger.consent import exporting
from medledger.consent.envelopes import Keyring
from medledger.consent.reading import open_readable
from medledger.errors import AccessRefused, MedLedgerError, RecordNotFound
from medledger.gateway.provenance import ACCOUNT_SYSTEM, instant, provenance
from medledger.records import origins, versions

if TYPE_CHECKING:
    from collections.abc import Callable

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.fhir import Exported
    from medledger.gateway.auth import Principal
    from medledger.gateway.queries import Query
    from medledger.ipfs.blockstore import BlockStore

    Caller = Callable[[str], Principal]  # the caller, once the patient is known (or raises)



@dataclass(frozen=True)
class Page:
    """One page of a search: the resources, how many matched in all, the next page's offset."""

    entries: list[Exported]
    total: int
    next_offset: int | None


class Records:
    """The records a gateway serves, as ``account`` (the institution) opens them."""

    def __init__(self, chain: Chain, store: BlockStore, account: Signer, base: str) -> None:
        self.chain, self.store, self.account, self.base = chain, store, account, base.rstrip("/")
        self._lock = threading.Lock()

    def search(
        self, caller: Principal, patient: str, types: frozenset[str] | None, query: Query
    ) -> Page:
        """The page of ``patient``'s records of ``types`` (None: any) that ``query`` asks for
        and ``caller`` may see, oldest first."""
        found = exporting.candidates(self.chain, self.store, self.account, patient, caller.covers)
        roots = _roots(found.previous)
        kinds = self._kinds(found.records)
        chosen = [
            r for r in found.records
            if query.admits_time(r.anchored_at)
            and (not query.ids or roots[r.id].hex() in query.ids)
            and (types is None or kinds.get(r.id, "?") in types or r.id not in kinds)
        ]  # fmt: skip
        ring = Keyring(self.chain, self.store, self.account, None)
        if query.needs_bodies or (types is not None and any(r.id not in kinds for r in chosen)):
            opened = exporting.open_records(self.chain, self.store, self.account, chosen, ring)
            matched = [
                (r, resource) for r, resource in opened.pairs
                if (types is None or resource.get("resourceType") in types)
                and query.admits(resource)
            ]  # fmt: skip
            total, pairs = len(matched), matched[query.offset : query.offset + query.count]
        else:
            total = len(chosen)
            window = chosen[query.offset : query.offset + query.count]
            opened = exporting.open_records(self.chain, self.store, self.account, window, ring)
            pairs = opened.pairs
        end = query.offset + query.count
        entries = self._present(caller, pairs, found.previous, roots, opened.to_log)
        return Page(entries, total, end if end < total else None)

    def everything(self, caller: Principal, patient: str) -> list[Exported]:
        """Every current record of ``patient`` that ``caller`` may see."""
        found = exporting.candidates(self.chain, self.store, self.account, patient, caller.covers)
        opened = exporting.open_records(self.chain, self.store, self.account, found.records)
        return self._present(
            caller, opened.pairs, found.previous, _roots(found.previous), opened.to_log
        )

    def read(
        self, who: Caller, resource_type: str, logical_id: str, version: int | None = None
    ) -> Exported:
        """The current version of a record (or ``version``, counted from 1), for the caller
        ``who`` makes of the record's patient."""
        chain_of = self._versions(logical_id)
        caller = who(chain_of[0].patient)
        if version is not None and not 1 <= version <= len(chain_of):
            raise RecordNotFound(f"{resource_type}/{logical_id}/_history/{version}")
        wanted = chain_of[-1] if version is None else chain_of[version - 1]
        return self._one(caller, resource_type, logical_id, chain_of, wanted)

    def history(self, who: Caller, resource_type: str, logical_id: str) -> list[Exported]:
        """Every version of a record the caller may see, newest first."""
        chain_of = self._versions(logical_id)
        caller = who(chain_of[0].patient)
        shown = []
        for record in reversed(chain_of):
            try:
                shown.append(self._one(caller, resource_type, logical_id, chain_of, record))
            except (AccessRefused, RecordNotFound):
                continue  # an erased or unreadable version is left out of the history
        if not shown:
            raise RecordNotFound(f"{resource_type}/{logical_id}")
        return shown

    def patient_resource(self, caller: Principal, patient: str) -> dict[str, Any]:
        """``Patient/<address>``: the account, and links to the Patient records shown."""
        address = providers.require_patient(self.chain, patient)
        page = self.search(
            caller, address, frozenset({"Patient"}), _all_of_patient(address)
        )  # fmt: skip
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": address,
            "identifier": [{"system": ACCOUNT_SYSTEM, "value": address}],
        }
        if page.entries:
            resource["link"] = [
                {"other": {"reference": e.full_url}, "type": "seealso"} for e in page.entries
            ]
        return resource

    def provenance(self, who: Caller, version_id: str) -> dict[str, Any]:
        """The ``Provenance`` of one record version (named by its own record id)."""
        record_id = _record_id(version_id)
        chain_of = self._versions(record_id.hex(), any_version=True)
        number = next(i for i, r in enumerate(chain_of, 1) if r.id == record_id)
        record = chain_of[number - 1]
        if not who(record.patient).covers(record):
            raise RecordNotFound(f"Provenance/{version_id}")
        kind = self._kinds([record]).get(record.id)
        if kind is None:  # anchored without its origin noted: its type is in the body
            opened = exporting.open_records(self.chain, self.store, self.account, [record])
            if not opened.pairs:
                raise RecordNotFound(f"Provenance/{version_id}")
            kind = str(opened.pairs[0][1]["resourceType"])
        if kind == "Provenance" and chain_of[0].id == record_id:  # one an EHR sent: as stored
            return self.read(who, kind, version_id).resource
        return provenance(record, kind, chain_of[0].id.hex(), number)

    def link(self, root: bytes, resource_type: str) -> str:
        """Where this gateway serves a record: ``{base}/{type}/{id}``."""
        return f"{self.base}/{resource_type}/{root.hex()}"

    # --- one record ---------------------------------------------------------------------------

    def body_of(self, record: records.Record) -> bytes | None:
        """The stored bytes of a record the gateway's account can open (None otherwise)."""
        try:
            return open_readable(self.chain, self.store, self.account, record)[0]
        except MedLedgerError:
            return None

    def versions_of(self, logical_id: str) -> list[records.Record]:
        """Every version of the record ``logical_id`` names, oldest first."""
        return self._versions(logical_id)

    def _versions(self, logical_id: str, any_version: bool = False) -> list[records.Record]:
        record_id = _record_id(logical_id)
        chain_of = versions.history(self.chain, record_id, self.store)
        if chain_of[0].id != record_id and not any_version:  # a later version: not the logical id
            raise RecordNotFound(logical_id)
        return chain_of

    def _one(
        self, caller: Principal, resource_type: str, logical_id: str,
        chain_of: list[records.Record], record: records.Record,
    ) -> Exported:  # fmt: skip
        if not caller.covers(record):
            raise RecordNotFound(f"{resource_type}/{logical_id}")  # what it may not see: unknown
        if consent.erasures(self.chain)(record) is not None:
            raise RecordNotFound(f"{resource_type}/{logical_id} (erased by the patient)")
        opened = exporting.open_records(self.chain, self.store, self.account, [record])
        if not opened.pairs or opened.pairs[0][1].get("resourceType") != resource_type:
            raise RecordNotFound(f"{resource_type}/{logical_id}")
        previous = {r.id: r.previous for r in chain_of}
        roots = dict.fromkeys(previous, chain_of[0].id)
        return self._present(caller, opened.pairs, previous, roots, opened.to_log)[0]

    # --- presenting and logging ---------------------------------------------------------------

    def _present(
        self,
        caller: Principal,
        pairs: list[tuple[records.Record, dict[str, Any]]],
        previous: dict[bytes, bytes | None],
        roots: dict[bytes, bytes],
        to_log: list[bytes],
    ) -> list[Exported]:
        self._log(caller, [r for r, _ in pairs], set(to_log))
        numbers = _version_numbers(previous)

        def link(record_id: bytes, resource_type: str) -> str | None:
            root = roots.get(record_id) or self._root_of(record_id)
            return self.link(root, resource_type) if root is not None else None

        entries = exporting.as_fhir(self.chain, pairs, previous, link)
        for (record, _resource), entry in zip(pairs, entries, strict=True):
            resource = entry.resource
            resource["id"] = roots[record.id].hex()
            resource["meta"] = {
                **resource["meta"],
                "versionId": str(numbers.get(record.id, 1)),
                "lastUpdated": instant(self._first_anchored(record)),
            }
        return entries

    def _log(
        self, caller: Principal, shown: list[records.Record], as_grantee: set[bytes]
    ) -> None:
        """Log the reads of ``shown`` on chain: the gateway's own reads as a grantee (as
        ``medledger read`` logs them), and, for a caller reading under a grant (not the
        patient or a delegate, not the institution), the caller's, served by the gateway
        (``logAccessFor``; a record still only in its batch is registered first, as ``read``
        registers it)."""
        own = [r.id for r in shown if r.id in as_grantee]
        if own:
            exporting.log_opened(self.chain, self.account, own)
        if shown and caller.categories is not None:  # the caller reads under grants
            unregistered = [r for r in shown if not r.registered]
            if unregistered:
                records.ensure_all_registered(self.chain, self.store, self.account, unregistered)
            served = [r.id for r in shown]
            step = exporting.LOG_BATCH
            for start in range(0, len(served), step):
                chunk = served[start : start + step]
                consent.log_reads_for(self.chain, self.account, caller.address, chunk)

    def _first_anchored(self, record: records.Record) -> records.Record:
        """The record as its batch anchored it, when it was registered from one later (so its
        ``lastUpdated`` does not move when a grantee's read registers it)."""
        if record.batch is None or not record.registered:
            return record
        return records.find_batched(self.chain, self.store, record.id) or record

    def _root_of(self, record_id: bytes) -> bytes | None:
        """The first version of a record outside the view at hand (None: not found)."""
        walk = record_id
        try:
            for _ in range(1_000):
                earlier = records.get(self.chain, walk, self.store).previous
                if earlier is None:
                    return walk
                walk = earlier
        except RecordNotFound:
            return None
        return None

    def _kinds(self, found: list[records.Record]) -> dict[bytes, str]:
        noted = origins.origins_of(self.chain, [r.id for r in found])
        return {rid: o.resource_type for rid, o in noted.items()}


def served_url(resource: dict[str, Any]) -> str:
    """The ``fullUrl`` of a resource built from chain state: ``{type}/{id}`` relative to the
    base, as FHIR allows when the id is the server's."""
    return f"{resource['resourceType']}/{resource['id']}"


def _record_id(logical_id: str) -> bytes:
    text = logical_id.removeprefix("0x")
    try:
        if len(text) == 64:
            return bytes.fromhex(text)
    except ValueError:
        pass
    raise RecordNotFound(logical_id)


def _roots(previous: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    """Each record's first version (its logical id)."""
    roots: dict[bytes, bytes] = {}
    for record_id in previous:
        walk = [record_id]
        while (earlier := previous.get(walk[-1])) is not None and earlier not in walk:
            if earlier in roots:
                walk.append(roots[earlier])
                break
            walk.append(earlier)
        for rid in walk:
            roots.setdefault(rid, walk[-1])
    return roots


def _version_numbers(previous: dict[bytes, bytes | None]) -> dict[bytes, int]:
    numbers: dict[bytes, int] = {}
    for record_id in previous:
        walk, earlier = 1, previous.get(record_id)
        seen = {record_id}
        while earlier is not None and earlier not in seen:
            seen.add(earlier)
            walk += 1
            earlier = previous.get(earlier)
        numbers[record_id] = walk
    return numbers


def _all_of_patient(address: str) -> Query:
    from medledger.gateway.queries import MAX_COUNT, Query

    return Query(patient=address, count=MAX_COUNT)
