"""Tests for the SSRF-safe HTTP client and capped downloads (TEST PLAN T14 and T15)."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import ipaddress
import resource
import socket
import ssl
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, quote

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

from brandforge.net import (
    BlockedDestination,
    DownloadError,
    Fetched,
    Limits,
    check_url,
    fetch,
    fetch_image,
    safe_client,
)

MiB = 1024 * 1024
CHUNK = 64 * 1024  # httpcore reads the socket 64 KiB at a time
SMALL = Limits(max_bytes=MiB, total_timeout=5.0, connect_timeout=2.0, read_timeout=3.0)
# Stands in for a CDN's public address; the fake network below routes it to the local server.
PUBLIC_IP = "93.184.216.34"


def _png(size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", size, (200, 30, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()


@cache
def _gzip_bomb() -> bytes:
    """~100 KB of gzip that inflates to 100 MiB of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    return b"".join([compressor.compress(block) for _ in range(100)] + [compressor.flush()])


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# --- Local servers ---------------------------------------------------------------------------


class Canary:
    """A TCP listener that counts connections: any hit means a blocked target was contacted."""

    def __init__(self) -> None:
        self.hits = 0
        self._sockets = [socket.create_server(("127.0.0.1", 0))]
        self.port = self._sockets[0].getsockname()[1]
        # Without IPv6 loopback only the IPv4 canary counts.
        with contextlib.suppress(OSError):
            self._sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        self._stop = threading.Event()
        for sock in self._sockets:
            sock.settimeout(0.05)
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        for sock in self._sockets:
            sock.close()


class Handler(BaseHTTPRequestHandler):
    """A fake provider: each path is one behaviour from the T15 table."""

    # HTTP/1.0 closes the connection after each response, so no test reuses a poisoned one.
    protocol_version = "HTTP/1.0"
    hits: Counter[str] = Counter()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        Handler.hits[path] += 1
        params = {key: values[0] for key, values in parse_qs(query).items()}
        route: Callable[[Handler, dict[str, str]], None] | None = ROUTES.get(path)
        if route is None:
            self._send(404, b"not found")
            return
        # The client hanging up mid-body is what the limit tests want.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self, params)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {
            "Content-Type": "text/plain",
            "Content-Length": str(len(body)),
            **(headers or {}),
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, chunks: Iterator[bytes], headers: dict[str, str]) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(chunk)


def _zeros(total: int) -> Iterator[bytes]:
    block = bytes(CHUNK)
    for _ in range(total // CHUNK):
        yield block


def _drip() -> Iterator[bytes]:
    for _ in range(30):
        yield b"x"
        time.sleep(1.0)


def _slow_headers(handler: Handler, params: dict[str, str]) -> None:
    # Each byte comes well inside the read timeout; only a total deadline stops this.
    handler.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
    for _ in range(50):
        handler.wfile.write(b"a")
        time.sleep(0.2)


def _status(handler: Handler, params: dict[str, str]) -> None:
    headers = {"Retry-After": params["retry_after"]} if "retry_after" in params else {}
    handler._send(int(params["code"]), b"status", headers)


ROUTES: dict[str, Callable[[Handler, dict[str, str]], None]] = {
    "/png": lambda h, p: h._send(200, PNG, {"Content-Type": "image/png"}),
    "/text": lambda h, p: h._send(200, b"just some text", {"Content-Type": "text/plain"}),
    "/echo-host": lambda h, p: h._send(200, h.headers["Host"].encode()),
    # 1 GiB without a Content-Length, produced lazily as the client reads.
    "/huge": lambda h, p: h._stream(_zeros(1024 * MiB), {"Content-Type": "image/png"}),
    "/declared-huge": lambda h, p: h._stream(_zeros(10 * MiB), {"Content-Length": str(10 * MiB)}),
    "/drip": lambda h, p: h._stream(_drip(), {"Content-Type": "image/png"}),
    "/gzip-bomb": lambda h, p: h._send(200, _gzip_bomb(), {"Content-Encoding": "gzip"}),
    "/gzip-ok": lambda h, p: h._send(200, _gzip(b"hello " * 1000), {"Content-Encoding": "gzip"}),
    "/gzip-then-garbage": lambda h, p: h._stream(
        iter([_gzip(b"hello"), *_zeros(8 * MiB)]), {"Content-Encoding": "gzip"}
    ),
    "/raw-deflate": lambda h, p: h._send(
        200,
        zlib.compress(b"deflated " * 100, wbits=-zlib.MAX_WBITS),
        {"Content-Encoding": "deflate"},
    ),
    "/brotli": lambda h, p: h._send(200, b"\x0b\x02\x80hello\x03", {"Content-Encoding": "br"}),
    # Declares 100 bytes, then keeps writing 50 MiB.
    "/short-length": lambda h, p: h._stream(_zeros(50 * MiB), {"Content-Length": "100"}),
    "/slow-headers": _slow_headers,
    "/status": _status,
    "/redirect-metadata": lambda h, p: h._send(
        302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}
    ),
    "/redirect-loop": lambda h, p: h._send(302, b"", {"Location": "/redirect-loop"}),
}


