"""Bearer tokens scoped to tenants: the token file, the server interceptor, the scope checks.

A token file holds one JSON object per line, ``{"sha256": "<hex>", "tenants": ["t1", "t2"] | "*",
"created": "<ISO time>"}``: only the SHA-256 of each token is stored. Tokens are 32 random bytes,
so a plain hash is enough (no slow KDF: there is nothing to brute-force). The interceptor answers
UNAUTHENTICATED for a missing or unknown token (health checks stay open for load balancers) and
runs each handler with the caller's ``Scope`` in a context variable, which the servicer checks
against every tenant a call carries or names (``check_tables``, ``check_dataset``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyarrow as pa
from grpc_health.v1 import health_pb2

from licensecore.server.datasets import tenants_by_table
from licensecore.server.errors import LicenseCoreError, PermissionDenied, Unauthenticated
from licensecore.server.status import status_for

ALL_TENANTS = "*"
TOKENS_ENV = "LICENSECORE_TOKENS"  # token file path when --tokens is not given
# Services callable without a token: load balancers and orchestrators probe health unauthenticated.
OPEN_SERVICES = frozenset({health_pb2.DESCRIPTOR.services_by_name["Health"].full_name})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SHOWN = 5  # tenants named in a refusal
_SHOWN_CHARS = 64  # characters of each named tenant (tenant ids may be hostile megabytes)


class TokenFileError(LicenseCoreError):
    """The token file cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Scope:
    """The tenants a caller may see; ``tenants`` None means every tenant ("*")."""

    tenants: frozenset[str] | None


EVERY_TENANT = Scope(None)
_SCOPE: contextvars.ContextVar[Scope] = contextvars.ContextVar("licensecore_scope", default=EVERY_TENANT)


def hash_token(token: str) -> str:
    """The hex SHA-256 of ``token``, as stored in the token file."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    """The tokens read from a token file, as (SHA-256 digest, scope) pairs."""

    def __init__(self, entries: Iterable[tuple[bytes, Scope]]) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenRegistry:
        """Read a token file; raise ``TokenFileError`` naming file and line for a malformed line."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"{path}: cannot read the token file ({exc})") from None
        entries, seen = [], set()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                digest, scope = _parse_line(line)
            except ValueError as exc:
                raise TokenFileError(f"{path}, line {number}: {exc}") from None
            if digest in seen:
                raise TokenFileError(f"{path}, line {number}: the same token hash appears twice")
            seen.add(digest)
            entries.append((digest, scope))
        return cls(entries)

    def scope_for(self, token: str) -> Scope | None:
        """The scope of ``token``, None when unknown; every entry is compared in constant time."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for known, scope in self._entries:
            if hmac.compare_digest(known, digest):
                found = scope
        return found


def _parse_line(line: str) -> tuple[bytes, Scope]:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON object ({exc.msg})") from None
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ValueError('"sha256" must be 64 lowercase hex digits (the SHA-256 of the token)')
    tenants = entry.get("tenants")
    if tenants == ALL_TENANTS:
        return bytes.fromhex(digest), EVERY_TENANT
    if (not isinstance(tenants, list) or not tenants
            or not all(isinstance(t, str) and t for t in tenants)):
        raise ValueError('"tenants" must be "*" or a non-empty list of tenant ids')
    return bytes.fromhex(digest), Scope(frozenset(tenants))


def create_token(path: str | os.PathLike, tenants: Sequence[str] | str) -> str:
    """A new random token for ``tenants`` (a list, or "*"); its hash and scope are appended to
    the token file at ``path`` (created with mode 0600). The token itself is returned, never stored."""
    if tenants != ALL_TENANTS:
        tenants = list(tenants)
    token = secrets.token_urlsafe(32)
    entry = {
        "sha256": hash_token(token),
        "tenants": tenants,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _parse_line(json.dumps(entry))  # the same rules as loading: no empty scope, no empty tenant
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as file:
        file.write(json.dumps(entry) + "\n")
        file.flush()
        os.fsync(file.fileno())
    return token


def token_file(path: str | None) -> str | None:
    """The token file to use: ``path`` when given, else ``$LICENSECORE_TOKENS``, else None."""
    return path or os.environ.get(TOKENS_ENV) or None


# --- the interceptor ------------------------------------------------------------------------------


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an ``authorization: Bearer <token>`` metadata entry, None when absent."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without a known bearer token (UNAUTHENTICATED), except to ``OPEN_SERVICES``,
    and runs every other handler with the token's scope set (see ``current_scope``)."""

    def __init__(self, tokens: TokenRegistry) -> None:
        self._tokens = tokens

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        service = handler_call_details.method.strip("/").split("/")[0]
        if handler is None or service in OPEN_SERVICES:
            return handler
        token = bearer_token(handler_call_details.invocation_metadata)
        if token is None:
            return _replace_behavior(handler, lambda _: _refuse(Unauthenticated(
                "TOKEN_MISSING", "this server requires 'authorization: Bearer <token>' metadata")))
        scope = self._tokens.scope_for(token)
        if scope is None:
            return _replace_behavior(handler, lambda _: _refuse(Unauthenticated(
                "TOKEN_UNKNOWN", "the bearer token is not known to this server")))
        return _replace_behavior(handler, lambda behavior: _scoped(
            behavior, scope, handler.response_streaming))


