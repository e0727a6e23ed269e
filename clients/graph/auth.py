"""Credentials, the Graph base URL and the msgraph-sdk client built from them.

Credentials (SPEC section 7): a bearer token already acquired, in ``LICENSECORE_GRAPH_TOKEN``,
takes precedence (wrapped in :class:`StaticTokenCredential`); otherwise azure-identity's
``DefaultAzureCredential``, whose chain starts with ``EnvironmentCredential`` (``AZURE_TENANT_ID``,
``AZURE_CLIENT_ID`` and ``AZURE_CLIENT_SECRET`` or ``AZURE_CLIENT_CERTIFICATE_PATH``) and goes on
to workload identity, managed identity and the developer tools (Azure CLI, ...).

The base URL comes from ``--graph-url``, else ``LICENSECORE_GRAPH_URL``, else the global cloud.
The token scope follows the host (``https://<host>/.default``), so national clouds need nothing
else. Plain http is accepted for the loopback host only (the local emulator of the tests).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, TokenCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph_core import GraphClientFactory

from licensecore.server.errors import InputError

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
TOKEN_ENV = "LICENSECORE_GRAPH_TOKEN"
URL_ENV = "LICENSECORE_GRAPH_URL"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class StaticTokenCredential:
    """A ``TokenCredential`` for a bearer token acquired elsewhere (``az account get-access-token``).

    The token is returned as is for every scope; when it expires, Graph answers 401 and the run
    fails with that message.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    def close(self) -> None:
        """Nothing to release."""


def credential_from_env(env: Mapping[str, str] = os.environ) -> TokenCredential:
    """The token in ``LICENSECORE_GRAPH_TOKEN`` if set, else ``DefaultAzureCredential()``."""
    token = env.get(TOKEN_ENV, "").strip()
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def resolve_graph_url(url: str | None, env: Mapping[str, str] = os.environ) -> str:
    """The Graph base URL without a trailing slash; raises ``InputError`` for an unusable one."""
    value = (url or env.get(URL_ENV) or DEFAULT_GRAPH_URL).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError("--graph-url", "", -1, value, 0,
                         f"{value!r} is not an http(s) URL such as {DEFAULT_GRAPH_URL}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise InputError("--graph-url", "", -1, value, 0,
                         "plain http is accepted only for 127.0.0.1/localhost; use https")
    return value


@asynccontextmanager
async def graph_client(credential: TokenCredential,
                       base_url: str) -> AsyncIterator[GraphServiceClient]:
    """A ``GraphServiceClient`` with the SDK's default middleware (retries on 429/503/504 with
    ``Retry-After``, redirects, telemetry), talking to ``base_url``; its HTTP client is closed on
    exit.

    The authentication provider's allowed hosts are the base URL's host: kiota sends no token at
    all to a host outside that list.
    """
    host = urlsplit(base_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(credential, allowed_hosts=[host])
    http = KiotaClientFactory.get_default_client()
    http = GraphClientFactory.create_with_default_middleware(client=http,
                                                             options=graph_middleware_options)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = base_url
    async with http:
        yield GraphServiceClient(request_adapter=adapter)
