"""Authentication and tenant isolation: bearer tokens, tenant scopes, TLS, mutual TLS, the
loopback rule, ``licensecore token create`` and the command line's token and CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import stat
from types import SimpleNamespace

import grpc
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from test_grpc import GOOD
from test_grpc_bundles import TABLES as BUNDLE_TABLES

from licensecore.clients import LicenseCoreClient, LicenseCoreServerError
from licensecore.clients.cli import main
from licensecore.clients.credentials import open_channel
from licensecore.clients.errors import PermissionDenied, Unauthenticated
from licensecore.server import bundles, consumption, datasets
from licensecore.server.app import create_server
from licensecore.server.auth import (
    TokenFileError,
    TokenInterceptor,
    TokenRegistry,
    create_token,
    current_scope,
    hash_token,
)
from licensecore.server.auth_tls import ExposureRefused, ServerTls, is_loopback
from licensecore.server.whatif import Scenario

T1_ONLY = {name: t.filter(pc.equal(t["tenant_id"], "t1")) for name, t in GOOD.items()}


# --- certificates -------------------------------------------------------------------------------


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool,
                 names: list[x509.GeneralName] = ()) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """A throw-away CA with a server certificate for localhost / 127.0.0.1 and a client one."""

    def __init__(self) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _pem(_certificate("licensecore test CA", ca_key, "licensecore test CA", ca_key, ca=True))
        server_key = ec.generate_private_key(ec.SECP256R1())
        self.server_cert = _pem(_certificate(
            "localhost", server_key, "licensecore test CA", ca_key, ca=False,
            names=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
        self.server_key = _key_pem(server_key)
        client_key = ec.generate_private_key(ec.SECP256R1())
        self.client_cert = _pem(_certificate("a client", client_key, "licensecore test CA", ca_key, ca=False))
        self.client_key = _key_pem(client_key)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


# --- servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> dict[str, str]:
    """A token file with a t1 token, a '*' token and a t2+t9 token; returns the tokens."""
    path = tmp_path_factory.mktemp("tokens") / "tokens.jsonl"
    tokens = {"t1": create_token(path, ["t1"]), "*": create_token(path, "*"),
              "t2": create_token(path, ["t2", "t9"])}
    return {"path": str(path), **tokens}


@pytest.fixture(scope="module")
def plain(token_file):
    """A loopback plain-text server that needs tokens."""
    server, port = create_server("127.0.0.1:0", tokens=TokenRegistry.load(token_file["path"]))
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture(scope="module")
def tls_server(pki, token_file):
    """A TLS server that needs tokens."""
    server, port = create_server(
        "127.0.0.1:0", tokens=TokenRegistry.load(token_file["path"]),
        tls=ServerTls(pki.server_cert, pki.server_key))
    yield f"localhost:{port}"
    server.stop(None)


def _client(address: str, token: str | None = None, **kwargs) -> LicenseCoreClient:
    return LicenseCoreClient(address, token=token, timeout=30, **kwargs)


def _assert_equal(got: dict[str, pa.Table], want: dict[str, pa.Table]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].equals(want[name]), name


# --- authentication -----------------------------------------------------------------------------


def test_call_without_token_is_unauthenticated(plain):
    with _client(plain) as client, pytest.raises(Unauthenticated) as caught:
        client.compute_consumption(T1_ONLY)
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details[0].reason == "TOKEN_MISSING"


def test_unknown_token_is_unauthenticated(plain, token_file):
    with _client(plain, token_file["t1"] + "x") as client, pytest.raises(Unauthenticated) as caught:
        client.upload(T1_ONLY)
    assert caught.value.details[0].reason == "TOKEN_UNKNOWN"


def test_health_is_open_but_reflection_needs_a_token(plain, token_file):
    with _client(plain) as client:
        assert client.health() == "SERVING"
    with grpc.insecure_channel(plain) as channel, pytest.raises(grpc.RpcError) as caught:
        ProtoReflectionDescriptorDatabase(channel).get_services()
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with open_channel(plain, [], token=token_file["t1"]) as channel:
        assert "licensecore.v1.LicenseCore" in ProtoReflectionDescriptorDatabase(channel).get_services()


# --- tenant scopes ------------------------------------------------------------------------------


def test_scoped_token_computes_its_own_tenant(plain, token_file):
    want = consumption.compute_consumption(T1_ONLY)
    with _client(plain, token_file["t1"]) as client:
        _assert_equal(client.compute_consumption(client.upload(T1_ONLY)), want)
        _assert_equal(client.compute_consumption(T1_ONLY), want)


def test_upload_with_a_tenant_outside_the_scope_is_denied_naming_it(plain, token_file):
    with _client(plain, token_file["t1"]) as client, pytest.raises(PermissionDenied) as caught:
        client.upload(GOOD)  # users is the first table holding t2
    assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.tenants == ("t2",)
    assert caught.value.table == "users"
    assert "'t2'" in caught.value.message
    assert caught.value.details[0].reason == "TENANT_OUT_OF_SCOPE"
    assert caught.value.details[0].domain == "licensecore"


def test_upload_reads_each_tables_tenants_once_for_the_scope_and_the_store(plain, token_file,
                                                                          monkeypatch):
    read, tenants = [], datasets._tenants

    def counted(table: pa.Table) -> frozenset[str] | None:
        read.append(table)
        return tenants(table)

    monkeypatch.setattr(datasets, "_tenants", counted)
    with _client(plain, token_file["t1"]) as client:
        handle = client.upload(T1_ONLY)
        assert len(read) == len(T1_ONLY)
        _assert_equal(client.compute_consumption(handle), consumption.compute_consumption(T1_ONLY))
    assert len(read) == len(T1_ONLY)  # the by-handle check uses the store's record


@pytest.mark.parametrize("call", [
    lambda c: c.compute_consumption(GOOD),
    lambda c: c.reconcile(GOOD, inactive_days=30),
    lambda c: c.resolve_bundles(BUNDLE_TABLES),
    lambda c: c.what_if(GOOD, []),
], ids=["consumption", "reconcile", "bundles", "whatif"])
def test_inline_calls_are_checked(plain, token_file, call):
    with _client(plain, token_file["t1"]) as client, pytest.raises(PermissionDenied) as caught:
        call(client)
    assert caught.value.tenants  # t2 for the consumption tables, t and u for the bundle tables
    assert "t1" not in caught.value.tenants


def test_what_if_scenario_rows_of_another_tenant_are_denied(plain, token_file):
    scenario = Scenario("theirs", pa.table({"tenant_id": ["t2"], "license_id": ["L1"],
                                            "entitlements": pa.array([9], pa.int64())}))
    with _client(plain, token_file["t1"]) as client:
        handle = client.upload(T1_ONLY)
        for target in (handle, T1_ONLY):
            with pytest.raises(PermissionDenied) as caught:
                client.what_if(target, [scenario])
            assert caught.value.tenants == ("t2",)


def test_dataset_of_more_tenants_is_hidden_from_a_narrower_token(plain, token_file):
    with _client(plain, token_file["*"]) as owner:
        handle = owner.upload(GOOD)  # t1 and t2
        _assert_equal(owner.compute_consumption(handle), consumption.compute_consumption(GOOD))
    for token in (token_file["t1"], token_file["t2"]):  # neither covers both tenants
        with _client(plain, token) as client:
            for call in (client.compute_consumption, client.reconcile, client.resolve_bundles,
                         lambda h: client.what_if(h, [])):
                with pytest.raises(PermissionDenied) as caught:
                    call(handle)
                assert caught.value.dataset_id == handle
                assert caught.value.tenants == ()  # the dataset's tenants are not disclosed
                assert "t2" not in caught.value.message and "t1" not in caught.value.message


def test_scope_holds_while_a_response_is_streamed_lazily(token_file):
    seen = []

    def lazy(request, context):  # a generator: its body runs while gRPC iterates the response
        seen.append(current_scope().tenants)
        yield 1
        seen.append(current_scope().tenants)
        yield 2

    details = SimpleNamespace(method="/licensecore.v1.LicenseCore/ComputeConsumption",
                              invocation_metadata=(("authorization", f"Bearer {token_file['t1']}"),))
    interceptor = TokenInterceptor(TokenRegistry.load(token_file["path"]))
    handler = interceptor.intercept_service(lambda _: grpc.unary_stream_rpc_method_handler(lazy), details)
    assert list(handler.unary_stream(None, None)) == [1, 2]
    assert seen == [{"t1"}, {"t1"}]
    assert current_scope().tenants is None  # the scope stays inside the call


def test_dataset_visibility_follows_its_tenants_not_its_uploader(plain, token_file):
    with _client(plain, token_file["*"]) as owner:
        handle = owner.upload(T1_ONLY)
    with _client(plain, token_file["t1"]) as client:
        _assert_equal(client.compute_consumption(handle), consumption.compute_consumption(T1_ONLY))


def test_dataset_scope_holds_after_a_restart(token_file, tmp_path):
    tokens = TokenRegistry.load(token_file["path"])
    server, port = create_server("127.0.0.1:0", tokens=tokens, data_dir=tmp_path)
    try:
        with _client(f"127.0.0.1:{port}", token_file["*"]) as owner:
            handle = owner.upload(GOOD)
    finally:
        server.stop(None)
    server, port = create_server("127.0.0.1:0", tokens=tokens, data_dir=tmp_path)
    try:
        with _client(f"127.0.0.1:{port}", token_file["t1"]) as client, pytest.raises(PermissionDenied):
            client.compute_consumption(handle)
        with _client(f"127.0.0.1:{port}", token_file["*"]) as owner:
            _assert_equal(owner.compute_consumption(handle), consumption.compute_consumption(GOOD))
    finally:
        server.stop(None)


@pytest.mark.parametrize("tenant_ids, named", [
    (pa.array(["t1", "t2"]).dictionary_encode(), ("t2",)),
    (pa.array(["t1", "t2"], pa.large_string()), ("t2",)),
    (pa.array(["t1", "t2"], pa.string_view()), ("t2",)),
    (pa.array([7, 8], pa.int64()), ("7", "8")),
    (pa.array([[1], [2]]), ("<unreadable list<item: int64> tenant_id>",)),
], ids=["dictionary", "large_string", "string_view", "int64", "list"])
def test_tenant_column_of_any_type_is_checked(plain, token_file, tenant_ids, named):
    users = pa.table({"tenant_id": tenant_ids, "user_id": ["a", "b"]})
    with _client(plain, token_file["t1"]) as client, pytest.raises(PermissionDenied) as caught:
        client.compute_consumption({"users": users})
    assert caught.value.tenants == named


def test_star_token_sees_every_tenant(plain, token_file):
    with _client(plain, token_file["*"]) as client:
        _assert_equal(client.compute_consumption(GOOD), consumption.compute_consumption(GOOD))
        _assert_equal(client.resolve_bundles(BUNDLE_TABLES), bundles.resolve_bundles(BUNDLE_TABLES))


def test_hostile_tenant_ids_are_cut_in_the_refusal(plain, token_file):
    users = pa.table({"tenant_id": ["x" * 100_000] + [f"n{i}" for i in range(9)],
                      "user_id": [f"u{i}" for i in range(10)]})
    with _client(plain, token_file["t1"]) as client, pytest.raises(PermissionDenied) as caught:
        client.compute_consumption({"users": users})
    assert len(caught.value.tenants) == 5
    assert all(len(t) <= 64 for t in caught.value.tenants)
    assert "and 5 more" in caught.value.message


def test_server_healthy_after_refusals(plain, token_file):
    with _client(plain, "nonsense") as client, pytest.raises(Unauthenticated):
        client.compute_consumption(GOOD)
    with _client(plain, token_file["t1"]) as client:
        with pytest.raises(PermissionDenied):
            client.compute_consumption(GOOD)
        assert client.health() == "SERVING"
        _assert_equal(client.compute_consumption(T1_ONLY), consumption.compute_consumption(T1_ONLY))


# --- TLS ----------------------------------------------------------------------------------------


def test_tls_round_trip_with_root_certificates(tls_server, token_file, pki):
    with _client(tls_server, token_file["t1"], root_certificates=pki.ca) as client:
        assert client.health() == "SERVING"
        handle = client.upload(T1_ONLY)
        _assert_equal(client.compute_consumption(handle), consumption.compute_consumption(T1_ONLY))
    with _client(tls_server, root_certificates=pki.ca) as client, pytest.raises(Unauthenticated):
        client.compute_consumption(T1_ONLY)


def test_plain_text_client_cannot_talk_to_a_tls_server(tls_server, token_file):
    plain_client = _client(tls_server.replace("localhost", "127.0.0.1"), token_file["t1"])
    with plain_client as client, pytest.raises(LicenseCoreServerError) as caught:
        client.compute_consumption(T1_ONLY)
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE


def test_tls_client_rejects_a_server_signed_by_another_ca(tls_server, token_file):
    stranger = _client(tls_server, token_file["t1"], root_certificates=Pki().ca)
    with stranger as client, pytest.raises(LicenseCoreServerError) as caught:
        client.health()
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_requires_a_client_certificate(pki):
    server, port = create_server("127.0.0.1:0", tls=ServerTls(pki.server_cert, pki.server_key, pki.ca))
    try:
        address = f"localhost:{port}"
        with _client(address, root_certificates=pki.ca) as client:
            with pytest.raises(LicenseCoreServerError) as caught:
                client.health()
            assert caught.value.code is grpc.StatusCode.UNAVAILABLE
        with _client(address, root_certificates=pki.ca, private_key=pki.client_key,
                     certificate_chain=pki.client_cert) as client:
            assert client.health() == "SERVING"
            _assert_equal(client.compute_consumption(GOOD), consumption.compute_consumption(GOOD))
    finally:
        server.stop(None)


# --- where the server may listen ----------------------------------------------------------------


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1:0", True), ("127.8.9.1:50051", True), ("localhost:1", True), ("[::1]:0", True),
    ("unix:/tmp/lc.sock", True), ("0.0.0.0:0", False), ("[::]:0", False), (":50051", False),
    ("10.1.2.3:50051", False), ("example.com:443", False),
])
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("with_tls, with_tokens", [(False, False), (True, False), (False, True)])
def test_refuses_to_expose_without_tls_and_tokens(pki, token_file, with_tls, with_tokens):
    tls = ServerTls(pki.server_cert, pki.server_key) if with_tls else None
    tokens = TokenRegistry.load(token_file["path"]) if with_tokens else None
    with pytest.raises(ExposureRefused, match="refusing to listen on 0.0.0.0:0 without"):
        create_server("0.0.0.0:0", tls=tls, tokens=tokens)


@pytest.mark.parametrize("secured", [False, True], ids=["insecure", "tls-and-tokens"])
def test_exposed_server_with_insecure_or_tls_and_tokens(pki, token_file, secured):
    if secured:
        server, port = create_server("0.0.0.0:0", tls=ServerTls(pki.server_cert, pki.server_key),
                                     tokens=TokenRegistry.load(token_file["path"]))
    else:
        server, port = create_server("0.0.0.0:0", insecure=True)
    try:
        options = {"root_certificates": pki.ca} if secured else {}
        with _client(f"localhost:{port}", token_file["t1"], **options) as client:
            assert client.health() == "SERVING"
            _assert_equal(client.compute_consumption(T1_ONLY), consumption.compute_consumption(T1_ONLY))
    finally:
        server.stop(None)


def test_serve_cli_refuses_an_exposed_host(tmp_path, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)]) == 1
    assert "refusing to listen on 0.0.0.0:0 without TLS and tokens" in capsys.readouterr().err


def test_serve_cli_stops_on_a_malformed_token_file(tmp_path, capsys):
    path = tmp_path / "tokens.jsonl"
    path.write_text('{"sha256": "' + "d" * 64 + '", "tenants": "*"}\n{"tenants": "*"\n')
    assert main(["serve", "--port", "0", "--tokens", str(path), "--data-dir", str(tmp_path)]) == 1
    assert f"{path}, line 2: not a JSON object" in capsys.readouterr().err


# --- token files ----------------------------------------------------------------------------------


def test_token_create_cli_appends_only_the_hash(tmp_path, capsys):
    path = tmp_path / "tokens.jsonl"
    assert main(["token", "create", "--tokens", str(path), "--tenants", "t1, t2"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["token", "create", "--tokens", str(path), "--tenants", "*"]) == 0
    second = capsys.readouterr().out.strip()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert first not in text and second not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["sha256"] for e in entries] == [hash_token(first), hash_token(second)]
    assert [e["tenants"] for e in entries] == [["t1", "t2"], "*"]
    assert all(dt.datetime.fromisoformat(e["created"]).tzinfo for e in entries)
    registry = TokenRegistry.load(path)
    assert registry.scope_for(first).tenants == {"t1", "t2"}
    assert registry.scope_for(second).tenants is None
    assert registry.scope_for(first[:-1]) is None


def test_token_create_cli_refuses_an_empty_tenant(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["token", "create", "--tokens", str(tmp_path / "t"), "--tenants", "t1,,t2"])
    assert "an empty tenant id" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("line, problem", [
    ("not json", "not a JSON object"),
    ("[1, 2]", "not a JSON object"),
    ('{"sha256": "abc", "tenants": "*"}', '"sha256" must be 64 lowercase hex digits'),
    ('{"sha256": "' + "a" * 64 + '", "tenants": []}', '"tenants" must be "*" or a non-empty list'),
    ('{"sha256": "' + "a" * 64 + '", "tenants": ["t1", ""]}', '"tenants" must be "*"'),
    ('{"sha256": "' + "a" * 64 + '"}', '"tenants" must be "*"'),
])
def test_malformed_token_file_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "tokens.jsonl"
    good = json.dumps({"sha256": "b" * 64, "tenants": ["t1"], "created": "2026-01-01T00:00:00+00:00"})
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(TokenFileError, match=f"{path}, line 3: ") as caught:
        TokenRegistry.load(path)
    assert problem in str(caught.value)


def test_duplicate_token_hash_is_refused(tmp_path):
    path = tmp_path / "tokens.jsonl"
    line = json.dumps({"sha256": "c" * 64, "tenants": "*"})
    path.write_text(f"{line}\n{line}\n")
    with pytest.raises(TokenFileError, match="line 2: the same token hash appears twice"):
        TokenRegistry.load(path)


# --- the command line as a client ---------------------------------------------------------------


@pytest.fixture()
def input_dir(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, table in GOOD.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def test_cli_sends_the_token_and_trusts_the_tls_ca(tls_server, token_file, pki, input_dir, tmp_path,
                                                   monkeypatch, capsys):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca)
    args = ["consume", "--input", str(input_dir), "--server", tls_server, "--tls-ca", str(ca)]

    monkeypatch.delenv("LICENSECORE_TOKEN", raising=False)
    assert main([*args, "--output", str(tmp_path / "none")]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err

    monkeypatch.setenv("LICENSECORE_TOKEN", token_file["t1"])
    assert main([*args, "--output", str(tmp_path / "denied")]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert not (tmp_path / "denied").exists()

    monkeypatch.setenv("LICENSECORE_TOKEN", token_file["*"])
    assert main([*args, "--output", str(tmp_path / "out")]) == 0
    want = consumption.compute_consumption(GOOD)
    for name, table in want.items():
        assert pq.read_table(tmp_path / "out" / f"{name}.parquet").equals(table), name


def test_serve_reads_the_token_file_from_the_environment(token_file, monkeypatch):
    from licensecore.clients.auth_cli import serve_security
    from licensecore.clients.cli import _parser

    monkeypatch.setenv("LICENSECORE_TOKENS", token_file["path"])
    settings = serve_security(_parser().parse_args(["serve"]))
    assert len(settings["tokens"]) == 3 and settings["tls"] is None
    monkeypatch.delenv("LICENSECORE_TOKENS")
    assert serve_security(_parser().parse_args(["serve"]))["tokens"] is None
