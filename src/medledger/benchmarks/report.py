"""Render a benchmark results dictionary (see ``SCHEMA.md``) as JSON, markdown and PNG plots.

``write_report`` is the entry point: it writes ``latest.json`` (the results exactly as given),
``latest.md`` (a readable summary) and, when matplotlib is importable, ``throughput.png``,
``read_path.png`` and ``growth.png``. Sections missing from the results are left out of the
markdown and get no plot. Nothing here adds timestamps: row order is kept where the results
give it (gas rows, modes, operations), while dictionary keys and numeric axes (sizes, on-chain
counts) are sorted, so the same results always give the same files.
"""

from __future__ import annotations

import json
import pathlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DASH = "\u2013"  # en dash
VIEW_NOTE = "(view, estimate incl. 21,000)"
NOISE_NOTE = (
    "> These machines are shared and noisy: ratios within one run (such as *x naive*) mean "
    "more than absolute times."
)
THROUGHPUT_PNG = "throughput.png"
READ_PATH_PNG = "read_path.png"
GROWTH_PNG = "growth.png"


def write_report(results: dict[str, Any], out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Write ``latest.json``, ``latest.md`` and the PNG plots into ``out_dir``.

    The directory is created if missing. Plots are skipped (without error) when matplotlib
    cannot be imported or their section is missing or empty; the markdown links only the plots
    that were written. Returns the paths written: the JSON, the markdown, then the plots.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "latest.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    plots = write_plots(results, out)
    md_path = out / "latest.md"
    md_path.write_text(markdown(results, plots=[p.name for p in plots]), encoding="utf-8")
    return [json_path, md_path, *plots]


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """One table cell: ``None`` as a dash, pipes escaped, newlines flattened."""
    if value is None:
        return DASH
    return str(value).replace("|", "\\|").replace("\n", " ")


def _gas(value: Any) -> str:
    """A gas figure as a whole number with thousands separators."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _cell(value)
    return f"{round(value):,}"


def _num(value: Any) -> str:
    """A measured number with precision that suits its magnitude (``None`` as a dash)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _cell(value)
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    decimals = 0 if magnitude >= 1000 else 1 if magnitude >= 10 else 2
    return f"{value:,.{decimals}f}"


def human_size(size: Any) -> str:
    """A byte count in binary units: ``1024`` -> ``1 KiB``, ``10485760`` -> ``10 MiB``."""
    if isinstance(size, bool) or not isinstance(size, int | float):
        return _cell(size)
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table (header, separator, rows) as lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _rows(results: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The ``rows`` list of a section, or an empty list when the section is missing."""
    section = results.get(key)
    if not isinstance(section, dict):
        return []
    rows = section.get("rows") or []
    return [row for row in rows if isinstance(row, dict)]


def _ordered(values: Iterable[Any]) -> list[Any]:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def _sorted_numbers(values: Iterable[Any]) -> list[Any]:
    """Distinct values, numbers ascending, anything else after them by its text."""
    return sorted(_ordered(values), key=_number_key)


def _number_key(value: Any) -> tuple[int, float, str]:
    """Sort key: numbers ascending first, then anything else by its text."""
    return (0, float(value), "") if _is_number(value) else (1, 0.0, str(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def markdown(results: dict[str, Any], *, plots: Collection[str] = ()) -> str:
    """The results as a markdown document.

    ``plots`` names the plot files that exist next to the document (such as
    ``"throughput.png"``); only those are linked. Sections absent from ``results`` are left out.
    """
    lines = ["# MedLedger benchmark results", ""]
    meta = results.get("meta")
    if isinstance(meta, dict):
        lines += [_meta_line(meta), ""]
    lines += [NOISE_NOTE, ""]
    for key, render in _SECTIONS:
        if key in results and results[key] is not None:
            lines += render(results, set(plots))
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _meta_line(meta: dict[str, Any]) -> str:
    """One line with the run's date, mode, machine and tool versions, runs and duration."""
    quick = meta.get("quick")
    mode = DASH if quick is None else "quick" if quick else "full"
    parts = [
        f"date {_cell(meta.get('started'))}",
        mode,
        f"{_cell(meta.get('cores'))} cores",
        f"Python {_cell(meta.get('python'))}",
        f"Anvil {_cell(meta.get('anvil'))}",
        f"solc {_cell(meta.get('solc'))}",
        f"{_cell(meta.get('runs'))} runs",
        f"{_num(meta.get('seconds'))} s total",
    ]
    return "**Run:** " + " · ".join(parts)


def _image(name: str, plots: Collection[str]) -> list[str]:
    """A relative image link to ``name`` when that plot was produced."""
    return ["", f"![{name.removesuffix('.png')}]({name})"] if name in plots else []


def _targets_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    rows = [
        [
            _cell(t.get("name")),
            _cell(t.get("target")),
            _cell(t.get("measured")),
            DASH if t.get("met") is None else "yes" if t.get("met") else "**no**",
        ]
        for t in results.get("targets") or []
        if isinstance(t, dict)
    ]
    return ["## Targets", "", *_table(["target name", "target", "measured", "met"], rows)]


def _gas_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    rows = []
    for row in _rows(results, "gas"):
        note = row.get("note")
        if row.get("kind") == "view":
            note = f"{note} {VIEW_NOTE}" if note else VIEW_NOTE
        rows.append(
            [
                _cell(row.get("contract")),
                _cell(row.get("function")),
                _gas(row.get("gas")),
                _cell(note),
            ]
        )
    return ["## Gas", "", *_table(["contract", "function", "gas", "note"], rows)]


def _throughput_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    rows = _rows(results, "throughput")
    lines = ["## Throughput", *_node_lines(results)]
    header = ["mode", "records", "seconds", "records/s", "spread", "gas/record", "x naive",
              "x node limit"]  # fmt: skip
    for size in _sorted_numbers(row.get("size") for row in rows):
        body = [
            [
                _cell(row.get("mode")),
                _num(row.get("records")),
                _num(row.get("seconds")),
                _num(row.get("records_per_second")),
                _spread(row.get("spread")),
                _gas(row.get("gas_per_record")),
                _num(row.get("ratio_to_naive")),
                _num(row.get("ratio_to_node")),
            ]
            for row in rows
            if row.get("size") == size
        ]
        lines += ["", f"### {human_size(size)} bodies", "", *_table(header, body)]
    return lines + _image(THROUGHPUT_PNG, plots)


def _spread(value: Any) -> str:
    """A spread (slowest, fastest) as ``low-high``."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return DASH
    return f"{_num(value[0])}{DASH}{_num(value[1])}"


def _node_lines(results: dict[str, Any]) -> list[str]:
    node = results.get("throughput", {}).get("node")
    if not isinstance(node, dict):
        return []
    body = [
        [_cell(r.get("mode")), _num(r.get("transactions")), _num(r.get("tx_per_second")),
         _spread(r.get("spread"))]
        for r in node.get("rows", [])
    ]  # fmt: skip
    return [
        "", "### The node's limit", "",
        "Pre-signed `anchor` transactions sent to the same Anvil, nothing else done by the "
        "client (medians of the run's repetitions). *x node limit* below divides records/s "
        "by the *block per window* rate.", "",
        *_table(["mining", "transactions", "tx/s", "spread"], body),
    ]  # fmt: skip


def _read_path_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    rows = sorted(_rows(results, "read_path"), key=lambda row: _number_key(row.get("size")))
    header = ["size", "runs", "write ms", "write MB/s", "spread", "read ms (fetch+verify+decrypt)",
              "read MB/s", "spread"]  # fmt: skip
    body = [
        [
            human_size(row.get("size")),
            _num(row.get("runs")),
            _num(row.get("write_ms")),
            _num(row.get("write_mb_per_s")),
            _spread(row.get("write_spread")),
            _num(row.get("total_ms")),
            _num(row.get("read_mb_per_s")),
            _spread(row.get("read_spread")),
        ]
        for row in rows
    ]
    return ["## Read path", "", *_table(header, body), *_image(READ_PATH_PNG, plots)]


def _growth_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    rows = _rows(results, "growth")
    lines = ["## Growth"]
    for series in _ordered(_series(row) for row in rows):
        chosen = [row for row in rows if _series(row) == series]
        lines += ["", f"### {series.capitalize()} records: gas / latency ms", "",
                  *_growth_table(chosen, lambda r: f"{_gas(r.get('gas'))} / "
                                                   f"{_num(r.get('latency_ms'))}")]  # fmt: skip
    if any(_is_number(row.get("ratio")) for row in rows):
        limit = results["growth"].get("flat_limit")
        above = f" above {limit:.2f}" if _is_number(limit) else ""
        lines += ["", "### Flatness", "",
                  f"Latency over the same operation's at the series' first level; **bold**: "
                  f"flagged{above}.", ""]  # fmt: skip
        for series in _ordered(_series(row) for row in rows):
            chosen = [row for row in rows if _series(row) == series]
            lines += [f"{series.capitalize()} records:", "", *_growth_table(chosen, _ratio), ""]
        lines.pop()
    lines += _growth_levels(results)
    return lines + _image(GROWTH_PNG, plots)


def _series(row: dict[str, Any]) -> str:
    return str(row.get("series") or "single")


def _growth_table(rows: list[dict[str, Any]], cell: Callable[[dict[str, Any]], str]) -> list[str]:
    """One line per on-chain count, one column per operation."""
    operations = _ordered(row.get("operation") for row in rows)
    cells = {(row.get("on_chain"), row.get("operation")): row for row in rows}
    body = []
    for count in _sorted_numbers(row.get("on_chain") for row in rows):
        line = [_num(count)]
        for op in operations:
            row = cells.get((count, op))
            line.append(DASH if row is None else cell(row))
        body.append(line)
    return _table(["on-chain", *(_cell(op) for op in operations)], body)


def _ratio(row: dict[str, Any]) -> str:
    ratio = row.get("ratio")
    if not _is_number(ratio):
        return DASH
    return f"**{ratio:.2f}**" if row.get("flagged") else f"{ratio:.2f}"


def _growth_levels(results: dict[str, Any]) -> list[str]:
    """The devnet at each level: its block, memory and the rate it was filled at."""
    growth = results.get("growth")
    levels = growth.get("levels") if isinstance(growth, dict) else None
    if not levels:
        return []
    body = [
        [_cell(r.get("series")), _num(r.get("on_chain")), _num(r.get("block")),
         _num(r.get("fill_transactions")), _num(r.get("fill_tx_per_second")),
         _num(r.get("fill_records_per_second")), _num(r.get("devnet_rss_mib"))]
        for r in levels
        if isinstance(r, dict)
    ]  # fmt: skip
    header = ["series", "on-chain", "block", "fill transactions", "fill tx/s", "fill records/s",
              "devnet RSS MiB"]  # fmt: skip
    return ["", "### The devnet while filling", "", *_table(header, body)]


def _durability_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    durability = results.get("durability")
    if not isinstance(durability, dict):
        return ["## Durability", "", "not measured"]
    body = [
        [_cell(r["mode"]), _num(r["records"]), _num(r["records_per_second"]),
         _num(r["ratio_to_no_outbox"]), _num(r.get("ratio_to_node"))]
        for r in durability.get("rows", [])
    ]  # fmt: skip
    recovery = durability.get("recovery") or {}
    facts = [[_cell(key), _num(value)] for key, value in sorted(recovery.items())]
    return [
        "## Durability", "",
        "1 KiB records anchored one transaction each; ratio: time without the outbox / time.",
        "",
        *_table(["mode", "records", "records/s", "ratio", "x node limit"], body), "",
        "Recovery after Anvil is killed with transactions not yet in a snapshot:", "",
        *_table(["measurement", "value"], facts),
    ]  # fmt: skip


def _startup_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    startup = results.get("startup")
    items = sorted(startup.items()) if isinstance(startup, dict) else []
    body = [
        [_cell(key.removesuffix("_seconds")), _num(value),
         _spread(startup.get(key.replace("_seconds", "_spread")) if startup else None)]
        for key, value in items
        if key.endswith("_seconds")
    ]  # fmt: skip
    return ["## Start-up", "", *_table(["measurement", "seconds (median)", "spread"], body)]


def _gateway_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    served = results["gateway"]
    body = [
        [_cell(r.get("measurement")), _num(r.get("median_ms")),
         f"{_num(r['spread_ms'][0])}-{_num(r['spread_ms'][1])}" if r.get("spread_ms") else "-",
         _num(r.get("records_per_second")), _cell(r.get("runs"))]
        for r in _rows(results, "gateway")
    ]  # fmt: skip
    return [
        "## FHIR gateway", "",
        f"Over {_num(served.get('records'))} records of one patient; POST vs `medledger anchor "
        f"--batch`: {_num(served.get('post_vs_anchor_command'))}x the records/s (vs the package "
        f"call it makes: {_num(served.get('post_vs_anchor_package'))}x).", "",
        *_table(["measurement", "ms (median)", "spread", "records/s", "runs"], body),
        *[f"\nNot measured: {r['measurement']}: {r['error']}" for r in _rows(results, "gateway")
          if r.get("error")],
    ]  # fmt: skip


def _errors_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    errors = results.get("errors")
    items = sorted(errors.items()) if isinstance(errors, dict) else []
    body = [[_cell(section), _cell(message)] for section, message in items]
    return ["## Errors", "", *_table(["section", "error"], body)]


def _profile_section(results: dict[str, Any], plots: Collection[str]) -> list[str]:
    profile = results.get("profile")
    lines = ["## Profile"]
    for section, entries in sorted(profile.items()) if isinstance(profile, dict) else []:
        lines += ["", f"### {section}", ""]
        lines += [f"- {str(entry).replace(chr(10), ' ')}" for entry in entries or []]
    return lines


_SECTIONS: list[tuple[str, Callable[[dict[str, Any], Collection[str]], list[str]]]] = [
    ("targets", _targets_section),
    ("gas", _gas_section),
    ("throughput", _throughput_section),
    ("durability", _durability_section),
    ("read_path", _read_path_section),
    ("growth", _growth_section),
    ("startup", _startup_section),
    ("gateway", _gateway_section),
    ("errors", _errors_section),
    ("profile", _profile_section),
]


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def write_plots(results: dict[str, Any], out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Write the PNG plots whose sections have data; none at all without matplotlib.

    Returns the paths written, in the order throughput, read path, growth.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        return []
    written = []
    for name, draw in (
        (THROUGHPUT_PNG, _draw_throughput),
        (READ_PATH_PNG, _draw_read_path),
        (GROWTH_PNG, _draw_growth),
    ):
        figure = Figure(figsize=(10, 4.5), layout="constrained")
        if draw(results, figure):
            path = pathlib.Path(out_dir) / name
            figure.savefig(path, dpi=100, metadata={"Software": None})
            written.append(path)
    return written


def _points(rows: Iterable[dict[str, Any]], x: str, y: str) -> tuple[list[float], list[float]]:
    """The ``(x, y)`` pairs of rows where both are positive numbers, sorted by x."""
    pairs = sorted(
        (float(row[x]), float(row[y]))
        for row in rows
        if _is_number(row.get(x)) and _is_number(row.get(y)) and row[x] > 0 and row[y] > 0
    )
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _draw_throughput(results: dict[str, Any], figure: Figure) -> bool:
    """Grouped bars of records/s: one group per body size, one bar per mode, log y."""
    rows = [r for r in _rows(results, "throughput") if _positive(r.get("records_per_second"))]
    if not rows:
        return False
    sizes = _sorted_numbers(row.get("size") for row in rows)
    modes = _ordered(row.get("mode") for row in rows)
    width = 0.8 / len(modes)
    axes = figure.subplots()
    for index, mode in enumerate(modes):
        xs, heights = [], []
        for group, size in enumerate(sizes):
            for row in rows:
                if row.get("mode") == mode and row.get("size") == size:
                    xs.append(group - 0.4 + width * (index + 0.5))
                    heights.append(float(row["records_per_second"]))
        axes.bar(xs, heights, width=width, label=str(mode))
    axes.set_xticks(range(len(sizes)), [human_size(size) for size in sizes])
    axes.set_yscale("log")
    axes.set_xlabel("body size")
    axes.set_ylabel("records/s")
    axes.set_title("Throughput by mode")
    axes.legend()
    return True


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _draw_read_path(results: dict[str, Any], figure: Figure) -> bool:
    """Two panels against body size (log x): MB/s and latency, each with write and read."""
    rows = _rows(results, "read_path")
    panels = (
        ("MB/s", (("write", "write_mb_per_s"), ("read", "read_mb_per_s"))),
        ("latency ms", (("write", "write_ms"), ("read", "total_ms"))),
    )
    if not any(_points(rows, "size", key)[0] for _, series in panels for _, key in series):
        return False
    for axes, (ylabel, series) in zip(figure.subplots(1, 2), panels, strict=True):
        for label, key in series:
            xs, ys = _points(rows, "size", key)
            if xs:
                axes.plot(xs, ys, marker="o", label=label)
        _size_axis(axes, _sorted_numbers(r.get("size") for r in rows if _positive(r.get("size"))))
        axes.set_ylabel(ylabel)
        axes.set_title(f"Read path: {ylabel} by size")
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    return True


def _size_axis(axes: Axes, sizes: Sequence[Any]) -> None:
    """A log x axis with the body sizes as human-readable ticks."""
    axes.set_xscale("log")
    axes.set_xticks([float(s) for s in sizes], [human_size(s) for s in sizes])
    axes.minorticks_off()
    axes.set_xlabel("body size")


def _draw_growth(results: dict[str, Any], figure: Figure) -> bool:
    """Three panels against the on-chain count (log x): gas, latency and the latency ratio to
    the first level (the flat limit drawn), one line per operation and series."""
    rows = _rows(results, "growth")
    lines = _ordered((_series(row), row.get("operation")) for row in rows)
    panels = (("gas", "gas per operation"), ("latency_ms", "latency ms"),
              ("ratio", "latency / first level"))  # fmt: skip
    if not any(
        _points([r for r in rows if (_series(r), r.get("operation")) == line], "on_chain", key)[0]
        for line in lines
        for key, _ in panels
    ):
        return False
    for axes, (key, ylabel) in zip(figure.subplots(1, 3), panels, strict=True):
        for index, (series, op) in enumerate(lines):
            chosen = [r for r in rows if (_series(r), r.get("operation")) == (series, op)]
            xs, ys = _points(chosen, "on_chain", key)
            if xs:  # a fixed colour and style per line keeps the panels comparable
                label = str(op) if series == "single" else f"{op} ({series})"
                axes.plot(xs, ys, marker="o", label=label, color=f"C{index % 10}",
                          linestyle="-" if series == "single" else "--")  # fmt: skip
        limit = results["growth"].get("flat_limit")
        if key == "ratio" and _is_number(limit):
            axes.axhline(limit, color="grey", linestyle=":", label=f"flat limit {limit:.2f}")
        axes.set_xscale("log")
        axes.set_xlabel("records on chain")
        axes.set_ylabel(ylabel)
        axes.set_title(f"Growth: {ylabel}")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    return True
