"""``medledger bench``: gas, throughput, read path, growth and start-up, measured side by side.

Each section runs on its own fresh devnet (127.0.0.1) in a temporary home. Results go to
``latest.json``, ``latest.md`` and PNG plots (see :mod:`medledger.benchmarks.report`); the
targets of issue #6 are checked against what was measured, never asserted in tests.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

__all__ = ["SECTIONS", "run", "targets", "write"]

SECTIONS = ("gas", "throughput", "durability", "read_path", "growth", "startup", "gateway")


def run(
    quick: bool,
    sections: Sequence[str] = SECTIONS,
    runs: int | None = None,
    say: Callable[[str], None] = print,
    up_to: int | None = None,
) -> dict[str, Any]:
    """Measure ``sections`` and return the results document (a failed section is recorded in
    ``errors`` with its one-line reason; the others still run)."""
    from medledger import toolchain
    from medledger.benchmarks import durability, gas, gateway, growth, readpath, startup, throughput
    from medledger.benchmarks.harness import open_world
    from medledger.chain.artifacts import compiler_version

    runs = runs or (1 if quick else 3)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick,
            "cores": os.cpu_count(), "python": sys.version.split()[0],
            "platform": platform.platform(), "anvil": _anvil_version(toolchain),
            "solc": compiler_version(), "runs": runs, "growth_up_to": up_to,
        },
    }  # fmt: skip
    errors: dict[str, str] = {}
    for section in sections:
        say(f"bench: {section} ...")
        t0 = time.perf_counter()
        try:
            if section == "gas":
                results["gas"] = gas.measure(quick)
            elif section == "durability":
                results["durability"] = durability.measure(quick, runs)
            else:
                with open_world() as world:
                    if section == "throughput":
                        results["throughput"] = throughput.measure(world, quick, runs)
                    elif section == "read_path":
                        results["read_path"] = readpath.measure(world, quick, runs)
                    elif section == "growth":
                        results["growth"] = growth.measure(world, quick, runs, up_to, say)
                    elif section == "startup":
                        results["startup"] = startup.measure(world, runs)
                    elif section == "gateway":
                        results["gateway"] = gateway.measure(world, quick, runs)
            found = results.get(section)
            if isinstance(found, dict) and "profile" in found:
                results.setdefault("profile", {})[section] = found.pop("profile")
        except Exception as exc:
            errors[section] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            say(f"bench: {section} failed: {errors[section]}")
        say(f"bench: {section} took {time.perf_counter() - t0:.1f} s")
    if errors:
        results["errors"] = errors
    _ratios_to_node(results)
    results["targets"] = targets(results)
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _ratios_to_node(results: dict[str, Any]) -> None:
    """Give the durability section's rates as ratios to the node's limit the throughput section
    measured in the same run (None when it did not)."""
    from medledger.benchmarks import node

    limit = node.limit(results.get("throughput", {}).get("node"))
    for row in results.get("durability", {}).get("rows", []):
        rate = row.get("records_per_second")
        row["ratio_to_node"] = round(rate / limit, 2) if limit and rate else None


def _anvil_version(toolchain: Any) -> str | None:
    import subprocess

    try:
        out = subprocess.run([str(toolchain.anvil_path()), "--version"], capture_output=True,
                             text=True, check=False, timeout=30).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\d+\.\d+\.\d+", out)  # "anvil Version: 1.7.1-v1.7.1 ..."
    return found.group(0) if found else None


def _value(rows: list[dict[str, Any]], key: str, **match: Any) -> float | None:
    """``row[key]`` of the first row matching ``match`` (None when there is none)."""
    found = next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)
    return None if found is None or found.get(key) is None else float(found[key])


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of issues #6, #12, #15, #17 and #18 against the measured figures (a missing
    figure is not met)."""
    from medledger.benchmarks import node

    out: list[dict[str, Any]] = []

    def add(name: str, target: str, value: float | None, ok: Callable[[float], bool]) -> None:
        measured = "not measured" if value is None else f"{value:,.1f}".removesuffix(".0")
        met = None if value is None else ok(value)  # not measured: neither met nor missed
        out.append({"name": name, "target": target, "measured": measured, "met": met})

    gas_rows = results.get("gas", {}).get("rows", [])
    rows = results.get("throughput", {}).get("rows", [])
    paths = results.get("read_path", {}).get("rows", [])
    start = results.get("startup", {})
    small = [r for r in rows if r["size"] == 1024]
    batched = [r["records_per_second"] for r in small if r["mode"].startswith("batch")]
    ratios = [r["ratio_to_naive"] for r in small if r.get("ratio_to_naive")]
    ten_mb = 10 * 1024 * 1024
    def scenario(what: str) -> float | None:
        return _value(gas_rows, "gas", kind="scenario", function=what)

    add("single-record anchor gas", "<= 60,000", scenario("anchor: a new record"),
        lambda v: v <= 60_000)  # fmt: skip
    add("new version gas (#12)", "<= 70,000", scenario("anchor: a new version"),
        lambda v: v <= 70_000)  # fmt: skip
    add("batch gas per record at 1,000 (#12)", "<= 100",
        scenario("anchorBatch: gas per record at 1,000"), lambda v: v <= 100)
    add("grant gas, scope all (#12)", "<= 50,000", scenario("grant: scope all"),
        lambda v: v <= 50_000)  # fmt: skip
    add("grant gas, one record (#12)", "<= 50,000", scenario("grant: one record"),
        lambda v: v <= 50_000)  # fmt: skip
    add("automatic claim, submission to payment (#12)", "<= 250,000",
        scenario("submitClaim: settled automatically, paid at once"),
        lambda v: v <= 250_000)  # fmt: skip
    add("identity attestation gas (#18)", "<= 80,000",
        _value(gas_rows, "gas", contract="IdentityRegistry", function="attest"),
        lambda v: v <= 80_000)  # fmt: skip
    plain = scenario("submitClaim: settled automatically, paid at once")
    checked = scenario(
        "submitClaim: settled automatically, paid at once, patient attestation required"
    )
    add("attestation check in a claim, extra gas (#18)", "<= 5,000",
        None if plain is None or checked is None else checked - plain,
        lambda v: v <= 5_000)  # fmt: skip
    open_study = scenario("consent: an enrolment")
    attested_study = scenario("consent: an enrolment, attested participants required")
    add("attestation check in an enrolment, extra gas (#18)", "<= 5,000",
        None if open_study is None or attested_study is None else attested_study - open_study,
        lambda v: v <= 5_000)  # fmt: skip
    add("prove one batched record (view, incl. 21,000)", "<= 30,000",
        _value(gas_rows, "gas", contract="RecordRegistry", function="verifyBatchRecord"),
        lambda v: v <= 30_000)  # fmt: skip
    add(
        "batch gas per record at 1,000",
        "<= 100",
        _value(rows, "gas_per_record", size=1024, mode="batch-1000"),
        lambda v: v <= 100,
    )
    limit = node.limit(results.get("throughput", {}).get("node"))
    half = f" or >= {limit / 2:,.0f} (half the node's limit)" if limit else ""
    add(
        "1 KB single-record anchoring, records/s (#15)",
        ">= 1,000" + half,
        _value(rows, "records_per_second", size=1024, mode="single"),
        lambda v: v >= 1_000 or (limit is not None and v >= limit / 2),
    )
    add("1 KB batched anchoring (best batch size), records/s", ">= 10,000",
        max(batched) if batched else None, lambda v: v >= 10_000)  # fmt: skip
    add("1 KB best mode vs the naive baseline, times", ">= 25",
        max(ratios) if ratios else None, lambda v: v >= 25)  # fmt: skip
    add(
        "10 MB encrypt-and-store, MB/s (#15)",
        ">= 300",
        _value(paths, "write_mb_per_s", size=ten_mb),
        lambda v: v >= 300,
    )
    add(
        "10 MB fetch-verify-decrypt, MB/s (#15)",
        ">= 300",
        _value(paths, "read_mb_per_s", size=ten_mb),
        lambda v: v >= 300,
    )
    add("medledger --help, s (#15)", "< 0.3", start.get("help_seconds"), lambda v: v < 0.3)
    add("one medledger read, s (#15)", "< 1.0", start.get("read_seconds"), lambda v: v < 1.0)
    served = results.get("gateway", {})
    fhir_rows = served.get("rows", [])
    add("gateway: first search page of 100, ms (#17)", "< 300",
        _value(fhir_rows, "median_ms", measurement="search: first page of 100 (institution)"),
        lambda v: v < 300)  # fmt: skip
    add("gateway: read of one record, ms (#17)", "< 50",
        _value(fhir_rows, "median_ms", measurement="read one record (institution)"),
        lambda v: v < 50)  # fmt: skip
    # Against the package call `medledger anchor --batch` makes, not the command's wall time:
    # the process start-up (about a second) would flatter the gateway (both are reported).
    add("gateway: POST of 100 vs anchor --batch's package call, records/s ratio (#17)",
        ">= 0.8", served.get("post_vs_anchor_package"), lambda v: v >= 0.8)  # fmt: skip
    return out


def write(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write latest.json, latest.md and the plots; return the files written."""
    from medledger.benchmarks.report import write_report

    return write_report(results, out_dir)
