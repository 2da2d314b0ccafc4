"""Static analysis of MedLedger's contracts with Slither, gated by a triage file.

``make analyze`` runs ``python tools/analyze.py``. It compiles every deployable contract (the
``.sol`` files directly in ``contracts/``; mocks in ``contracts/test/`` and the baseline in
``contracts/bench/`` are left out) with the settings of ``ape-config.yaml``, through the offline
solc-js bridge that ``make install`` puts where py-solc-x looks. Slither's command line cannot
drive that bridge (it compiles with ``--combined-json``, which solc-js does not speak, and then
analyses nothing without failing), so this module uses its Python API on a crytic-compile
standard-JSON build instead.

Findings located only in ``node_modules`` (OpenZeppelin) are dropped. Every High or Medium
finding must be matched by an entry of the triage file (``analysis/slither-triage.yaml``), which
names it by detector, contract and function or element name (never by line, so that edits do
not break it) and says why it is acceptable; otherwise the exit code is 1. Entries that match
nothing are reported as stale, as a warning. Exit code 2: the triage file, ``ape-config.yaml``
or the compilation is broken.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TRIAGE = REPO / "analysis" / "slither-triage.yaml"
APE_CONFIG = REPO / "ape-config.yaml"
DEPENDENCY_PREFIX = "node_modules/"
GATED = ("High", "Medium")
IMPACT_ORDER = ("High", "Medium", "Low", "Informational", "Optimization")
CONFIDENCE_ORDER = ("High", "Medium", "Low")
ENTRY_KEYS = frozenset({"detector", "contract", "function", "element", "contains", "reason"})
DESCRIPTION_WIDTH = 100

# "(contracts/Foo.sol#12-20)" or "(node_modules/...#7)": where Slither says a thing is.
_LOCATION = re.compile(r"\s*\([^()\s]+\.sol#[\d-]+\)")


class AnalysisError(Exception):
    """Raised when the analysis cannot run: bad configuration, missing compiler, bad build."""


class TriageError(AnalysisError, ValueError):
    """Raised when the triage file is malformed (a missing reason, an unknown key, ...)."""


# ---------------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """One Slither result, reduced to what the gate and the table need.

    ``contract`` is the contract that holds the primary element (the first one outside
    ``node_modules``), ``function`` the function or modifier that holds it (or is it), and
    ``element`` the primary element's own name (a function, a state variable, a contract, ...).
    """

    detector: str
    impact: str
    confidence: str
    contract: str | None
    function: str | None
    signature: str | None
    element: str | None
    description: str
    location: str

    @property
    def where(self) -> str:
        """``Contract.function`` (or whatever of it is known)."""
        name = self.function or self.element
        if self.contract and name and name != self.contract:
            return f"{self.contract}.{name}"
        return self.contract or name or "-"

    @property
    def summary(self) -> str:
        """The description on one line, without source locations or the repeated subject."""
        text = _LOCATION.sub("", self.description)
        text = " ".join(line.strip().lstrip("-").strip() for line in text.splitlines())
        text = " ".join(text.split())
        for subject in (f"{self.contract}.{self.signature}", f"{self.contract}.{self.function}"):
            if self.contract and text.startswith(subject + " "):
                text = text[len(subject) + 1 :]
                break
        return text


def _in_dependencies(element: Mapping[str, Any]) -> bool:
    mapping = element.get("source_mapping") or {}
    filename = str(mapping.get("filename_relative") or "")
    return filename.startswith(DEPENDENCY_PREFIX) or bool(mapping.get("is_dependency"))


def _has_file(element: Mapping[str, Any]) -> bool:
    return bool((element.get("source_mapping") or {}).get("filename_relative"))


def is_dependency_only(result: Mapping[str, Any]) -> bool:
    """True when every element of a Slither result that has a file lies in ``node_modules``."""
    located = [e for e in result.get("elements", []) if _has_file(e)]
    return bool(located) and all(_in_dependencies(e) for e in located)


def _ancestors(element: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The element itself, then its parents (function, contract) as Slither nests them."""
    current: Mapping[str, Any] | None = element
    while current:
        yield current
        current = (current.get("type_specific_fields") or {}).get("parent")


def _location(element: Mapping[str, Any]) -> str:
    mapping = element.get("source_mapping") or {}
    filename = str(mapping.get("filename_relative") or "")
    lines = [int(n) for n in mapping.get("lines") or []]
    if not filename:
        return "-"
    if not lines:
        return filename
    span = str(lines[0]) if lines[0] == lines[-1] else f"{lines[0]}-{lines[-1]}"
    return f"{filename}#{span}"


