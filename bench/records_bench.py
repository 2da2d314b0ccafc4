"""Record-path figures: anchoring throughput and gas on real FHIR, 10 MB seal/store/read speed,
batch gas, hasAccess gas at 1 and 1,000 grants.

    .venv/bin/python bench/records_bench.py [--samples DIR] [--quick]

Runs on a fresh devnet in a temporary MEDLEDGER_HOME (127.0.0.1 only) and writes
``bench/results/records.json``. Medians over several runs where a run is short; the machine's
core count is recorded, and these machines are noisy, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=HERE.parents[1] / "shared" / "fhir-samples")
    parser.add_argument("--quick", action="store_true", help="demo data only, fewer repetitions")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="medledger-bench-"))
    os.environ["MEDLEDGER_HOME"] = str(home)
    os.environ["MEDLEDGER_DEPLOYMENTS"] = str(home / "deployments")

    from medledger import access, batches, deployments, devnet, fhir, records, registry
    from medledger.accounts import dev_account
    from medledger.categories import Category
    from medledger.chain import Chain
    from medledger.config import load_settings
    from medledger.stores import open_store

    settings = load_settings()
    chain = Chain(settings)
    results: dict[str, object] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        deployments.deploy(chain, dev_account(0))
        hospital, patient = dev_account(3), dev_account(5)
        registry.apply_institution(chain, hospital, registry.InstitutionKind.HOSPITAL, "Bench")
        registry.approve_institution(chain, dev_account(0), hospital.address)
        registry.register_patient(chain, patient)
        store = open_store(settings)

        # 1. Anchoring the sample set, one transaction per record (FHIR load included).
        folder = args.samples if args.samples.is_dir() and not args.quick else None
        files = sorted(folder.glob("*.json")) if folder else sorted(
            (HERE.parent / "src/medledger/demo_data").glob("*.json")
        )
        started = time.perf_counter()
        anchored: list[records.Record] = []
        gas = 0
        for file in files:
            drafts = [records.Draft(d.body, d.category) for d in fhir.load(file.read_bytes(), file.name).drafts]
            batch = records.anchor(chain, store, hospital, patient.address, drafts)
            anchored.extend(batch)
            gas += sum(
                int(chain.w3.eth.get_transaction_receipt(r.transaction_hash)["gasUsed"]) for r in batch
            )
        elapsed = time.perf_counter() - started
        results["sample_set"] = {
            "files": len(files), "records": len(anchored), "seconds": round(elapsed, 2),
            "records_per_second": round(len(anchored) / elapsed, 1),
            "gas_per_record": round(gas / len(anchored)),
        }  # fmt: skip

        # 2. 10 MB body: seal + store, and fetch + verify + decrypt.
        from medledger import crypto

        body = os.urandom(10 * 1024 * 1024)
        seal_runs, read_runs = [], []
        for _ in range(2 if args.quick else 5):
            t0 = time.perf_counter()
            secret = crypto.BodySecret.generate()
            sealed = crypto.seal(body, b"bench", [crypto.public_key(patient.key)], secret)
            cid = store.add_bytes(sealed)
            t1 = time.perf_counter()
            back = crypto.open_sealed(store.cat(cid), b"bench", crypto.secret_for(store.cat(cid), patient.key))
            t2 = time.perf_counter()
            assert back == body
            seal_runs.append(t1 - t0)
            read_runs.append(t2 - t1)
        mb = len(body) / 1e6
        results["ten_mb"] = {
            "encrypt_and_store_mb_per_s": round(mb / statistics.median(seal_runs), 1),
            "fetch_verify_decrypt_mb_per_s": round(mb / statistics.median(read_runs), 1),
        }

        # 3. A batch of 1,000 records in one transaction.
        small = os.urandom(1000)
        entries = [batches.Entry(patient.address, records.Draft(small, Category.VITALS)) for _ in range(1000)]
        t0 = time.perf_counter()
        batch = batches.anchor_batch(chain, store, hospital, entries)
        results["batch_1000"] = {
            "gas": batch.gas_used, "gas_per_record": round(batch.gas_used / 1000, 1),
            "seconds": round(time.perf_counter() - t0, 2),
        }  # fmt: skip

        # 4. hasAccess as a view with 1 and 1,000 grants given by the patient.
        consent = deployments.contract(chain, "ConsentManager")
        reader = dev_account(7)
        registry.register_patient(chain, reader)
        target = anchored[0]
        access.grant(chain, store, patient, patient.address, reader.address,
                     access.Scope(access.ScopeKind.RECORD, record=target.id),
                     access.Purpose.TREATMENT, timedelta(days=1))  # fmt: skip
        one = consent.functions.hasAccess(reader.address, target.id).estimate_gas()
        expires = int(time.time()) + 86400
        calls = [
            consent.functions.grant(patient.address, reader.address, 0, r.id, 1, expires, bytes(32))
            for r in anchored[1:1000]
        ]
        chain.transact_many("granting", patient, calls, 200_000)
        many = consent.functions.hasAccess(reader.address, target.id).estimate_gas()
        results["has_access_gas"] = {"grants_1": one, f"grants_{len(calls) + 1}": many}
    finally:
        devnet.stop(settings)
    out = HERE / "results" / "records.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
