"""Fixtures: one server for the whole session (see support.PhrServer), with a public and a
confidential test application registered through `phr app register`."""

import json
import os

import pytest

from support import CONFIDENTIAL_SCOPE, PUBLIC_SCOPE, REDIRECT_URI, PhrServer


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("PHR_BIN")
    if not binary:
        raise RuntimeError("set PHR_BIN to the phr binary (tests/python/run does)")
    phr = PhrServer(binary)
    try:
        phr.admin(
            "app", "register", "--id", "py-public", "--name", "Python test app",
            "--scope", PUBLIC_SCOPE, "--redirect-uri", REDIRECT_URI,
        )
        registered = phr.admin(
            "app", "register", "--id", "py-confidential", "--name", "Python backend app",
            "--scope", CONFIDENTIAL_SCOPE, "--redirect-uri", REDIRECT_URI,
            "--client-type", "confidential", "--json",
        )
        phr.confidential_secret = json.loads(registered.stdout)["client_secret"]
        yield phr
    finally:
        phr.stop()


