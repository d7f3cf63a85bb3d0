"""TLS on every connection: what a process presents and trusts, for servers and clients.

Every server serves TLS with its own certificate and, by default, requires a
client certificate signed by the same CA (mTLS); every client checks the
server against that CA, shows its own certificate and sends its bearer token
(rxcast.runtime.auth). `make certs` writes the files into one directory:

    ca.crt                      the CA every process trusts
    <identity>.crt, .key        one per service and per role (reader, ingester, operator, admin)
    <identity>.token            the identity's bearer token
    roles.json                  sha256 of each token → identity and roles (the servers' copy)

A service takes its files from its settings (`--tls-dir`, or each file on
its own), with its service name as identity; the clients it opens use the same.
Other processes (the demo, CLIs, benchmarks, tests) take theirs from
RXCAST_CLIENT_* variables (ClientSettings; identity `admin` by default).
Plaintext (no TLS, no tokens, every call allowed) only when a setting says so.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rxcast.runtime import auth
from rxcast.runtime.config import ServerSettings
from rxcast.runtime.errors import InvalidArgument

CA_FILE = "ca.crt"
ROLES_FILE = "roles.json"


def cert_name(identity: str) -> str:
    return f"{identity}.crt"


def key_name(identity: str) -> str:
    return f"{identity}.key"


def token_name(identity: str) -> str:
    return f"{identity}.token"


@dataclass(frozen=True, repr=False)
class Trust:
    """One process's credentials: the CA it trusts, its certificate and key, its token."""

    plaintext: bool = False
    identity: str = ""
    ca_path: str = ""
    cert_path: str = ""
    key_path: str = ""
    token: str = ""
    roles_path: str = ""
    require_client_cert: bool = True
    ca: bytes = b""
    cert: bytes = b""
    key: bytes = b""

    def __repr__(self) -> str:
        # Never the token or the key: a Trust may end up in a log line or a traceback.
        mode = "plaintext" if self.plaintext else f"tls ca={self.ca_path} cert={self.cert_path}"
        return f"Trust({self.identity or '-'}, {mode})"


PLAINTEXT = Trust(plaintext=True)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(
            f"{what} {path}: {exc.strerror or exc}; `make certs` writes the files, --plaintext goes without"
        ) from None


def load(
    identity: str,
    *,
    plaintext: bool = False,
    tls_dir: str = "certs",
    ca_file: str = "",
    cert_file: str = "",
    key_file: str = "",
    token_file: str = "",
    token: str = "",
    roles_file: str = "",
    require_client_cert: bool = True,
    need_token: bool = True,
) -> Trust:
    """Read an identity's files; each path empty means its place in `tls_dir`
    (the token's only if `need_token`: a health check sends none)."""
    if plaintext:
        return Trust(plaintext=True, identity=identity)
    folder = Path(tls_dir)
    ca_path = ca_file or str(folder / CA_FILE)
    cert_path = cert_file or str(folder / cert_name(identity))
    key_path = key_file or str(folder / key_name(identity))
    if not token and need_token:
        token = _read(token_file or str(folder / token_name(identity)), "token file").decode().strip()
    return Trust(
        identity=identity,
        ca_path=ca_path,
        cert_path=cert_path,
        key_path=key_path,
        token=token,
        roles_path=roles_file or str(folder / ROLES_FILE),
        require_client_cert=require_client_cert,
        ca=_read(ca_path, "CA certificate"),
        cert=_read(cert_path, "certificate"),
        key=_read(key_path, "private key"),
    )


def for_service(config: ServerSettings, identity: str) -> Trust:
    """A service's credentials from its settings."""
    return load(
        identity,
        plaintext=config.plaintext,
        tls_dir=config.tls_dir,
        ca_file=config.tls_ca_file,
        cert_file=config.tls_cert_file,
        key_file=config.tls_key_file,
        token_file=config.token_file,
        roles_file=config.roles_file,
        require_client_cert=config.require_client_cert,
    )


class ClientSettings(BaseSettings):
    """Credentials of a process that only calls services: RXCAST_CLIENT_<SETTING>."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="RXCAST_CLIENT_")

    plaintext: bool = Field(False, description="call without TLS or token (servers started with --plaintext)")
    tls_dir: str = Field("certs", description="where `make certs` wrote the CA, certificates and tokens")
    identity: str = Field("admin", description="whose certificate and token to use (a file stem in tls_dir)")
    ca_file: str = Field("", description="CA certificate; empty: <tls_dir>/ca.crt")
    cert_file: str = Field("", description="client certificate; empty: <tls_dir>/<identity>.crt")
    key_file: str = Field("", description="client key; empty: <tls_dir>/<identity>.key")
    token_file: str = Field("", description="bearer token file; empty: <tls_dir>/<identity>.token")
    token: str = Field("", description="the bearer token itself, instead of a file", repr=False)

    def trust(self, need_token: bool = True) -> Trust:
        return load(
            self.identity,
            plaintext=self.plaintext,
            tls_dir=self.tls_dir,
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
            token_file=self.token_file,
            token=self.token,
            need_token=need_token,
        )


_process_trust: Trust | None = None
_process_lock = threading.Lock()


def use_for_clients(trust: Trust | None) -> None:
    """Make `trust` what clients in this process use unless told otherwise (a service's own)."""
    global _process_trust
    with _process_lock:
        _process_trust = trust


def client_trust() -> Trust:
    """The credentials clients use by default: the service's own, else RXCAST_CLIENT_*."""
    return _process_trust if _process_trust is not None else ClientSettings().trust()


def channel(target: str, trust: Trust | None = None, options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    """A raw channel to `target` with `trust`'s transport (no token: see rxcast.runtime.channels)."""
    trust = client_trust() if trust is None else trust
    if trust.plaintext:
        return grpc.insecure_channel(target, options=list(options))
    credentials = grpc.ssl_channel_credentials(trust.ca, trust.key or None, trust.cert or None)
    return grpc.secure_channel(target, credentials, options=list(options))


def metadata(trust: Trust) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries `trust`'s token."""
    return auth.bearer_metadata(trust.token) if trust.token else ()


def add_port(server: grpc.Server, address: str, trust: Trust) -> int:
    """Bind `server` to `address` with `trust`'s transport; returns the port (0 if binding failed)."""
    if trust.plaintext:
        return server.add_insecure_port(address)
    credentials = grpc.ssl_server_credentials(
        [(trust.key, trust.cert)], root_certificates=trust.ca, require_client_auth=trust.require_client_cert
    )
    return server.add_secure_port(address, credentials)
