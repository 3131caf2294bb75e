"""Provides an SSRF-safe HTTP client and size- and time-capped downloads of untrusted URLs."""

from __future__ import annotations

import base64
import binascii
import contextvars
import email.utils
import ipaddress
import re
import socket
import ssl
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote_to_bytes, urlsplit

import httpcore
import httpx
from django.core.exceptions import ImproperlyConfigured, ValidationError
from PIL import Image

from brandforge.images import open_untrusted_image

__all__ = [
    "DEFAULT_LIMITS",
    "IMAGE_FORMATS",
    "BlockedDestination",
    "DownloadError",
    "Fetched",
    "Limits",
    "Resolver",
    "check_url",
    "fetch",
    "fetch_image",
    "safe_client",
]

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
USER_AGENT = "BrandForge/0.1 (+brandforge.net)"
ALLOWED_SCHEMES = frozenset({"http", "https"})
STANDARD_PORTS = frozenset({80, 443})
_IMAGE_ACCEPT = "image/png, image/jpeg, image/webp;q=0.9, */*;q=0.1"
# Only codings the body reader can inflate with a hard output limit are offered; httpx's own
# decoders inflate a whole network chunk at once (up to ~1000x its size for a bomb).
_ACCEPT_ENCODING = "gzip, deflate"
_RETRY_AFTER_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")


class BlockedDestination(Exception):
    """The URL, or an address its host resolves to, is not one this client may contact."""