def _start(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return thread


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """Port of the fake provider on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    _start(server)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(port: int) -> Iterator[httpx.Client]:
    with safe_client(allow=[f"127.0.0.1:{port}"], limits=SMALL) as allowed:
        yield allowed


class Network:
    """Every socket the client opens, plus routes that stand in for public hosts."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.routes: dict[tuple[str, int], tuple[str, int]] = {}


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> Network:
    """Record each connect httpcore makes and refuse anything that is not loopback.

    The pinned backend must hand httpcore an IP address it checked; a hostname here fails the
    test (ip_address raises), and no test can reach the real internet even if a check is wrong.
    """
    net = Network()
    original = httpcore.SyncBackend.connect_tcp

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        net.connects.append((host, port))
        target = net.routes.get((host, port))
        if target is not None:
            host, port = target
        elif not ipaddress.ip_address(host).is_loopback:
            raise httpcore.ConnectError(f"test network: {host} is unreachable")
        return original(self, host, port, timeout, local_address, socket_options)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    return net


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} needed a DNS lookup")


# --- T14: blocked destinations ---------------------------------------------------------------

# "{port}" is the canary's port wherever the form can carry one, so a missed check shows up as
# a canary hit and not only as a missing exception.
BLOCKED_TARGETS = [
    "http://127.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://017700000001:{port}/",
    "http://0x7f.0.0.1:{port}/",
    "http://127.0.0.1.:{port}/",
    "http://0.0.0.0:{port}/",
    "http://0:{port}/",
    "http://localhost:{port}/",
    "http://LOCALHOST.:{port}/",
    "http://api.localhost:{port}/",
    "http://[::1]:{port}/",
    "http://[::]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
    "http://[::127.0.0.1]:{port}/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]:{port}/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[2001:db8::1]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://192.0.0.1/",
    "http://192.0.2.1/",
    "http://203.0.113.7/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/",
    "dict://127.0.0.1:{port}/",
    "ftp://example.com/",
    "http://user@127.0.0.1:{port}/",
    "http://user:pw@example.com/",
    "http://127.0.0.1:5432/",
    "http://127.0.0.1:6379/",
    "https://127.0.0.1:{port}/",
    "http://8.8.8.8:{port}/",
    "http://①②⑦.0.0.1:{port}/",
]


def _parses(template: str) -> bool:
    try:
        httpx.URL(template.format(port=1))
    except httpx.InvalidURL:
        return False
    return True


def test_blocked_table_is_large_enough() -> None:
    assert len(BLOCKED_TARGETS) >= 40


