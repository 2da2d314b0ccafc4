"""A patient's access trail, rebuilt from chain events alone: who wrote, granted, revoked,
delivered keys, read, erased, and opened emergency access.

Writes (``RecordAnchored``), grants, revocations, key deliveries, delegate changes, care
relationships, cancelled signatures, erasures, logged reads (by the reader, or by the gateway
that served them: ``RecordAccessServed`` names both), emergency openings and identity
attestations (and their revocations) are all events, so the trail needs no server and cannot
be edited. A record written in a batch is listed when its batch was anchored (found through the
batch manifests a store serves), and again when it was registered on its own
(``RecordProven``), naming its batch. Emergency openings are listed first, whatever their time:
they are the entries a patient most needs to see. (A trial's audit is another thing:
:func:`medledger.trials.audit`.) Guardians, recoveries and freezes (PatientRecovery) are listed
too; a completed recovery, a started one and a freeze first, beside the emergency openings.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from medledger import documents, providers, records
from medledger.chain import deployments, eventindex, events
from medledger.consent.contract import CONTRACT
from medledger.consent.scopes import Purpose, Scope

if TYPE_CHECKING:
    from collections.abc import Callable

    from medledger.chain import Chain
    from medledger.chain.events import Log
    from medledger.ipfs.blockstore import BlockStore

TRAIL_FORMATS = ("table", "json", "csv")
_RECORDS = "RecordRegistry"
_PROVIDERS = "ProviderRegistry"
_IDENTITY = "IdentityRegistry"
_RECOVERY = "PatientRecovery"


@dataclass(frozen=True)
class TrailEntry:
    """One line of a patient's access trail."""

    time: str
    block: int
    event: str
    actor: str
    subject: str
    detail: str


def access_trail(chain: Chain, patient: str, store: BlockStore | None = None) -> list[TrailEntry]:
    """Every event about a registered patient (``PatientNotFound`` for any other address):
    emergency openings first, then oldest to newest. With a ``store``, records written in
    batches are listed from the batch manifests it serves, registered or not."""
    patient = providers.require_patient(chain, patient)
    with eventindex.one_view(chain):  # one sync for the dozen queries below
        return _trail(chain, patient, store)


def _trail(chain: Chain, patient: str, store: BlockStore | None) -> list[TrailEntry]:
    by_patient = {"patient": patient}
    entries: list[tuple[int, int, int, TrailEntry]] = []

    def add(
        log: Log, name: str, actor: str, subject: str, detail: str, first: bool = False
    ) -> None:
        entry = TrailEntry(_second(log.time(chain)), log.block, name, actor, subject, detail)
        entries.append((0 if first else 1, log.block, log.index, entry))

    def logs(contract: str, name: str) -> list[Log]:
        return events.logs(chain, contract, name, by_patient)

    for e in logs(CONTRACT, "EmergencyAccessOpened"):
        detail = f"by {e['institution']} until {_minute(e['expiresAt'])}: {e['reason']}"
        add(e, "EMERGENCY ACCESS OPENED", e["opener"], "all records", detail, first=True)
    for e in logs(CONTRACT, "EmergencyAccessClosed"):
        add(e, "emergency access closed", e["by"], e["institution"], "", first=True)
    for e in logs(_PROVIDERS, "CareAuthorized"):
        until = "until revoked" if e["until"] >= 2**40 - 1 else f"until {_minute(e['until'])}"
        add(e, "care relationship opened", e["by"], e["institution"], f"may write records {until}")
    for e in logs(_PROVIDERS, "CareRevoked"):
        add(e, "care relationship ended", e["by"], e["institution"], "")
    for contract, what in ((_PROVIDERS, "care requests"), (CONTRACT, "grants")):
        for e in logs(contract, "SignaturesCancelled"):
            detail = f"signed {what} with nonce {e['nonce']}"
            add(e, "signatures cancelled", e["by"], patient, detail)
    anchored = logs(_RECORDS, "RecordAnchored")
    batched = records.batched_for(chain, store, patient) if store is not None else []
    ids = [bytes(e["id"]) for e in anchored] + [r.id for r in batched]
    proofs = events.logs(chain, _RECORDS, "RecordProven", {"id": ids}) if ids else []
    proven = {bytes(e["id"]): bytes(e["batchId"]) for e in proofs}
    for e in anchored:
        what = _version(e["previous"])
        batch = proven.get(bytes(e["id"]))
        if batch is None:
            add(e, "record anchored", e["issuer"], "0x" + e["id"].hex(), what)
        else:
            detail = f"{what}, from batch 0x{batch.hex()[:12]}"
            add(e, "record registered from batch", e["issuer"], "0x" + e["id"].hex(), detail)
    for r in batched:
        pending = "" if r.id in proven else " (not yet registered)"
        detail = f"{_version(r.previous)}, batch 0x{(r.batch or b'').hex()[:12]}{pending}"
        entry = TrailEntry(_second(r.anchored_at), r.block, "record anchored in batch",
                           r.issuer, r.hex_id, detail)  # fmt: skip
        entries.append((1, r.block, -1, entry))
    for e in logs(CONTRACT, "AccessGranted"):
        scope = Scope.from_chain(e["scopeKind"], e["scope"]).label
        detail = f"{scope} for {Purpose(e['purpose']).label} until {_minute(e['expiresAt'])}"
        add(e, "access granted", e["grantor"], e["grantee"], detail)
    for e in logs(CONTRACT, "AccessRevoked"):
        detail = "scope 0x" + e["scopeKey"].hex()[:12]
        add(e, "access revoked", e["revoker"], e["grantee"], detail)
    for e in logs(CONTRACT, "KeysDelivered"):
        detail = "envelope digest 0x" + e["envelopeDigest"].hex()[:12]
        add(e, "keys delivered", e["deliverer"], e["grantee"], detail)
    for e in logs(CONTRACT, "RecordAccessed"):
        add(e, "record read", e["reader"], "0x" + e["id"].hex(), "logged by the reader")
    for e in logs(CONTRACT, "RecordAccessServed"):
        detail = f"served by gateway {e['gateway']}"
        add(e, "record read", e["reader"], "0x" + e["id"].hex(), detail)
    for e in logs(CONTRACT, "RecordErased"):
        detail = "keys destroyed, body unpinned"
        add(e, "record erased", e["by"], "0x" + e["id"].hex(), detail)
    for e in logs(_PROVIDERS, "DelegateChanged"):
        add(e, "delegate " + ("added" if e["allowed"] else "removed"), patient, e["delegate"], "")
    if _IDENTITY in deployments.require(chain).contracts:  # absent from older deployments
        for e in logs(_IDENTITY, "IdentityAttested"):
            detail = f"by {e['institution']} until {_minute(e['expiresAt'])}"
            add(e, "identity attested", e["attester"], patient, detail)
        for e in logs(_IDENTITY, "IdentityRevoked"):
            add(e, "identity attestation revoked", e["revoker"], patient, f"by {e['institution']}")
    _recovery_entries(logs, add, patient)
    entries.sort(key=lambda item: item[:3])
    return [entry for *_, entry in entries]


