"""The one exception hierarchy of MedLedger.

Every error the package raises on purpose derives from :class:`MedLedgerError`, and each leaf
also derives from the builtin it resembles (``LookupError``, ``ValueError``, ``PermissionError``,
``ConnectionError``...), so callers can catch either. The CLI prints ``str(error)`` as one line
and exits non-zero, so every message is written for a person: it says what was wrong and, where
it can, what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


class Notice(UserWarning):
    """Something a person should know that is not an error (issued with ``warnings.warn``; the
    CLI prints it as one ``notice:`` line on stderr)."""


class MedLedgerError(Exception):
    """Raised for any failure MedLedger reports on purpose (the root of the hierarchy)."""

    exit_code: int = 1


# --- configuration, accounts, networks ----------------------------------------------------------


class ConfigurationError(MedLedgerError, ValueError):
    """Raised when a setting (file, environment variable or option) is missing or invalid."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


class AccountError(MedLedgerError, LookupError):
    """Raised when an account cannot be found or unlocked."""

    def __init__(self, account: str, problem: str) -> None:
        super().__init__(f"account {account!r}: {problem}")
        self.account = account


class SignerRefused(MedLedgerError, PermissionError):
    """Raised when an external signer refuses to sign (a person rejected it, it does not hold
    the account) or answers with something other than what was asked (another transaction,
    another signer's signature). Nothing was sent."""

    def __init__(self, account: str, problem: str) -> None:
        super().__init__(f"account {account!r}: {problem}; nothing was sent")
        self.account = account


class InvalidAddress(MedLedgerError, ValueError):
    """Raised when a string is not an Ethereum address MedLedger accepts (0x and 40 hex digits;
    mixed case must be a correct EIP-55 checksum)."""

    def __init__(self, text: str, problem: str, what: str = "address") -> None:
        shown = text if len(text) <= 50 else text[:47] + "..."
        super().__init__(f"{what} {shown!r} is not a valid address: {problem}")
        self.text = text
        self.what = what


class InvalidDuration(MedLedgerError, ValueError):
    """Raised when a duration option (``30d``, ``12h``, ``2w``) is malformed, not positive or
    longer than its maximum."""

    def __init__(self, text: str, problem: str, what: str = "duration") -> None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        super().__init__(f"{what} {shown!r} {problem}")
        self.text = text
        self.what = what


class ToolMissing(MedLedgerError, FileNotFoundError):
    """Raised when an external program MedLedger needs (Anvil, Node.js) is not installed."""

    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"{tool} was not found: {hint}")
        self.tool = tool


class NodeUnavailable(MedLedgerError, ConnectionError):
    """Raised when a chain RPC endpoint or an IPFS node does not answer."""

    def __init__(self, what: str, url: str, reason: str) -> None:
        super().__init__(f"{what} at {url} is not reachable: {reason}")
        self.what = what
        self.url = url


class DevnetError(MedLedgerError, RuntimeError):
    """Raised when the local devnet cannot be started, stopped or read."""


# --- chain: deployments and transactions --------------------------------------------------------


class NotDeployed(MedLedgerError, LookupError):
    """Raised when a contract has no deployment on the chosen network."""

    def __init__(self, contract: str, network: str) -> None:
        super().__init__(
            f"{contract} (this version) is not deployed on network {network!r}: "
            "run `medledger deploy` first"
        )
        self.contract = contract
        self.network = network


class TransactionReverted(MedLedgerError, RuntimeError):
    """Raised when a transaction or call reverts; ``error`` names the decoded custom error."""

    def __init__(self, action: str, error: str, args: dict[str, object] | None = None) -> None:
        detail = ", ".join(f"{k}={_short(v)}" for k, v in (args or {}).items())
        super().__init__(f"{action} was reverted by the contract: {error}({detail})")
        self.action = action
        self.error = error
        self.error_args = dict(args or {})


class PreconditionFailed(MedLedgerError, PermissionError):
    """Raised when a check made before sending a transaction shows it would be refused."""


