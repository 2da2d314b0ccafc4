"""Sealing a body straight into the store's blocks gives the bytes, blocks and CIDs of the
one-shot path, and every alteration is still caught.

The oracle is written out here, independently of ``envelope``: the sealed format
(``MLB1 | u32 header length | header | nonce | AESGCM(key).encrypt(nonce, body, aad)``, the
one-shot API) and its import with plain chunks (``iter_chunks``, whose CIDs the Kubo
equivalence tests pin).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import threading

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from medledger import sealed
from medledger.crypto import envelope
from medledger.errors import BlockCorrupted, CryptoError, DecryptionFailed, IntegrityError
from medledger.ipfs import CHUNK_SIZE, Cid
from medledger.ipfs.blockstore import verify_block
from medledger.ipfs.local import LocalBlockStore
from medledger.ipfs.unixfs import import_chunks, iter_chunks, iter_file, iter_leaves
from medledger.sealed.overlap import HELPER_FROM, helper

KEY = bytes(range(32))
NONCE = bytes(range(12))
AAD = b"chain 31337 | registry | patient | issuer | category 3"
READER = os.urandom(32)
PLAIN_SIZES = (0, 1, 262_143, 262_144, 262_145, 3 * CHUNK_SIZE + 77)


def oracle(body: bytes, header: bytes) -> bytes:
    """The sealed object as the one-shot API makes it."""
    ciphertext = AESGCM(KEY).encrypt(NONCE, body, AAD)
    return b"MLB1" + struct.pack(">I", len(header)) + header + NONCE + ciphertext


def streamed(body: bytes, header: bytes) -> tuple[Cid, dict[Cid, bytes]]:
    stream = envelope.SealedStream(body, AAD, KEY, NONCE, header)
    blocks: dict[Cid, bytes] = {}
    root = import_chunks(iter_leaves(stream.size, stream.write_into), _keep(blocks))
    return root, blocks


def imported(data: bytes) -> tuple[Cid, dict[Cid, bytes]]:
    blocks: dict[Cid, bytes] = {}
    return import_chunks(iter_chunks(data), _keep(blocks)), blocks


def _keep(blocks: dict[Cid, bytes]):  # type: ignore[no-untyped-def]
    def sink(cid: Cid, data: bytes | bytearray | memoryview) -> None:
        blocks[cid] = bytes(data)

    return sink


def header_of(length: int) -> bytes:
    return b'{"v":1,"pad":"' + b"h" * max(0, length - 16) + b'"}'


def tag_straddling_sizes() -> st.SearchStrategy[tuple[int, int]]:
    """(plaintext size, header length) that put the sealed object's end, and so its tag,
    within a few bytes of a chunk boundary."""

    def around(draw_header: int, chunks: int, shift: int) -> tuple[int, int]:
        prefix = 4 + 4 + len(header_of(draw_header)) + 12
        return max(0, chunks * CHUNK_SIZE - prefix - 16 + shift), draw_header

    return st.builds(around, st.integers(16, 600), st.integers(1, 3), st.integers(-20, 20))


@settings(max_examples=40, deadline=None)
@given(
    size=st.one_of(st.sampled_from(PLAIN_SIZES), st.integers(0, 3 * CHUNK_SIZE)),
    header_length=st.integers(16, 700),
)
def test_streamed_seal_equals_the_one_shot_object_block_for_block(
    size: int, header_length: int
) -> None:
    body, header = os.urandom(size), header_of(header_length)
    assert streamed(body, header) == imported(oracle(body, header))


@settings(max_examples=25, deadline=None)
@given(case=tag_straddling_sizes())
def test_streamed_seal_is_exact_when_the_tag_crosses_a_chunk_boundary(
    case: tuple[int, int],
) -> None:
    size, header_length = case
    body, header = os.urandom(size), header_of(header_length)
    assert streamed(body, header) == imported(oracle(body, header))


@pytest.mark.parametrize(
    "size",
    [0, 1, 262_145, HELPER_FROM - 1, HELPER_FROM, 4 * HELPER_FROM + 3],
    ids=lambda s: f"{s}B",
)
def test_seal_one_stores_what_the_one_shot_api_opens(tmp_path, size: int) -> None:
    store = LocalBlockStore(tmp_path / "store")
    body = os.urandom(size)
    reader = envelope.public_key(READER)
    done = sealed.seal_one(store, sealed.Document(body, AAD, (reader,)))
    data = store.cat(done.cid)
    secret = envelope.secret_for(data, READER)
    _, offset = envelope._split(data)  # the oracle reads the format itself below
    nonce = data[offset : offset + 12]
    assert AESGCM(secret.key).decrypt(nonce, data[offset + 12 :], AAD) == body
    assert done.commitment == hmac.new(secret.salt, body, hashlib.sha256).digest()
    assert done.cid == imported(data)[0]
    assert store.pins() == {done.cid}
    assert sealed.open_one(data, AAD, done.commitment, private_key=READER) == body


@pytest.mark.parametrize("size", [1, 2 * CHUNK_SIZE + 5], ids=lambda s: f"{s}B")
def test_an_altered_block_is_refused_by_its_cid(size: int) -> None:
    root, blocks = streamed(os.urandom(size), header_of(40))
    for cid, block in blocks.items():
        altered = bytearray(block)
        altered[len(altered) // 2] ^= 1
        with pytest.raises(BlockCorrupted):
            verify_block(cid, bytes(altered), "test")
    assert root in blocks


@pytest.mark.parametrize("where", ["ciphertext", "tag", "nonce"])
def test_an_altered_sealed_object_does_not_open_even_when_rehashed(where: str) -> None:
    body = os.urandom(CHUNK_SIZE + 100)
    secret = envelope.BodySecret.generate()
    header = envelope.header([envelope.public_key(READER)], secret)
    stream = envelope.SealedStream(body, AAD, secret.key, NONCE, header)
    blocks: dict[Cid, bytes] = {}
    root = import_chunks(iter_leaves(stream.size, stream.write_into), _keep(blocks))
    data = bytearray(b"".join(iter_file(blocks.__getitem__, root)))
    prefix = 8 + len(header)
    spot = {"nonce": prefix + 3, "ciphertext": prefix + 12 + 1000, "tag": len(data) - 5}[where]
    data[spot] ^= 0x80
    commitment = hmac.new(secret.salt, body, hashlib.sha256).digest()
    with pytest.raises(DecryptionFailed):
        sealed.open_one(bytes(data), AAD, commitment, private_key=READER)


def test_a_body_that_is_not_the_committed_one_is_refused() -> None:
    body = os.urandom(HELPER_FROM + 1)
    secret = envelope.BodySecret.generate()
    data = envelope.seal(body, AAD, [envelope.public_key(READER)], secret)
    with pytest.raises(IntegrityError):
        sealed.open_one(data, AAD, bytes(32), private_key=READER)
    with pytest.raises(DecryptionFailed):
        sealed.open_one(data, AAD + b"x", bytes(32), private_key=READER)


def test_writing_past_the_end_of_the_sealed_object_is_refused() -> None:
    stream = envelope.SealedStream(b"abc", AAD, KEY, NONCE, header_of(20))
    with pytest.raises(ValueError, match="shorter"):
        stream.write_into(memoryview(bytearray(stream.size + 1)))
    with pytest.raises(CryptoError):
        envelope.open_sealed(b"MLB0" + bytes(40), AAD, envelope.BodySecret(KEY, KEY))


@pytest.mark.parametrize("size", [0, 100, 3 * HELPER_FROM + 7], ids=lambda s: f"{s}B")
def test_the_commitment_fed_in_pieces_on_the_helper_is_the_hmac_of_the_body(size: int) -> None:
    salt, body = os.urandom(32), os.urandom(size)
    before = threading.active_count()
    mac = envelope.commitment_mac(salt)
    with helper() as pool:
        for piece in iter_chunks(body, 100_000):
            pool.submit(mac.update, piece)
    assert mac.digest() == hmac.new(salt, body, hashlib.sha256).digest()
    assert threading.active_count() == before


@pytest.mark.parametrize("on_helper", [False, True], ids=["here", "helper"])
def test_leaves_hashed_on_the_helper_carry_their_own_digest(on_helper: bool) -> None:
    body, header = os.urandom(3 * CHUNK_SIZE + 9), header_of(50)
    stream = envelope.SealedStream(body, AAD, KEY, NONCE, header)
    with helper() as pool:
        leaves = list(iter_leaves(stream.size, stream.write_into, pool if on_helper else None))
    blocks = imported(oracle(body, header))[1]
    for leaf in leaves:
        digest = hashlib.sha256(leaf).digest()
        assert leaf.digest == (digest if on_helper else None)
        assert bytes(leaf) == blocks[Cid(0, 0x70, digest)]


def test_no_helper_thread_outlives_a_failure() -> None:
    before = threading.active_count()
    with pytest.raises(RuntimeError), helper() as pool:
        pool.submit(hashlib.sha256, b"part")
        raise RuntimeError("the store failed")
    assert threading.active_count() == before


def test_a_store_failure_mid_import_leaves_no_thread_and_raises_it(tmp_path) -> None:
    class Failing(LocalBlockStore):
        def _write_block(self, cid: Cid, data: bytes | bytearray | memoryview) -> None:
            if len(data) > 1000:
                raise OSError("disk full")
            super()._write_block(cid, data)

    before = threading.active_count()
    document = sealed.Document(os.urandom(HELPER_FROM * 2), AAD, (envelope.public_key(READER),))
    with pytest.raises(OSError, match="disk full"):
        sealed.seal_one(Failing(tmp_path / "store"), document)
    assert threading.active_count() == before