@pytest.mark.parametrize("template", BLOCKED_TARGETS)
def test_fetch_blocks(template: str, canary: Canary, network: Network, settings) -> None:
    settings.BRANDFORGE_NET_ALLOW = []
    with pytest.raises(BlockedDestination) as excinfo:
        fetch(template.format(port=canary.port), limits=SMALL)
    assert str(excinfo.value)
    assert network.connects == []
    assert canary.hits == 0


@pytest.mark.parametrize("template", [t for t in BLOCKED_TARGETS if _parses(t)])
def test_safe_client_blocks_at_connect_time(
    template: str, canary: Canary, network: Network
) -> None:
    # The raw client skips fetch()'s URL checks, so this is the connect-time check alone.
    with (
        safe_client(allow=[], resolver=_no_dns, limits=SMALL) as client,
        pytest.raises(BlockedDestination),
    ):
        client.get(template.format(port=canary.port))
    assert network.connects == []
    assert canary.hits == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://2130706433/", "2130706433 (127.0.0.1) is a loopback address"),
        ("http://169.254.169.254/", "169.254.169.254 is a cloud metadata address"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1, a loopback address"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://[fc00::5]/", "unique-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://8.8.8.8:8080/", "port 8080 of 8.8.8.8 is not allowed"),
        ("http://0177.0.0.1/", "127.0.0.1, a loopback address"),
        ("file:///etc/passwd", "file: URLs are not allowed"),
        ("http://user@example.com/", "credentials"),
    ],
)
def test_blocked_messages_name_the_host_and_the_reason(url: str, expected: str) -> None:
    with pytest.raises(BlockedDestination, match=expected.replace("(", r"\(").replace(")", r"\)")):
        fetch(url)


def test_public_nat64_and_mapped_addresses_are_judged_by_their_ipv4(network: Network) -> None:
    # Not blocked by the policy: the fake network refuses them, which maps to a DownloadError.
    for url in ("http://[64:ff9b::808:808]/", "http://[::ffff:8.8.8.8]/", "http://8.8.8.8/"):
        with safe_client(allow=[]) as client, pytest.raises(DownloadError):
            fetch(url, client=client)
    assert [host for host, _ in network.connects] == [
        "64:ff9b::808:808",
        "::ffff:808:808",
        "8.8.8.8",
    ]


# --- T14: resolver stubs, rebinding, redirects ------------------------------------------------


def test_allow_listed_ip_is_reached_under_the_original_host_name(
    port: int, network: Network
) -> None:
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port_: int) -> list[str]:
        calls.append((host, port_))
        return ["127.0.0.1"]

    with safe_client(allow=[f"127.0.0.1:{port}"], resolver=resolver, limits=SMALL) as client:
        fetched = fetch(f"http://assets.example.test:{port}/echo-host", client=client)
    assert fetched.data == f"assets.example.test:{port}".encode()
    assert calls == [("assets.example.test", port)]
    assert network.connects == [("127.0.0.1", port)]


def test_resolving_to_a_non_allow_listed_destination_is_blocked(
    port: int, canary: Canary, network: Network
) -> None:
    # Allowing one local port does not open loopback in general (gitlab#293733).
    with safe_client(
        allow=[f"127.0.0.1:{port}"], resolver=lambda h, p: ["127.0.0.1"], limits=SMALL
    ) as client:
        with pytest.raises(BlockedDestination, match=r"assets\.example\.test \(127\.0\.0\.1\)"):
            fetch(f"http://assets.example.test:{canary.port}/", client=client)
        with pytest.raises(BlockedDestination, match="loopback"):
            fetch(f"http://127.0.0.1:{canary.port}/", client=client)
    assert network.connects == []
    assert canary.hits == 0


