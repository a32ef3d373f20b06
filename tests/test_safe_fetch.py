"""Fetching user-supplied URLs: only public http(s) addresses, checked again
after every redirect, with size and time caps, and no gzip bombs. The test
server listens on 127.0.0.2, which the tests allow by name; every other
private or loopback address must be refused before any connection is made."""

from __future__ import annotations

import gzip
import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from biofm_site import safe_fetch
from biofm_site.safe_fetch import FetchError, FetchLimits, fetch, gunzip_capped
from tests.processes import free_port

BODY = b"hello records\n"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        port = self.server.server_address[1]
        routes = {
            "/ok": (200, {}, BODY),
            "/big": (200, {}, b"x" * 50_000),
            "/to-ok": (302, {"Location": "/ok"}, b""),
            "/to-loopback": (302, {"Location": f"http://127.0.0.1:{port}/ok"}, b""),
            "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
            "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
            "/missing": (404, {}, b"no"),
        }
        if self.path == "/slow":
            time.sleep(3)
            status, headers, body = 200, {}, BODY
        elif self.path == "/loop":
            status, headers, body = 302, {"Location": "/loop"}, b""
        else:
            status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if self.path != "/big":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.2", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{httpd.server_address[1]}"
    httpd.shutdown()


ALLOW = FetchLimits(max_bytes=10_000, timeout=2.0, allow_hosts=frozenset({"127.0.0.2"}))


def test_allowed_host_is_fetched(server):
    assert fetch(f"{server}/ok", ALLOW) == BODY
    assert fetch(f"{server}/to-ok", ALLOW) == BODY


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://localhost/", "http://[::1]/", "http://10.1.2.3/",
    "http://192.168.0.1/", "http://172.16.5.4/", "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/",
])
def test_private_loopback_and_metadata_addresses_are_refused(url):
    with pytest.raises(FetchError, match="not a public address"):
        fetch(url, ALLOW)


@pytest.mark.parametrize("host", [
    # IPv4-compatible (deprecated), loopback and private inside.
    "::127.0.0.1", "::7f00:1", "::10.0.0.1",
    # NAT64, the well-known prefix with a loopback or private address, and the local-use prefix.
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::7f00:1", "64:ff9b:1:abcd::808:808",
    # 6to4 through loopback or private IPv4.
    "2002:7f00:1::", "2002:a00:1::1", "2002:c0a8:1::1",
    # IPv4-translated (SIIT) and IPv4-mapped spellings.
    "::ffff:0:7f00:1", "::ffff:7f00:1", "::ffff:a9fe:a9fe",
    # Teredo, site-local (deprecated).
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "fec0::1", "feff::1",
    # Other reserved IPv6 outside 2000::/3.
    "100::1", "4000::1",
])
def test_ipv6_forms_embedding_non_public_ipv4_and_deprecated_ranges_are_refused(host):
    with pytest.raises(FetchError, match="not a public address"):
        fetch(f"http://[{host}]/", ALLOW)


@pytest.mark.parametrize("host", ["192.88.99.1", "192.88.99.254"])
def test_the_deprecated_6to4_relay_range_is_refused(host):
    with pytest.raises(FetchError, match="not a public address"):
        fetch(f"http://{host}/", ALLOW)


@pytest.mark.parametrize("host", [
    "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:830::200e",
    # A DNS64 network answers public hosts in NAT64 form; 6to4 of a public address.
    "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8",
])
def test_public_addresses_still_pass(host):
    # A literal resolves locally: the check answers without any connection.
    checked = safe_fetch._checked_address(host, 80, FetchLimits())
    assert ipaddress.ip_address(checked) == ipaddress.ip_address(host)


def test_loopback_is_refused_without_the_allowlist(server):
    with pytest.raises(FetchError, match="127.0.0.2"):
        fetch(f"{server}/ok", FetchLimits())


@pytest.mark.parametrize("path, message", [
    ("/to-loopback", "127.0.0.1"), ("/to-metadata", "169.254.169.254"), ("/to-file", "http and https"),
])
def test_redirects_are_checked_at_every_hop(server, path, message):
    with pytest.raises(FetchError, match=message):
        fetch(f"{server}{path}", ALLOW)


@pytest.mark.parametrize("url, message", [
    ("ftp://example.org/x", "http and https"), ("file:///etc/passwd", "http and https"),
    ("gopher://x/", "http and https"), ("http://user:pw@example.org/", "user name"),
])
def test_other_schemes_and_credentials_are_refused(url, message):
    with pytest.raises(FetchError, match=message):
        fetch(url, ALLOW)


def test_size_cap_without_content_length(server):
    with pytest.raises(FetchError, match="larger than the limit"):
        fetch(f"{server}/big", ALLOW)


def test_time_cap(server):
    started = time.monotonic()
    with pytest.raises(FetchError):
        fetch(f"{server}/slow", FetchLimits(timeout=1.0, allow_hosts=frozenset({"127.0.0.2"})))
    assert time.monotonic() - started < 2.5


def test_redirect_loop_and_http_errors(server):
    with pytest.raises(FetchError, match="redirects"):
        fetch(f"{server}/loop", ALLOW)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(f"{server}/missing", ALLOW)


def test_gzip_bomb_is_stopped():
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(FetchError, match="decompresses to more than"):
        gunzip_capped(bomb, 1_000_000)
    assert gunzip_capped(gzip.compress(b"fine"), 100) == b"fine"
    with pytest.raises(FetchError, match="not valid gzip"):
        gunzip_capped(b"\x1f\x8bnot gzip at all", 100)
