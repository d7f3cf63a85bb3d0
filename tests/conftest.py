"""Fixtures shared by rxcast's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLIENT_TLS_DIR = "RXCAST_CLIENT_TLS_DIR"
CLIENT_IDENTITY = "RXCAST_CLIENT_IDENTITY"
#: The tests' own identity: they stand in for every caller at once, the people
#: (admin) and the trainer (the only one that registers drift references).
TESTER = "tester"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session", autouse=True)
def trust_dir(tmp_path_factory) -> Path:
    """One local CA, certificates, tokens and roles file for the whole session.

    The tests' clients call as `tester` (admin and publish) with it, unless a
    test picks another identity, and every service a test starts through
    rxcast.suite.launcher gets the same directory: they serve TLS with client
    certificates and check roles, as deployed.
    """
    from rxcast.runtime import auth, certs

    folder = certs.make(tmp_path_factory.mktemp("trust"), {**auth.IDENTITIES, TESTER: (auth.ADMIN, auth.PUBLISH)})
    settings = {CLIENT_TLS_DIR: str(folder), CLIENT_IDENTITY: TESTER}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield folder
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
