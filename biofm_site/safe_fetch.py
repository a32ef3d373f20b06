"""Fetching a user-supplied URL without letting it reach our own network.

Every URL a user gives us is fetched here, and only here:
* http and https only;
* the host name is resolved once and every address it resolves to must be a
  public one (no loopback, private, link-local, cloud metadata, multicast or
  reserved ranges, nor an IPv6 form that embeds such an IPv4 address:
  mapped, translated, NAT64, 6to4, Teredo); the connection then goes to that checked address, so a
  second DNS answer cannot swap in an internal one (DNS rebinding);
* redirects are followed by hand, each hop checked the same way;
* a byte cap and a wall-clock deadline for the whole fetch, redirects included.

Operators can allow specific hosts (BIOFM_FETCH_ALLOW_HOSTS) for an internal
data server; tests use that to fetch from a server on 127.0.0.2.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3

MAX_REDIRECTS = 5


class FetchError(ValueError):
    """The URL was refused or could not be fetched; the message says why."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 50 * 1024 * 1024
    timeout: float = 30.0
    allow_hosts: frozenset[str] = frozenset()


# IPv6 prefixes whose last 32 bits are an IPv4 address that the packet is
# translated to: NAT64's well-known prefix (RFC 6052) and SIIT's IPv4-translated
# form (RFC 2765). A DNS64 resolver answers public hosts in 64:ff9b::/96, so an
# embedded public address is accepted and a private one refused.
_TRANSLATED_V4_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::ffff:0:0/96"))
# Refused whole: NAT64's local-use prefix (RFC 8215, translated by a site's own
# gateway into its own network), the deprecated IPv4-compatible form (RFC 4291
# 2.5.5.1, :: and ::1 included), site-local (RFC 3879) and the deprecated 6to4
# relay anycast (RFC 7526).
_REFUSED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b:1::/48", "::/96", "fec0::/10", "192.88.99.0/24",
))


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not ip.is_multicast and not any(ip in n for n in _REFUSED_NETWORKS)


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return _is_public_v4(ip)
    if any(ip in n for n in _REFUSED_NETWORKS):
        return False
    # Only the IPv4 host is reached (these prefixes lie in the reserved ::/8).
    if ip.ipv4_mapped:
        return _is_public_v4(ip.ipv4_mapped)
    if any(ip in prefix for prefix in _TRANSLATED_V4_PREFIXES):
        return _is_public_v4(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    # 6to4 and Teredo are tunnelled through the IPv4 addresses they embed.
    through = [ip.sixtofour] if ip.sixtofour else list(ip.teredo or ())
    # Outside 2000::/3 and the special ranges every address is reserved.
    return (ip.is_global and not ip.is_multicast and not ip.is_reserved
            and all(_is_public_v4(v4) for v4 in through))


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"Cannot resolve host “{host}”: {exc.strerror}.") from None
    return sorted({info[4][0] for info in infos})


def _checked_address(host: str, port: int, limits: FetchLimits) -> str:
    addresses = _resolve(host, port)
    if host in limits.allow_hosts:
        return addresses[0]
    bad = [a for a in addresses if not _is_public(a)]
    if bad:
        raise FetchError(f"Refused: “{host}” resolves to {bad[0]}, which is not a public address.")
    return addresses[0]


def fetch(url: str, limits: FetchLimits = FetchLimits()) -> bytes:
    """Return the body at `url`, within the limits, or raise FetchError."""
    deadline = time.monotonic() + limits.timeout
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"Only http and https URLs are fetched, not “{parts.scheme or url}”.")
        if not parts.hostname:
            raise FetchError(f"“{url}” has no host.")
        if parts.username or parts.password:
            raise FetchError("URLs with a user name or password are not fetched.")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = _checked_address(parts.hostname, port, limits)
        response = _request(parts, address, port, deadline)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"{url} redirected without a Location.")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise FetchError(f"{url} answered HTTP {response.status}.")
            return _read_capped(response, limits.max_bytes, deadline, url)
        finally:
            response.release_conn()
    raise FetchError(f"More than {MAX_REDIRECTS} redirects.")


def _request(parts, address: str, port: int, deadline: float):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("The fetch took too long.")
    timeout = urllib3.Timeout(connect=min(10.0, remaining), read=remaining)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "biofm-fetch/1",
               "Accept-Encoding": "identity"}
    if parts.scheme == "https":
        # Connect to the checked address, but verify the certificate for the name.
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False,
                                           server_hostname=parts.hostname,
                                           assert_hostname=parts.hostname, cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    try:
        return pool.urlopen("GET", path, headers=headers, redirect=False, preload_content=False,
                            assert_same_host=False)
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"Could not fetch {parts.geturl()}: {exc.__class__.__name__}.") from None


def _read_capped(response, max_bytes: int, deadline: float, url: str) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url} is {int(declared):,} bytes; the limit is {max_bytes:,}.")
    chunks, total = [], 0
    try:
        for chunk in response.stream(64 * 1024):
            total += len(chunk)
            if total > max_bytes:
                raise FetchError(f"{url} is larger than the limit of {max_bytes:,} bytes.")
            if time.monotonic() > deadline:
                raise FetchError(f"Fetching {url} took too long.")
            chunks.append(chunk)
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"Could not read {url}: {exc.__class__.__name__}.") from None
    return b"".join(chunks)


def gunzip_capped(data: bytes, max_bytes: int, what: str = "input") -> bytes:
    """Decompress gzip data, refusing to grow past max_bytes (gzip bombs)."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        chunk = decompressor.decompress(data, max_bytes + 1 - len(out))
        out += chunk
        while decompressor.unconsumed_tail and len(out) <= max_bytes:
            out += decompressor.decompress(decompressor.unconsumed_tail, max_bytes + 1 - len(out))
    except zlib.error as exc:
        raise FetchError(f"The {what} is not valid gzip data ({exc}).") from None
    if len(out) > max_bytes:
        raise FetchError(f"The {what} decompresses to more than {max_bytes:,} bytes.")
    if not decompressor.eof:
        raise FetchError(f"The {what} is a truncated gzip file.")
    return bytes(out)
