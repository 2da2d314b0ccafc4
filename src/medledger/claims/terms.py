"""A policy's terms: procedure codes, the salt, the sealed terms document and the salted keys
of a claim's content.

Covered procedure codes are a Merkle root of salted code hashes
(``keccak256(abi.encode(salt, system, code))``): a code list of public codes would be easy to
recover from plain hashes, so the salt lives in the policy's *terms document*, sealed for the
insurer and the patient in IPFS. The patient hands the terms to a provider that submits claims
for them (``medledger policy show ID --terms --out terms.json``), just as they would show an
insurance card.

The same salt keys a claim's service period and identifier (see :mod:`medledger.claims`):

* ``serviceKey = keccak256(abi.encode(bytes32 salt, string "medledger/claim-service/v1",
  string start, string end))``;
* ``identifierKey = keccak256(abi.encode(bytes32 salt, string "medledger/claim-identifier/v1",
  string system, string value))``, or zero without an identifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from medledger import documents, providers, sealed
from medledger.claims.contract import manager
from medledger.crypto.merkle import MerkleTree
from medledger.errors import ConfigurationError, NoKeyForReader, PreconditionFailed

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.cid import Cid

TERMS_KIND = "medledger/policy-terms"
SERVICE_TAG = "medledger/claim-service/v1"
IDENTIFIER_TAG = "medledger/claim-identifier/v1"
NO_IDENTIFIER = bytes(32)


@dataclass(frozen=True)
class Code:
    """A procedure code: a coding system URI and a code (for example CPT ``99213``)."""

    system: str
    code: str

    @classmethod
    def parse(cls, text: str) -> Code:
        """Parse ``SYSTEM|CODE`` (FHIR token syntax). A code without its system is refused:
        ``99213`` means one procedure in CPT and another thing (or nothing) elsewhere."""
        system, _, code = text.rpartition("|")
        if not code.strip():
            raise ConfigurationError("--code", f"{text!r} is not SYSTEM|CODE")
        return cls(system.strip(), code.strip()).require_system("--code")

    def require_system(self, what: str = "code") -> Code:
        """This code, or a one-line refusal when it names no coding system."""
        if not self.system:
            raise ConfigurationError(
                what,
                f"{self.code!r} names no code system: write SYSTEM|CODE, e.g. "
                f"http://www.ama-assn.org/go/cpt|{self.code}",
            )
        return self

    def hashed(self, salt: bytes) -> bytes:
        """The salted hash that goes on chain."""
        return keccak(abi_encode(["bytes32", "string", "string"], [salt, self.system, self.code]))

    @property
    def token(self) -> str:
        """``system|code``."""
        return f"{self.system}|{self.code}"


@dataclass(frozen=True)
class Terms:
    """A policy's terms document (sealed in IPFS): currency, salt and covered codes."""

    salt: bytes
    codes: tuple[Code, ...]
    currency: str = "USD"
    plan: str = ""

    def tree(self) -> MerkleTree:
        """The Merkle tree of the covered codes' salted hashes."""
        return MerkleTree.build([c.hashed(self.salt) for c in self.codes])

    def proof(self, code: Code) -> list[bytes]:
        """The code's proof against the root, or ``[]`` when it is not covered."""
        hashed = code.hashed(self.salt)
        if code not in self.codes:
            return []
        return self.tree().proof(hashed)

    def service_key(self, start: str, end: str) -> bytes:
        """The salted key of a service period (canonical bounds: see :mod:`medledger.claims`)."""
        return keccak(
            abi_encode(
                ["bytes32", "string", "string", "string"], [self.salt, SERVICE_TAG, start, end]
            )
        )

    def identifier_key(self, identifier: tuple[str, str] | None) -> bytes:
        """The salted key of a claim's ``(system, value)`` identifier; zero without one."""
        if identifier is None:
            return NO_IDENTIFIER
        system, value = identifier
        return keccak(
            abi_encode(
                ["bytes32", "string", "string", "string"],
                [self.salt, IDENTIFIER_TAG, system, value],
            )
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON document: its kind and version, then the fields (codes last)."""
        data = documents.to_data(self)
        return {
            "kind": TERMS_KIND,
            "v": 1,
            "salt": data["salt"],
            "currency": data["currency"],
            "plan": data["plan"],
            "codes": data["codes"],
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "terms") -> Terms:
        """Read a terms document (as written by :meth:`to_json`)."""
        try:
            if data.get("kind") != TERMS_KIND:
                raise KeyError("kind")
            salt = bytes.fromhex(str(data["salt"]).removeprefix("0x"))
            codes = tuple(Code(str(c["system"]), str(c["code"])) for c in data["codes"])
            if len(salt) != 32 or not codes:
                raise ValueError("salt or codes")
            return cls(salt, codes, str(data.get("currency", "USD")), str(data.get("plan", "")))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ConfigurationError(source, "is not a MedLedger policy terms document") from None


def _aad(chain: Chain, insurer: str, patient: str) -> bytes:
    """The context a policy's terms are sealed in (another chain, manager or pair: no open)."""
    return f"{TERMS_KIND}:{chain.chain_id}:{manager(chain).address}:{insurer}:{patient}".encode()


def seal_terms(
    chain: Chain, store: BlockStore, insurer: str, patient: str, terms: Terms
) -> sealed.Sealed:
    """Seal a terms document for the insurer (institution) and the patient, store and pin it."""
    body = json.dumps(terms.to_json(), separators=(",", ":"), sort_keys=True).encode()
    readers = (providers.encryption_key(chain, insurer), providers.encryption_key(chain, patient))
    return sealed.seal_one(store, sealed.Document(body, _aad(chain, insurer, patient), readers))


def open_terms(
    chain: Chain,
    store: BlockStore,
    reader: Signer,
    cid: Cid,
    insurer: str,
    patient: str,
    policy_id: int,
) -> Terms:
    """Decrypt the terms document of policy ``policy_id`` stored at ``cid`` (the insurer, its
    practitioners and the patient can)."""
    blob = store.cat(cid)
    try:
        secret = sealed.secret_of(blob, reader.key)
    except NoKeyForReader:
        raise PreconditionFailed(
            f"{reader.address} cannot read the terms of policy {policy_id} (only the insurer and "
            "the patient hold its key; ask the patient for the terms file)"
        ) from None
    # No commitment is on chain for terms: the CID names the ciphertext, the context is bound
    # to it, and the submission checks the codes against the policy's root.
    plain = sealed.open_one(
        blob, _aad(chain, insurer, patient), None, secret, what=f"terms of policy {policy_id}"
    )
    where = f"terms of policy {policy_id}"
    return Terms.from_json(documents.parse_object(plain, where), where)
