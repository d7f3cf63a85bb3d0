"""Fixtures shared by rxcast's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLIENT_TLS_DIR = "RXCAST_CLIENT_TLS_DIR"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session", autouse=True)
def trust_dir(tmp_path_factory) -> Path:
    """One local CA, certificates, tokens and roles file for the whole session.

    The tests' clients call as `admin` with it (RXCAST_CLIENT_TLS_DIR) and every
    service a test starts through rxcast.suite.launcher gets the same directory:
    they serve TLS with client certificates and check roles, as deployed.
    """
    from rxcast.runtime import certs

    folder = certs.make(tmp_path_factory.mktemp("trust"))
    saved = os.environ.get(CLIENT_TLS_DIR)
    os.environ[CLIENT_TLS_DIR] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop(CLIENT_TLS_DIR, None)
    else:
        os.environ[CLIENT_TLS_DIR] = saved
