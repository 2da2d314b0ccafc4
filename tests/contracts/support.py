"""Assertion helpers and constants for the contract tests.

Why these helpers exist instead of plain ``ape.reverts`` and ``tx.events == [...]``:

* ``ape.reverts(Contract.SomeError, **inputs)`` (Ape 0.8) only checks the error when Ape managed
  to decode it. When it did not, the raised exception is a plain ``ContractLogicError`` and
  ``ape.reverts`` passes whatever the contract reverted with. It also ignores keyword arguments
  that the error does not have. Both happen on this project's two networks:

  - on Anvil (1.x), a reverted ``eth_call`` (a view function, ``.call()``) is reported as
    ``execution reverted: custom error 0x<selector>: <arguments>``, the arguments as text when
    they are valid UTF-8 (a zero word is 32 NUL characters) and as hex otherwise, or as the
    whole data read as text when that is valid UTF-8; ape-foundry 0.8.11 parses none of these,
    so *no* view-call custom error is decoded there;
  - on eth-tester, Ape reads the revert data back from ``repr(bytes)`` and fails whenever the
    data contains a ``'`` byte without a ``"`` byte (Python then quotes with ``"``), about one
    random 32-byte word in eight.

  :func:`reverts` therefore wraps ``ape.reverts`` and then decodes the revert data itself when
  Ape could not, and demands the exact error and *all* of its arguments.
* ``MockContractLog`` equality (``contract.Event(**args)``) compares only the arguments given;
  :func:`assert_events` requires every argument so that a forgotten field cannot pass.
"""

from __future__ import annotations

import ast
import itertools
import re
from contextlib import contextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import ape
import coincurve
from ape.exceptions import ContractLogicError, CustomError
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from medledger.categories import Category

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ape.api import ReceiptAPI
    from ape.contracts import ContractInstance
    from ape.types.events import MockContractLog

__all__ = [
    "DEFAULT_ADMIN_ROLE",
    "NO_RECORD",
    "REGISTRAR_ROLE",
    "THRESHOLD",
    "ZERO_ADDRESS",
    "Category",
    "Kind",
    "Role",
    "Status",
    "assert_events",
    "call_reverts",
    "digest",
    "indexed_tree",
    "key_proof",
    "merkle_leaf",
    "merkle_tree",
    "new_key",
    "record_id",
    "revert_data",
    "revert_data_candidates",
    "reverts",
    "reverts_without_data",
    "sign_digest",
]

THRESHOLD = 2
"""Registrar approvals needed in the deployed fixture (2 of 3)."""

ZERO_ADDRESS = "0x" + "00" * 20
NO_RECORD = HexBytes(b"\x00" * 32)
DEFAULT_ADMIN_ROLE = HexBytes(b"\x00" * 32)
REGISTRAR_ROLE = HexBytes(keccak(text="REGISTRAR_ROLE"))


class Kind(IntEnum):
    """``IProviderRegistry.InstitutionKind``."""

    NONE = 0
    HOSPITAL = 1
    CLINIC = 2
    LABORATORY = 3
    INSURER = 4
    RESEARCH_SPONSOR = 5
    EMERGENCY_SERVICE = 6


class Status(IntEnum):
    """``IProviderRegistry.InstitutionStatus``."""

    NONE = 0
    PENDING = 1
    VERIFIED = 2
    SUSPENDED = 3


class Role(IntEnum):
    """``IProviderRegistry.Role``."""

    NONE = 0
    PATIENT = 1
    INSTITUTION = 2
    PRACTITIONER = 3


_KEY_SEEDS = itertools.count(1)
_SECRETS: dict[bytes, bytes] = {}
MAX_UINT40 = 2**40 - 1


def new_key(prefix: int | None = None, *, uncompressed: bool = False) -> bytes:
    """Return a fresh, real secp256k1 public key: 33 bytes compressed (or 65 uncompressed).

    ``prefix`` (2 or 3) picks the parity of y. Keys come from a counter, not from randomness,
    so that a run can be repeated byte for byte.
    """
    while True:
        secret = keccak(text=f"medledger-test-key-{next(_KEY_SEEDS)}")
        key = coincurve.PrivateKey(secret).public_key.format(compressed=not uncompressed)
        if prefix is None or key[0] == prefix:
            _SECRETS[key] = secret
            return key


