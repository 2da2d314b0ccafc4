"""Errors as FHIR ``OperationOutcome``s: the HTTP status and issue code each kind of error
gets, with the same one-line reason the CLI prints."""

from __future__ import annotations

from typing import Any

from medledger import errors

_STATUS: list[tuple[type[Exception], int, str]] = [
    (errors.Unauthenticated, 401, "login"),
    (errors.CallerRefused, 403, "forbidden"),
    (errors.AccessRefused, 403, "forbidden"),
    (errors.SignerRefused, 403, "forbidden"),
    (errors.NotSupported, 405, "not-supported"),
    (errors.DuplicateClaim, 409, "duplicate"),
    (errors.FhirParseError, 400, "structure"),
    (errors.FhirStructureError, 400, "structure"),
    (errors.FhirError, 422, "processing"),
    (errors.PreconditionFailed, 422, "business-rule"),
    (errors.TransactionReverted, 422, "business-rule"),
    (errors.TransactionRejected, 422, "business-rule"),
    (errors.NodeUnavailable, 503, "transient"),
    (errors.StoreError, 503, "transient"),
    (LookupError, 404, "not-found"),  # RecordNotFound, PatientNotFound, PolicyNotFound, ...
    (ValueError, 400, "invalid"),  # InvalidRequest, InvalidAddress, InvalidScope, ...
]


def status_of(error: errors.MedLedgerError) -> tuple[int, str]:
    """The HTTP status and FHIR issue type for ``error``."""
    for kind, status, code in _STATUS:
        if isinstance(error, kind):
            return status, code
    return 400, "processing"


def outcome(message: str, code: str, severity: str = "error") -> dict[str, Any]:
    """An ``OperationOutcome`` of one issue."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }
