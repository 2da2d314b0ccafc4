"""The FHIR R4 gateway (``medledger serve``): MedLedger over FHIR's REST API, run by an
institution next to its EHR with the institution's own account.

Who is calling: Sign-In with Ethereum (:mod:`~medledger.gateway.auth`, the client side in
:mod:`~medledger.gateway.signin`), bearer tokens (:mod:`~medledger.gateway.tokens`), SMART
scopes cut down to the caller's live standing on chain (:mod:`~medledger.gateway.scopes`,
:mod:`~medledger.gateway.standing`). Serving: the ASGI app and its routes
(:mod:`~medledger.gateway.app`, :mod:`~medledger.gateway.handlers`), records read and searched
through the export path (:mod:`~medledger.gateway.serving`, :mod:`~medledger.gateway.queries`)
and created through the anchoring path (:mod:`~medledger.gateway.creating`,
:mod:`~medledger.gateway.provenance`), what chain state makes (:mod:`~medledger.gateway.consents`,
:mod:`~medledger.gateway.financial`), Bulk Data (:mod:`~medledger.gateway.bulk`), the
CapabilityStatement and errors (:mod:`~medledger.gateway.capability`,
:mod:`~medledger.gateway.outcomes`), the running server (:mod:`~medledger.gateway.server`).
"""