class SignatureExpired(PreconditionFailed):
    """Raised before sending a signed message (grant, care relationship, trial consent) whose
    deadline has passed by the chain's clock: the contract would refuse it after gas is spent."""

    def __init__(self, what: str, deadline: datetime, now: datetime) -> None:
        super().__init__(
            f"the signed {what} expired at {deadline:%Y-%m-%d %H:%M:%S}Z (the chain's time is "
            f"{now:%Y-%m-%d %H:%M:%S}Z): nothing was sent; the signer must sign it again"
        )
        self.deadline = deadline


class AccessRefused(MedLedgerError, PermissionError):
    """Raised when a reader has no live access to a record on chain; says why."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(f"access to record {record_id} refused: {reason}")
        self.record_id = record_id
        self.reason = reason


class TransactionRejected(MedLedgerError, RuntimeError):
    """Raised when a node refuses a transaction before running it: a nonce another transaction
    took, too little ETH for gas, a fee below the node's floor. Nothing of it was executed."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"{action} was refused by the node: {reason}")
        self.action = action
        self.reason = reason

    @classmethod
    def from_node(cls, action: str, message: str) -> TransactionRejected:
        """Word a node's refusal for a person (the node's own words end the line)."""
        low = message.lower()
        if "nonce too low" in low or "nonce too high" in low or "replacement" in low:
            reason = (
                "another transaction from this account took its nonce (is another program "
                f"sending from the same account?); run the command again ({message})"
            )
        elif "insufficient funds" in low or "insufficient balance" in low:
            reason = f"the account has too little ETH to pay for gas; fund it ({message})"
        elif "underpriced" in low or "fee cap" in low or "max fee" in low:
            reason = f"its fee was below what the node accepts; run it again ({message})"
        elif "notactivated" in low or "invalid opcode" in low:
            reason = (
                "the chain's EVM lacks an instruction the contracts use (they are compiled for "
                f"the Cancun EVM: PUSH0, MCOPY; a pre-Shanghai chain cannot run them) ({message})"
            )
        else:
            reason = message
        return cls(action, reason)


# --- registry -----------------------------------------------------------------------------------


class InstitutionNotFound(MedLedgerError, LookupError):
    """Raised when an address has no institution in the ProviderRegistry."""

    def __init__(self, address: str) -> None:
        super().__init__(f"no institution is registered at {address}")
        self.address = address


class PatientNotFound(MedLedgerError, LookupError):
    """Raised when an address has not registered as a patient."""

    def __init__(self, address: str) -> None:
        super().__init__(
            f"{address} is not a registered patient: the patient must run "
            "`medledger patient register` first"
        )
        self.address = address


class ConsentNotFound(MedLedgerError, LookupError):
    """Raised when a FHIR ``Consent`` id names no grant on this chain's ConsentManager (the
    gateway answers 404)."""

    def __init__(self, consent_id: str) -> None:
        shown = consent_id if len(consent_id) <= 70 else consent_id[:67] + "..."
        super().__init__(
            f"no Consent {shown!r} on this chain: a Consent id is the 64 hex digits the "
            "gateway gave for a grant (search Consent?patient=... to find it)"
        )
        self.consent_id = consent_id


# --- claims and trials --------------------------------------------------------------------------


class PolicyNotFound(MedLedgerError, LookupError):
    """Raised when a policy id is not issued on this chain."""

    def __init__(self, policy_id: int) -> None:
        super().__init__(f"policy {policy_id} is not issued on this chain")
        self.policy_id = policy_id


class ClaimNotFound(MedLedgerError, LookupError):
    """Raised when a claim id is not submitted on this chain."""

    def __init__(self, claim_id: int) -> None:
        super().__init__(f"claim 0x{claim_id:064x} is not submitted on this chain")
        self.claim_id = claim_id


class StudyNotFound(MedLedgerError, LookupError):
    """Raised when a study id is not registered on this chain."""

    def __init__(self, study_id: int) -> None:
        super().__init__(f"study {study_id} is not registered on this chain")
        self.study_id = study_id


