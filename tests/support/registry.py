"""Test registries: Debian's `docker-registry` on a free 127.0.0.1 port (open, htpasswd
basic auth, or token auth) and a small bearer-token server of our own.

Every process is started here and stopped by its PID; temporary files live in the
directory the caller passes (a pytest tmp_path).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "pycompose-test-registry"
ISSUER = "pycompose-test-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    storage: Path
    pid: int


def _wait_ready(host: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not start: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def run_registry(workdir: Path, auth: dict[str, object] | None = None,
                 tls: tuple[Path, Path] | None = None) -> Iterator[Registry]:
    """A docker-registry on 127.0.0.1:<free port> with its own storage; stopped on exit.
    `tls` is (certificate, key) to serve HTTPS."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    storage = workdir / "storage"
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)},
                    "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if auth:
        config["auth"] = auth
    if tls:
        config["http"] = {"addr": f"127.0.0.1:{port}",
                          "tls": {"certificate": str(tls[0]), "key": str(tls[1])}}
    config_path = workdir / "registry.yml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    log = workdir / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config_path)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(f"127.0.0.1:{port}", proc, log)
        yield Registry(f"127.0.0.1:{port}", storage, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def self_signed(workdir: Path, name: str = "registry") -> tuple[Path, Path]:
    """(certificate, key) of a self-signed certificate for 127.0.0.1."""
    cert, key = workdir / f"{name}.crt", workdir / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   capture_output=True)
    return cert, key


def htpasswd_file(path: Path, user: str, password: str) -> Path:
    line = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True,
                          text=True, check=True).stdout.strip()
    path.write_text(line + "\n")
    return path


# ------------------------------------------------------------------ bearer tokens


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Signs registry JWTs (RS256, x5c header) with an openssl-made self-signed cert."""

    def __init__(self, workdir: Path) -> None:
        self.key = workdir / "token.key"
        self.cert = workdir / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(self.key), "-out", str(self.cert), "-days", "1",
                        "-subj", "/CN=pycompose-test-token"], check=True,
                       capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()

    def token(self, subject: str, access: list[dict[str, object]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": _b64url(str(time.time_ns()).encode()),
                  "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "."
                         + _b64url(json.dumps(claims).encode()))
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True).stdout
        return signing_input + "." + _b64url(signature)


@dataclass
class TokenServer:
    url: str  # the realm
    requests: list[dict[str, object]]  # what clients asked: account, scopes, authorized


@contextlib.contextmanager
def run_token_server(issuer: TokenIssuer, user: str, password: str) -> Iterator[TokenServer]:
    """A token endpoint on 127.0.0.1: grants what is asked to `user:password`, refuses
    wrong credentials with 401 and grants only anonymous `pull` without credentials."""
    seen: list[dict[str, object]] = []
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            query = parse_qs(urlsplit(self.path).query)
            given = self.headers.get("Authorization")
            authorized = given == expected
            seen.append({"scopes": query.get("scope", []), "authorized": authorized,
                         "service": query.get("service", [""])[0]})
            if given is not None and not authorized:
                self._answer(401, {"details": "incorrect username or password"})
                return
            access = []
            for scope in query.get("scope", []):
                kind, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                granted = actions.split(",") if authorized else [
                    a for a in actions.split(",") if a == "pull"]
                access.append({"type": kind, "name": name, "actions": granted})
            token = issuer.token(user if authorized else "", access)
            self._answer(200, {"token": token, "access_token": token, "expires_in": 300})

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TokenServer(f"http://127.0.0.1:{server.server_address[1]}/token", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def token_auth(realm: str, issuer: TokenIssuer) -> dict[str, object]:
    """The registry's `auth:` section for bearer tokens from `realm`."""
    return {"token": {"realm": realm, "service": SERVICE, "issuer": ISSUER,
                      "rootcertbundle": str(issuer.cert)}}


def htpasswd_auth(path: Path) -> dict[str, object]:
    return {"htpasswd": {"realm": "pycompose-test", "path": str(path)}}
