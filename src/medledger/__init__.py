"""MedLedger: blockchain-anchored medical records.

Record bodies (HL7 FHIR R4 JSON) are encrypted on the client and stored in IPFS; Solidity
contracts on an EVM chain hold only pointers, integrity commitments, access grants and claim
state. The ``medledger`` command line and the Ape scripts are thin layers over this package.
"""

__version__ = "0.1.0"