def sign_digest(secret: bytes, message_digest: bytes) -> HexBytes:
    """A 65-byte Ethereum signature (``r || s || v``, v 27 or 28) of a 32-byte digest."""
    signature = coincurve.PrivateKey(secret).sign_recoverable(bytes(message_digest), hasher=None)
    return HexBytes(signature[:64] + bytes([signature[64] + 27]))


def key_proof(registry: ContractInstance, account: Any, key: bytes) -> HexBytes:
    """The proof that ``account`` holds ``key`` (a key made by :func:`new_key`): the key's
    signature of ``registry.keyDigest(account, key)``."""
    secret = _SECRETS[bytes(key)]
    return sign_digest(secret, registry.keyDigest(account, key))


def digest(label: str) -> HexBytes:
    """Return a deterministic, non-zero 32-byte value for a readable label."""
    return HexBytes(keccak(text=label))


# ---------------------------------------------------------------------------- ids and batches

RECORD_ID_TYPES = [
    "uint256",
    "address",
    "address",
    "address",
    "bytes32",
    "bytes32",
    "uint8",
    "bytes32",
]


def record_id(
    chain_id: int,
    registry: str,
    patient: str,
    issuer: str,
    cid_digest: bytes,
    commitment: bytes,
    category: int,
    previous: bytes,
) -> HexBytes:
    """The record id, derived in Python exactly as ``RecordIds.derive`` documents it."""
    values = [chain_id, registry, patient, issuer, cid_digest, commitment, category, previous]
    return HexBytes(keccak(abi_encode(RECORD_ID_TYPES, values)))


def merkle_leaf(record: bytes) -> HexBytes:
    """``keccak256(bytes.concat(keccak256(abi.encode(id))))``: OpenZeppelin's double hash."""
    return HexBytes(keccak(keccak(abi_encode(["bytes32"], [record]))))


def merkle_tree(records: list[bytes]) -> tuple[HexBytes, dict[bytes, list[HexBytes]]]:
    """Return ``(root, proofs by record id)`` of a tree hashing sorted pairs (``MerkleProof``).

    A plain bottom-up tree (an odd node is carried up a level), written independently of
    ``medledger.merkle`` so that the two can be checked against each other.
    """
    level = [merkle_leaf(r) for r in records]
    where = {bytes(r): i for i, r in enumerate(records)}
    proofs: dict[bytes, list[HexBytes]] = {bytes(r): [] for r in records}
    while len(level) > 1:
        for record, index in where.items():
            sibling = index ^ 1
            if sibling < len(level):
                proofs[record].append(level[sibling])
            where[record] = index // 2
        level = [
            HexBytes(keccak(b"".join(sorted(level[i : i + 2])))) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0], proofs


def indexed_tree(records: list[bytes]) -> tuple[HexBytes, list[list[HexBytes]]]:
    """Return ``(root, proof of each position)`` of an ``IndexedMerkle`` tree of ``records``.

    A complete binary tree of depth ceil(log2(n)), leaves :func:`merkle_leaf` at positions
    ``0 .. n - 1`` and zero words after them, parents ``keccak(left || right)``: written
    independently of ``medledger.merkle`` so that the two can be checked against each other.
    """
    depth = max(len(records) - 1, 0).bit_length()
    level = [merkle_leaf(r) for r in records] + [HexBytes(b"\0" * 32)] * (2**depth - len(records))
    proofs: list[list[HexBytes]] = [[] for _ in records]
    for _ in range(depth):
        for position in range(len(records)):
            proofs[position].append(level[(position >> len(proofs[position])) ^ 1])
        level = [HexBytes(keccak(level[i] + level[i + 1])) for i in range(0, len(level), 2)]
    return level[0], proofs


# ---------------------------------------------------------------------------- reverts

