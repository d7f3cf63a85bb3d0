"""Fixtures shared by rxcast's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


#: Where each process of a test session reads its credentials from: the services'
#: RXCAST_<SERVICE>_TLS_DIR and the test process's own clients' RXCAST_CLIENT_TLS_DIR.
TLS_DIR_VARIABLES = tuple(f"RXCAST_{who}_TLS_DIR" for who in ("FEATURE", "TRAINER", "DRIFT", "PREDICTOR", "CLIENT"))


@pytest.fixture(scope="session", autouse=True)
def trust_dir(tmp_path_factory) -> Path:
    """One local CA, certificates, tokens and roles file for the whole session.

    Every service a test starts (they inherit the environment) serves TLS with
    client certificates and checks roles, as deployed; the tests' own clients
    call as `admin` unless a test picks another identity.
    """
    from rxcast.runtime import certs

    folder = certs.make(tmp_path_factory.mktemp("trust"))
    saved = {name: os.environ.get(name) for name in TLS_DIR_VARIABLES}
    os.environ.update(dict.fromkeys(TLS_DIR_VARIABLES, str(folder)))
    yield folder
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