class DownloadError(Exception):
    """The download failed or was cut off: too big, too slow, bad status, redirect, not an image.

    ``retryable`` says whether trying again later can help (timeouts, 5xx, 429, connection
    failures); ``retry_after`` is the server's Retry-After in seconds when it sent one;
    ``bytes_read`` is how many decoded body bytes had arrived when the download was cut off.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        bytes_read: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.bytes_read = bytes_read


@dataclass(frozen=True)
class Limits:
    """Caps for one download; ``total_timeout`` is wall-clock time, which httpx has no knob for."""

    max_bytes: int = 50 * 1024 * 1024
    total_timeout: float = 60.0
    connect_timeout: float = 5.0
    read_timeout: float = 20.0


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str
    url: str


# --- Address policy --------------------------------------------------------------------------

# Metadata endpoints hand out cloud credentials; no allow-list entry can open them
# (gitlab#628701), including their IPv4-mapped, NAT64 and 6to4 spellings.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.169.123",  # AWS time sync, same link-local service host
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS ECS over IPv6
    )
)


def _networks(*entries: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), reason) for cidr, reason in entries)


# Checked in order, so narrower ranges come before the ones that contain them. ipaddress's
# is_global is the backstop, but on Python 3.11 it calls multicast, fec0::/10, 3fff::/20 and
# 64:ff9b::/96 global, so every range is listed explicitly as well.
_BLOCKED_NETWORKS = _networks(
    ("0.0.0.0/32", "the unspecified address"),
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001::/23", "an IETF protocol assignment address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique-local address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, str] | None:
    """Return the IPv4 address an IPv6 address stands for, when packets end up there."""
    if ip.version != 6:
        return None
    assert isinstance(ip, ipaddress.IPv6Address)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "an IPv4-mapped form of"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "a NAT64 form of"
    if ip.sixtofour is not None:
        return ip.sixtofour, "a 6to4 form of"
    return None


def _is_metadata(ip: IPAddress) -> bool:
    embedded = _embedded_ipv4(ip)
    return ip in _METADATA_ADDRESSES or (
        embedded is not None and embedded[0] in _METADATA_ADDRESSES
    )


def _blocked_reason(ip: IPAddress) -> str | None:
    """Say why ``ip`` is not a public unicast address, or return None when it is."""
    if _is_metadata(ip):
        return "a cloud metadata address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        v4, form = embedded
        inner = _blocked_reason(v4)
        # A mapped, NAT64 or 6to4 address reaches exactly its IPv4 address, so it is judged
        # by that address; IPv6-only hosts behind DNS64 need the public NAT64 ones.
        return None if inner is None else f"{form} {v4}, {inner}"
    for network, reason in _BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "not a public address"
    return None


def _parse_ip(text: str) -> IPAddress | None:
    """Read ``text`` as an IP address, including the legacy IPv4 forms getaddrinfo accepts.

    ``2130706433``, ``0x7f000001``, ``127.1`` and ``0177.0.0.1`` all mean 127.0.0.1 to the C
    library, so they are parsed here rather than handed to a resolver as names.
    """
    text = text.strip().rstrip(".") if ":" not in text else text.strip("[]")
    # Zone ids (fe80::1%eth0, %25 when percent-encoded) only ever qualify link-local addresses.
    address = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        pass
    if address and _NUMERIC_HOST.fullmatch(address.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(address))
        except (OSError, ValueError):
            return None
    return None


@dataclass(frozen=True)
class _AllowRule:
    port: int
    host: str | None = None
    network: IPNetwork | None = None

    def matches(self, host: str, ip: IPAddress | None, port: int) -> bool:
        if port != self.port:
            return False
        if self.host is not None:
            return host == self.host
        assert self.network is not None
        if ip is None:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # ::ffff:a.b.c.d is the same socket destination as a.b.c.d.
            ip = ip.ipv4_mapped
        return ip.version == self.network.version and ip in self.network


def _parse_allow(entries: Iterable[str]) -> tuple[_AllowRule, ...]:
    rules = []
    for entry in entries:
        target, sep, port_text = entry.strip().rpartition(":")
        if not sep or not target or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(
                f"allow entry {entry!r} must be HOST:PORT, IP:PORT, [IPv6]:PORT or CIDR:PORT"
            )
        target = target.strip("[]").lower()
        try:
            network = ipaddress.ip_network(target)
        except ValueError:
            if "/" in target or _parse_ip(target) is not None:
                raise ValueError(f"allow entry {entry!r} has an invalid address or CIDR") from None
            rules.append(_AllowRule(port=int(port_text), host=target.rstrip(".")))
        else:
            rules.append(_AllowRule(port=int(port_text), network=network))
    return tuple(rules)


def _default_allow() -> list[str]:
    from django.conf import settings

    try:
        return list(getattr(settings, "BRANDFORGE_NET_ALLOW", []))
    except ImproperlyConfigured:
        # Used outside a Django process (a script, a bare test): nothing is allow-listed.
        return []


def _system_resolve(host: str, port: int, *, absolute: bool = True) -> list[str]:
    # A trailing dot makes the name absolute, so resolv.conf search domains cannot turn a public
    # name into an internal one (Sentry's ensure_fqdn). /etc/hosts does not match dotted names,
    # so allow-listed names (e.g. a local MinIO) are looked up as written.
    query = f"{host}." if absolute and not host.endswith(".") else host
    infos = socket.getaddrinfo(query, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _DestinationPolicy:
    """Decides which (host, port) pairs may be connected to, and to which exact addresses."""

    def __init__(self, allow: Iterable[str], resolver: Resolver | None) -> None:
        self._rules = _parse_allow(allow)
        self._resolver = resolver

    def addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return its addresses, all of them checked.

        Raises BlockedDestination when any address is not allowed: a name with one public and
        one private record is treated as hostile (Sentry's rule), not as half good.
        """
        name = host.strip("[]").lower().rstrip(".")
        name_allowed = any(
            rule.host is not None and rule.matches(name, None, port) for rule in self._rules
        )
        literal = _parse_ip(name)
        if literal is not None:
            resolved = [literal]
        else:
            if not name_allowed and (name == "localhost" or name.endswith(".localhost")):
                raise BlockedDestination(f"{host} is a loopback name")
            resolved = self._resolve(host, name, port, name_allowed=name_allowed)
        for ip in resolved:
            self._check(host, name, ip, port, name_allowed=name_allowed)
        return list(dict.fromkeys(str(ip) for ip in resolved))

    def _resolve(self, host: str, name: str, port: int, *, name_allowed: bool) -> list[IPAddress]:
        try:
            if self._resolver is None:
                answers = _system_resolve(name, port, absolute=not name_allowed)
            else:
                answers = list(self._resolver(name, port))
        except (OSError, UnicodeError) as exc:
            # A lookup that fails blocks the request; it never skips the check (GitLab
            # HackerOne #632101 was exactly that).
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        if not answers:
            raise httpcore.ConnectError(f"could not resolve {host}: no addresses")
        resolved = []
        for answer in answers:
            try:
                resolved.append(ipaddress.ip_address(str(answer).split("%", 1)[0]))
            except ValueError:
                raise BlockedDestination(
                    f"{host} resolved to {answer!r}, which is not an IP address"
                ) from None
        return resolved

    def _check(self, host: str, name: str, ip: IPAddress, port: int, *, name_allowed: bool) -> None:
        subject = str(ip) if name == str(ip) else f"{host} ({ip})"
        if _is_metadata(ip):
            raise BlockedDestination(f"{subject} is a cloud metadata address")
        if name_allowed or any(rule.matches(name, ip, port) for rule in self._rules):
            return
        reason = _blocked_reason(ip)
        if reason is not None:
            raise BlockedDestination(f"{subject} is {reason}")
        if port not in STANDARD_PORTS:
            raise BlockedDestination(
                f"port {port} of {subject} is not allowed (only 80 and 443 unless allow-listed)"
            )