_ANVIL_CUSTOM = re.compile(r"custom error 0x([0-9a-fA-F]{8})(?:: (.*))?", re.DOTALL)
_REVERTED = "execution reverted: "
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _candidate_texts(err: ContractLogicError) -> list[str]:
    texts = [err.revert_message or ""]
    base = err.base_err
    while base is not None:
        texts.extend(str(arg) for arg in getattr(base, "args", ()) if isinstance(arg, str))
        data = getattr(base, "data", None)
        if isinstance(data, str):
            texts.append(data)
        base = getattr(base, "base_err", None)
    return texts


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (SyntaxError, ValueError):
        return None


def revert_data_candidates(err: ContractLogicError) -> list[HexBytes]:
    """Return what the raw revert data of ``err`` may be, most likely first.

    The providers print revert data in several ways, some ambiguous:

    - ``0x<hex>``: the data itself (Ape, for transactions and for deployments on Anvil);
    - ``b'...'`` or ``b"..."``: eth-tester's ``repr(bytes)``;
    - ``custom error 0x<selector>: <rest>``: Anvil, ``<rest>`` being the arguments as text
      when they are valid UTF-8 (zero words are NUL characters) and as hex otherwise;
    - ``execution reverted: <text>``: Anvil, when the whole data is valid UTF-8.

    A plain ``revert()`` (or an ABI-decoder rejection) gives ``b""``.
    """
    found: list[HexBytes] = []
    for text in _candidate_texts(err):
        raw = text.removeprefix(_REVERTED)
        body = raw.strip()
        if re.fullmatch(r"0x[0-9a-fA-F]*", body):
            found.append(HexBytes(body))
        elif match := _ANVIL_CUSTOM.fullmatch(raw):
            selector, rest = bytes.fromhex(match[1]), match[2] or ""
            if _HEX.fullmatch(rest):
                found.append(HexBytes(selector + bytes.fromhex(rest)))
            found.append(HexBytes(selector + rest.encode()))
        elif body[:2] in ("b'", 'b"') and isinstance(value := _literal(body), bytes):
            found.append(HexBytes(value))
        elif text.startswith(_REVERTED):
            found.append(HexBytes(raw.encode()))  # Anvil: the whole data, valid UTF-8, as text
    if err.revert_message == "Transaction failed.":  # Ape's text for "reverted without data"
        found.append(HexBytes(b""))
    return list(dict.fromkeys(found))


def revert_data(err: ContractLogicError) -> HexBytes | None:
    """Return the most likely raw revert data of ``err``, or ``None`` if none is readable."""
    candidates = revert_data_candidates(err)
    return candidates[0] if candidates else None


def _error_inputs(error: type[CustomError], data: bytes) -> dict[str, Any] | None:
    """Decode ``data`` as ``error``; ``None`` unless it is exactly that error's encoding."""
    abi = error.abi
    if data[:4] != keccak(text=abi.selector)[:4]:
        return None
    types = [i.canonical_type for i in abi.inputs]
    try:
        exact = abi_encode(types, abi_decode(types, data[4:])) == data[4:]
    except Exception:  # any decoding failure rules the candidate out
        return None
    if not exact:
        return None
    return dict(ape.chain.provider.network.ecosystem.decode_calldata(abi, data[4:]))


def _decoded(err: ContractLogicError, error: type[CustomError]) -> tuple[str, dict[str, Any]]:
    """Return ``(error name, inputs)`` for ``err``, decoding the revert data if Ape did not.

    A candidate counts only when it starts with the error's selector and its arguments
    decode and re-encode to exactly the same bytes.
    """
    if isinstance(err, CustomError):
        return err.abi.name, dict(err.inputs)
    candidates = revert_data_candidates(err)
    for data in candidates:
        if (inputs := _error_inputs(error, data)) is not None:
            return error.abi.name, inputs
    shown = ", ".join(c.to_0x_hex() for c in candidates) or f"nothing readable in {err!r}"
    raise AssertionError(f"expected {error.__name__} but the revert data was {shown}")


def _assert_inputs(
    error: type[CustomError], actual: dict[str, Any], inputs: dict[str, Any]
) -> None:
    want = {k: _normalise(v) for k, v in inputs.items()}
    got = {k: _normalise(v) for k, v in actual.items()}
    assert got == want, f"{error.__name__}: expected {want}, got {got}"


