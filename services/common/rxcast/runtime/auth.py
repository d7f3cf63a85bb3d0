"""Who may call what: bearer tokens mapped to identities and roles, checked per RPC.

A caller sends `authorization: Bearer <token>`. The server knows tokens only
by their sha256 (the roles file `make certs` writes: digest → identity and
roles), so the file on the server gives no token away. Each service declares
the role every RPC needs in a RoleTable next to its servicer; the server
interceptor asks the Authorizer before the servicer runs, and the call ends
UNAUTHENTICATED without a known token, PERMISSION_DENIED without the role.
Health checks are public (TLS still applies); reflection needs `read`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rxcast.runtime.errors import InvalidArgument, PermissionDenied, Unauthenticated

#: Forecasts, features, model versions, reports and every other listing.
READ = "read"
#: Writing data in: inventory records, prediction and actual logs.
INGEST = "ingest"
#: Changing what is served: training, aliases, rollback, batch runs, materialization.
OPERATE = "operate"
#: Everything read, ingest and operate allow.
ADMIN = "admin"
#: Registering a drift reference: the trainer's own role, not granted by admin.
PUBLISH = "publish"
#: No credentials needed (health checks).
PUBLIC = ""

ROLES = (READ, INGEST, OPERATE, ADMIN, PUBLISH)
_IMPLIED = {ADMIN: (READ, INGEST, OPERATE)}

#: The identities `make certs` issues and the roles each holds: the services
#: (for the calls they make to each other) and one per role for people and tools.
IDENTITIES: Mapping[str, tuple[str, ...]] = {
    "feature": (),
    "trainer": (READ, PUBLISH),
    "drift": (READ, OPERATE),
    "predictor": (READ, INGEST),
    # Reads only: its pages' actions carry the operator's own token.
    "dashboard": (READ,),
    "reader": (READ,),
    "ingester": (INGEST,),
    "operator": (OPERATE,),
    "admin": (ADMIN,),
}

AUTHORIZATION_HEADER = "authorization"
_BEARER = "Bearer "

# Services every server runs, beside the app's own.
_BUILT_IN = {
    "/grpc.health.v1.Health/": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/": READ,
    "/grpc.reflection.v1.ServerReflection/": READ,
}


@dataclass(frozen=True)
class RoleTable:
    """The role each RPC of one gRPC service needs."""

    service: str
    roles: Mapping[str, str]

    def __post_init__(self) -> None:
        unknown = {m: r for m, r in self.roles.items() if r not in (*ROLES, PUBLIC)}
        if unknown:
            raise ValueError(f"{self.service}: unknown roles {unknown}")

    def paths(self) -> dict[str, str]:
        return {f"/{self.service}/{method}": role for method, role in self.roles.items()}


@dataclass(frozen=True)
class Identity:
    name: str
    roles: frozenset[str]

    def may(self, role: str) -> bool:
        return role == PUBLIC or role in self.roles


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def granted(roles: Iterable[str]) -> frozenset[str]:
    """`roles` with what each implies (admin: read, ingest, operate)."""
    out = set(roles)
    for role in list(out):
        out.update(_IMPLIED.get(role, ()))
    return frozenset(out)


def bearer_metadata(token: str) -> tuple[tuple[str, str]]:
    return ((AUTHORIZATION_HEADER, _BEARER + token),)


def bearer(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key == AUTHORIZATION_HEADER and isinstance(value, str):
            return value[len(_BEARER) :] if value.startswith(_BEARER) else None
    return None


class Authorizer:
    """Maps tokens to identities and RPCs to the roles they need."""

    def __init__(self, identities: Mapping[str, Identity]):
        self._by_digest = dict(identities)
        self._required: dict[str, str] = {}

    @classmethod
    def load(cls, path: str | Path) -> Authorizer:
        """Read a roles file: {"identities": {name: {"token_sha256": hex, "roles": [...]}}}."""
        try:
            raw = json.loads(Path(path).read_text())
            identities = {
                entry["token_sha256"]: Identity(name, granted(entry["roles"]))
                for name, entry in raw["identities"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidArgument(f"roles file {path}: cannot read it ({type(exc).__name__}: {exc})") from None
        return cls(identities)

    def require(self, tables: Sequence[RoleTable]) -> None:
        for table in tables:
            self._required.update(table.paths())

    def role_for(self, method: str) -> str | None:
        """The role `method` (a /service/Method path) needs; None if no table names it."""
        role = self._required.get(method)
        if role is not None:
            return role
        for prefix, role in _BUILT_IN.items():
            if method.startswith(prefix):
                return role
        return None

    def unlisted(self, methods: Iterable[str]) -> list[str]:
        return [m for m in methods if self.role_for(m) is None]

    def identify(self, token: str | None) -> Identity:
        if not token:
            raise Unauthenticated("no bearer token (metadata 'authorization: Bearer <token>')")
        identity = self._by_digest.get(digest(token))
        if identity is None:
            raise Unauthenticated("unknown bearer token")
        return identity

    def check(self, role: str, metadata: Iterable[tuple[str, str | bytes]]) -> Identity | None:
        """The caller's identity if it holds `role`; raises Unauthenticated or PermissionDenied."""
        if role == PUBLIC:
            return None
        identity = self.identify(bearer(metadata))
        if not identity.may(role):
            raise PermissionDenied(f"{identity.name} lacks the {role!r} role")
        return identity

    def checker(self, method: str) -> Callable[[Iterable[tuple[str, str | bytes]]], Identity | None]:
        """The check for one method, resolved once; a method no table lists is admin-only."""
        role = self.role_for(method)
        required = ADMIN if role is None else role
        return lambda metadata: self.check(required, metadata)