def finding_from_result(result: Mapping[str, Any]) -> Finding:
    """Reduce one Slither result dictionary (``run_detectors()`` output) to a ``Finding``."""
    elements: list[Mapping[str, Any]] = list(result.get("elements", []))
    own = [e for e in elements if _has_file(e) and not _in_dependencies(e)]
    primary = own[0] if own else (elements[0] if elements else {})
    contract = function = signature = None
    for node in _ancestors(primary):
        kind = node.get("type")
        if kind in ("function", "modifier") and function is None:
            function = str(node.get("name"))
            raw = (node.get("type_specific_fields") or {}).get("signature")
            signature = str(raw) if raw else None
        elif kind == "contract" and contract is None:
            contract = str(node.get("name"))
    name = primary.get("name")
    return Finding(
        detector=str(result["check"]),
        impact=str(result["impact"]),
        confidence=str(result["confidence"]),
        contract=contract,
        function=function,
        signature=signature,
        element=str(name) if name is not None else None,
        description=str(result.get("description", "")).strip(),
        location=_location(primary),
    )


def parse_findings(results: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Findings of the project's own code, most severe first; dependency-only ones dropped."""
    findings = [finding_from_result(r) for r in results if not is_dependency_only(r)]
    return sorted(findings, key=_sort_key)


def _rank(value: str, order: Sequence[str]) -> int:
    return order.index(value) if value in order else len(order)


def _sort_key(finding: Finding) -> tuple[int, int, str, str, str]:
    return (
        _rank(finding.impact, IMPACT_ORDER),
        _rank(finding.confidence, CONFIDENCE_ORDER),
        finding.detector,
        finding.where,
        finding.description,
    )


# ---------------------------------------------------------------------------------- triage


@dataclass(frozen=True)
class TriageEntry:
    """A reviewed finding: detector, contract, and function and/or element name, plus why.

    ``function`` matches the enclosing function's name, or its full signature when written with
    parentheses (``fundPolicy(uint64,uint256)``) to tell overloads apart. ``contains``, when
    given, must occur in Slither's description (for example the ignored call), so that one
    entry does not also cover a different finding of the same detector in the same function.
    """

    detector: str
    contract: str
    reason: str
    function: str | None = None
    element: str | None = None
    contains: str | None = None

    def matches(self, finding: Finding) -> bool:
        """True when this entry covers ``finding``."""
        if finding.detector != self.detector or finding.contract != self.contract:
            return False
        if self.function is not None:
            actual = finding.signature if "(" in self.function else finding.function
            if actual != self.function:
                return False
        if self.element is not None and finding.element != self.element:
            return False
        return self.contains is None or self.contains in finding.description

    def label(self) -> str:
        """How the entry is named in messages."""
        name = self.function or self.element
        return f"{self.detector} {self.contract}.{name}" + (
            f" [{self.contains!r}]" if self.contains else ""
        )


def _optional_text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TriageError(f"{where}: `{key}` must be a non-empty string")
    return value.strip()


def parse_triage(data: object, source: str = "triage") -> list[TriageEntry]:
    """Validate the loaded triage document: ``{"findings": [entry, ...]}`` (or nothing)."""
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) - {"findings"}:
        raise TriageError(f"{source}: expected a mapping with one key, `findings`")
    raw_entries = data.get("findings") or []
    if not isinstance(raw_entries, list):
        raise TriageError(f"{source}: `findings` must be a list")
    entries: list[TriageEntry] = []
    for index, raw in enumerate(raw_entries, start=1):
        where = f"{source}: entry {index}"
        if not isinstance(raw, dict):
            raise TriageError(f"{where}: must be a mapping")
        unknown = sorted(set(raw) - ENTRY_KEYS)
        if unknown:
            raise TriageError(f"{where}: unknown key(s) {', '.join(unknown)}")
        detector = _optional_text(raw, "detector", where)
        contract = _optional_text(raw, "contract", where)
        reason = _optional_text(raw, "reason", where)
        function = _optional_text(raw, "function", where)
        element = _optional_text(raw, "element", where)
        if detector is None or contract is None:
            raise TriageError(f"{where}: `detector` and `contract` are required")
        if reason is None:
            raise TriageError(f"{where} ({detector} {contract}): `reason` is required")
        if function is None and element is None:
            raise TriageError(f"{where} ({detector} {contract}): give `function` or `element`")
        entries.append(
            TriageEntry(
                detector=detector,
                contract=contract,
                reason=reason,
                function=function,
                element=element,
                contains=_optional_text(raw, "contains", where),
            )
        )
    return entries


