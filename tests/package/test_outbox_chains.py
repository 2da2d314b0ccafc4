"""The outbox names a configured chain by its id and genesis hash: two chains that share an
id (a test node restarted, a testnet reset) are two chains, and nothing signed for one is ever
sent to the other. Both nodes here are real Anvil processes on 127.0.0.1."""

from __future__ import annotations

from evm_nodes import anvil_node

from medledger.chain import Chain
from medledger.chain import outbox as journal
from medledger.config import load_settings


def connect(home, url: str) -> Chain:
    (home / "config.toml").write_text(f'[networks.ward]\nrpc = "{url}"\n')
    return Chain(load_settings(home), "ward")


def test_a_chain_restarted_under_the_same_id_is_another_chain_in_the_outbox(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    box = journal.open_outbox(home)
    legacy = "chain-31337"  # how versions before this one named any chain of id 31337
    box.add(legacy, "0x" + "11" * 20, "an old write", [("0x" + "ab" * 32, 7, "0x00")])
    with anvil_node(tmp_path / "first.log") as url:
        first = connect(home, url)
        first_key = first.journal_key
    # Restarted later: another genesis time (two starts in one second share a genesis).
    with anvil_node(tmp_path / "second.log", extra=("--timestamp", "1700000000")) as url:
        second = connect(home, url)
        second_key = second.journal_key
    assert first.chain_id == second.chain_id == 31337
    assert first.genesis_hash != second.genesis_hash
    assert first_key != second_key
    # The rows of the old name went to the first chain seen, and only to it.
    assert [e.hash for e in box.entries(first_key)] == ["0x" + "ab" * 32]
    assert box.entries(second_key) == []
    assert box.entries(legacy) == []
