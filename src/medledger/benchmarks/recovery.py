"""Recovery of a patient with many records and grants, end to end on a devnet.

The world (not timed): the hospital wrote ``records`` records for the patient (one anchoring
call: the bodies sealed for the patient and the hospital), the patient granted ``grants``
grantees access to all of them (each grant delivers the keys in a key envelope), and named
three guardians, two of which recover, with the shortest delay.

Timed, step by step: two guardians approve the move to a new key; the delay passes (the chain
clock is moved, the waiting itself is policy, not work, and is not counted); a guardian
completes; the new key publishes its encryption key; the hospital re-wraps the keys of every
record for it (:func:`medledger.consent.recovery_keys.deliver_recovery_keys`); the new key finds
the key of every record and opens one body; every grantee still has access on chain. Nothing
moves per record or per grant on chain (identity continuity), so the chain part stays flat and
the cost is the key envelope's sealing and opening.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medledger.benchmarks.harness import World

TARGET_SECONDS = 30.0
GUARDIANS = (1, 2, 18)
GRANTEES = tuple(range(8, 18))  # dev:8..17, registered here as key holders
NEW_KEY = 19


def measure(world: World, records_count: int = 1000, grants: int = 10) -> dict[str, Any]:
    """Seconds per step of one recovery, and whether the total met the 30 s target."""
    from medledger import consent, providers, records
    from medledger.accounts import dev_account
    from medledger.categories import Category
    from medledger.consent import envelopes
    from medledger.consent.recovery_keys import deliver_recovery_keys
    from medledger.providers import recovery

    chain, patient, hospital = world.chain, world.patient, world.hospital
    store = world.fresh_store()
    drafts = [
        records.Draft(json.dumps({"resourceType": "Observation", "id": f"b{i}"}).encode(),
                      Category.LAB)
        for i in range(records_count)
    ]  # fmt: skip
    written = records.anchor(chain, store, hospital, patient.address, drafts)
    grantees = [dev_account(i) for i in GRANTEES[:grants]]
    for grantee in grantees:
        providers.register_patient(chain, grantee)
        consent.grant(
            chain, store, patient, patient.address, grantee.address,
            consent.Scope(consent.ScopeKind.ALL), consent.Purpose.TREATMENT, timedelta(days=30),
        )  # fmt: skip
    guardians = [dev_account(i) for i in GUARDIANS]
    recovery.set_guardians(chain, patient, [g.address for g in guardians], 2, recovery.MIN_DELAY)
    new = dev_account(NEW_KEY)
    steps: dict[str, float] = {}

    def timed(name: str, action: Any) -> Any:
        started = time.perf_counter()
        result = action()
        steps[name] = time.perf_counter() - started
        return result

    timed("approvals (2 guardians)", lambda: [
        recovery.approve_recovery(chain, g, patient.address, new.address) for g in guardians[:2]
    ])  # fmt: skip
    chain.request("evm_increaseTime", [int(recovery.MIN_DELAY.total_seconds()) + 1])
    chain.request("evm_mine", [])
    timed("completion", lambda: recovery.complete_recovery(chain, guardians[2], patient.address))
    timed("new key published", lambda: providers.publish_key(chain, new))
    _, delivered = timed(
        "keys re-wrapped by the hospital",
        lambda: deliver_recovery_keys(chain, store, hospital, patient.address),
    )

    def every_key() -> int:
        ring = envelopes.Keyring(chain, store, new, None)
        for record in written:
            envelopes.secret_of(chain, store, new, record, ring)
        consent.read(chain, store, new, written[0].id, log=False)
        return len(written)

    opened = timed("new key finds every record key", every_key)
    manager = consent.consent_contract(chain)
    still = timed("grantees still have access", lambda: all(
        manager.functions.hasAccess(g.address, written[-1].id).call() for g in grantees
    ))  # fmt: skip
    total = sum(steps.values())
    return {
        "records": len(written),
        "grants": len(grantees),
        "keys_delivered": delivered,
        "keys_opened": opened,
        "grantees_still_read": bool(still),
        "steps_seconds": {k: round(v, 3) for k, v in steps.items()},
        "total_seconds": round(total, 3),
        "target_seconds": TARGET_SECONDS,
        "met": total <= TARGET_SECONDS and delivered == len(written) and bool(still),
    }


def main() -> None:
    """Run the measurement on a fresh devnet and print it as JSON."""
    from medledger.benchmarks.harness import open_world

    with open_world() as world:
        print(json.dumps(measure(world), indent=2))


if __name__ == "__main__":
    main()
