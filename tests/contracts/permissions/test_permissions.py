"""docs/permissions.md, walked on chain: one call per cell of the permission tables.

The tables are an independent statement of who may call what (written from the README and the
interfaces' NatSpec); this module checks the contracts against them:

* every state-changing function of every deployable contract's ABI has exactly one row, and
  every row names such a function (a new function without a permission row fails here);
* every row has a call in ``calls.py``, and every error a cell names is one of the contracts';
* each cell makes its row's call as its caller, from the same snapshot of the world
  (``conftest.py``), with the same arguments for every caller: an ``allowed`` cell must
  succeed (sent as a transaction, then rolled back), a ``refused: <Error>`` cell must revert
  with exactly that custom error (its selector, and data that decodes and re-encodes exactly as
  that error). A refusal changes no state, so it is checked with ``eth_call`` from the
  snapshot, as ``support.call_reverts`` does.

A cell where the contract breaks the rule the table states is listed in ``CONTRACT_BUGS``
(strict xfail, with the scenario) until the contract is fixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from eth_utils import keccak
from hexbytes import HexBytes

from ..support import _error_inputs
from .calls import CALLS
from .table import ACTORS, all_cells, load

if TYPE_CHECKING:
    from .conftest import World
    from .table import Cell

CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "contracts"
DEPLOYABLE = sorted(path.stem for path in CONTRACTS_DIR.glob("*.sol"))
"""The deployable contracts: every top-level source (interfaces, libraries, mocks and the
benchmark live in subfolders)."""

TABLES = load()
CELLS = all_cells(TABLES)

CONTRACT_BUGS: dict[str, str] = {}
"""Cells where the chain breaks the table's rule: ``cell id -> scenario``."""


def _param(cell: Cell) -> Any:
    marks = []
    if cell.id in CONTRACT_BUGS:
        marks.append(pytest.mark.xfail(strict=True, reason=CONTRACT_BUGS[cell.id]))
    return pytest.param(cell, id=cell.id, marks=marks)


# ---------------------------------------------------------------------------- ABI helpers


def _abi(project: Any, contract: str) -> list[Any]:
    return list(getattr(project, contract).contract_type.abi)


def _state_changing(project: Any, contract: str) -> set[str]:
    return {
        item.name
        for item in _abi(project, contract)
        if item.type == "function" and item.stateMutability not in ("view", "pure")
    }


def _errors(project: Any, contract: str) -> dict[str, Any]:
    return {item.name: item for item in _abi(project, contract) if item.type == "error"}


def _selector(error: Any) -> bytes:
    return keccak(text=error.selector)[:4]


@pytest.fixture(scope="module")
def selectors(project: Any) -> dict[bytes, Any]:
    """Every custom error of the deployable contracts, by selector (to name what reverted)."""
    return {_selector(e): e for c in DEPLOYABLE for e in _errors(project, c).values()}


# ---------------------------------------------------------------------------- the table itself


def test_the_table_covers_exactly_the_deployable_contracts() -> None:
    assert sorted(TABLES) == DEPLOYABLE


@pytest.mark.parametrize("contract", DEPLOYABLE)
def test_every_state_changing_function_has_one_row_and_every_row_is_a_function(
    project: Any, contract: str
) -> None:
    functions = _state_changing(project, contract)
    rows = set(TABLES.get(contract, {}))
    assert functions == rows, (
        f"{contract}: functions without a row: {sorted(functions - rows)}; "
        f"rows naming no such function: {sorted(rows - functions)}"
    )


def test_every_row_has_a_call_and_every_call_a_row() -> None:
    rows = {f"{contract}.{function}" for contract, fs in TABLES.items() for function in fs}
    assert not rows - set(CALLS), f"rows without a call in calls.py: {rows - set(CALLS)}"
    assert not set(CALLS) - rows, f"calls without a row: {set(CALLS) - rows}"


def test_every_refusal_names_an_error_of_its_contract(project: Any) -> None:
    unknown = {
        cell.id: cell.error
        for cell in CELLS
        if cell.error is not None and cell.error not in _errors(project, cell.contract)
    }
    assert not unknown, f"errors the contracts do not declare: {unknown}"


def test_every_row_has_one_cell_per_caller() -> None:
    for rows in TABLES.values():
        for cells in rows.values():
            assert [c.actor for c in cells] == list(ACTORS)


# ---------------------------------------------------------------------------- the cells


def _eth_call(chain: Any, contract: Any, data: bytes, sender: Any) -> HexBytes | None:
    """``eth_call`` from ``sender``; the revert data, or None when the call succeeds."""
    request = {"from": sender.address, "to": contract.address, "data": HexBytes(data).to_0x_hex()}
    response = chain.provider.web3.provider.make_request("eth_call", [request, "latest"])
    if "error" not in response:
        return None
    return HexBytes(response["error"].get("data") or b"")


def _describe(chain: Any, selectors: dict[bytes, Any], data: HexBytes | None) -> str:
    if data is None:
        return "allowed"
    error = selectors.get(bytes(data[:4]))
    if error is None:
        return f"refused with unknown revert data {data.to_0x_hex()}"
    try:
        inputs = dict(chain.provider.network.ecosystem.decode_calldata(error, bytes(data[4:])))
    except Exception:  # undecodable arguments: name the error anyway
        inputs = {"data": data.to_0x_hex()}
    return f"refused: {error.name}({', '.join(f'{k}={v}' for k, v in inputs.items())})"


@pytest.mark.parametrize("cell", [_param(cell) for cell in CELLS])
def test_cell(cell: Cell, world: World, chain: Any, selectors: dict[bytes, Any]) -> None:
    builder = CALLS.get(cell.row)
    assert builder is not None, f"no call for {cell.row} in calls.py"
    contract = world.contracts[cell.contract]
    actor = world.actors[cell.actor]
    args = builder(world, actor)
    method = getattr(contract, cell.function)
    reverted = _eth_call(chain, contract, method.encode_input(*args), actor)
    observed = _describe(chain, selectors, reverted)
    claim = f"{cell.id}: the table says {cell.expected} ({cell.why}); the chain says {observed}"
    if cell.error is None:
        assert reverted is None, claim
        snapshot = chain.snapshot()
        try:
            receipt = method(*args, sender=actor)
            assert not receipt.failed, claim
        finally:
            chain.restore(snapshot)
        return
    assert reverted is not None, claim
    error = getattr(contract, cell.error)
    assert _error_inputs(error, reverted) is not None, claim
