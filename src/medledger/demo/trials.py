"""The demo's clinical-trial part: a registered study, signed consent, data (which freezes the
outcome definitions), an amendment with re-consent, a cancelled signature, a withdrawal and the
audit, which passes and then fails on an altered body.

Participants are pseudonymous study accounts (devnet accounts 14 and 15 here, standing for the
fresh keys real participants make); they never send a transaction: the site submits their
signed consent, anyone submits a signed withdrawal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from medledger import providers, trials
from medledger.accounts import dev_account
from medledger.errors import MedLedgerError
from medledger.ipfs.local import tamper_with_block

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

SPONSOR, MONITOR, PARTICIPANTS = 11, 13, (14, 15)
OBJECTIVE = "http://terminology.hl7.org/CodeSystem/research-study-objective-type"


def protocol(title: str, visits: list[str]) -> bytes:
    """The study's FHIR R4 ResearchStudy: title, visits in the description, objectives."""
    return json.dumps(
        {
            "resourceType": "ResearchStudy",
            "status": "active",
            "title": title,
            "description": "Visits: " + ", ".join(visits),
            "phase": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/research-study-phase",
                        "code": "phase-2",
                    }
                ]
            },
            "objective": [
                {
                    "name": "Change in LDL cholesterol at week 12",
                    "type": {"coding": [{"system": OBJECTIVE, "code": "primary"}]},
                },
                {
                    "name": "Adverse events to week 12",
                    "type": {"coding": [{"system": OBJECTIVE, "code": "secondary"}]},
                },
            ],
        },
        indent=2,
    ).encode()


def ldl(value: float) -> bytes:
    """An LDL cholesterol Observation (LOINC 2089-1)."""
    return json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "2089-1", "display": "LDL cholesterol"}
                ]
            },
            "valueQuantity": {
                "value": value,
                "unit": "mg/dL",
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
        }
    ).encode()


def run(chain: Chain, store: BlockStore, site: Signer, verify: Any) -> None:
    """Print the trial walk-through (``verify`` is the demo's institution verifier)."""
    say = click.echo
    sponsor = dev_account(SPONSOR)
    kind = providers.InstitutionKind.RESEARCH_SPONSOR
    say(f"  Northwind Research: {verify(chain, sponsor, kind, 'Northwind Research')}")
    study = trials.register_study(
        chain,
        store,
        sponsor,
        protocol("LDL-lowering dose study", ["baseline", "week-4"]),
        [site.address],
    )
    # The monitor is independent of the sponsor (the sponsor and its practitioners cannot be
    # monitors): a data monitoring board, an institution of its own with a published key.
    monitor = dev_account(MONITOR)
    say(f"  monitoring board: {verify(chain, monitor, kind, 'Independent Monitoring Board')}")
    trials.set_monitor(chain, sponsor, study.id, monitor.address)
    say(
        f"  study {study.id} registered: protocol v1 and its outcome hashes fixed before "
        f"anyone enrols; site {site.address[:10]}..., monitor {monitor.address[:10]}..."
    )

    first, second = (dev_account(i) for i in PARTICIPANTS)
    for p in (first, second):
        trials.submit_consent(chain, site, trials.sign_consent(chain, p, study.id, site.address))
    say("  two participants sign consent (EIP-712) with study-only addresses; the site submits")

    baseline = trials.submit_data(
        chain, store, site, study.id, first.address, "baseline", [ldl(162.0)]
    )
    batch = trials.submit_data(
        chain,
        store,
        site,
        study.id,
        second.address,
        "baseline",
        [ldl(171.0), ldl(169.5), ldl(170.2)],
        batch=True,
    )
    frozen = trials.protocol_version(chain, study.id, 1).outcomes_frozen_at
    if frozen is None:
        raise MedLedgerError("the first consent did not freeze version 1's outcome definitions")
    say(
        f"  baseline data: 1 body ({baseline.gas_used:,} gas) and a batch of 3 "
        f"({batch.gas_used:,} gas) in a positional tree whose declared count binds; v1's "
        f"outcome definitions are frozen since the first consent ({frozen:%H:%M:%S}Z)"
    )

    trials.amend(
        chain,
        store,
        sponsor,
        study.id,
        protocol("LDL-lowering dose study", ["baseline", "week-4", "week-8 safety"]),
        requires_reconsent=True,
        reason="added a week-8 safety visit",
    )
    stale = trials.participation(chain, study.id, first.address)
    try:
        trials.submit_data(chain, store, site, study.id, first.address, "week-4", [ldl(140.0)])
        refused = "NOT REFUSED"
    except MedLedgerError as exc:
        refused = f"refused ({exc})"
    say(
        f"  amendment v2 requires re-consent: participant 1 is {stale.standing.value}; "
        f"week-4 data {refused}"
    )
    trials.submit_consent(chain, site, trials.sign_consent(chain, first, study.id, site.address))
    week4 = trials.submit_data(chain, store, site, study.id, first.address, "week-4", [ldl(139.5)])
    say(f"  participant 1 re-consents to v2; week-4 data accepted ({week4.gas_used:,} gas)")

    second_thoughts = trials.sign_withdrawal(chain, first, study.id)
    nonce = trials.cancel_signatures(chain, first, second_thoughts)
    try:
        trials.submit_withdrawal(chain, site, second_thoughts)
        cancelled = "NOT REFUSED"
    except MedLedgerError as exc:
        cancelled = f"refused ({exc})"
    say(
        f"  participant 1 signs a withdrawal, thinks again and cancels it (nonce {nonce}); "
        f"submitting it: {cancelled}"
    )
    if cancelled == "NOT REFUSED":
        raise MedLedgerError("a cancelled signed withdrawal was accepted")

    trials.submit_withdrawal(chain, site, trials.sign_withdrawal(chain, second, study.id))
    say("  participant 2 withdraws (signed, relayed by the site): no more data is accepted")
    opened = trials.read_data(chain, store, first, study.id, week4.items[0].id)
    value = json.loads(opened)["valueQuantity"]["value"]
    say(f"  participant 1 reads their own week-4 result: {value} mg/dL")

    report = trials.audit(chain, store, study.id, reader=monitor)
    say(
        f"  audit: {'passes' if report.ok else 'FAILS'}: "
        + "; ".join(f"{c.rule} ({c.checked})" for c in report.checks)
    )
    if not report.ok:
        raise MedLedgerError("the trial audit failed: " + "; ".join(report.violations))

    target = week4.items[0]
    original = store.get_block(target.cid)
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01
    tamper_with_block(store, target.cid, bytes(altered))  # what someone with disk access could do
    try:
        tampered = trials.audit(chain, store, study.id)
    finally:
        tamper_with_block(store, target.cid, original)
    named = [v for v in tampered.violations if target.id.hex() in v]
    say(f"  after altering one stored body the audit {'FAILS' if not tampered.ok else 'PASSES'}:")
    for line in named[:2] or tampered.violations[:2]:
        say(f"    {line[:150]}")
    if tampered.ok or not named:
        raise MedLedgerError("the audit did not name the altered trial data body")
    say(f"  try: medledger trial audit {study.id}    medledger trial show {study.id}")