def test_rebinding_connects_only_to_the_address_that_was_checked(
    port: int, network: Network
) -> None:
    network.routes[(PUBLIC_IP, 80)] = ("127.0.0.1", port)
    answers = iter([[PUBLIC_IP], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port_: int) -> list[str]:
        calls.append(host)
        return next(answers)

    with safe_client(allow=[], resolver=rebinding, limits=SMALL) as client:
        fetched = fetch("http://cdn.example.test/echo-host", client=client)
        assert fetched.data == b"cdn.example.test"
        # The server closed the connection, so the next request resolves again: now loopback.
        with pytest.raises(BlockedDestination, match="loopback"):
            fetch("http://cdn.example.test/echo-host", client=client)
    assert calls == ["cdn.example.test", "cdn.example.test"]
    assert network.connects == [(PUBLIC_IP, 80)]


def test_a_name_with_one_public_and_one_private_address_is_blocked(network: Network) -> None:
    with (
        safe_client(allow=[], resolver=lambda h, p: ["8.8.8.8", "10.0.0.1"]) as client,
        pytest.raises(BlockedDestination, match=r"cdn\.example\.test \(10\.0\.0\.1\) is a private"),
    ):
        fetch("http://cdn.example.test/", client=client)
    assert network.connects == []


def test_a_failed_lookup_blocks_and_the_next_answer_is_still_checked(network: Network) -> None:
    # GitLab HackerOne #632101: a lookup that failed skipped the check, then resolved to
    # the metadata address.
    answers: list[Callable[[], list[str]]] = [
        lambda: (_ for _ in ()).throw(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")),
        lambda: ["169.254.169.254"],
    ]

    def flaky(host: str, port_: int) -> list[str]:
        return answers.pop(0)()

    with safe_client(allow=[], resolver=flaky) as client:
        with pytest.raises(DownloadError, match=r"could not resolve cdn\.example\.test") as first:
            fetch("http://cdn.example.test/", client=client)
        assert first.value.retryable
        with pytest.raises(BlockedDestination, match="cloud metadata"):
            fetch("http://cdn.example.test/", client=client)
    assert network.connects == []


def test_resolver_answers_that_are_not_addresses_are_blocked() -> None:
    with (
        safe_client(allow=[], resolver=lambda h, p: ["internal.corp"]) as client,
        pytest.raises(BlockedDestination, match="not an IP address"),
    ):
        fetch("http://cdn.example.test/", client=client)


def test_every_address_tried_was_checked(port: int, network: Network) -> None:
    # 127.0.0.2 refuses (the server listens on 127.0.0.1 only), so the second checked address
    # is used, as socket.create_connection would.
    resolver = lambda h, p: ["127.0.0.2", "127.0.0.1"]  # noqa: E731
    with safe_client(allow=[f"127.0.0.0/8:{port}"], resolver=resolver, limits=SMALL) as client:
        assert fetch(f"http://assets.example.test:{port}/text", client=client).data
    assert network.connects == [("127.0.0.2", port), ("127.0.0.1", port)]


def test_allow_list_by_host_name(port: int) -> None:
    resolver = lambda h, p: ["127.0.0.1"]  # noqa: E731
    with safe_client(allow=[f"assets.example.test:{port}"], resolver=resolver) as client:
        assert fetch(f"http://assets.example.test:{port}/text", client=client).data
        with pytest.raises(BlockedDestination):
            fetch(f"http://other.example.test:{port}/text", client=client)


def test_metadata_cannot_be_allow_listed() -> None:
    allow = ["169.254.169.254:80", "169.254.0.0/16:80", "fd00:ec2::254:80"]
    with safe_client(allow=allow, resolver=_no_dns) as client:
        for url in (
            "http://169.254.169.254/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[fd00:ec2::254]/",
        ):
            with pytest.raises(BlockedDestination, match="cloud metadata"):
                fetch(url, client=client)


def test_allow_list_defaults_to_the_setting(port: int, settings) -> None:
    settings.BRANDFORGE_NET_ALLOW = [f"127.0.0.1:{port}"]
    assert fetch(f"http://127.0.0.1:{port}/text").data == b"just some text"
    settings.BRANDFORGE_NET_ALLOW = []
    with pytest.raises(BlockedDestination):
        fetch(f"http://127.0.0.1:{port}/text")


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.1:http", "10.0.0.1/33:80", ":80", "h:0"])
def test_malformed_allow_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="allow entry"):
        safe_client(allow=[entry])


def test_a_redirect_to_metadata_is_not_followed(
    client: httpx.Client, port: int, canary: Canary, network: Network
) -> None:
    with pytest.raises(
        DownloadError, match=r"redirects are not followed: 302 to 169\.254\.169\.254"
    ) as excinfo:
        fetch(f"http://127.0.0.1:{port}/redirect-metadata", client=client)
    assert not excinfo.value.retryable
    # Even a caller who turns redirects on is stopped at connect time.
    with pytest.raises(BlockedDestination, match="cloud metadata"):
        client.get(f"http://127.0.0.1:{port}/redirect-metadata", follow_redirects=True)
    assert network.connects == [("127.0.0.1", port), ("127.0.0.1", port)]
    assert canary.hits == 0


def test_a_redirect_loop_costs_one_request(client: httpx.Client, port: int) -> None:
    before = Handler.hits["/redirect-loop"]
    with pytest.raises(DownloadError, match=r"redirects are not followed: 302 to 127\.0\.0\.1"):
        fetch(f"http://127.0.0.1:{port}/redirect-loop", client=client)
    assert Handler.hits["/redirect-loop"] == before + 1


def test_proxy_variables_in_the_environment_are_ignored(
    port: int, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = f"http://127.0.0.1:{canary.port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    with safe_client(allow=[f"127.0.0.1:{port}"]) as client:
        assert fetch(f"http://127.0.0.1:{port}/text", client=client).data == b"just some text"
    assert canary.hits == 0


def test_fetch_refuses_a_client_that_is_not_safe() -> None:
    with httpx.Client() as plain, pytest.raises(TypeError, match="safe_client"):
        fetch("http://example.com/", client=plain)


def test_check_url_for_registration_time_checks() -> None:
    check_url("https://cms.example.test/hooks", resolver=lambda h, p: [PUBLIC_IP])
    with pytest.raises(BlockedDestination, match="private"):
        check_url("https://cms.example.test/hooks", resolver=lambda h, p: ["192.168.0.7"])
    with pytest.raises(BlockedDestination, match="could not resolve"):
        check_url("https://cms.example.test/hooks", resolver=lambda h, p: [])


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_verifies_the_host_name_while_connecting_to_the_pinned_address(
    tmp_path: Path, network: Network
) -> None:
    cert_path, key_path = _certificate(tmp_path, "assets.example.test")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    _start(server)
    tls_port = server.server_address[1]
    try:
        with safe_client(
            allow=[f"127.0.0.1:{tls_port}"],
            resolver=lambda h, p: ["127.0.0.1"],
            ssl_context=ssl.create_default_context(cafile=str(cert_path)),
            limits=SMALL,
        ) as client:
            fetched = fetch(f"https://assets.example.test:{tls_port}/echo-host", client=client)
            assert fetched.data == f"assets.example.test:{tls_port}".encode()
            # Same address, another name: the certificate does not match, so no data.
            with pytest.raises(DownloadError, match=r"(?i)certificate"):
                fetch(f"https://other.example.test:{tls_port}/echo-host", client=client)
    finally:
        server.shutdown()
        server.server_close()
    assert network.connects == [("127.0.0.1", tls_port)] * 2


# --- T15: download limits --------------------------------------------------------------------


def test_a_1_gib_stream_is_cut_at_max_bytes(client: httpx.Client, port: int) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError, match="more than the 1048576-byte limit") as excinfo:
        fetch(f"http://127.0.0.1:{port}/huge", client=client, limits=SMALL)
    assert not excinfo.value.retryable
    assert excinfo.value.bytes_read is not None
    assert SMALL.max_bytes - CHUNK <= excinfo.value.bytes_read <= SMALL.max_bytes
    assert time.monotonic() - started < 3


def test_a_declared_length_over_the_cap_is_refused_before_reading(
    client: httpx.Client, port: int
) -> None:
    with pytest.raises(DownloadError, match="declared 10485760 bytes") as excinfo:
        fetch(f"http://127.0.0.1:{port}/declared-huge", client=client, limits=SMALL)
    assert excinfo.value.bytes_read == 0


def test_a_1_byte_per_second_drip_is_cut_by_the_total_timeout(
    client: httpx.Client, port: int
) -> None:
    limits = Limits(max_bytes=MiB, total_timeout=1.5, connect_timeout=2.0, read_timeout=3.0)
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"took longer than 1\.5 s") as excinfo:
        fetch(f"http://127.0.0.1:{port}/drip", client=client, limits=limits)
    elapsed = time.monotonic() - started
    assert excinfo.value.retryable
    assert elapsed <= limits.total_timeout + 1.0


