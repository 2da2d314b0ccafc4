"""CID parsing and formatting: CIDv0 (base58btc) and CIDv1 (base32), dag-pb and raw."""

from __future__ import annotations

import hashlib

import base58  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medledger.errors import InvalidCid
from medledger.ipfs import DAG_PB, RAW, Cid
from medledger.ipfs.cid import base58_text

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # `ipfs add` of b"hello world\n"
HELLO_V1 = "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby"
EMPTY_RAW_V1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"  # raw block of b""

digests = st.binary(min_size=32, max_size=32)


def test_v0_round_trip_and_digest() -> None:
    cid = Cid.parse(HELLO_V0)
    assert (cid.version, cid.codec, len(cid.digest)) == (0, DAG_PB, 32)
    assert str(cid) == HELLO_V0
    assert Cid.from_digest_v0(cid.digest) == cid
    assert cid.to_bytes() == b"\x12\x20" + cid.digest
    assert repr(cid) == f"Cid({HELLO_V0!r})"


def test_v1_of_the_same_block() -> None:
    v0 = Cid.parse(HELLO_V0)
    v1 = Cid.parse(HELLO_V1)
    assert v1 == v0.to_v1()
    assert v1 != v0  # different names, same digest
    assert v1.digest == v0.digest
    assert v1.to_bytes() == b"\x01\x70\x12\x20" + v0.digest


def test_raw_cid_of_the_empty_block() -> None:
    cid = Cid.of_block(b"", version=1, codec=RAW)
    assert str(cid) == EMPTY_RAW_V1
    assert cid.digest == hashlib.sha256(b"").digest()
    assert Cid.parse(EMPTY_RAW_V1) == cid


@given(digests, st.sampled_from([(0, DAG_PB), (1, DAG_PB), (1, RAW)]))
def test_text_and_binary_round_trips(digest: bytes, form: tuple[int, int]) -> None:
    cid = Cid(form[0], form[1], digest)
    assert Cid.parse(str(cid)) == cid
    assert Cid.from_bytes(cid.to_bytes()) == cid
    text = str(cid)
    assert text.startswith("Qm" if cid.version == 0 else "b")
    assert text == text.strip() and (cid.version == 0 or text == text.lower())


def test_matches() -> None:
    cid = Cid.of_block(b"abc")
    assert cid.matches(b"abc")
    assert not cid.matches(b"abd")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        HELLO_V0[:-1],
        HELLO_V0 + "x",
        HELLO_V0[:-1] + "0",  # 0 is not in the base58 alphabet
        " " + HELLO_V0,
        HELLO_V1.upper(),  # base32upper multibase is not accepted
        HELLO_V1[:-2],
        "z" + HELLO_V0,  # base58 CIDv1 is not supported
        "bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje",  # dag-cbor codec
    ],
)
def test_rejects_what_is_not_a_supported_cid(text: str) -> None:
    with pytest.raises(InvalidCid):
        Cid.parse(text)


def test_rejects_bad_values() -> None:
    with pytest.raises(InvalidCid):
        Cid(0, RAW, bytes(32))  # CIDv0 is always dag-pb
    with pytest.raises(InvalidCid):
        Cid(2, DAG_PB, bytes(32))
    with pytest.raises(InvalidCid):
        Cid(1, 0x71, bytes(32))
    with pytest.raises(InvalidCid):
        Cid.from_digest_v0(bytes(31))
    with pytest.raises(InvalidCid):
        Cid.from_bytes(Cid.of_block(b"x").to_bytes() + b"\x00")
    with pytest.raises(InvalidCid):
        Cid.from_bytes(b"\x01\x70\x13\x20" + bytes(32))  # sha2-512 code with 32 bytes
    with pytest.raises(InvalidCid):
        Cid.parse(42)  # type: ignore[arg-type]


def test_invalid_cid_is_a_value_error_with_a_readable_message() -> None:
    with pytest.raises(ValueError, match="not a CID MedLedger can handle"):
        Cid.parse("not-a-cid")


@given(st.binary(max_size=64), st.integers(0, 4))
def test_base58_text_is_the_base58_library_s(data: bytes, zeros: int) -> None:
    """The package's base58btc encoder (faster) against the ``base58`` library as the oracle,
    leading zero bytes included (each is a "1")."""
    data = b"\0" * zeros + data
    assert base58_text(data) == base58.b58encode(data).decode("ascii")