class AuditFailed(MedLedgerError, RuntimeError):
    """Raised when a trial audit finds violations; the message counts and names them."""

    def __init__(self, study_id: int, violations: list[str]) -> None:
        first = "; ".join(violations[:3])
        more = f" (and {len(violations) - 3} more)" if len(violations) > 3 else ""
        super().__init__(
            f"study {study_id} audit failed with {len(violations)} violation(s): {first}{more}"
        )
        self.study_id = study_id
        self.violations = violations


class DuplicateClaim(MedLedgerError, ValueError):
    """Raised before submission when the same care, claim identifier or claim record was
    already claimed; ``earlier`` is that claim's id."""

    def __init__(self, what: str, earlier: int) -> None:
        super().__init__(f"{what} was already claimed as claim 0x{earlier:064x}")
        self.earlier = earlier


# --- records ------------------------------------------------------------------------------------


class RecordNotFound(MedLedgerError, LookupError):
    """Raised when a record id is not anchored in the RecordRegistry."""

    def __init__(self, record_id: str, why: str | None = None) -> None:
        super().__init__(why or f"record {record_id} is not anchored on this chain")
        self.record_id = record_id


class InvalidRecordId(MedLedgerError, ValueError):
    """Raised when a string is neither a 0x-prefixed 32-byte id nor a MedLedger record URI."""

    def __init__(self, text: str) -> None:
        super().__init__(
            f"{text!r} is not a record id (expected 0x followed by 64 hex digits, or "
            "medledger://eip155:<chain>/<registry>/<id>)"
        )
        self.text = text


class IntegrityError(MedLedgerError, ValueError):
    """Raised when data does not match what was anchored (a tampered body or pointer)."""


# --- cryptography -------------------------------------------------------------------------------


class CryptoError(MedLedgerError, ValueError):
    """Raised when encryption material is malformed or a ciphertext cannot be opened."""


class DecryptionFailed(CryptoError):
    """Raised when a key does not open a ciphertext: a wrong key or a tampered ciphertext."""


class NoKeyForReader(CryptoError, LookupError):
    """Raised when a record has no key wrapped for the reader's public key."""


# --- IPFS ---------------------------------------------------------------------------------------


class StoreError(MedLedgerError, OSError):
    """Raised when a block store fails to store or serve data."""


class BlockNotFound(StoreError, LookupError):
    """Raised when no configured store holds a block."""

    def __init__(self, cid: str) -> None:
        super().__init__(f"block {cid} is not in any configured store")
        self.cid = cid


class BlockCorrupted(StoreError, IntegrityError):
    """Raised when a block's bytes do not hash to its CID (whichever store served it)."""

    def __init__(self, cid: str, source: str) -> None:
        super().__init__(f"block {cid} served by {source} does not match its CID: data was altered")
        self.cid = cid
        self.source = source


class InvalidCid(StoreError, ValueError):
    """Raised when a string or bytes value is not a CID MedLedger can handle."""


class CarFormatError(StoreError, ValueError):
    """Raised when a CAR file is malformed."""


class DagFormatError(StoreError, ValueError):
    """Raised when a block matches its CID but is not a UnixFS file node MedLedger can read."""

    def __init__(self, cid: str, problem: str) -> None:
        super().__init__(f"block {cid} is not a UnixFS file node MedLedger can read: {problem}")
        self.cid = cid


class ReplicationError(StoreError):
    """Raised when too few stores of a replicated set succeed (a read or a write)."""

    def __init__(self, action: str, failures: dict[str, Exception]) -> None:
        detail = "; ".join(f"{store}: {error}" for store, error in failures.items())
        super().__init__(f"{action}: {detail}")
        self.action = action
        self.failures = dict(failures)


class StoreAccessDenied(StoreError, PermissionError):
    """Raised when an IPFS node or a pinning service refuses the credentials MedLedger sent
    (HTTP 401 or 403): a missing, wrong or revoked token."""

    def __init__(self, service: str, status: int, detail: str, hint: str) -> None:
        super().__init__(f"{service} refused the credentials (HTTP {status}: {detail}): {hint}")
        self.service = service
        self.status = status