def test_slowly_sent_headers_are_cut_by_the_total_timeout(client: httpx.Client, port: int) -> None:
    limits = Limits(max_bytes=MiB, total_timeout=1.0, connect_timeout=2.0, read_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"took longer than 1 s") as excinfo:
        fetch(f"http://127.0.0.1:{port}/slow-headers", client=client, limits=limits)
    assert excinfo.value.retryable
    assert time.monotonic() - started <= limits.total_timeout + 0.5


def test_a_stalled_body_is_cut_by_the_read_timeout(port: int) -> None:
    # The read timeout (0.5 s) is shorter than the gap between drips (1 s).
    limits = Limits(max_bytes=MiB, total_timeout=10.0, connect_timeout=2.0, read_timeout=0.5)
    started = time.monotonic()
    with (
        safe_client(allow=[f"127.0.0.1:{port}"], limits=limits) as client,
        pytest.raises(DownloadError, match="timed out") as excinfo,
    ):
        fetch(f"http://127.0.0.1:{port}/drip", client=client, limits=limits)
    assert excinfo.value.retryable
    assert time.monotonic() - started < 2


def test_a_gzip_bomb_is_cut_by_the_decoded_size(client: httpx.Client, port: int) -> None:
    assert len(_gzip_bomb()) < SMALL.max_bytes  # the Content-Length check alone lets it in
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DownloadError, match="more than the 1048576-byte limit") as excinfo:
        fetch(f"http://127.0.0.1:{port}/gzip-bomb", client=client, limits=SMALL)
    peak_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert excinfo.value.bytes_read is not None
    assert excinfo.value.bytes_read <= SMALL.max_bytes
    # Inflating a whole 64 KiB network chunk of this bomb at once would take ~64 MiB.
    assert peak_growth_mib < 32


