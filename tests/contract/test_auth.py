"""Who may call what, on the real suite: every RPC of every process called by
each role's identity (allowed exactly where the RPC's role table says, else
PERMISSION_DENIED), without a token (UNAUTHENTICATED), without TLS or without a
client certificate (refused at the handshake), /metrics likewise, and a
service that refuses to start without its certificates unless told plaintext.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from dataclasses import replace

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rxcast.runtime import auth, certs, tls
from rxcast.runtime.channels import connect
from rxcast.suite.launcher import ServiceProcess
from rxcast.suite.topology import start_suite
from tests.contract.test_services_answer import DECLARED, REQUIRED, _call
from tests.scrape import scrape

#: The identities a person or tool is given, one per role, and the trainer (the only publisher).
CALLERS = ("reader", "ingester", "operator", "admin", "trainer")
REFUSED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth-suite")
    running = start_suite(root / "run", root / "data")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """Credentials from another CA: a certificate and token the suite has never seen."""
    folder = certs.make(tmp_path_factory.mktemp("stranger"), {"admin": (auth.ADMIN,)})
    return tls.ClientSettings(tls_dir=str(folder), identity="admin").trust()


def _trust(identity: str) -> tls.Trust:
    return tls.ClientSettings(identity=identity).trust()


def _health(channel: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


@pytest.mark.parametrize("name", list(DECLARED))
def test_each_role_may_call_exactly_its_rpcs(suite, name):
    problems = []
    for identity in CALLERS:
        holds = auth.granted(auth.IDENTITIES[identity])
        with connect(suite[name].address, default_timeout=30.0, trust=_trust(identity)) as channel:
            for service in DECLARED[name]:
                for method in service.methods:
                    role = REQUIRED[f"/{service.full_name}/{method.name}"]
                    code = _call(channel, service, method)
                    if role in holds and code in REFUSED:
                        problems.append(f"{identity} refused {method.name} ({role}): {code.name}")
                    if role not in holds and code != grpc.StatusCode.PERMISSION_DENIED:
                        problems.append(f"{identity} not denied {method.name} ({role}): {code.name}")
    assert not problems, "\n".join(problems)


def test_only_the_trainer_registers_a_drift_reference():
    assert REQUIRED["/rxcast.drift.v1.DriftService/RegisterReference"] == auth.PUBLISH
    publishers = [who for who, roles in auth.IDENTITIES.items() if auth.PUBLISH in auth.granted(roles)]
    assert publishers == ["trainer"]


@pytest.mark.parametrize("name", list(DECLARED))
def test_without_a_known_token_every_rpc_is_unauthenticated(suite, name, stranger):
    no_token = replace(_trust("admin"), token="")
    unknown = replace(_trust("admin"), token=stranger.token)
    for trust in (no_token, unknown):
        with connect(suite[name].address, default_timeout=30.0, trust=trust) as channel:
            for service in DECLARED[name]:
                for method in service.methods:
                    assert _call(channel, service, method) == grpc.StatusCode.UNAUTHENTICATED, method.name
            # Health stays open to anyone who got through the handshake.
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_the_handshake_refuses_plaintext_missing_and_foreign_certificates(suite, stranger):
    admin = _trust("admin")
    address = suite["feature"].address
    attempts = {
        "plaintext client": tls.PLAINTEXT,
        "no client certificate": replace(admin, cert=b"", key=b""),
        "certificate of another CA": replace(stranger, ca=admin.ca),
        "server not trusted (another CA)": replace(admin, ca=stranger.ca),
    }
    for what, trust in attempts.items():
        with tls.channel(address, trust) as channel:
            with pytest.raises(grpc.RpcError) as info:
                _health(channel)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, what
    with tls.channel(address, admin) as channel:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_metrics_need_tls_a_certificate_and_a_reader(suite):
    port = suite["trainer"].metrics_port
    status, text = scrape(port, _trust("reader"))
    assert status == 200 and "rxcast_rpc_handled_total" in text
    assert scrape(port, _trust("reader"), token="")[0] == 401
    assert scrape(port, _trust("reader"), token="not-a-token")[0] == 401
    assert scrape(port, _trust("ingester"))[0] == 403
    # Refused at the handshake: no client certificate, or no TLS at all.
    failures = (ssl.SSLError, ConnectionError, http.client.HTTPException)
    with pytest.raises(failures):
        scrape(port, replace(_trust("reader"), cert_path="", key_path=""))
    with pytest.raises(failures):
        scrape(port, plain_http=True)


def test_tokens_never_reach_the_logs(suite):
    tokens = [_trust(identity).token for identity in auth.IDENTITIES]
    logs = {p.name: p.log_path.read_text(errors="replace") for p in suite.processes.values()}
    assert any('"event": "rpc"' in text for text in logs.values()), "no access log to look in"
    for name, text in logs.items():
        assert not [t for t in tokens if t in text], f"{name} logged a token"


def test_a_service_without_its_certificates_refuses_to_start_unless_plaintext(tmp_path):
    empty = tmp_path / "no-certs"
    empty.mkdir()
    refused = subprocess.run(
        [sys.executable, "-m", "rxcast.drift", "--data-dir", str(tmp_path / "d1"), "--tls-dir", str(empty)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert "make certs" in refused.stderr and "--plaintext" in refused.stderr

    process = ServiceProcess("drift", tmp_path / "run", ["--data-dir", str(tmp_path / "d2"), "--plaintext", "true"])
    process.start().wait_ready()
    try:
        with grpc.insecure_channel(process.address) as channel:
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
            stub = channel.unary_unary("/rxcast.drift.v1.DriftService/ListAlerts")
            stub(b"", timeout=10)  # no token, no certificate: anyone may
    finally:
        process.stop()


def test_the_servers_roles_file_holds_digests_not_tokens(trust_dir):
    text = (trust_dir / tls.ROLES_FILE).read_text()
    entries = json.loads(text)["identities"]
    assert set(auth.IDENTITIES) <= set(entries)
    for identity, granted in auth.IDENTITIES.items():
        token = _trust(identity).token
        assert token not in text
        assert entries[identity] == {"token_sha256": auth.digest(token), "roles": list(granted)}
        for secret in (tls.token_name(identity), tls.key_name(identity)):
            assert (trust_dir / secret).stat().st_mode & 0o777 == 0o600, secret


def test_make_certs_adds_the_identities_an_existing_directory_lacks(tmp_path):
    folder = certs.make(tmp_path / "certs", {"admin": (auth.ADMIN,)})
    admin_before = (folder / tls.cert_name("admin")).read_bytes()
    assert certs.main(["--out", str(folder)]) == 0
    entries = json.loads((folder / tls.ROLES_FILE).read_text())["identities"]
    assert set(entries) == set(auth.IDENTITIES)
    # Everyone else keeps their files; the new ones are signed by the same CA.
    assert (folder / tls.cert_name("admin")).read_bytes() == admin_before
    added = tls.ClientSettings(tls_dir=str(folder), identity="dashboard").trust()
    assert entries["dashboard"] == {"token_sha256": auth.digest(added.token), "roles": [auth.READ]}
    x509.load_pem_x509_certificate(added.cert).verify_directly_issued_by(x509.load_pem_x509_certificate(added.ca))
    assert certs.add_missing(folder) == []
