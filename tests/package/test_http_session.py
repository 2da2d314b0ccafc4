"""The clients' HTTP sessions read the proxy settings once, as requests would on each call."""

from __future__ import annotations

import pytest
import requests

from medledger.httpsession import session_for


@pytest.mark.parametrize(
    ("url", "proxied"),
    [("http://node.example:8545", True), ("http://127.0.0.1:8545", False)],
)
def test_proxy_settings_are_the_ones_requests_would_use(monkeypatch, url, proxied):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    session = session_for(url)
    oracle = requests.Session().merge_environment_settings(url, {}, None, None, None)
    assert session.proxies == oracle["proxies"]
    assert ("http" in session.proxies) is proxied
    assert session.trust_env is False


def test_a_ca_bundle_from_the_environment_is_kept(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert session_for("https://node.example").verify == str(bundle)