class RemotePinFailed(StoreError):
    """Raised when a pinning service reports that it could not pin a CID (status ``failed``)."""

    def __init__(self, service: str, cid: str, detail: str) -> None:
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"{service} could not pin {cid}{why}: check that it can reach the Kubo nodes, then "
            "run `medledger ipfs remote-pins --retry`"
        )
        self.service = service
        self.cid = cid


# --- FHIR ---------------------------------------------------------------------------------------


class FhirError(MedLedgerError, ValueError):
    """Raised when input is not usable FHIR; the message names the file and what is wrong."""


class FhirParseError(FhirError):
    """Raised when input is not UTF-8 JSON text; names the line and column when JSON has them."""

    def __init__(
        self, source: str, problem: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{source}: not valid JSON: {problem}{where}")
        self.source = source
        self.line = line
        self.column = column


class FhirStructureError(FhirError):
    """Raised when JSON is not a FHIR R4 resource or Bundle MedLedger can split into records."""

    def __init__(self, source: str, problem: str, entry_index: int | None = None) -> None:
        where = f"entry[{entry_index}]: " if entry_index is not None else ""
        super().__init__(f"{source}: {where}{problem}")
        self.source = source
        self.entry_index = entry_index


class FhirValidationError(FhirError):
    """Raised in strict mode when resources do not validate against the FHIR schema models."""

    def __init__(self, source: str, first: list[str], total: int, kinds: int) -> None:
        more = "; ..." if kinds > len(first) else ""
        super().__init__(
            f"{source}: {total} FHIR validation problem(s) of {kinds} kind(s): "
            f"{'; '.join(first)}{more} (without strict mode they are warnings)"
        )
        self.source = source
        self.total = total


class FhirPatientMismatch(FhirError):
    """Raised when one input holds the records of more than one patient."""

    def __init__(self, source: str, location: str, found: str, expected: str) -> None:
        super().__init__(
            f"{source}: {location} names patient {found}, but the input is about patient "
            f"{expected}: one input must hold the records of one patient"
        )
        self.source = source
        self.location = location


class ConsentMismatch(FhirError):
    """Raised when a FHIR ``Consent`` states other terms than the signature it carries covers
    (patient, grantee, scope, purpose, end), or a signed revocation is for another grant than
    the ``Consent`` it is sent for. Nothing was sent."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"Consent: {problem}: nothing was sent")
        self.problem = problem


# --- gateway callers ----------------------------------------------------------------------------


class InvalidScope(MedLedgerError, ValueError):
    """Raised when a requested SMART scope is malformed or names no FHIR R4 resource type."""

    def __init__(self, text: str, problem: str) -> None:
        shown = text if len(text) <= 60 else text[:57] + "..."
        super().__init__(
            f"scope {shown!r} is not a SMART scope MedLedger accepts: {problem} "
            "(for example patient/*.rs or user/Observation.read)"
        )
        self.text = text


class CallerRefused(MedLedgerError, PermissionError):
    """Raised when a caller of the FHIR gateway may not make its request; ``http_status`` is
    what the gateway answers (with an OperationOutcome carrying the message)."""

    http_status: int = 403

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unauthenticated(CallerRefused):
    """Raised when a caller is not signed in: no bearer token, or one that is malformed, stale,
    for another chain or not issued by this server; or a sign-in message that does not prove
    the account (HTTP 401)."""

    http_status = 401


class Forbidden(CallerRefused):
    """Raised when a signed-in caller asks for more than its token's scopes or its live
    standing on chain (grants, own records, the institution) allow (HTTP 403)."""

    http_status = 403


class InvalidRequest(MedLedgerError, ValueError):
    """Raised when a request to the FHIR gateway (a search, a create) is malformed or asks for
    what it does not support (HTTP 400)."""


class NotSupported(MedLedgerError, LookupError):
    """Raised when the gateway does not offer an interaction on a resource type (HTTP 405 or
    404, as the gateway decides)."""


def _short(value: object) -> str:
    text = value.hex() if isinstance(value, bytes) else str(value)
    if isinstance(value, bytes):
        text = "0x" + text
    return text if len(text) <= 70 else text[:66] + "..."