_HANDLER_KINDS = {  # (request_streaming, response_streaming) -> behavior attribute, factory
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _replace_behavior(handler: grpc.RpcMethodHandler, wrap: Callable[[Callable], Callable]):
    """The same kind of handler with its behavior replaced by ``wrap(behavior)``."""
    attribute, factory = _HANDLER_KINDS[(handler.request_streaming, handler.response_streaming)]
    return factory(wrap(getattr(handler, attribute)), request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)


def _refuse(error: LicenseCoreError) -> Callable:
    def refuse(request, context: grpc.ServicerContext):
        context.abort_with_status(status_for(error))

    return refuse


def _scoped(behavior: Callable, scope: Scope, streaming: bool) -> Callable:
    """``behavior`` run in its own context holding ``scope``; a streamed response is iterated in
    that context too, so checks made while streaming see the same scope."""

    def run(request, context: grpc.ServicerContext):
        call_context = contextvars.copy_context()
        call_context.run(_SCOPE.set, scope)
        result = call_context.run(behavior, request, context)
        return _iterate_in(call_context, result) if streaming else result

    return run


def _iterate_in(call_context: contextvars.Context, iterable: Iterable) -> Iterator:
    iterator = call_context.run(iter, iterable)
    while True:
        try:
            item = call_context.run(next, iterator)
        except StopIteration:
            return
        yield item


# --- scope checks -------------------------------------------------------------------------------


def current_scope() -> Scope:
    """The scope of the call being served (every tenant when the server has no tokens)."""
    return _SCOPE.get()


def check_tables(tables: Mapping[str, pa.Table],
                 tenants: Mapping[str, frozenset[str] | None] | None = None) -> Mapping[str, pa.Table]:
    """``tables`` unchanged when the caller's scope covers every tenant in them; otherwise raise
    ``PermissionDenied`` naming the first table and its tenants outside the scope. ``tenants``:
    the tables' ``tenants_by_table`` when the caller has it (else computed, for list scopes only)."""
    allowed = current_scope().tenants
    if allowed is None:
        return tables
    tenants = tenants if tenants is not None else tenants_by_table(tables)
    for name, table in tables.items():
        outside = _outside(table, tenants[name], allowed)
        if outside:
            shown = tuple(t[:_SHOWN_CHARS] for t in outside[:_SHOWN])
            more = f" and {len(outside) - _SHOWN} more" if len(outside) > _SHOWN else ""
            raise PermissionDenied(
                f"{name}: tenant(s) {', '.join(map(repr, shown))}{more} outside this token's scope",
                table=name, tenants=shown)
    return tables


def check_dataset(dataset_id: str, tenants: frozenset[str]) -> None:
    """Refuse ``PermissionDenied`` unless the caller may see every tenant of the stored dataset
    ``dataset_id`` (``tenants``, recorded by the store at upload). The refusal names the dataset
    but not the tenants: they belong to someone else. Checked before the dataset is loaded."""
    allowed = current_scope().tenants
    if allowed is not None and not tenants <= allowed:
        raise PermissionDenied(
            f"dataset {dataset_id!r} holds tenants outside this token's scope", dataset_id=dataset_id)


def _outside(table: pa.Table, tenants: frozenset[str] | None, allowed: frozenset[str]) -> list[str]:
    """The table's ``tenants`` not in ``allowed``, sorted. A table without ``tenant_id`` holds no
    tenant (validation refuses it: the column is required, SPEC section 0); a column that is not
    text (``tenants`` None) names no tenant that is allowed."""
    if tenants is None:
        return [f"<unreadable {table.column('tenant_id').type} tenant_id>"]
    return sorted(tenants - allowed)
