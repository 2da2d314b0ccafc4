"""The growth section of ``medledger bench``: its levels, its flatness ratios, and a quick run
end to end (filler patients registered, single and batched series measured, the devnet
watched, the report written).

Measured figures are never asserted; what is tested is that the section measures, judges and
reports what it says it does."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from medledger.benchmarks import growth

if TYPE_CHECKING:
    from pathlib import Path


def _row(series: str, on_chain: int, operation: str, latency_ms: float | None) -> dict[str, Any]:
    return {"series": series, "on_chain": on_chain, "operation": operation, "gas": None,
            "latency_ms": latency_ms}  # fmt: skip


def test_full_levels_reach_100_000_single_and_1_000_000_batched_records() -> None:
    single, batched = growth.levels(quick=False, up_to=None)
    assert single == [1_000, 10_000, 100_000]
    assert batched == [1_000, 10_000, 100_000, 1_000_000]
    assert growth.BATCH_FULL == 10_000


@pytest.mark.parametrize(
    ("up_to", "single", "batched"),
    [(None, [1_000, 10_000, 100_000], [1_000, 10_000, 100_000, 1_000_000]),
     (100_000, [1_000, 10_000, 100_000], [1_000, 10_000, 100_000]),
     (9_999, [1_000], [1_000]),
     (999, [], [])],
    ids=["uncapped", "capped-at-100k", "capped-below-10k", "capped-below-every-level"],
)  # fmt: skip
def test_max_on_chain_caps_both_series(
    up_to: int | None, single: list[int], batched: list[int]
) -> None:
    assert growth.levels(quick=False, up_to=up_to) == (single, batched)


@pytest.mark.parametrize(
    ("latencies", "ratios", "flagged"),
    [([10.0, 12.0, 12.1], [1.0, 1.2, 1.21], [False, False, True]),
     ([10.0, 9.0, 30.0], [1.0, 0.9, 3.0], [False, False, True]),
     ([10.0, None, 11.0], [1.0, None, 1.1], [False, False, False]),
     ([None, 10.0, 25.0], [None, 1.0, 2.5], [False, False, True])],
    ids=["limit-is-inclusive", "faster-is-fine", "missing-latency", "base-is-first-measured"],
)  # fmt: skip
def test_flatness_divides_by_the_first_level_and_flags_above_1_20(
    latencies: list[float | None], ratios: list[float | None], flagged: list[bool]
) -> None:
    rows = [_row("single", n, "read", ms) for n, ms in zip((1_000, 10_000, 100_000), latencies,
                                                            strict=True)]  # fmt: skip
    growth.flatness(list(reversed(rows)))  # the order rows come in does not matter
    assert [r["ratio"] for r in rows] == ratios
    assert [r["flagged"] for r in rows] == flagged


def test_flatness_keeps_series_and_operations_apart() -> None:
    rows = [
        _row("single", 1_000, "audit", 10.0), _row("single", 10_000, "audit", 20.0),
        _row("batched", 1_000, "audit", 40.0), _row("batched", 10_000, "audit", 44.0),
        _row("single", 10_000, "anchor", 5.0),
    ]  # fmt: skip
    growth.flatness(rows)
    assert [r["ratio"] for r in rows] == [1.0, 2.0, 1.0, 1.1, 1.0]
    assert [r["flagged"] for r in rows] == [False, True, False, False, False]


@pytest.mark.slow  # runs in `make test`; a devnet filled with a few thousand records (~20 s)
def test_quick_growth_run_measures_both_series_and_reports_flatness(
    tmp_path: Path, medledger
) -> None:
    out = tmp_path / "results"
    outcome = medledger("bench", "--quick", "--only", "growth", "--runs", "1", "--out", str(out))
    assert outcome.exit_code == 0, outcome.stderr
    results = json.loads((out / "latest.json").read_text())
    assert "errors" not in results, results.get("errors")
    section = results["growth"]
    single, batched = growth.levels(quick=True, up_to=None)
    measured = {(r["series"], r["on_chain"], r["operation"]) for r in section["rows"]}
    assert measured == {
        *(("single", n, op) for n in single
          for op in ("anchor", "grant", "hasAccess", "read", "audit")),
        *(("batched", n, op) for n in batched for op in ("anchorBatch", "batch read", "audit")),
    }  # fmt: skip
    for row in section["rows"]:
        assert row["latency_ms"] > 0
        first = row["on_chain"] == (single if row["series"] == "single" else batched)[0]
        assert (row["ratio"] == 1.0) if first else row["ratio"] > 0
        assert row["flagged"] is (row["ratio"] > growth.FLAT_LIMIT)
    assert section["filler_patients"] == growth.PATIENTS_QUICK
    levels = [(fill["series"], fill["on_chain"]) for fill in section["levels"]]
    assert levels == [("single", n) for n in single] + [("batched", n) for n in batched]
    for fill in section["levels"]:
        assert fill["devnet_rss_mib"] > 0
        assert fill["fill_tx_per_second"] > 0 and fill["fill_records_per_second"] > 0
    md = (out / "latest.md").read_text()
    assert md.count("### Flatness") == 1 and "### The devnet while filling" in md
    assert (out / "growth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "growth: batched" in outcome.stdout  # each level said as it is reached
