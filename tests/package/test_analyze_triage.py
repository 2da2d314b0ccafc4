"""The triage gate of tools/analyze.py, on small Slither-shaped result dictionaries (Slither is
not run): dependency-only findings are dropped, entries match by detector, contract and
function or element (not by line), unmatched High/Medium findings fail, stale entries warn, and
an entry without a reason is rejected."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from types import ModuleType

ANALYZE_PATH = Path(__file__).resolve().parents[2] / "tools" / "analyze.py"


def _load_analyze() -> ModuleType:
    spec = importlib.util.spec_from_file_location("medledger_tools_analyze", ANALYZE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


analyze = _load_analyze()


def _contract(name: str, filename: str) -> dict[str, Any]:
    return {
        "type": "contract",
        "name": name,
        "source_mapping": {"filename_relative": filename, "lines": [10, 11, 12]},
    }


def _function(
    contract: str, name: str, signature: str, filename: str, lines: list[int]
) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "source_mapping": {"filename_relative": filename, "lines": lines},
        "type_specific_fields": {
            "parent": _contract(contract, filename),
            "signature": signature,
        },
    }


def _node(function: dict[str, Any], expression: str, line: int) -> dict[str, Any]:
    filename = function["source_mapping"]["filename_relative"]
    return {
        "type": "node",
        "name": expression,
        "source_mapping": {"filename_relative": filename, "lines": [line]},
        "type_specific_fields": {"parent": function},
    }


def result(
    check: str,
    contract: str,
    function: str,
    *,
    impact: str = "Medium",
    confidence: str = "Medium",
    expression: str = "x = f()",
    filename: str | None = None,
    lines: tuple[int, int] = (40, 52),
) -> dict[str, Any]:
    """A Slither result in the shape ``run_detectors()`` returns (the fields the tool reads)."""
    filename = filename or f"contracts/{contract}.sol"
    signature = f"{function}(uint256)"
    func = _function(contract, function, signature, filename, list(range(lines[0], lines[1])))
    where = f"({filename}#{lines[0]}-{lines[1]})"
    return {
        "check": check,
        "impact": impact,
        "confidence": confidence,
        "description": (
            f"{contract}.{signature} {where} ignores return value by {expression} "
            f"({filename}#{lines[0] + 3})\n"
        ),
        "elements": [func, _node(func, expression, lines[0] + 3)],
    }


def entry(**fields: str) -> Any:
    return analyze.parse_triage({"findings": [fields]})[0]


@pytest.fixture
def registry_finding() -> dict[str, Any]:
    return result(
        "unused-return",
        "RecordRegistry",
        "registerFromBatch",
        expression="(None,ok) = _PROVIDERS.canAnchor(a,b)",
    )


def test_finding_names_detector_contract_and_function(registry_finding: dict[str, Any]) -> None:
    (finding,) = analyze.parse_findings([registry_finding])

    assert (finding.detector, finding.impact) == ("unused-return", "Medium")
    assert (finding.contract, finding.function) == ("RecordRegistry", "registerFromBatch")
    assert finding.signature == "registerFromBatch(uint256)"
    assert finding.where == "RecordRegistry.registerFromBatch"
    assert finding.location == "contracts/RecordRegistry.sol#40-51"
    assert finding.summary == "ignores return value by (None,ok) = _PROVIDERS.canAnchor(a,b)"


def test_findings_only_in_node_modules_are_dropped() -> None:
    oz = result(
        "unused-return",
        "AccessControlEnumerable",
        "_grantRole",
        filename="node_modules/@openzeppelin/contracts/access/AccessControlEnumerable.sol",
    )
    ours = result("incorrect-equality", "ClaimsManager", "fundPolicy")

    findings = analyze.parse_findings([oz, ours])

    assert [f.contract for f in findings] == ["ClaimsManager"]


def test_finding_touching_our_code_and_a_dependency_is_kept_and_named_by_ours() -> None:
    mixed = result("shadowing-local", "DevStablecoin", "constructor", impact="Low")
    dependency = _function(
        "Ownable", "owner", "owner()", "node_modules/@openzeppelin/contracts/Ownable.sol", [9]
    )
    mixed["elements"].insert(0, dependency)

    (finding,) = analyze.parse_findings([mixed])

    assert finding.where == "DevStablecoin.constructor"


def test_matching_entry_triages_the_finding(registry_finding: dict[str, Any]) -> None:
    findings = analyze.parse_findings([registry_finding])
    triage = [
        entry(
            detector="unused-return",
            contract="RecordRegistry",
            function="registerFromBatch",
            reason="checked by hand",
        )
    ]

    verdict = analyze.apply_triage(findings, triage)

    assert not verdict.failed
    assert [(f.function, e.reason) for f, e in verdict.triaged] == [
        ("registerFromBatch", "checked by hand")
    ]
    assert verdict.untriaged == [] and verdict.stale == []


def test_entry_survives_line_moves(registry_finding: dict[str, Any]) -> None:
    moved = result(
        "unused-return",
        "RecordRegistry",
        "registerFromBatch",
        expression="(None,ok) = _PROVIDERS.canAnchor(a,b)",
        lines=(140, 170),
    )
    triage = [
        entry(
            detector="unused-return",
            contract="RecordRegistry",
            function="registerFromBatch",
            reason="checked",
        )
    ]

    for raw in (registry_finding, moved):
        assert not analyze.apply_triage(analyze.parse_findings([raw]), triage).failed


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"detector": "incorrect-equality"}, id="other-detector"),
        pytest.param({"contract": "ConsentManager"}, id="other-contract"),
        pytest.param({"function": "anchorBatch"}, id="other-function"),
        pytest.param({"function": "registerFromBatch(bytes32)"}, id="other-signature"),
        pytest.param({"contains": "ECDSA.tryRecover("}, id="other-call"),
    ],
)
def test_unmatched_medium_finding_fails_the_gate(
    registry_finding: dict[str, Any], fields: dict[str, str]
) -> None:
    base = {
        "detector": "unused-return",
        "contract": "RecordRegistry",
        "function": "registerFromBatch",
        "reason": "checked",
    }
    findings = analyze.parse_findings([registry_finding])

    verdict = analyze.apply_triage(findings, [entry(**{**base, **fields})])

    assert verdict.failed
    assert [f.function for f in verdict.untriaged] == ["registerFromBatch"]
    assert len(verdict.stale) == 1


def test_signature_and_contains_narrow_a_match(registry_finding: dict[str, Any]) -> None:
    findings = analyze.parse_findings([registry_finding])
    precise = entry(
        detector="unused-return",
        contract="RecordRegistry",
        function="registerFromBatch(uint256)",
        contains="_PROVIDERS.canAnchor(",
        reason="checked",
    )

    assert not analyze.apply_triage(findings, [precise]).failed


def test_element_names_a_non_function_finding() -> None:
    variable = {
        "check": "uninitialized-state",
        "impact": "High",
        "confidence": "High",
        "description": "ClaimsManager._pool (contracts/ClaimsManager.sol#9) is never initialized",
        "elements": [
            {
                "type": "variable",
                "name": "_pool",
                "source_mapping": {
                    "filename_relative": "contracts/ClaimsManager.sol",
                    "lines": [9],
                },
                "type_specific_fields": {
                    "parent": _contract("ClaimsManager", "contracts/ClaimsManager.sol")
                },
            }
        ],
    }
    (finding,) = analyze.parse_findings([variable])
    triage = [
        entry(
            detector="uninitialized-state",
            contract="ClaimsManager",
            element="_pool",
            reason="set in the constructor through assembly",
        )
    ]

    assert (finding.contract, finding.function, finding.element) == ("ClaimsManager", None, "_pool")
    assert not analyze.apply_triage([finding], triage).failed


def test_low_and_informational_findings_never_fail() -> None:
    findings = analyze.parse_findings(
        [
            result("timestamp", "ConsentManager", "_grant", impact="Low"),
            result("naming-convention", "ClaimsManager", "TOKEN", impact="Informational"),
            result("cache-array-length", "TrialRegistry", "_addSite", impact="Optimization"),
        ]
    )

    verdict = analyze.apply_triage(findings, [])

    assert not verdict.failed
    assert len(verdict.ungated) == 3


def test_stale_entry_is_reported_without_failing(registry_finding: dict[str, Any]) -> None:
    findings = analyze.parse_findings([registry_finding])
    live = entry(
        detector="unused-return",
        contract="RecordRegistry",
        function="registerFromBatch",
        reason="checked",
    )
    gone = entry(
        detector="reentrancy-eth",
        contract="ClaimsManager",
        function="withdrawPayment",
        reason="fixed long ago",
    )

    verdict = analyze.apply_triage(findings, [live, gone])

    assert not verdict.failed
    assert verdict.stale == [gone]
    lines = analyze.report(verdict)
    assert any("stale" in line and "ClaimsManager.withdrawPayment" in line for line in lines)
    assert lines[-1].startswith("OK")


def test_two_entries_for_one_finding_are_not_stale(registry_finding: dict[str, Any]) -> None:
    findings = analyze.parse_findings([registry_finding])
    broad = entry(
        detector="unused-return",
        contract="RecordRegistry",
        function="registerFromBatch",
        reason="checked",
    )
    narrow = entry(
        detector="unused-return",
        contract="RecordRegistry",
        function="registerFromBatch",
        contains="canAnchor",
        reason="checked",
    )

    assert analyze.apply_triage(findings, [broad, narrow]).stale == []


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(
            {"detector": "unused-return", "contract": "A", "function": "f"}, id="missing-reason"
        ),
        pytest.param(
            {"detector": "unused-return", "contract": "A", "function": "f", "reason": "  "},
            id="blank-reason",
        ),
        pytest.param(
            {"detector": "unused-return", "contract": "A", "function": "f", "reason": None},
            id="null-reason",
        ),
    ],
)
def test_entry_without_reason_is_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(analyze.TriageError, match="reason"):
        analyze.parse_triage({"findings": [fields]})


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        pytest.param(
            {"findings": [{"detector": "d", "contract": "A", "reason": "r"}]},
            "function",
            id="no-function-or-element",
        ),
        pytest.param(
            {"findings": [{"contract": "A", "function": "f", "reason": "r"}]},
            "detector",
            id="no-detector",
        ),
        pytest.param(
            {
                "findings": [
                    {"detector": "d", "contract": "A", "function": "f", "reason": "r", "line": 12}
                ]
            },
            "line",
            id="unknown-key",
        ),
        pytest.param({"findings": {"detector": "d"}}, "list", id="not-a-list"),
        pytest.param({"triage": []}, "findings", id="wrong-top-key"),
    ],
)
def test_malformed_triage_is_rejected(document: object, problem: str) -> None:
    with pytest.raises(analyze.TriageError, match=problem):
        analyze.parse_triage(document)


def test_triage_file_is_read_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "triage.yaml"
    path.write_text(
        "findings:\n"
        "  - detector: incorrect-equality\n"
        "    contract: TrialRegistry\n"
        "    function: getDataBatch\n"
        "    reason: >-\n"
        "      submittedAt is the existence sentinel\n",
        encoding="utf-8",
    )

    (loaded,) = analyze.load_triage(path)

    assert loaded.reason == "submittedAt is the existence sentinel"
    with pytest.raises(analyze.TriageError, match="no such triage file"):
        analyze.load_triage(tmp_path / "missing.yaml")


def test_missing_reason_in_yaml_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "triage.yaml"
    path.write_text(
        "findings:\n  - {detector: unused-return, contract: A, function: f}\n", encoding="utf-8"
    )

    with pytest.raises(analyze.TriageError, match="reason"):
        analyze.load_triage(path)


def test_project_triage_file_is_valid() -> None:
    entries = analyze.load_triage(analyze.DEFAULT_TRIAGE)

    assert entries and all(e.reason for e in entries)


def test_json_report_carries_status_and_reason(registry_finding: dict[str, Any]) -> None:
    other = result("incorrect-equality", "ClaimsManager", "fundPolicy")
    findings = analyze.parse_findings([registry_finding, other])
    triage = [
        entry(
            detector="incorrect-equality",
            contract="ClaimsManager",
            function="fundPolicy",
            reason="delta, not a balance",
        )
    ]

    document = analyze.to_json(analyze.apply_triage(findings, triage), {"seconds": 1.0})

    assert document["failed"] is True
    statuses = {f["function"]: (f["status"], f["reason"]) for f in document["findings"]}
    assert statuses == {
        "fundPolicy": ("triaged", "delta, not a balance"),
        "registerFromBatch": ("untriaged", None),
    }
    json.dumps(document)  # serialisable as written by --json
