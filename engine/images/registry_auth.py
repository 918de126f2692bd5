"""Registry credentials and authentication: `~/.docker/config.json`, challenges, tokens.

Credentials live where Docker keeps them (`$DOCKER_CONFIG/config.json`, else
`~/.docker/config.json`) under `auths`, keyed by the registry host, or
`https://index.docker.io/v1/` for Docker Hub; each entry has `auth` (base64 of
`user:password`) or `username`/`password`. A 401 carries a `WWW-Authenticate`
challenge: `Basic` wants the credentials on every request, `Bearer` wants a token from
the realm for a scope (`repository:NAME:pull,push`), fetched with basic credentials.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.api import InvalidArgument, RegistryError
from engine.images import registry_http
from engine.images.reference import DEFAULT_DOMAIN, LEGACY_DOMAIN
from engine.store.store import write_atomic

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


# ------------------------------------------------------------------ config.json


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def server_key(server: str) -> str:
    """The `auths` key Docker uses for a registry given by host or URL."""
    host = _host_of(server)
    if host in (DEFAULT_DOMAIN, LEGACY_DOMAIN, "registry-1.docker.io"):
        return DOCKER_HUB_KEY
    return host


def _host_of(server: str) -> str:
    text = server.strip()
    if "://" in text:
        text = urllib.parse.urlsplit(text).netloc
    return text.split("/", 1)[0]


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"{path}: cannot read the Docker config file: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: the Docker config file is not a JSON object")
    return data


def load_credentials(registry: str) -> Credentials | None:
    """The stored credentials for a registry host, if any."""
    auths = _read_config(config_path()).get("auths") or {}
    key = server_key(registry)
    for name, entry in auths.items():
        if server_key(name) != key or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except ValueError:
                raise InvalidArgument(f"{config_path()}: invalid auth entry for {name}") from None
            if sep:
                return Credentials(user, password)
        if entry.get("username"):
            return Credentials(entry["username"], entry.get("password", ""))
    return None


def save_credentials(registry: str, creds: Credentials) -> Path:
    """Store credentials for a registry (the file is created with mode 0600)."""
    path = config_path()
    data = _read_config(path)
    auths = data.setdefault("auths", {})
    key = server_key(registry)
    for name in [n for n in auths if server_key(n) == key]:
        del auths[name]
    auths[key] = {"auth": base64.b64encode(
        f"{creds.username}:{creds.password}".encode()).decode()}
    write_atomic(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)
    return path


def remove_credentials(registry: str) -> bool:
    """Forget a registry's credentials; False if there were none."""
    path = config_path()
    data = _read_config(path)
    auths = data.get("auths") or {}
    key = server_key(registry)
    names = [n for n in auths if server_key(n) == key]
    if not names:
        return False
    for name in names:
        del auths[name]
    write_atomic(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)
    return True


# ------------------------------------------------------------------ challenges and tokens

_PARAM_RE = re.compile(r'([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """Parse `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


def fetch_token(challenge: Challenge, scopes: list[str], creds: Credentials | None,
                registry: str, verify: bool = True) -> str:
    """A bearer token from the challenge's realm for these scopes."""
    realm = challenge.params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise RegistryError(f"{registry}: invalid authentication realm {realm!r}")
    query: list[tuple[str, str]] = []
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    query += [("scope", s) for s in scopes]
    if creds is not None:
        query += [("account", creds.username), ("client_id", "pycompose")]
    url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
    headers = {"Authorization": creds.basic()} if creds is not None else {}
    resp = registry_http.request("GET", url, headers, verify=verify)
    body = resp.body()
    if resp.status in (401, 403):
        what = "incorrect username or password" if creds else "authentication required"
        raise RegistryError(f"{registry}: unauthorized: {what}")
    if resp.status != 200:
        raise RegistryError(f"{registry}: token server answered {resp.status} {resp.reason}")
    try:
        answer = json.loads(body)
        token = answer.get("token") or answer.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"{registry}: token server answered without a token")
    return token