def load_triage(path: Path) -> list[TriageEntry]:
    """Read and validate a triage file."""
    if not path.is_file():
        raise TriageError(f"{path}: no such triage file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TriageError(f"{path}: not valid YAML: {exc}") from exc
    return parse_triage(data, str(path))


@dataclass(frozen=True)
class Verdict:
    """The gate's decision over all findings."""

    triaged: list[tuple[Finding, TriageEntry]]
    untriaged: list[Finding]  # High/Medium with no entry: these fail the gate
    ungated: list[Finding]  # Low/Informational/Optimization with no entry
    stale: list[TriageEntry]  # entries that matched nothing

    @property
    def failed(self) -> bool:
        """True when a High or Medium finding has no triage entry."""
        return bool(self.untriaged)


def apply_triage(findings: Sequence[Finding], entries: Sequence[TriageEntry]) -> Verdict:
    """Match findings against triage entries (first matching entry wins)."""
    used: set[int] = set()
    triaged: list[tuple[Finding, TriageEntry]] = []
    untriaged: list[Finding] = []
    ungated: list[Finding] = []
    for finding in findings:
        hit = next((i for i, entry in enumerate(entries) if entry.matches(finding)), None)
        if hit is not None:
            used.add(hit)
            triaged.append((finding, entries[hit]))
        elif finding.impact in GATED:
            untriaged.append(finding)
        else:
            ungated.append(finding)
    # An entry that a finding met only after an earlier entry claimed it is not stale.
    for i, entry in enumerate(entries):
        if i not in used and any(entry.matches(f) for f in findings):
            used.add(i)
    stale = [entry for i, entry in enumerate(entries) if i not in used]
    return Verdict(triaged=triaged, untriaged=untriaged, ungated=ungated, stale=stale)


# ---------------------------------------------------------------------------------- report


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render_table(rows: Sequence[tuple[str, Finding]]) -> list[str]:
    """Compact table lines: status, impact, confidence, detector, where, description."""
    if not rows:
        return []
    header = ("STATUS", "IMPACT", "CONF", "DETECTOR", "WHERE")
    cells = [
        (
            status,
            f.impact,
            f.confidence,
            f.detector,
            f.where,
            _shorten(f.summary, DESCRIPTION_WIDTH),
        )
        for status, f in rows
    ]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        fixed = "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=False))
        return f"{fixed}  {values[-1]}"

    return [line((*header, "DESCRIPTION")), *(line(c) for c in cells)]


def report(verdict: Verdict, *, verbose: bool = False) -> list[str]:
    """The text printed after the analysis."""
    gated_rows = [("NEW", f) for f in verdict.untriaged] + [
        ("triaged", f) for f, _ in verdict.triaged if f.impact in GATED
    ]
    other_rows = [("triaged", f) for f, _ in verdict.triaged if f.impact not in GATED] + [
        ("-", f) for f in verdict.ungated
    ]
    out = [f"High/Medium findings: {len(gated_rows)} ({len(verdict.untriaged)} not triaged)"]
    out += ["  " + row for row in render_table(sorted(gated_rows, key=_row_key))]
    counts = Counter(f.impact for _, f in other_rows)
    summary = ", ".join(f"{impact} {counts[impact]}" for impact in IMPACT_ORDER[2:])
    out.append(f"Other findings: {summary}" + ("" if verbose else " (--verbose lists them)"))
    if verbose:
        out += ["  " + row for row in render_table(sorted(other_rows, key=_row_key))]
    for entry in verdict.stale:
        out.append(f"warning: stale triage entry (matches nothing): {entry.label()}")
    if verdict.failed:
        out.append(
            f"FAILED: {len(verdict.untriaged)} High/Medium finding(s) not in the triage file; "
            "fix them, or add an entry with the reason they are acceptable"
        )
    else:
        out.append("OK: every High/Medium finding is triaged")
    return out


def _row_key(row: tuple[str, Finding]) -> tuple[int, tuple[int, int, str, str, str]]:
    return (0 if row[0] == "NEW" else 1, _sort_key(row[1]))


def to_json(verdict: Verdict, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The machine-readable report written by ``--json``."""
    findings: list[dict[str, Any]] = []
    for finding, entry in verdict.triaged:
        findings.append({**asdict(finding), "status": "triaged", "reason": entry.reason})
    for finding in verdict.untriaged:
        findings.append({**asdict(finding), "status": "untriaged", "reason": None})
    for finding in verdict.ungated:
        findings.append({**asdict(finding), "status": "ungated", "reason": None})
    return {
        **meta,
        "failed": verdict.failed,
        "findings": findings,
        "stale": [asdict(entry) for entry in verdict.stale],
    }


# ---------------------------------------------------------------------------------- slither


@dataclass(frozen=True)
class CompilerSettings:
    """The ``solidity:`` section of ape-config.yaml that matters for compiling."""

    version: str
    evm_version: str | None
    via_ir: bool
    optimize: bool
    optimization_runs: int
    remappings: tuple[str, ...]


def load_compiler_settings(path: Path = APE_CONFIG) -> CompilerSettings:
    """Read the compiler settings the project builds with."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AnalysisError(f"{path}: {exc}") from exc
    solidity = config.get("solidity") or {}
    if not solidity.get("version"):
        raise AnalysisError(f"{path}: solidity.version is not set")
    return CompilerSettings(
        version=str(solidity["version"]),
        evm_version=str(solidity["evm_version"]) if solidity.get("evm_version") else None,
        via_ir=bool(solidity.get("via_ir", False)),
        optimize=bool(solidity.get("optimize", True)),
        optimization_runs=int(solidity.get("optimization_runs", 200)),
        remappings=tuple(str(r) for r in solidity.get("import_remapping") or ()),
    )


def deployable_sources(repo: Path = REPO) -> list[str]:
    """The deployable contracts: ``contracts/*.sol`` (not test mocks, not the bench baseline)."""
    return sorted(p.relative_to(repo).as_posix() for p in (repo / "contracts").glob("*.sol"))


def find_solc(version: str) -> Path:
    """The ``solc-v<version>`` bridge shim that ``make install`` puts where py-solc-x looks."""
    from medledger.toolchain import solcx_folder

    for folder in (solcx_folder(), Path.home() / ".solcx"):
        candidate = folder / f"solc-v{version}"
        if candidate.is_file():
            return candidate
    raise AnalysisError(f"solc {version} bridge not found; run `make install`")


def run_slither(
    sources: Sequence[str], settings: CompilerSettings, solc: Path
) -> tuple[list[dict[str, Any]], int, int]:
    """Compile ``sources`` (relative to the current directory) and run every detector.

    Returns the raw result dictionaries, the number of contracts analysed and of detectors.
    """
    from crytic_compile import CryticCompile, InvalidCompilation
    from crytic_compile.platform import solc_standard_json as standard_json
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    for name in ("CryticCompile", "Slither"):
        logging.getLogger(name).setLevel(logging.ERROR)
    build = standard_json.SolcStandardJson(target=None)
    build.add_source_files(list(sources))
    for remapping in settings.remappings:
        build.add_remapping(remapping)
    build_input = build.to_dict()
    standard_json.add_optimization(build_input, settings.optimize, settings.optimization_runs)
    if settings.evm_version:
        standard_json.add_evm_version(build_input, settings.evm_version)
    standard_json.add_via_ir(build_input, settings.via_ir)
    try:
        # crytic-compile annotates its options as str, but reads this one as a bool.
        options: dict[str, Any] = {"solc": str(solc), "solc_disable_warnings": True}
        compilation = CryticCompile(build, **options)
    except InvalidCompilation as exc:
        raise AnalysisError(f"compilation failed: {exc}") from exc
    slither = Slither(compilation)
    detectors = [
        d
        for d in vars(all_detectors).values()
        if isinstance(d, type) and issubclass(d, AbstractDetector) and d is not AbstractDetector
    ]
    for detector in detectors:
        slither.register_detector(detector)
    results = [result for batch in slither.run_detectors() for result in batch]
    return results, len(slither.contracts), len(detectors)


# ---------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """``python tools/analyze.py [--triage FILE] [--json OUT] [--verbose]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--triage", type=Path, default=DEFAULT_TRIAGE, help="triage YAML file")
    parser.add_argument("--json", type=Path, default=None, help="also write a JSON report here")
    parser.add_argument("--verbose", action="store_true", help="list Low/Info/Optimization too")
    args = parser.parse_args(argv)
    triage_path: Path = args.triage.resolve()
    json_path: Path | None = args.json.resolve() if args.json else None

    started = time.monotonic()
    try:
        entries = load_triage(triage_path)
        settings = load_compiler_settings()
        solc = find_solc(settings.version)
        sources = deployable_sources()
        os.chdir(REPO)  # Slither and the bridge resolve the sources and remappings from here
        results, contracts, detectors = run_slither(sources, settings, solc)
    except AnalysisError as exc:
        print(f"analyze: {exc}", file=sys.stderr)
        return 2
    findings = parse_findings(results)
    verdict = apply_triage(findings, entries)
    elapsed = time.monotonic() - started
    print(
        f"Slither: {len(sources)} source files, {contracts} contracts, {detectors} detectors, "
        f"{len(results) - len(findings)} findings in node_modules dropped ({elapsed:.1f} s)"
    )
    print("\n".join(report(verdict, verbose=args.verbose)))
    if json_path is not None:
        meta = {
            "sources": sources,
            "contracts": contracts,
            "detectors": detectors,
            "compiler": asdict(settings),
            "seconds": round(elapsed, 2),
        }
        json_path.write_text(json.dumps(to_json(verdict, meta), indent=2) + "\n", encoding="utf-8")
    return 1 if verdict.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
