"""Content identifiers (CIDs) for the blocks MedLedger stores.

Only what MedLedger writes and reads is supported: sha2-256 multihashes, the dag-pb (0x70) and
raw (0x55) codecs, CIDv0 (``Qm...``, base58btc of the bare multihash) and CIDv1 in base32
(``b...``, lower case, no padding). Anything else raises :class:`~medledger.errors.InvalidCid`.
The chain stores only :attr:`Cid.digest` (32 bytes); :meth:`Cid.from_digest_v0` rebuilds the CID.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

import base58  # type: ignore[import-untyped, unused-ignore]

from medledger.errors import InvalidCid
from medledger.ipfs._varint import decode_varint, encode_varint

DAG_PB = 0x70
RAW = 0x55
SHA2_256 = 0x12
DIGEST_SIZE = 32

CODEC_NAMES = {DAG_PB: "dag-pb", RAW: "raw"}
_MULTIHASH_PREFIX = bytes([SHA2_256, DIGEST_SIZE])
_V0_TEXT_LENGTH = 46


@dataclass(frozen=True, slots=True)
class Cid:
    """A CID: version (0 or 1), codec (:data:`DAG_PB` or :data:`RAW`) and sha2-256 digest."""

    version: int
    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise InvalidCid(f"CID version {self.version} is not supported (only 0 and 1)")
        if self.codec not in CODEC_NAMES:
            raise InvalidCid(f"codec 0x{self.codec:x} is not supported (only dag-pb and raw)")
        if self.version == 0 and self.codec != DAG_PB:
            raise InvalidCid("a CIDv0 always has the dag-pb codec")
        if not isinstance(self.digest, bytes) or len(self.digest) != DIGEST_SIZE:
            raise InvalidCid(f"a sha2-256 digest is {DIGEST_SIZE} bytes")

    # --- constructors ----------------------------------------------------------------------

    @classmethod
    def from_digest_v0(cls, digest: bytes) -> Cid:
        """Rebuild the CIDv0 of a dag-pb block from the 32-byte digest the chain stores."""
        return cls(0, DAG_PB, bytes(digest))

    @classmethod
    def of_block(
        cls, data: bytes | bytearray | memoryview, *, version: int = 0, codec: int = DAG_PB
    ) -> Cid:
        """Hash ``data`` and return its CID (CIDv0 dag-pb unless told otherwise)."""
        return cls(version, codec, hashlib.sha256(data).digest())

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a CIDv0 (``Qm...``) or base32 CIDv1 (``b...``) string."""
        if not isinstance(text, str):
            raise InvalidCid(f"a CID string was expected, not {type(text).__name__}")
        if text.startswith("Qm") and len(text) == _V0_TEXT_LENGTH:
            try:
                raw = base58.b58decode(text)
            except ValueError:
                raise InvalidCid(f"{text!r} is not valid base58btc") from None
            cid = cls._from_multihash(raw, 0, DAG_PB, text)
            if str(cid) != text:  # b58decode ignores trailing whitespace; be strict
                raise InvalidCid(f"{text!r} is not a canonical CIDv0")
            return cid
        if text.startswith("b") and text[1:] == text[1:].lower():
            try:
                raw = base64.b32decode(text[1:].upper() + "=" * (-len(text[1:]) % 8))
            except ValueError:
                raise InvalidCid(f"{text!r} is not valid base32") from None
            cid = cls.from_bytes(raw)
            if cid.version != 1 or str(cid) != text:
                raise InvalidCid(f"{text!r} is not a canonical CIDv1")
            return cid
        raise InvalidCid(
            f"{text!r} is not a CID MedLedger can handle "
            "(expected CIDv0 'Qm...' or base32 CIDv1 'b...')"
        )

    @classmethod
    def from_bytes(cls, raw: bytes | memoryview) -> Cid:
        """Decode the binary form of a CID (a whole buffer, nothing after it)."""
        cid, end = cls.read_from(raw, 0)
        if end != len(raw):
            raise InvalidCid(f"{len(raw) - end} unexpected bytes after a CID")
        return cid

    @classmethod
    def read_from(cls, buf: bytes | memoryview, pos: int) -> tuple[Cid, int]:
        """Decode the binary CID at ``buf[pos:]``; return it and the position after it."""
        if bytes(buf[pos : pos + 2]) == _MULTIHASH_PREFIX:  # CIDv0 is a bare multihash
            end = pos + 2 + DIGEST_SIZE
            return cls._from_multihash(bytes(buf[pos:end]), 0, DAG_PB, "CIDv0"), end
        try:
            version, pos = decode_varint(buf, pos)
            codec, pos = decode_varint(buf, pos)
        except ValueError as exc:
            raise InvalidCid(f"malformed binary CID: {exc}") from None
        if version != 1:
            raise InvalidCid(f"binary CID has version {version}, expected 1")
        end = pos + 2 + DIGEST_SIZE
        return cls._from_multihash(bytes(buf[pos:end]), 1, codec, "CIDv1"), end

    @classmethod
    def _from_multihash(cls, multihash: bytes, version: int, codec: int, what: str) -> Cid:
        if len(multihash) != 2 + DIGEST_SIZE or multihash[:2] != _MULTIHASH_PREFIX:
            raise InvalidCid(f"{what} does not hold a sha2-256 multihash")
        return cls(version, codec, multihash[2:])

    # --- views ------------------------------------------------------------------------------

    @property
    def multihash(self) -> bytes:
        """The multihash: ``0x12 0x20`` followed by the digest."""
        return _MULTIHASH_PREFIX + self.digest

    def to_bytes(self) -> bytes:
        """The binary form: the multihash for CIDv0, version + codec + multihash for CIDv1."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def to_v1(self) -> Cid:
        """The same block named by a CIDv1 (the form Kubo returns for ``cid-codec``)."""
        return Cid(1, self.codec, self.digest)

    def matches(self, data: bytes | bytearray | memoryview) -> bool:
        """True when ``data`` hashes to this CID's digest."""
        return hashlib.sha256(data).digest() == self.digest

    def __str__(self) -> str:
        if self.version == 0:
            return base58_text(self.multihash)
        return "b" + base64.b32encode(self.to_bytes()).decode("ascii").lower().rstrip("=")

    def __repr__(self) -> str:
        return f"Cid({str(self)!r})"


_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_PAIRS = [a + b for a in _B58_ALPHABET for b in _B58_ALPHABET]  # 58 * 58 two-digit texts


@functools.lru_cache(maxsize=1 << 16)
def base58_text(data: bytes) -> str:
    """base58btc text of ``data`` (a CIDv0 is that of its multihash); cached, as a new record's
    CID is printed several times (manifest, outbox, record).

    Written here rather than calling ``base58.b58encode`` (still used to decode, and the oracle
    of the tests): the library takes one Python-level ``divmod`` per digit, 12 us for a CID,
    which was 0.1 s of a 10,000-record batch; two digits per ``divmod`` take 3 us.
    """
    number = int.from_bytes(data, "big")
    pairs = []
    while number:
        number, digits = divmod(number, 58 * 58)
        pairs.append(_B58_PAIRS[digits])
    text = "".join(reversed(pairs)).lstrip("1")  # the top pair may start with a zero digit
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text  # a "1" per leading zero byte
