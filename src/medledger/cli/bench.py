"""``medledger bench``: the measurements of :mod:`medledger.benchmarks`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("bench")
@click.option("--quick", is_flag=True, help="A run of a few minutes (smaller counts, 1 run each).")
@click.option(
    "--only", "sections", multiple=True,
    type=click.Choice(["gas", "throughput", "durability", "read_path", "growth", "startup",
                       "gateway"]),
    help="Run only this section (repeatable).",
)  # fmt: skip
@click.option("--runs", type=click.IntRange(1, 20), help="Repetitions per figure (median).")
@click.option(
    "--max-on-chain", "up_to", type=click.IntRange(100), help="Stop growth at this many records."
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench/results"),
    show_default=True, help="Where latest.json, latest.md and the plots go.",
)  # fmt: skip
def bench(
    quick: bool, sections: tuple[str, ...], runs: int | None, up_to: int | None, out: Path
) -> None:
    """Measure gas, anchoring throughput, the read path, growth, start-up and the FHIR gateway
    on fresh devnets."""
    from medledger import benchmarks
    from medledger.errors import MedLedgerError

    results = benchmarks.run(quick, sections or benchmarks.SECTIONS, runs, click.echo, up_to)
    for path in benchmarks.write(results, out):
        click.echo(f"wrote {path}")
    checked = [t for t in results["targets"] if t["met"] is not None]
    met = sum(1 for t in checked if t["met"])
    click.echo(f"targets met: {met} of {len(checked)} measured")
    if results.get("errors"):
        raise MedLedgerError(f"bench sections failed: {', '.join(results['errors'])}")
