"""Gas of each step of a claim's life, and the time from submission to payment, on Anvil.

    .venv/bin/python bench/claims_bench.py [--runs N]

Starts a devnet in a temporary MEDLEDGER_HOME (127.0.0.1 only), verifies an insurer and a
clinic, issues and funds a policy, and then, N times: the clinic anchors an encounter and
submits a small covered claim that the contract settles automatically, and withdraws (the
"automatic" path: submission to payment); and a larger claim that the insurer reviews, asks
information about, approves in part, that the patient disputes and a resolver settles. Gas is
read from receipts; times are wall-clock through the package (signing, IPFS, receipts
included). Writes ``bench/results/claims.json`` and ``claims.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    home = Path(tempfile.mkdtemp(prefix="medledger-claims-"))
    os.environ["MEDLEDGER_HOME"] = str(home)
    os.environ["MEDLEDGER_DEPLOYMENTS"] = str(home / "deployments")
    from medledger import access, claims, demo_claims, deployments, devnet, records, registry
    from medledger.accounts import dev_account as dev
    from medledger.categories import Category
    from medledger.chain import Chain
    from medledger.config import load_settings
    from medledger.stores import open_store

    settings = load_settings()
    chain = Chain(settings)
    store = open_store(settings)
    gas: dict[str, list[int]] = {}
    seconds: dict[str, list[float]] = {}

    def note(step: str, used: int) -> None:
        gas.setdefault(step, []).append(used)

    try:
        deployments.deploy(chain, dev(0), [dev(0).address], 1)
        insurer, clinic, patient, resolver = dev(10), dev(4), dev(5), dev(12)
        for account, kind in ((insurer, "insurer"), (clinic, "clinic")):
            registry.apply_institution(chain, account, registry.InstitutionKind.parse(kind), kind)
            registry.approve_institution(chain, dev(0), account.address)
        registry.register_patient(chain, patient)
        claims.add_resolver(chain, dev(0), resolver.address)
        manager = claims.manager(chain)
        policy = claims.issue_policy(
            chain,
            store,
            insurer,
            patient.address,
            coverage=Decimal("0.8"),
            deductible=Decimal(50),
            annual_limit=Decimal(1_000_000),
            auto_settle_limit=Decimal(500),
            codes=[claims.Code(demo_claims.CPT, c) for c in demo_claims.COVERED],
        )
        (issued,) = manager.events.PolicyIssued().get_logs(from_block=0)
        note(
            "issuePolicy",
            int(chain.w3.eth.get_transaction_receipt(issued["transactionHash"])["gasUsed"]),
        )
        token = claims.token_contract(chain)
        claims.mint(chain, insurer.address, Decimal(10_000_000))
        chain.transact("approve", insurer, token.functions.approve(manager.address, 2**255))
        receipt = chain.transact("fund", insurer, manager.functions.fundPolicy(policy.id, 10**12))
        note("fundPolicy", int(receipt["gasUsed"]))
        for cat in (Category.FINANCIAL, Category.ENCOUNTER):
            access.grant(
                chain,
                store,
                patient,
                patient.address,
                insurer.address,
                access.Scope(access.ScopeKind.CATEGORY, category=cat),
                access.Purpose.PAYMENT,
                timedelta(days=365),
            )
        terms = claims.read_terms(chain, store, patient, policy)

        def last_gas(claim_id: int, event: str) -> int:
            steps = [h for h in claims.claim_history(chain, claim_id) if h.event == event]
            return steps[-1].gas_used or 0

        for run in range(runs):
            now = access.chain_now(chain)
            (visit,) = records.anchor(
                chain,
                store,
                clinic,
                patient.address,
                [records.Draft(demo_claims.encounter("Patient/p", now), Category.ENCOUNTER)],
            )
            body = demo_claims.claim("Patient/p", "e", [("99213", Decimal(180))], now)
            started = time.perf_counter()
            small = claims.submit_claim(
                chain, store, clinic, policy.id, body, evidence=[visit.id], terms=terms
            )
            _, withdrawal = claims.withdraw(chain, clinic)
            seconds.setdefault("automatic: submission to withdrawal", []).append(
                time.perf_counter() - started
            )
            assert small.automatic, small.review
            submitted = last_gas(small.id, "submitted")
            note("submitClaim (settled automatically)", submitted)
            note("withdrawPayment", int(withdrawal["gasUsed"]))
            note(
                "automatic total: submitClaim + withdrawPayment",
                submitted + int(withdrawal["gasUsed"]),
            )
            if run == 0:
                note(
                    "  (first claim of the clinic: credit and balance slots start at zero)",
                    submitted + int(withdrawal["gasUsed"]),
                )

            big_body = demo_claims.claim(
                "Patient/p", "e", [("99214", Decimal(250)), ("71046", Decimal(1_000))], now
            )
            started = time.perf_counter()
            big = claims.submit_claim(
                chain, store, clinic, policy.id, big_body, evidence=[visit.id], terms=terms
            )
            note("submitClaim (left for review)", last_gas(big.id, "submitted"))
            claims.request_info(chain, insurer, big.id, claims.ReasonCode.DOCUMENTATION_MISSING)
            note("requestInfo", last_gas(big.id, "information requested"))
            claims.provide_info(chain, store, clinic, big.id, [visit.id])
            note("provideInfo (1 record)", last_gas(big.id, "information provided"))
            claims.review(chain, store, insurer, big.id)
            claims.approve(chain, insurer, big.id, Decimal(500))
            note("approveClaim (in part)", last_gas(big.id, "approved"))
            claims.dispute(chain, patient, big.id, claims.ReasonCode.AMOUNT_DISPUTED)
            note("disputeClaim", last_gas(big.id, "disputed"))
            claims.resolve(chain, resolver, big.id, Decimal(100))
            note("resolveDispute", last_gas(big.id, "dispute resolved"))
            claims.withdraw(chain, clinic)
            seconds.setdefault("reviewed: submission to withdrawal (7 transactions)", []).append(
                time.perf_counter() - started
            )
            full = claims.submit_claim(
                chain, store, clinic, policy.id, big_body, evidence=[visit.id], terms=terms
            )
            claims.approve(chain, insurer, full.id)
            note("approveClaim (in full)", last_gas(full.id, "approved"))
            denied = claims.submit_claim(
                chain, store, clinic, policy.id, big_body, evidence=[visit.id], terms=terms
            )
            claims.deny(chain, insurer, denied.id, claims.ReasonCode.NOT_COVERED)
            note("denyClaim", last_gas(denied.id, "denied"))
            claims.withdraw(chain, clinic)
    finally:
        devnet.stop(settings)

    results = {
        "runs": runs,
        "gas": {
            k: {"median": int(statistics.median(v)), "min": min(v), "max": max(v)}
            for k, v in gas.items()
        },
        "seconds": {
            k: {"median": round(statistics.median(v), 3), "max": round(max(v), 3)}
            for k, v in seconds.items()
        },
        "machine": f"{os.cpu_count()} cores; Anvil (instant mining), embedded IPFS store",
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "claims.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| step | gas (median) | min | max |", "|---|---:|---:|---:|"]
    lines += [
        f"| {k} | {v['median']:,} | {v['min']:,} | {v['max']:,} |"
        for k, v in results["gas"].items()
    ]
    lines += ["", "| path | seconds (median) | max |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['median']} | {v['max']} |" for k, v in results["seconds"].items()]
    (out / "claims.md").write_text(
        f"# Claims on Anvil ({runs} runs, `bench/claims_bench.py`)\n\n" + "\n".join(lines) + "\n"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
