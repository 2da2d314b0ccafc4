"""The benchmark report: a results dictionary (see benchmarks/SCHEMA.md) becomes latest.json,
latest.md and PNG plots; missing sections and a missing matplotlib are handled quietly."""

from __future__ import annotations

import copy
import json
import sys
from typing import TYPE_CHECKING, Any

import pytest

from medledger.benchmarks import report

if TYPE_CHECKING:
    from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = {"throughput.png", "read_path.png", "growth.png"}
KIB, MIB = 1024, 1024 * 1024
EN_DASH = "\u2013"  # how a missing value is shown


@pytest.fixture
def results() -> dict[str, Any]:
    """A small run with every section, a missed target and a few null values."""
    return {
        "meta": {
            "started": "2026-12-02T01:00:00+00:00",
            "quick": True,
            "cores": 2,
            "python": "3.11.9",
            "platform": "Linux-test",
            "anvil": "1.7.1",
            "solc": "0.8.30",
            "runs": 3,
            "seconds": 123.4,
        },
        "gas": {
            "rows": [
                {
                    "contract": "RecordRegistry",
                    "function": "anchor",
                    "gas": 57598,
                    "note": "single record",
                    "kind": "tx",
                },
                {
                    "contract": "BatchAnchor",
                    "function": "anchorBatch",
                    "gas": 1234567,
                    "note": "10,000 records",
                    "kind": "tx",
                },
                {
                    "contract": "AccessControl",
                    "function": "hasAccess",
                    "gas": 25310,
                    "note": "",
                    "kind": "view",
                },
            ]
        },
        "throughput": {
            "rows": [
                _throughput(size, mode, rate, ratio)
                for size in (KIB, 100 * KIB)
                for mode, rate, ratio in (
                    ("single", 40.0, 2.0),
                    ("batch-100", 800.0, 40.0),
                    ("naive", 20.0, None),
                )
            ]
        },
        "read_path": {
            "rows": [
                _read_path(size) for size in (10 * MIB, KIB, MIB, 100 * KIB)
            ]  # deliberately unsorted
        },
        "growth": {
            "rows": [
                {"on_chain": count, "operation": op, "gas": gas, "latency_ms": ms}
                for count in (100, 10_000)
                for op, gas, ms in (("anchor", 57598, 3.2), ("read", None, 1.5))
            ]
        },
        "startup": {"help_seconds": 0.17, "read_seconds": 1.2},
        "targets": [
            {
                "name": "single-record anchor gas",
                "target": "<= 60,000",
                "measured": "57,598",
                "met": True,
            },
            {"name": "batch read latency", "target": "<= 50 ms", "measured": "80 ms", "met": False},
        ],
        "errors": {"claims": "anvil exited with status 1"},
        "profile": {"throughput": ["anchor_batch: 1.20 s", "encrypt: 0.40 s"]},
    }


def _throughput(size: int, mode: str, rate: float, ratio: float | None) -> dict[str, Any]:
    return {
        "size": size,
        "mode": mode,
        "records": 500,
        "seconds": 500 / rate,
        "records_per_second": rate,
        "gas_per_record": 57598,
        "ratio_to_naive": ratio,
    }


def _read_path(size: int) -> dict[str, Any]:
    ms = 1 + size / MIB
    return {
        "size": size,
        "fetch_ms": ms / 2,
        "decrypt_ms": ms / 4,
        "total_ms": ms,
        "read_mb_per_s": size / MIB / (ms / 1000),
        "write_ms": 2 * ms,
        "write_mb_per_s": size / MIB / (2 * ms / 1000),
    }


def table_rows(md: str) -> list[list[str]]:
    """The cells of every markdown table row (separator rows excluded)."""
    rows = []
    for line in md.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def headings(md: str) -> list[str]:
    return [line.lstrip("#").strip() for line in md.splitlines() if line.startswith("## ")]


def row_starting(md: str, *first: str) -> list[str]:
    matches = [row for row in table_rows(md) if row[: len(first)] == list(first)]
    assert len(matches) == 1, f"expected one row starting {first}, found {matches}"
    return matches[0]


def test_json_round_trips_and_the_directory_is_created(results, tmp_path: Path) -> None:
    out = tmp_path / "bench" / "results"
    paths = report.write_report(results, out)

    latest = out / "latest.json"
    assert latest in paths
    assert (out / "latest.md") in paths
    text = latest.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == results


def test_written_markdown_is_the_rendered_document_and_is_deterministic(
    results, tmp_path: Path
) -> None:
    report.write_report(results, tmp_path / "a")
    report.write_report(copy.deepcopy(results), tmp_path / "b")

    first = (tmp_path / "a" / "latest.md").read_text(encoding="utf-8")
    assert first == (tmp_path / "b" / "latest.md").read_text(encoding="utf-8")
    assert first == report.markdown(results, plots=PLOTS)


def test_meta_line_and_noise_note(results) -> None:
    md = report.markdown(results)

    assert md.startswith("# ")
    meta_lines = [line for line in md.splitlines() if "2026-12-02" in line]
    assert len(meta_lines) == 1
    for fact in ("quick", "2 cores", "3.11.9", "1.7.1", "0.8.30", "3 runs", "123.4"):
        assert fact in meta_lines[0]
    assert "noisy" in md
    assert "ratios" in md

    results["meta"]["quick"] = False
    assert "full" in report.markdown(results)


