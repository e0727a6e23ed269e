"""Command-line parts of authentication: ``licensecore token create``, the security flags of
``licensecore serve`` and ``--tls-ca`` of the commands that talk to a server."""

from __future__ import annotations

import argparse

from licensecore.clients.credentials import TOKEN_ENV


def add_token_command(subparsers) -> None:
    """Add ``token create`` to the ``licensecore`` parser's subparsers."""
    token = subparsers.add_parser("token", help="manage the bearer tokens of a server")
    actions = token.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="print a new token once; append its hash to FILE")
    create.add_argument("--tokens", required=True, metavar="FILE", help="token file (created 0600)")
    create.add_argument("--tenants", required=True, type=_tenants, metavar="T1,T2",
                        help="tenant ids the token may see, or '*' for every tenant")
    create.set_defaults(run=_create)


def _tenants(text: str) -> list[str] | str:
    if text.strip() == "*":
        return "*"
    tenants = [t.strip() for t in text.split(",")]
    if not all(tenants):
        raise argparse.ArgumentTypeError(f"an empty tenant id in {text!r}")
    return tenants


def _create(args: argparse.Namespace) -> int:
    from licensecore.server.auth import create_token

    print(create_token(args.tokens, args.tenants))
    return 0


def add_serve_security_arguments(parser: argparse.ArgumentParser) -> None:
    """--tokens, --tls-cert, --tls-key, --tls-client-ca and --insecure of ``serve``."""
    parser.add_argument("--tokens", metavar="FILE",
                        help="bearer token file (default: $LICENSECORE_TOKENS; none: no tokens needed)")
    parser.add_argument("--tls-cert", metavar="F", help="PEM server certificate chain (with --tls-key)")
    parser.add_argument("--tls-key", metavar="F", help="PEM private key of --tls-cert")
    parser.add_argument("--tls-client-ca", metavar="F",
                        help="PEM CA of client certificates: clients must present one (mutual TLS)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback --host without TLS and tokens")


def serve_security(args: argparse.Namespace) -> dict[str, object]:
    """The ``tokens``, ``tls`` and ``insecure`` arguments of ``serve`` from the parsed flags."""
    from licensecore.server.auth import TokenRegistry, token_file
    from licensecore.server.auth_tls import ServerTls

    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
    path = token_file(args.tokens)
    return {
        "tokens": TokenRegistry.load(path) if path else None,
        "tls": ServerTls.from_files(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None,
        "insecure": args.insecure,
    }


def add_tls_ca_argument(parser: argparse.ArgumentParser) -> None:
    """--tls-ca of a command that takes --server (the token comes from $LICENSECORE_TOKEN)."""
    parser.add_argument("--tls-ca", metavar="FILE",
                        help=f"PEM CA to trust: talk TLS to --server (bearer token from ${TOKEN_ENV})")