def _check_names(error: type[CustomError], inputs: dict[str, Any]) -> None:
    expected_names = [i.name for i in error.abi.inputs]
    if sorted(inputs) != sorted(expected_names):
        raise TypeError(f"{error.__name__} takes {expected_names}; got {sorted(inputs)}")


def _normalise(value: Any) -> Any:
    if hasattr(value, "address"):  # accounts and contracts
        return to_checksum_address(value.address)
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return HexBytes(value)
    if isinstance(value, IntEnum):
        return int(value)
    return value


@contextmanager
def reverts(error: type[CustomError], **inputs: Any) -> Iterator[Any]:
    """Assert that the block reverts with exactly ``error(**inputs)``; every argument is required.

    ``error`` is an error class taken from a contract (``registry.ProviderAlreadyApproved``) or
    a container (``project.ProviderRegistry.ProviderInvalidThreshold``).
    """
    _check_names(error, inputs)
    with ape.reverts(error, **inputs) as info:
        yield info
    name, actual = _decoded(info.value, error)
    assert name == error.abi.name, f"expected {error.__name__} but got {name}({actual})"
    source = getattr(getattr(error, "contract", None), "address", None)
    raised_at = info.value.address
    if source is not None and raised_at is not None:
        assert raised_at == source, f"{name} came from {raised_at}, not {source}"
    _assert_inputs(error, actual, inputs)


def call_reverts(
    method: Any, *args: Any, sender: Any, error: type[CustomError], **inputs: Any
) -> None:
    """Assert that ``method(*args)``, called (``eth_call``) from ``sender``, reverts with exactly
    ``error(**inputs)``.

    Goes through bare JSON-RPC, not Ape: on Anvil, Ape fetches, enriches and prints a call
    trace for every revert (about 0.1 s each), which a stateful test making hundreds of
    rejected moves cannot afford. A rejected move changes no state, so calling it checks the
    same thing as sending it; the per-function tests send every revert as a transaction.
    """
    _check_names(error, inputs)
    request = {
        "from": sender.address,
        "to": method.contract.address,
        "data": HexBytes(method.encode_input(*args)).to_0x_hex(),
    }
    try:
        response = ape.chain.provider.web3.provider.make_request("eth_call", [request, "latest"])
    except Exception as raised:  # eth-tester raises instead of answering with an error
        body = str(raised.args[0] if raised.args else "").removeprefix(_REVERTED)
        if body[:2] not in ("b'", 'b"'):
            raise
        data = HexBytes(ast.literal_eval(body))
    else:
        assert "error" in response, f"{method} did not revert: {response}"
        data = HexBytes(response["error"].get("data") or b"")
    actual = _error_inputs(error, data)
    assert actual is not None, f"expected {error.__name__}, got revert data {data.to_0x_hex()}"
    _assert_inputs(error, actual, inputs)


@contextmanager
def reverts_without_data() -> Iterator[None]:
    """Assert a revert with empty revert data (Solidity's ABI decoder rejecting the input)."""
    try:
        yield
    except ContractLogicError as err:
        assert not isinstance(err, CustomError), f"expected an empty revert, got {err!r}"
        candidates = revert_data_candidates(err)
        assert candidates == [b""], f"expected an empty revert, got {candidates or err!r}"
    else:
        raise AssertionError("Transaction did not revert.")


# ---------------------------------------------------------------------------- events


def assert_events(receipt: ReceiptAPI, *expected: MockContractLog) -> None:
    """Assert that ``receipt`` emitted exactly ``expected``, in order, every field given.

    Build each expectation as ``contract.EventName(field=value, ...)``; the contract's address,
    the event name and the values are all compared.
    """
    for mock in expected:
        names = {i.name for i in _event_abi(mock).inputs}
        given = set(mock.event_arguments)
        assert given == names, f"{mock.event_name}: give every field {sorted(names)}, got {given}"
    actual = list(receipt.events)
    assert actual == list(expected), f"events: expected {list(expected)}, got {actual}"


def _event_abi(mock: MockContractLog) -> Any:
    contract: ContractInstance = ape.chain.contracts.instance_at(mock.contract_address)
    return getattr(contract, mock.event_name).abi
