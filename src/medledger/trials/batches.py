"""Batches of trial data: one visit's bodies anchored under one Merkle root
(``submitDataBatch``), listed by a public manifest in the one batch format,
:mod:`medledger.sealed.manifest` (context: study, participant, visit, version; issuer: the
site).

The tree is positional (``merkle.IndexedTree``, the contract's ``IndexedMerkle``) and the
declared count is the tree's: a batch proves its bodies at positions ``0 .. count - 1`` only
(``verifyBatchData(..., index, proof)``), never more. Reading a batch trusts nothing in its
manifest: every listed id is rebuilt from the event's fields and each body is proven at its
position against the anchored root under the declared count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger.crypto.merkle import IndexedTree, verify_indexed
from medledger.errors import IntegrityError, MedLedgerError
from medledger.ipfs.cid import Cid
from medledger.sealed import manifest as manifests
from medledger.trials.ids import data_id
from medledger.trials.model import BatchPosition, DataItem
from medledger.trials.reading import trial_registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medledger.chain import Chain
    from medledger.chain.events import Log
    from medledger.ipfs.blockstore import BlockStore
    from medledger.sealed.manifest import Manifest


def batch_manifest(
    chain_id: int,
    registry_address: str,
    site: str,
    study_id: int,
    participant: str,
    visit: bytes,
    version: int,
    bodies: Sequence[tuple[Cid, bytes]],
) -> tuple[bytes, Manifest]:
    """The public manifest of a batch of ``(cid, commitment)`` bodies, listed in tree order
    (its bytes, and parsed: ``.tree`` is the positional tree whose root and ``count`` the site
    declares on chain)."""
    ids = [
        data_id(chain_id, registry_address, study_id, participant, visit, version, cid.digest,
                commitment)
        for cid, commitment in bodies
    ]  # fmt: skip
    context = {"study": study_id, "participant": participant, "visit": "0x" + visit.hex(),
               "version": version}  # fmt: skip
    items = [
        {"id": "0x" + i.hex(), "cid": str(cid), "commitment": "0x" + commitment.hex()}
        for i, (cid, commitment) in zip(ids, bodies, strict=True)
    ]
    return manifests.build(chain_id, registry_address, site, context, items)


def _tree_for(ids: list[bytes], root: bytes, count: int) -> IndexedTree | None:
    """The positional tree, built from a manifest's ids, that proves the first ``count`` of
    them against ``root`` with the declared ``count`` (the ids up to ``count``, or every listed
    id when the site built its tree over more than it declared); ``None`` when neither does."""
    candidates = [ids[:count]] + ([ids] if len(ids) > count else [])
    for candidate in candidates:
        if not candidate:
            continue
        tree = IndexedTree.build(candidate)
        if tree.root == root and all(
            verify_indexed(tree.proof(i), root, candidate[i], i, count)
            for i in range(min(count, tree.count))
        ):
            return tree
    return None


def batch_items(
    chain: Chain, study_id: int, event: Log, manifest: Manifest
) -> tuple[list[DataItem], str | None]:
    """The bodies a batch anchors, from its manifest: each listed id rebuilt from the event's
    fields, and those at positions ``0 .. count - 1`` proven against the anchored root under the
    declared count, exactly as ``verifyBatchData`` would prove them.

    Raise ``IntegrityError`` when the manifest is malformed or does not rebuild the root. With
    the items comes a problem when the manifest lists another number of bodies than the chain
    counts: bodies past ``count`` are not anchored (no proof of them verifies), and positions
    the manifest leaves empty hold nothing the chain counted.
    """
    label = "0x" + event["batchId"].hex()
    try:
        entries = [
            (
                listed,
                Cid.parse(str(i["cid"])),
                bytes.fromhex(str(i["commitment"]).removeprefix("0x")),
            )
            for listed, i in zip(manifest.ids(), manifest.items, strict=True)
        ]
    except (KeyError, TypeError, ValueError, AttributeError, MedLedgerError):
        raise IntegrityError(f"batch {label}: its manifest is not a trial batch manifest") from None
    participant, visit, version = event["participant"], event["visit"], int(event["version"])
    registry_address = trial_registry(chain).address
    for listed, cid, commitment in entries:
        identifier = data_id(
            chain.chain_id, registry_address, study_id, participant, visit, version, cid.digest,
            commitment,
        )  # fmt: skip
        if identifier != listed:
            raise IntegrityError(
                f"batch {label}: manifest entry 0x{listed.hex()} does not match its fields"
            )
    root, count = event["root"], int(event["count"])
    tree = _tree_for([e[0] for e in entries], root, count)
    if tree is None:
        raise IntegrityError(f"batch {label}: its manifest does not rebuild the anchored root")
    when = event.time(chain)
    items = [
        DataItem(
            id=identifier, study_id=study_id, participant=participant, visit=visit,
            version=version, cid=cid, commitment=commitment, site=event["site"],
            submitted_at=when, block=event.block, log_index=event.index,
            transaction_hash=event.transaction_hash, batch=event["batchId"],
            position=BatchPosition(root, count, index, tuple(tree.proof(index))),
        )
        for index, (identifier, cid, commitment) in enumerate(entries[:count])
    ]  # fmt: skip
    problem = None
    if len(entries) > count:
        problem = (
            f"batch {label}: its manifest lists {len(entries)} bodies but the chain counts "
            f"{count}: the bodies past position {count - 1} are not anchored"
        )
    elif len(entries) < count:
        problem = (
            f"batch {label}: the chain counts {count} bodies but its manifest lists only "
            f"{len(entries)}"
        )
    return items, problem


def manifest_items(
    chain: Chain, store: BlockStore, study_id: int, event: Log
) -> tuple[list[DataItem], str | None]:
    """The bodies of a ``DataBatchSubmitted`` event, from its manifest in the store (see
    :func:`batch_items`); a manifest the store cannot serve raises its ``StoreError``."""
    cid = Cid.from_digest_v0(event["manifestDigest"])
    try:
        manifest = manifests.parse(store.cat(cid))
    except IntegrityError as exc:
        raise IntegrityError(f"batch 0x{event['batchId'].hex()}: manifest {cid}: {exc}") from None
    return batch_items(chain, study_id, event, manifest)
