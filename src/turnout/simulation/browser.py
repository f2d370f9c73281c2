"""A minimal browser for simulated workers: cookies, headers, forms, JSON, loopback only.

Built on ``urllib`` so the simulator needs nothing beyond the standard library. It
refuses any URL whose host is not a loopback address, follows redirects only to loopback
hosts, and ignores proxy settings from the environment (a proxy would take loopback
traffic off the machine).
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

__all__ = ["Browser", "NotLoopback", "Response", "is_loopback_url"]

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class NotLoopback(ValueError):
    """A simulated worker was pointed at a host that is not this machine."""


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:  # a name: every address it resolves to must be loopback
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def is_loopback_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and is_loopback_host(parts.hostname or "")


def check_loopback(url: str) -> None:
    if not is_loopback_url(url):
        raise NotLoopback(f"simulated workers only visit this machine (loopback addresses); refusing {url!r}")


@dataclass
class Response:
    status: int
    url: str
    headers: Message
    body: bytes = field(repr=False)

    @property
    def text(self) -> str:
        charset = self.headers.get_content_charset() or "utf-8"
        return self.body.decode(charset, errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _LoopbackRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        check_loopback(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Browser:
    """One worker's browser: its own cookie jar, user agent and language."""

    def __init__(self, user_agent: str, language: str = "en-US", *, timeout: float = 30.0) -> None:
        self.user_agent = user_agent
        self.language = language
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        # Only loopback hosts are ever contacted, where a project serving https for a
        # rehearsal usually has a self-signed certificate: do not insist on a trusted one.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=insecure),
            urllib.request.HTTPCookieProcessor(self.cookies),
            _LoopbackRedirects(),
        )

    def set_cookie(self, url: str, name: str, value: str, *, path: str = "/") -> None:
        """Store a cookie for ``url``'s host as if that site had set it (HttpOnly, session).

        For cookies a real browser got from another page of the same site, e.g. the worker
        site's externalSubmit proof, which a simulated worker is handed in-process.
        """
        req = urllib.request.Request(url)
        _, domain = http.cookiejar.eff_request_host(req)
        port = urllib.parse.urlsplit(url).port
        self.cookies.set_cookie(http.cookiejar.Cookie(
            0, name, value, str(port) if port else None, False, domain, False, False, path, True, False,
            None, True, None, None, {"HttpOnly": ""}))

    def request(self, method: str, url: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        """Send one request; HTTP error statuses are returned, not raised."""
        check_loopback(url)
        all_headers = {"User-Agent": self.user_agent, "Accept-Language": self.language}
        all_headers.update(headers or {})
        req = urllib.request.Request(url, data=body, headers=all_headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as reply:
                return Response(reply.status, reply.geturl(), reply.headers, reply.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Response(exc.code, exc.geturl() or url, exc.headers, exc.read())

    def get(self, url: str, *, params: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> Response:
        if params:
            joiner = "&" if urllib.parse.urlsplit(url).query else "?"
            url = url + joiner + urllib.parse.urlencode(params)
        return self.request("GET", url, headers={"Accept": "text/html,*/*", **(headers or {})})

    def post_form(self, url: str, fields: dict[str, str], *,
                  headers: dict[str, str] | None = None) -> Response:
        body = urllib.parse.urlencode(fields).encode()
        return self.request("POST", url, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8", **(headers or {})})

    def put_json(self, url: str, data: Any, *, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode()
        return self.request("PUT", url, body=body, headers={
            "Content-Type": "application/json", "Accept": "application/json, */*; q=0.01",
            "X-Requested-With": "XMLHttpRequest", **(headers or {})})
