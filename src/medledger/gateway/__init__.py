"""The FHIR gateway's side of who is calling: Sign-In with Ethereum (EIP-4361) challenges and
sign-in (:mod:`~medledger.gateway.auth`), short-lived bearer tokens
(:mod:`~medledger.gateway.tokens`), SMART scopes cut down to the caller's live standing on
chain (:mod:`~medledger.gateway.scopes`, :mod:`~medledger.gateway.standing`)."""
