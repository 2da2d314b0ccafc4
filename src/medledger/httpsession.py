"""HTTP sessions for the package's clients (chain RPC, Kubo, pinning services)."""

from __future__ import annotations

import requests


def session_for(url: str) -> requests.Session:
    """A ``requests`` session for requests to ``url``, with the environment read once.

    By default ``requests`` reads the proxy variables (``HTTPS_PROXY``, ``NO_PROXY``, ...) and
    the CA bundle variables again on every request, which cost 0.3-2 ms of each JSON-RPC call
    here. A client talks to one URL, so they are read here once, for that URL, and kept
    (``trust_env`` off). A ``.netrc`` file is not read: the clients send their own credentials.
    """
    session = requests.Session()
    found = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.trust_env = False
    return session
