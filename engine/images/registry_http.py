"""A small HTTP(S) client for registries on `http.client`: TLS verification (with Docker's
per-registry `certs.d/<host:port>/` CA and client certificates), a connect timeout,
redirects (dropping credentials across hosts), streamed bodies.

Errors reaching the host become `RegistryError`; HTTP statuses are returned to the
caller, which knows what a 401 or a 404 means for its request.
"""

from __future__ import annotations

import http.client
import os
import ssl
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.api import RegistryError


class RegistryTimeout(RegistryError):
    """The registry host did not answer in time (no point trying another scheme)."""


def connect_timeout() -> float:
    """Seconds to connect (and for a registry's /v2/ check to answer)."""
    return float(os.environ.get("PYCOMPOSE_REGISTRY_CONNECT_TIMEOUT", "4"))


def read_timeout() -> float:
    return float(os.environ.get("PYCOMPOSE_REGISTRY_READ_TIMEOUT", "60"))


MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)

Body = bytes | IO[bytes] | None


@dataclass
class Response:
    """A response whose body is read on demand (`read`, `stream`) or all at once."""

    status: int
    reason: str
    headers: dict[str, str]
    url: str
    _raw: http.client.HTTPResponse
    _conn: http.client.HTTPConnection
    _body: bytes | None = field(default=None)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def body(self, limit: int = 16 << 20) -> bytes:
        """The whole body (bounded: manifests and JSON answers are small)."""
        if self._body is None:
            data = self.read(limit + 1)
            if len(data) > limit:
                self.close()
                raise RegistryError(f"response from {self.url} is larger than {limit} bytes")
            self._body = data
            self.close()
        return self._body

    def read(self, size: int = -1) -> bytes:
        try:
            return self._raw.read(size)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RegistryError(f"reading {self.url}: {exc!r}") from None

    def close(self) -> None:
        self._raw.close()
        self._conn.close()


def certs_dirs(netloc: str) -> list[Path]:
    """Docker's per-registry TLS directories: `<dir>/<host:port>/` holding `*.crt` (extra
    CAs) and `*.cert` + `*.key` (a client certificate)."""
    bases = [os.environ.get("PYCOMPOSE_CERTS_D", "/etc/pycompose/certs.d"),
             "/etc/docker/certs.d"]
    return [Path(b) / netloc for b in bases if (Path(b) / netloc).is_dir()]


def tls_context(netloc: str, verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        for directory in certs_dirs(netloc):
            for ca in sorted(directory.glob("*.crt")):
                context.load_verify_locations(cafile=str(ca))
            for cert in sorted(directory.glob("*.cert")):
                context.load_cert_chain(str(cert), str(cert.with_suffix(".key")))
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(f"{netloc}: unusable TLS files in a certs.d directory: "
                            f"{exc}") from None
    return context


def _connection(scheme: str, netloc: str, verify: bool) -> http.client.HTTPConnection:
    timeout = connect_timeout()
    if scheme == "https":
        context = tls_context(netloc, verify)
        return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)
    if scheme == "http":
        return http.client.HTTPConnection(netloc, timeout=timeout)
    raise RegistryError(f"unsupported URL scheme {scheme!r}")


def _send(method: str, url: str, headers: dict[str, str], body: Body,
          verify: bool, timeout: float | None) -> Response:
    parts = urllib.parse.urlsplit(url)
    conn = _connection(parts.scheme, parts.netloc, verify)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(timeout or read_timeout())
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is None:
            if method in ("PUT", "POST", "PATCH"):
                conn.putheader("Content-Length", "0")
            conn.endheaders()
        elif isinstance(body, bytes):
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
        else:
            conn.endheaders()
            while chunk := body.read(1 << 20):
                conn.send(chunk)
        raw = conn.getresponse()
    except ssl.SSLError as exc:
        conn.close()
        raise RegistryError(f"{method} {url}: TLS error: {exc.reason or exc}") from None
    except TimeoutError:
        conn.close()
        raise RegistryTimeout(f"{method} {url}: {parts.netloc} did not answer in time "
                              "(timeout)") from None
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise RegistryError(f"{method} {url}: cannot reach {parts.netloc}: {why}") from None
    headers_out = {k.lower(): v for k, v in raw.getheaders()}
    return Response(raw.status, raw.reason, headers_out, url, raw, conn)


def request(method: str, url: str, headers: dict[str, str] | None = None, body: Body = None,
            verify: bool = True, timeout: float | None = None) -> Response:
    """Send one request, following redirects for GET and HEAD.

    A streamed body must come with a Content-Length header from the caller. The
    Authorization header is not sent to another host after a redirect.
    """
    sent = dict(headers or {})
    for _ in range(MAX_REDIRECTS + 1):
        resp = _send(method, url, sent, body, verify, timeout)
        if resp.status not in REDIRECTS or method not in ("GET", "HEAD"):
            return resp
        location = resp.header("location")
        resp.close()
        if not location:
            raise RegistryError(f"{method} {url}: redirect without a Location")
        target = urllib.parse.urljoin(url, location)
        if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(url).netloc:
            sent.pop("Authorization", None)
        url = target
    raise RegistryError(f"{method} {url}: too many redirects")
