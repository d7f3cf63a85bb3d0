"""Make a local CA, a certificate, key and bearer token per identity, and the roles file.

python -m rxcast.runtime.certs [--out certs] [--force]   (what `make certs` runs)

For development, the tests and docker compose: a real deployment gets its
certificates from its own CA and its tokens from its secret store, in the same
layout (rxcast.runtime.tls). Keys are ECDSA P-256; every certificate serves
and identifies a client (a service is both), with the names it is reached by
(its compose names, localhost, 127.0.0.1) as subject alternative names. An
existing directory is kept unless --force; identities it lacks are added.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rxcast.runtime import auth, tls

VALID_DAYS = 365
CA_KEY_FILE = "ca.key"
#: Host names each identity is reached by beyond its own name (compose service names).
HOST_NAMES: Mapping[str, tuple[str, ...]] = {"predictor": ("predictor-online", "predictor-batch")}
_LOOPBACK = ("localhost",)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rxcast"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    # Secrets are created 0600 from the start, never readable by others in between.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _ca(now: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("rxcast local CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    identity: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, now: datetime.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [identity, *HOST_NAMES.get(identity, ()), *_LOOPBACK]
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(identity))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def make(out: Path, identities: Mapping[str, Sequence[str]] = auth.IDENTITIES) -> Path:
    """Write the CA, each identity's certificate, key and token, and the roles file into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ca_cert = _ca(now)
    _write(out / tls.CA_FILE, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(out / CA_KEY_FILE, _pem_key(ca_key), private=True)
    _issue(out, identities, ca_key, ca_cert, now, roles={})
    return out


def add_missing(out: Path, identities: Mapping[str, Sequence[str]] = auth.IDENTITIES) -> list[str]:
    """Issue, with the CA already in `out`, the identities it lacks (a release
    that adds one keeps everyone else's files); returns their names."""
    roles = json.loads((out / tls.ROLES_FILE).read_text())["identities"]
    missing = {name: granted for name, granted in identities.items() if name not in roles}
    if missing:
        ca_key = serialization.load_pem_private_key((out / CA_KEY_FILE).read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate((out / tls.CA_FILE).read_bytes())
        _issue(out, missing, ca_key, ca_cert, datetime.datetime.now(datetime.UTC), roles=roles)
    return list(missing)


def _issue(
    out: Path,
    identities: Mapping[str, Sequence[str]],
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: datetime.datetime,
    roles: dict[str, dict],
) -> None:
    for identity, granted in identities.items():
        key, cert = _leaf(identity, ca_key, ca_cert, now)
        token = secrets.token_urlsafe(32)
        _write(out / tls.cert_name(identity), cert.public_bytes(serialization.Encoding.PEM))
        _write(out / tls.key_name(identity), _pem_key(key), private=True)
        _write(out / tls.token_name(identity), token.encode() + b"\n", private=True)
        roles[identity] = {"token_sha256": auth.digest(token), "roles": list(granted)}
    # The roles file last: a server never reads a token digest whose files are not written.
    _write(out / tls.ROLES_FILE, json.dumps({"identities": roles}, indent=2).encode() + b"\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("certs"), help="directory to write (default: certs)")
    parser.add_argument("--force", action="store_true", help="replace an existing CA and every identity's files")
    args = parser.parse_args(argv)
    if (args.out / tls.CA_FILE).exists() and not args.force:
        added = add_missing(args.out)
        print(f"{args.out}: already holds a CA{'; added ' + ', '.join(added) if added else ''}; --force makes new ones")
        return 0
    make(args.out)
    print(f"{args.out}: CA, {len(auth.IDENTITIES)} identities ({', '.join(auth.IDENTITIES)}), {tls.ROLES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