def test_gzip_and_deflate_bodies_are_decoded(client: httpx.Client, port: int) -> None:
    assert fetch(f"http://127.0.0.1:{port}/gzip-ok", client=client).data == b"hello " * 1000
    assert fetch(f"http://127.0.0.1:{port}/raw-deflate", client=client).data == b"deflated " * 100


def test_bytes_after_the_gzip_stream_count_against_the_cap(client: httpx.Client, port: int) -> None:
    with pytest.raises(DownloadError, match="more than the 1048576-byte limit"):
        fetch(f"http://127.0.0.1:{port}/gzip-then-garbage", client=client, limits=SMALL)


def test_an_encoding_that_cannot_be_capped_is_refused(client: httpx.Client, port: int) -> None:
    with pytest.raises(DownloadError, match="unsupported Content-Encoding 'br'"):
        fetch(f"http://127.0.0.1:{port}/brotli", client=client)


def test_a_body_longer_than_its_content_length_is_truncated(
    client: httpx.Client, port: int
) -> None:
    started = time.monotonic()
    fetched = fetch(f"http://127.0.0.1:{port}/short-length", client=client, limits=SMALL)
    assert fetched.data == bytes(100)
    assert time.monotonic() - started < 2


def test_429_is_retryable_with_retry_after_seconds(client: httpx.Client, port: int) -> None:
    with pytest.raises(DownloadError, match="429") as excinfo:
        fetch(f"http://127.0.0.1:{port}/status?code=429&retry_after=7", client=client)
    assert excinfo.value.retryable
    assert excinfo.value.retry_after == 7


