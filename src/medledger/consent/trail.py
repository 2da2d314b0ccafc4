"""A patient's audit trail, rebuilt from chain events alone.

Writes (``RecordAnchored``), grants, revocations, key deliveries, delegate changes, erasures,
logged reads and emergency openings are all events, so the audit needs no server and cannot be
edited. Emergency openings are listed first, whatever their time: they are the entries a
patient most needs to see.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address

from medledger.chain import deployments
from medledger.consent import Purpose, Scope, consent_contract

if TYPE_CHECKING:
    from medledger.chain import Chain

FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class Entry:
    """One line of the audit."""

    time: str
    block: int
    event: str
    actor: str
    subject: str
    detail: str


def trail(chain: Chain, patient: str) -> list[Entry]:
    """Every event about a patient: emergency openings first, then oldest to newest."""
    patient = to_checksum_address(patient)
    recorded = deployments.require(chain)
    registry = deployments.contract(chain, "RecordRegistry")
    consent = consent_contract(chain)
    start = recorded.contracts["RecordRegistry"].block
    by_patient = {"patient": patient}
    entries: list[tuple[int, int, Entry]] = []

    def add(
        event: Any, name: str, actor: str, subject: str, detail: str, first: bool = False
    ) -> None:
        when = chain.block_time(int(event["blockNumber"])).strftime("%Y-%m-%d %H:%M:%S")
        entry = Entry(when, int(event["blockNumber"]), name, actor, subject, detail)
        entries.append(
            (0 if first else 1, int(event["blockNumber"]) * 10_000 + event["logIndex"], entry)
        )

    def logs(contract: Any, name: str, filters: dict[str, Any]) -> list[Any]:
        return list(
            getattr(contract.events, name)().get_logs(from_block=start, argument_filters=filters)
        )

    providers = deployments.contract(chain, "ProviderRegistry")
    for e in logs(consent, "EmergencyAccessOpened", by_patient):
        a = e["args"]
        detail = f"by {a['institution']} until {_ts(a['expiresAt'])}: {a['reason']}"
        add(e, "EMERGENCY ACCESS OPENED", a["opener"], "all records", detail, first=True)
    for e in logs(consent, "EmergencyAccessClosed", by_patient):
        a = e["args"]
        add(e, "emergency access closed", a["by"], a["institution"], "", first=True)
    for e in logs(providers, "CareAuthorized", by_patient):
        a = e["args"]
        until = "until revoked" if a["until"] >= 2**40 - 1 else f"until {_ts(a['until'])}"
        add(e, "care relationship opened", a["by"], a["institution"], f"may write records {until}")
    for e in logs(providers, "CareRevoked", by_patient):
        a = e["args"]
        add(e, "care relationship ended", a["by"], a["institution"], "")
    for contract, what in ((providers, "care requests"), (consent, "grants")):
        for e in logs(contract, "SignaturesCancelled", by_patient):
            a = e["args"]
            detail = f"signed {what} with nonce {a['nonce']}"
            add(e, "signatures cancelled", a["by"], patient, detail)
    for e in logs(registry, "RecordAnchored", by_patient):
        a = e["args"]
        what = (
            "new version of 0x" + bytes(a["previous"]).hex()[:12]
            if any(a["previous"])
            else "new record"
        )
        add(e, "record anchored", a["issuer"], "0x" + bytes(a["id"]).hex(), what)
    for e in logs(consent, "AccessGranted", by_patient):
        a = e["args"]
        scope = Scope.from_chain(a["scopeKind"], bytes(a["scope"])).label
        add(e, "access granted", a["grantor"], a["grantee"],
            f"{scope} for {Purpose(a['purpose']).label} until {_ts(a['expiresAt'])}")  # fmt: skip
    for e in logs(consent, "AccessRevoked", by_patient):
        a = e["args"]
        add(
            e,
            "access revoked",
            a["revoker"],
            a["grantee"],
            "scope 0x" + bytes(a["scopeKey"]).hex()[:12],
        )
    for e in logs(consent, "KeysDelivered", by_patient):
        a = e["args"]
        add(
            e,
            "keys delivered",
            a["deliverer"],
            a["grantee"],
            "envelope digest 0x" + bytes(a["envelopeDigest"]).hex()[:12],
        )
    for e in logs(consent, "RecordAccessed", by_patient):
        a = e["args"]
        add(e, "record read", a["reader"], "0x" + bytes(a["id"]).hex(), "logged by the reader")
    for e in logs(consent, "RecordErased", by_patient):
        a = e["args"]
        add(
            e,
            "record erased",
            a["by"],
            "0x" + bytes(a["id"]).hex(),
            "keys destroyed, body unpinned",
        )
    for e in logs(providers, "DelegateChanged", by_patient):
        a = e["args"]
        add(e, "delegate " + ("added" if a["allowed"] else "removed"), patient, a["delegate"], "")
    entries.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in entries]


def render(entries: list[Entry], fmt: str) -> str:
    """Render the audit as an aligned table, JSON or CSV."""
    if fmt == "json":
        return json.dumps([asdict(e) for e in entries], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(Entry.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(e) for e in entries)
        return out.getvalue().rstrip("\n")
    if not entries:
        return "no events"
    rows = [("time (UTC)", "event", "by", "subject", "detail")] + [
        (e.time, e.event, e.actor, _short(e.subject), _one_line(e.detail)) for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    )


def _ts(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%d %H:%M")


def _one_line(text: str) -> str:
    """Show control characters (a reason is anyone's calldata) so no event forges a line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short(text: str) -> str:
    return text if len(text) <= 42 else text[:18] + "..." + text[-6:]