def _recovery_entries(
    logs: Callable[[str, str], list[Log]], add: Callable[..., None], patient: str
) -> None:
    """Guardians, recoveries and freezes (a recovery and a freeze are listed first)."""
    for e in logs(_RECOVERY, "GuardiansChanged"):
        detail = f"{e['threshold']} of {len(e['guardians'])}, delay {e['delay']} s"
        add(e, "guardians named", patient, ", ".join(e["guardians"]) or "none", detail)
    for e in logs(_RECOVERY, "GuardianChangeProposed"):
        detail = f"{e['threshold']} of {len(e['guardians'])}, from {_minute(e['changeAt'])}"
        add(e, "guardian change proposed", patient, ", ".join(e["guardians"]) or "none", detail)
    for e in logs(_RECOVERY, "RecoveryApproved"):
        detail = f"approval {e['approvals']}"
        add(e, "recovery approved", e["guardian"], e["newController"], detail)
    for e in logs(_RECOVERY, "RecoveryStarted"):
        detail = f"may complete from {_minute(e['readyAt'])} unless the patient's key cancels"
        add(e, "RECOVERY STARTED", patient, e["newController"], detail, first=True)
    for e in logs(_RECOVERY, "RecoveryCancelled"):
        add(e, "recovery cancelled", e["by"], patient, "")
    for e in logs(_RECOVERY, "FreezeApproved"):
        add(e, "freeze approved", e["guardian"], patient, f"vote {e['approvals']}")
    for e in logs(_PROVIDERS, "PatientFrozen"):
        add(e, "PATIENT FROZEN", e["by"], patient, "nobody acts for the patient", first=True)
    for e in logs(_PROVIDERS, "PatientRecovered"):
        detail = f"controlled by {e['newController']} (was {e['previousController']})"
        add(e, "PATIENT RECOVERED", e["newController"], patient, detail, first=True)
    for e in logs(_RECOVERY, "RecoveryKeysDelivered"):
        detail = "envelope digest 0x" + e["envelopeDigest"].hex()[:12]
        add(e, "recovery keys delivered", e["by"], e["controller"], detail)


def render_trail(entries: list[TrailEntry], fmt: str) -> str:
    """Render an access trail as an aligned table, JSON or CSV."""
    rows = documents.to_data(entries)
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(TrailEntry.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if not entries:
        return "no events"
    table = [("time (UTC)", "event", "by", "subject", "detail")] + [
        (e.time, e.event, e.actor, _short(e.subject), _one_line(e.detail)) for e in entries
    ]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in table
    )


def _second(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _version(previous: bytes | None) -> str:
    """What a write was: a new record, or a new version of another."""
    return "new version of 0x" + previous.hex()[:12] if previous and any(previous) else "new record"


def _minute(seconds: int) -> str:
    """A time argument of an event (seconds), to the minute."""
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%d %H:%M")


def _one_line(text: str) -> str:
    """Show control characters (a reason is anyone's calldata) so no event forges a line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short(text: str) -> str:
    return text if len(text) <= 42 else text[:18] + "..." + text[-6:]