def test_503_is_retryable_with_retry_after_as_a_date(client: httpx.Client, port: int) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    url = f"http://127.0.0.1:{port}/status?code=503&retry_after={quote(when)}"
    with pytest.raises(DownloadError, match="503") as excinfo:
        fetch(url, client=client)
    assert excinfo.value.retryable
    assert excinfo.value.retry_after is not None
    assert 25 <= excinfo.value.retry_after <= 30


@pytest.mark.parametrize(
    ("code", "retryable"), [(500, True), (502, True), (404, False), (403, False)]
)
def test_status_codes(client: httpx.Client, port: int, code: int, retryable: bool) -> None:
    with pytest.raises(DownloadError, match=str(code)) as excinfo:
        fetch(f"http://127.0.0.1:{port}/status?code={code}", client=client)
    assert excinfo.value.retryable is retryable
    assert excinfo.value.retry_after is None


def test_a_refused_connection_is_retryable(canary: Canary) -> None:
    # Allow-listed but closed: a port nobody listens on (the canary's, on 127.0.0.2).
    with (
        safe_client(allow=[f"127.0.0.2:{canary.port}"]) as client,
        pytest.raises(DownloadError, match="could not download") as excinfo,
    ):
        fetch(f"http://127.0.0.2:{canary.port}/", client=client)
    assert excinfo.value.retryable


# --- Images and data: URIs -------------------------------------------------------------------


def test_fetch_image_over_http(client: httpx.Client, port: int) -> None:
    data, image = fetch_image(f"http://127.0.0.1:{port}/png", client=client)
    assert data == PNG
    assert image.size == (8, 6)


def test_fetch_image_refuses_a_body_that_is_not_an_image(client: httpx.Client, port: int) -> None:
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1 is not a usable image") as excinfo:
        fetch_image(f"http://127.0.0.1:{port}/text", client=client)
    assert not excinfo.value.retryable


def test_fetch_image_from_a_data_uri(network: Network) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    data, image = fetch_image(url)
    assert data == PNG
    assert image.size == (8, 6)
    assert network.connects == []


def test_data_uris_are_decoded_locally() -> None:
    assert fetch("data:,hello%20world") == Fetched(
        b"hello world", "text/plain;charset=US-ASCII", "data:text/plain;charset=US-ASCII"
    )
    fetched = fetch("data:text/plain;charset=utf-8;base64,aGk")  # padding left off
    assert (fetched.data, fetched.content_type) == (b"hi", "text/plain;charset=utf-8")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("data:image/png;base64" + "A" * 16, "no comma"),
        ("data:;base64," + base64.b64encode(bytes(2048)).decode(), "over the 1024-byte limit"),
        ("data:," + "%00" * 2048, "over the 1024-byte limit"),
        ("data:," + "x" * 10_000, "over the 1024-byte limit"),
    ],
)
def test_bad_data_uris(url: str, message: str) -> None:
    with pytest.raises(DownloadError, match=message):
        fetch(url, limits=Limits(max_bytes=1024))


def test_fetch_image_refuses_a_data_uri_that_is_not_an_image() -> None:
    with pytest.raises(DownloadError, match="the data: URI is not a usable image"):
        fetch_image("data:image/png;base64," + base64.b64encode(b"GIF89a....").decode())