# --- httpx / httpcore wiring -----------------------------------------------------------------

# The wall-clock deadline of the download running in this context, set by fetch(). httpx's
# timeouts bound each socket wait; this bounds their sum, headers and TLS handshake included.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "brandforge_net_deadline", default=None
)


def _within_deadline(
    timeout: float | None, timeout_error: type[httpcore.TimeoutException]
) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise timeout_error("the download's total time limit has passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """Shortens every socket wait so none runs past the current download's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Checks the destination when the socket is opened and connects to the checked address.

    httpcore calls ``connect_tcp(host=<URL host>, port=...)`` for every new connection and then
    ``start_tls(server_hostname=<URL host>)`` on the stream returned, so TLS still verifies the
    certificate against the name while the TCP connection goes to the address checked here.
    There is no second DNS lookup between check and use, so DNS rebinding has no window.
    """

    def __init__(self, policy: _DestinationPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._policy.addresses(host, port)
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        failure: Exception | None = None
        # Every address was checked above, so trying the next one on failure (as
        # socket.create_connection does) cannot reach anything unchecked.
        for address in addresses:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
                return _DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                if deadline is not None and time.monotonic() >= deadline:
                    break
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedDestination(f"unix socket {path} is not an allowed destination")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport, with its connection pool rebuilt around ``_PinnedBackend``.

    httpx 0.28's HTTPTransport builds ``self._pool = httpcore.ConnectionPool(...)`` and has no
    parameter for a network backend; handle_request() and close() only go through ``_pool``.
    Replacing the pool keeps httpx's exception mapping and response streaming unchanged.
    """

    def __init__(self, policy: _DestinationPolicy, *, ssl_context: ssl.SSLContext) -> None:
        pool_limits = httpx.Limits(
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0
        )
        super().__init__(verify=ssl_context, trust_env=False, limits=pool_limits)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            # Without this pool the destination check would silently not run.
            raise RuntimeError("httpx.HTTPTransport no longer exposes _pool; review brandforge.net")
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=pool_limits.max_connections,
            max_keepalive_connections=pool_limits.max_keepalive_connections,
            keepalive_expiry=pool_limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinnedBackend(policy),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _check_url_form(request.url)
        return super().handle_request(request)


@lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms; a context is safe to share between connections.
    return httpx.create_ssl_context(trust_env=False)


_SAFE_CLIENTS: weakref.WeakSet[httpx.Client] = weakref.WeakSet()


def safe_client(
    *,
    allow: Iterable[str] | None = None,
    resolver: Resolver | None = None,
    limits: Limits = DEFAULT_LIMITS,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.Client:
    """Return an httpx.Client that only connects to public addresses on ports 80 and 443.

    ``allow`` lists exact extra destinations as ``HOST:PORT``, ``IP:PORT`` or ``CIDR:PORT``
    (default: ``settings.BRANDFORGE_NET_ALLOW``); cloud metadata addresses stay blocked even
    then. ``resolver(host, port)`` returns the host's IP addresses (default: getaddrinfo, IPv4
    and IPv6). ``ssl_context`` replaces the default certifi-based one (a private CA, tests).
    Redirects are not followed and proxy settings from the environment are ignored.
    """
    policy = _DestinationPolicy(_default_allow() if allow is None else allow, resolver)
    transport = _PinnedTransport(policy, ssl_context=ssl_context or _default_ssl_context())
    client = httpx.Client(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(
            connect=limits.connect_timeout,
            read=limits.read_timeout,
            write=limits.read_timeout,
            pool=limits.connect_timeout,
        ),
        headers={"User-Agent": USER_AGENT, **(headers or {})},
    )
    _SAFE_CLIENTS.add(client)
    return client


def check_url(
    url: str, *, allow: Iterable[str] | None = None, resolver: Resolver | None = None
) -> None:
    """Raise BlockedDestination unless ``url`` currently points at an allowed destination.

    For registration-time checks (a CMS webhook URL); the check that protects a request is the
    one safe_client() makes when it connects, because DNS can change in between.
    """
    parsed = _parse_url(url)
    policy = _DestinationPolicy(_default_allow() if allow is None else allow, resolver)
    try:
        policy.addresses(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except httpcore.ConnectError as exc:
        raise BlockedDestination(str(exc)) from exc


def _check_url_form(url: httpx.URL) -> None:
    if url.scheme not in ALLOWED_SCHEMES:
        shown = f"{url.scheme}:" if url.scheme else "scheme-less"
        raise BlockedDestination(f"{shown} URLs are not allowed, only http and https")
    if url.userinfo:
        # httpx would turn user:pass@ into an Authorization header sent to whatever answers.
        raise BlockedDestination(f"{url.host}: URLs with credentials (user@host) are not allowed")
    if not url.host:
        raise BlockedDestination("the URL has no host")


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        host = _split_host(url)
        ip = _parse_ip(host) if host else None
        reason = _blocked_reason(ip) if ip is not None else None
        if ip is not None and reason is not None:
            raise BlockedDestination(
                f"{host} is not a valid URL host ({exc}); C resolvers read it as {ip}, {reason}"
            ) from exc
        raise BlockedDestination(f"{host or 'the URL'} is not a valid URL host: {exc}") from exc
    _check_url_form(parsed)
    return parsed


def _split_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


# --- Downloads -------------------------------------------------------------------------------


def fetch(
    url: str,
    *,
    client: httpx.Client | None = None,
    limits: Limits = DEFAULT_LIMITS,
    accept: str = "*/*",
) -> Fetched:
    """Download ``url`` within ``limits``; ``data:`` URIs are decoded locally.

    Raises BlockedDestination for a URL or address that may not be contacted and DownloadError
    for everything else that goes wrong (see its ``retryable``). ``client`` must come from
    safe_client(); without one, a client for this call is made and closed.
    """
    if url[:5].lower() == "data:":
        return _decode_data_uri(url, limits.max_bytes)
    parsed = _parse_url(url)
    if client is None:
        with safe_client(limits=limits) as own_client:
            return _download(own_client, parsed, limits, accept)
    if client not in _SAFE_CLIENTS:
        raise TypeError("fetch() needs a client made by brandforge.net.safe_client()")
    return _download(client, parsed, limits, accept)


def fetch_image(
    url: str, *, client: httpx.Client | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[bytes, Image.Image]:
    """Download ``url`` and decode it as a PNG, JPEG or WebP image; see fetch()."""
    fetched = fetch(url, client=client, limits=limits, accept=_IMAGE_ACCEPT)
    try:
        image = open_untrusted_image(fetched.data, formats=IMAGE_FORMATS)
    except ValidationError as exc:
        raise DownloadError(
            f"{_describe(url)} is not a usable image: {' '.join(exc.messages)}",
            bytes_read=len(fetched.data),
        ) from exc
    return fetched.data, image


def _describe(url: str) -> str:
    # Provider result URLs often carry signed query strings; messages name the host only.
    if url[:5].lower() == "data:":
        return "the data: URI"
    return _split_host(url) or "the URL"


def _download(client: httpx.Client, url: httpx.URL, limits: Limits, accept: str) -> Fetched:
    deadline = time.monotonic() + limits.total_timeout
    host = url.host
    token = _DEADLINE.set(deadline)
    try:
        with client.stream(
            "GET",
            url,
            headers={"Accept": accept, "Accept-Encoding": _ACCEPT_ENCODING},
            timeout=_bounded_timeout(client.timeout, limits.total_timeout),
        ) as response:
            _raise_for_status(response)
            _check_declared_length(response, limits.max_bytes)
            data = _read_body(response, limits, deadline)
            return Fetched(data, response.headers.get("content-type", ""), str(response.url))
    except httpx.TimeoutException as exc:
        if time.monotonic() >= deadline:
            raise DownloadError(
                f"{host} took longer than {limits.total_timeout:g} s", retryable=True
            ) from exc
        raise DownloadError(f"timed out talking to {host}: {exc}", retryable=True) from exc
    except httpx.TransportError as exc:
        # Refused, reset, truncated or unresolvable: the provider may well be back later.
        raise DownloadError(f"could not download from {host}: {exc}", retryable=True) from exc
    except httpx.HTTPError as exc:
        raise DownloadError(f"could not download from {host}: {exc}") from exc
    finally:
        _DEADLINE.reset(token)


def _bounded_timeout(timeout: httpx.Timeout, total: float) -> httpx.Timeout:
    # No single wait may outlast the whole download's budget.
    def bound(value: float | None) -> float:
        return total if value is None else min(value, total)

    return httpx.Timeout(
        connect=bound(timeout.connect),
        read=bound(timeout.read),
        write=bound(timeout.write),
        pool=bound(timeout.pool),
    )


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    host = response.url.host
    if 300 <= status < 400:
        raise DownloadError(
            f"redirects are not followed: {status} to {_location_host(response)}", bytes_read=0
        )
    if status in (408, 429) or 500 <= status < 600:
        raise DownloadError(
            f"{host} answered {status} {response.reason_phrase}".rstrip(),
            retryable=True,
            retry_after=_parse_retry_after(response.headers.get("retry-after")),
            bytes_read=0,
        )
    raise DownloadError(f"{host} answered {status} {response.reason_phrase}".rstrip(), bytes_read=0)


def _location_host(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        return "no location"
    try:
        return response.url.join(location).host or "a location without a host"
    except httpx.InvalidURL:
        return "an invalid location"


def _parse_retry_after(value: str | None) -> float | None:
    """Read Retry-After as seconds from now; it is either delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if _RETRY_AFTER_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _check_declared_length(response: httpx.Response, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise DownloadError(
            f"{response.url.host} declared {declared} bytes, over the {max_bytes}-byte limit",
            bytes_read=0,
        )


def _read_body(response: httpx.Response, limits: Limits, deadline: float) -> bytes:
    """Read the body, decoding it here so no step can hold more than max_bytes + 1 bytes.

    Both the bytes on the wire and the decoded bytes are capped: the first stops a server that
    streams forever behind a finished gzip member, the second stops a compression bomb.
    """
    decoder = _BodyDecoder(response.headers.get("content-encoding", ""))
    host = response.url.host
    body = bytearray()
    wire_bytes = 0
    for raw in response.iter_raw():
        wire_bytes += len(raw)
        chunk = decoder.decode(raw, limits.max_bytes - len(body))
        if wire_bytes > limits.max_bytes or len(body) + len(chunk) > limits.max_bytes:
            raise DownloadError(
                f"{host} sent more than the {limits.max_bytes}-byte limit", bytes_read=len(body)
            )
        body += chunk
        # httpx's read timeout only bounds each wait; a server dripping a byte at a time
        # never trips it. _DeadlineStream cuts a wait short; this catches a fast trickle.
        if time.monotonic() > deadline:
            raise DownloadError(
                f"{host} took longer than {limits.total_timeout:g} s",
                retryable=True,
                bytes_read=len(body),
            )
    tail = decoder.flush()
    if len(body) + len(tail) > limits.max_bytes:
        raise DownloadError(
            f"{host} sent more than the {limits.max_bytes}-byte limit", bytes_read=len(body)
        )
    body += tail
    return bytes(body)


class _BodyDecoder:
    """Inflates gzip or deflate with a hard cap on the output of every call."""

    def __init__(self, content_encoding: str) -> None:
        codings = [
            coding.strip().lower()
            for coding in content_encoding.split(",")
            if coding.strip().lower() not in ("", "identity")
        ]
        self._raw_deflate_fallback = False
        if not codings:
            self._zlib = None
        elif codings in (["gzip"], ["x-gzip"]):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif codings == ["deflate"]:
            # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
            self._raw_deflate_fallback = True
        else:
            raise DownloadError(f"unsupported Content-Encoding {content_encoding!r}", bytes_read=0)

    def decode(self, data: bytes, room: int) -> bytes:
        """Return the decoded bytes, at most ``room + 1`` of them so going over shows."""
        if self._zlib is None:
            return data
        try:
            return self._zlib.decompress(data, room + 1)
        except zlib.error as exc:
            if self._raw_deflate_fallback:
                self._raw_deflate_fallback = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(data, room)
            raise DownloadError(f"the compressed body is corrupt: {exc}") from exc
        finally:
            self._raw_deflate_fallback = False

    def flush(self) -> bytes:
        if self._zlib is None:
            return b""
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise DownloadError(f"the compressed body is corrupt: {exc}") from exc


def _decode_data_uri(url: str, max_bytes: int) -> Fetched:
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise DownloadError("malformed data: URI (no comma)")
    params = [param.strip() for param in header.split(";")]
    is_base64 = params[-1].lower() == "base64"
    if is_base64:
        params.pop()
    media_type = ";".join(param for param in params if param) or "text/plain;charset=US-ASCII"
    # Checked before decoding so an oversized URI is never expanded: a percent-escape is three
    # characters per byte and base64 four per three.
    if len(payload) > 3 * max_bytes + 16:
        raise DownloadError(f"the data: URI is over the {max_bytes}-byte limit", bytes_read=0)
    raw = unquote_to_bytes(payload)
    if is_base64:
        compact = b"".join(raw.split())
        try:
            data = base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DownloadError(f"the data: URI is not valid base64: {exc}") from exc
    else:
        data = raw
    if len(data) > max_bytes:
        raise DownloadError(f"the data: URI is over the {max_bytes}-byte limit", bytes_read=0)
    return Fetched(data, media_type, f"data:{media_type}")
