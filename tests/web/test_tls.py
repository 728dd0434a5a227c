"""HTTPS: TLS 1.2 or later with forward-secret AEAD suites only; plain HTTP in production only
behind a declared TLS-terminating proxy."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import (
    ServerThread,
    assert_one_line_error,
    cli_env,
    free_port,
    run_cli,
    wait_until_serving,
)
from tokensmith.core.sealing import generate_master_key
from tokensmith.settings import Settings


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with cryptography."""
    where = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = where / "cert.pem", where / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(settings: Settings, certificate: tuple[Path, Path]) -> Iterator[ServerThread]:
    cert, key = certificate
    with ServerThread(settings.model_copy(update={"tls_cert": cert, "tls_key": key})) as server:
        yield server


def legacy_client(version: ssl.TLSVersion, ciphers: str = "ALL:@SECLEVEL=0") -> ssl.SSLContext:
    """A client that will speak ``version`` and any cipher, as far as OpenSSL lets it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(ciphers)
    with warnings.catch_warnings():  # the point is to try what the ssl module deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    """The negotiated protocol version; raises ssl.SSLError when the server refuses."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        return str(tls.version())


@pytest.fixture(scope="module")
def lenient_port(certificate: tuple[Path, Path]) -> Iterator[int]:
    """A control server that accepts TLS 1.0 and up: proof that the legacy client can
    actually speak TLS 1.1 here, so the refusal below is the server's doing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.load_cert_chain(*certificate)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_https_serves_with_tls_1_2_and_up(
    tls_server: ServerThread, certificate: tuple[Path, Path]
) -> None:
    assert tls_server.base_url.startswith("https://")
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    response = httpx.get(tls_server.base_url + "/healthz", verify=trusting)
    assert response.status_code == 200
    assert handshake(tls_server.port, legacy_client(ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    assert handshake(tls_server.port, legacy_client(ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_legacy_tls_is_refused(
    tls_server: ServerThread, lenient_port: int, version: ssl.TLSVersion
) -> None:
    try:
        handshake(lenient_port, legacy_client(version))
    except ssl.SSLError as exc:  # pragma: no cover - depends on the OpenSSL build
        pytest.skip(f"this OpenSSL cannot speak {version.name} even to a lenient server: {exc}")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(tls_server.port, legacy_client(version))


@pytest.mark.parametrize(
    "cipher", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"]
)
def test_weak_tls_1_2_suites_are_refused(
    tls_server: ServerThread, lenient_port: int, cipher: str
) -> None:
    client = legacy_client(ssl.TLSVersion.TLSv1_2, cipher + ":@SECLEVEL=0")
    try:
        handshake(lenient_port, client)
    except ssl.SSLError as exc:  # pragma: no cover - depends on the OpenSSL build
        pytest.skip(f"this OpenSSL cannot offer {cipher}: {exc}")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(tls_server.port, client)


def test_plain_http_to_the_tls_port_is_not_served(tls_server: ServerThread) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/healthz", timeout=5)


def test_serve_with_tls_flags(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    env = cli_env(tmp_path / "var", None)
    port = free_port()
    args = ["serve", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
    proc = subprocess.Popen(
        [*_python(), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"https://127.0.0.1:{port}"
        trusting = ssl.create_default_context(cafile=str(cert))
        wait_until_serving(base, lambda: proc.poll() is None, verify=trusting)
        discovery = httpx.get(base + "/.well-known/openid-configuration", verify=trusting).json()
        assert discovery["issuer"] == base  # a development issuer follows the scheme too
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def _python() -> list[str]:
    import sys

    return [sys.executable, "-m", "tokensmith"]


def test_production_refuses_plain_http_without_a_declared_proxy(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path / "var",
        None,
        TOKENSMITH_MODE="production",
        TOKENSMITH_MASTER_KEY=generate_master_key(),
        TOKENSMITH_ISSUER="https://auth.example.com",
    )
    result = run_cli(["serve", "--port", str(free_port())], env)
    assert_one_line_error(result, "TOKENSMITH_TLS_CERT", "TOKENSMITH_TRUSTED_PROXIES")
    behind = {**env, "TOKENSMITH_TRUSTED_PROXIES": "10.0.0.0/8"}
    result = run_cli(["serve", "--port", str(free_port())], behind)
    assert "TOKENSMITH_TLS_CERT" not in result.stderr  # it gets past that (to the migration)


def test_bad_tls_settings_name_the_setting(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    env = cli_env(tmp_path / "var", None)
    port = str(free_port())
    alone = run_cli(["serve", "--port", port, "--tls-cert", str(cert)], env)
    assert_one_line_error(alone, "TOKENSMITH_TLS_CERT and TOKENSMITH_TLS_KEY")
    missing = run_cli(
        ["serve", "--port", port, "--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(key)],
        env,
    )
    assert_one_line_error(missing, "TOKENSMITH_TLS_CERT")
    swapped = run_cli(["serve", "--port", port, "--tls-cert", str(key), "--tls-key", str(key)], env)
    assert_one_line_error(swapped, "TOKENSMITH_TLS_CERT")