def test_gas_rows_use_thousands_separators_and_mark_views(results) -> None:
    md = report.markdown(results)

    assert row_starting(md, "RecordRegistry", "anchor") == [
        "RecordRegistry",
        "anchor",
        "57,598",
        "single record",
    ]
    assert row_starting(md, "BatchAnchor", "anchorBatch")[2] == "1,234,567"
    view_note = row_starting(md, "AccessControl", "hasAccess")[3]
    assert "view" in view_note
    assert "21,000" in view_note
    assert "view" not in row_starting(md, "RecordRegistry", "anchor")[3]


def test_targets_show_whether_they_were_met(results) -> None:
    md = report.markdown(results)

    assert row_starting(md, "single-record anchor gas")[-1] == "yes"
    missed = row_starting(md, "batch read latency")
    assert missed[1:] == ["<= 50 ms", "80 ms", "**no**"]


def test_none_renders_as_a_dash(results) -> None:
    results["targets"][0]["measured"] = None
    md = report.markdown(results)

    assert row_starting(md, "single-record anchor gas")[2] == EN_DASH
    # The naive throughput row has no ratio to itself.
    naive_rows = [row for row in table_rows(md) if row[0] == "naive"]
    assert len(naive_rows) == 2  # one table per body size
    assert all(row[-1] == EN_DASH for row in naive_rows)
    # Reads cost no gas: the growth cells show a dash for gas, then the latency.
    growth_header = next(row for row in table_rows(md) if row[0] == "on-chain")
    read_column = next(i for i, name in enumerate(growth_header) if name.startswith("read"))
    gas, ms = row_starting(md, "10,000")[read_column].split(" / ")
    assert gas == EN_DASH
    assert float(ms) == 1.5


def test_throughput_has_one_table_per_body_size(results) -> None:
    md = report.markdown(results)

    mode_headers = [row for row in table_rows(md) if row[0] == "mode"]
    assert len(mode_headers) == 2
    assert mode_headers[0][-2:] == ["x naive", "x node limit"]
    assert md.index("1 KiB") < md.index("100 KiB")
    batch = [row for row in table_rows(md) if row[0] == "batch-100"]
    assert [row[1] for row in batch] == ["500", "500"]
    assert all(row[5] == "57,598" for row in batch)


def test_read_path_sizes_are_human_readable_and_sorted(results) -> None:
    md = report.markdown(results)

    sizes = [row[0] for row in table_rows(md) if row[0].endswith("iB")]
    assert sizes == ["1 KiB", "100 KiB", "1 MiB", "10 MiB"]
    header = next(row for row in table_rows(md) if row[0] == "size")
    assert "read ms (fetch+verify+decrypt)" in header


def test_human_size() -> None:
    assert report.human_size(512) == "512 B"
    assert report.human_size(1536) == "1.5 KiB"
    assert report.human_size(None) == EN_DASH


def test_missing_sections_get_no_heading(results) -> None:
    full = headings(report.markdown(results))
    assert full == [
        "Targets",
        "Gas",
        "Throughput",
        "Read path",
        "Growth",
        "Start-up",
        "Errors",
        "Profile",
    ]

    for key in ("growth", "errors", "profile"):
        del results[key]
    remaining = headings(report.markdown(results))
    assert "Growth" not in remaining
    assert "Errors" not in remaining
    assert "Profile" not in remaining
    assert "Gas" in remaining

    only_meta = headings(report.markdown({"meta": results["meta"]}))
    assert only_meta == []


def test_errors_and_profile_are_listed(results) -> None:
    md = report.markdown(results)

    assert row_starting(md, "claims") == ["claims", "anvil exited with status 1"]
    assert "- anchor_batch: 1.20 s" in md.splitlines()
    assert "- encrypt: 0.40 s" in md.splitlines()


def test_plots_are_real_pngs_linked_relatively(results, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    paths = report.write_report(results, tmp_path)

    pngs = {path.name: path for path in paths if path.suffix == ".png"}
    assert set(pngs) == PLOTS
    for path in pngs.values():
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE
        assert len(data) > 10_000, f"{path.name} looks empty ({len(data)} bytes)"
    md = (tmp_path / "latest.md").read_text(encoding="utf-8")
    for name in PLOTS:
        assert f"]({name})" in md


def test_plots_are_skipped_for_missing_or_empty_sections(results, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    del results["growth"]
    results["read_path"]["rows"] = []
    paths = report.write_report(results, tmp_path)

    assert {path.name for path in paths if path.suffix == ".png"} == {"throughput.png"}
    assert not (tmp_path / "growth.png").exists()
    md = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "](throughput.png)" in md
    assert "read_path.png" not in md
    assert "growth.png" not in md


def test_without_matplotlib_json_and_markdown_are_still_written(
    results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    paths = report.write_report(results, tmp_path)

    assert sorted(path.name for path in paths) == ["latest.json", "latest.md"]
    assert json.loads((tmp_path / "latest.json").read_text(encoding="utf-8")) == results
    md = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "## Gas" in md
    assert "![" not in md
    assert list(tmp_path.glob("*.png")) == []
