"""MedLedger: blockchain-anchored medical records.

Record bodies (HL7 FHIR R4 JSON) are encrypted on the client and stored in IPFS; Solidity
contracts on an EVM chain hold only pointers, integrity commitments, access grants and claim
state. The ``medledger`` command line and the Ape scripts are thin layers over this package.
"""

import os

# eth-hash picks pycryptodome's keccak first when both are installed; its pysha3 backend
# (safe-pysha3, a dependency) is about 7x faster per call, and record ids, Merkle trees and
# checksummed addresses hash several times per record. An explicit setting is respected.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

__version__ = "0.1.0"
