"""A registry client for one repository, per the OCI distribution spec.

`RegistryClient(domain, repository, actions)` answers manifests and blobs by digest or
tag, checks and uploads blobs (cross-repository mount, monolithic or chunked upload),
and puts manifests. It picks the endpoint (mirrors for docker.io, HTTPS, or HTTP for
insecure registries), authenticates on a 401 challenge (basic, or a bearer token for
the scope `repository:NAME:ACTIONS`) and turns registry answers into `RegistryError`s
that name the registry.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import IO, Any

from engine.api import RegistryError
from engine.images import registry_auth, registry_http
from engine.images.registry_config import Endpoint, RegistryConfig

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = (MANIFEST_LIST, OCI_INDEX)
MANIFEST_TYPES = (MANIFEST_V2, OCI_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, MANIFEST_LIST, OCI_MANIFEST, MANIFEST_V2))
MAX_MANIFEST = 4 << 20


def chunk_size() -> int:
    """Blobs larger than this are uploaded in PATCH chunks of this size."""
    return int(os.environ.get("PYCOMPOSE_PUSH_CHUNK_SIZE", str(32 << 20)))


def error_text(body: bytes) -> str:
    """`code: message` of a registry's JSON error body (lowercased code, as Docker)."""
    try:
        errors = json.loads(body).get("errors") or []
    except (ValueError, AttributeError):
        return ""
    parts = []
    for e in errors:
        if isinstance(e, dict):
            code = str(e.get("code", "")).lower().replace("_", " ")
            message = str(e.get("message", ""))
            parts.append(f"{code}: {message}" if code and message else code or message)
    return "; ".join(parts)


class RegistryClient:
    """Talks to one repository of one registry with the given actions (pull, push)."""

    def __init__(self, domain: str, repository: str, actions: str = "pull",
                 config: RegistryConfig | None = None,
                 extra_scopes: tuple[str, ...] = (), endpoint: Endpoint | None = None,
                 creds: registry_auth.Credentials | None = None) -> None:
        self.domain = domain
        self.repository = repository
        self.actions = actions
        self.config = config or RegistryConfig()
        self.endpoints = [endpoint] if endpoint else self.config.endpoints(domain)
        self.extra_scopes = list(extra_scopes)
        self.creds = creds or registry_auth.load_credentials(domain)
        self._auth: str | None = None
        self._scheme: str | None = None
        self._endpoint: Endpoint = self.endpoints[-1]

    # ------------------------------------------------------------------ plumbing

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.repository}"

    def _url(self, path: str) -> str:
        scheme = self._scheme or self._endpoint.schemes[0]
        if path.startswith(("http://", "https://")):
            return path
        return f"{self._endpoint.base(scheme)}{path}"

    def _connect(self, endpoint: Endpoint) -> None:
        """Find the scheme the endpoint answers on (GET /v2/)."""
        last: RegistryError | None = None
        for scheme in endpoint.schemes:
            try:
                resp = registry_http.request("GET", f"{endpoint.base(scheme)}/v2/",
                                             verify=endpoint.verify,
                                             timeout=registry_http.connect_timeout())
            except registry_http.RegistryTimeout:
                raise
            except RegistryError as exc:
                last = exc
                continue
            resp.body()
            if resp.status in (200, 401):
                self._endpoint, self._scheme = endpoint, scheme
                if resp.status == 401:
                    self._authenticate(resp)
                return
            last = RegistryError(f"{endpoint.host}: /v2/ answered {resp.status} "
                                 f"{resp.reason}: not a registry")
        raise last or RegistryError(f"{endpoint.host}: cannot reach the registry")

    def connect(self) -> None:
        """Pick the first endpoint that answers (a mirror, else the registry itself)."""
        errors = []
        for endpoint in self.endpoints:
            try:
                self._connect(endpoint)
                return
            except RegistryError as exc:
                if not endpoint.mirror:
                    raise
                errors.append(str(exc))
        raise RegistryError("; ".join(errors))

    def _scopes(self) -> list[str]:
        if not self.repository:
            return list(self.extra_scopes)
        return [f"repository:{self.repository}:{self.actions}", *self.extra_scopes]

    def login(self) -> None:
        """Check the credentials against the registry (GET /v2/, answering a challenge)."""
        self.connect()
        resp = self.request("GET", "/v2/")
        resp.body()
        if resp.status != 200:
            raise RegistryError(f"{self.domain}: login failed: {resp.status} {resp.reason}")

    def _authenticate(self, resp: registry_http.Response) -> None:
        challenge = registry_auth.parse_challenge(resp.header("www-authenticate"))
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise RegistryError(f"{self.domain}: unauthorized: authentication required")
        if challenge.scheme == "basic":
            if self.creds is None:
                raise RegistryError(f"{self.domain}: unauthorized: authentication required "
                                    f"(log in with `pycompose login {self.domain}`)")
            self._auth = self.creds.basic()
            return
        realm_host = urllib.parse.urlsplit(challenge.params.get("realm", "")).netloc
        verify = not self.config.is_insecure(realm_host) if realm_host else True
        token = registry_auth.fetch_token(challenge, self._scopes(), self.creds, self.domain,
                                          verify)
        self._auth = f"Bearer {token}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: registry_http.Body = None) -> registry_http.Response:
        """One request with authentication: a 401 is answered once, then reported."""
        if self._scheme is None:
            self.connect()
        for attempt in range(2):
            sent = dict(headers or {})
            if self._auth:
                sent["Authorization"] = self._auth
            resp = registry_http.request(method, self._url(path), sent, body,
                                         verify=self._endpoint.verify)
            if resp.status != 401:
                return resp
            text = error_text(resp.body()) if method != "HEAD" else ""
            resp.close()
            seekable = body is None or isinstance(body, bytes)
            if attempt == 0 and seekable:
                had = self._auth
                self._authenticate(resp)
                if self._auth != had or self._auth and self._auth.startswith("Bearer"):
                    continue
            detail = text or "unauthorized: authentication required"
            raise RegistryError(f"{self.domain}: {detail}")
        raise AssertionError("unreachable")

    def _fail(self, resp: registry_http.Response, what: str) -> RegistryError:
        text = "" if resp.status in (405,) else error_text(resp.body())
        return RegistryError(f"{what}: {text or f'{resp.status} {resp.reason}'}")

    # ------------------------------------------------------------------ manifests

    def get_manifest(self, ref: str) -> tuple[bytes, str, str]:
        """(manifest bytes, media type, digest) for a tag or digest; digest verified."""
        from engine.images.blobs import digest_bytes

        resp = self.request("GET", f"/v2/{self.repository}/manifests/{ref}",
                            {"Accept": ACCEPT})
        if resp.status == 404:
            text = error_text(resp.body()) or "manifest unknown: manifest unknown"
            sep = "@" if ref.startswith("sha256:") else ":"
            raise RegistryError(f"manifest for {self.name}{sep}{ref} not found: {text}")
        if resp.status != 200:
            raise self._fail(resp, f"{self.name}: fetching manifest {ref}")
        body = resp.body(MAX_MANIFEST)
        digest = digest_bytes(body)
        if ref.startswith("sha256:") and ref != digest:
            raise RegistryError(f"{self.name}: manifest digest mismatch: asked for {ref}, "
                                f"got {digest}")
        media = resp.header("content-type").split(";")[0].strip()
        try:
            parsed = json.loads(body)
        except ValueError:
            raise RegistryError(f"{self.name}: manifest {ref} is not JSON") from None
        media = parsed.get("mediaType") or media
        if media not in INDEX_TYPES + MANIFEST_TYPES:
            if "manifests" in parsed:
                media = OCI_INDEX
            elif "layers" in parsed and "config" in parsed:
                media = OCI_MANIFEST
            else:
                raise RegistryError(f"{self.name}: unsupported manifest type {media!r}")
        return body, media, digest

    def put_manifest(self, ref: str, body: bytes, media_type: str) -> str:
        resp = self.request("PUT", f"/v2/{self.repository}/manifests/{ref}",
                            {"Content-Type": media_type}, body)
        if resp.status not in (200, 201, 202):
            raise self._fail(resp, f"{self.name}: putting manifest {ref}")
        resp.body()
        return resp.header("docker-content-digest")

    # ------------------------------------------------------------------ blobs

    def get_blob(self, digest: str) -> registry_http.Response:
        resp = self.request("GET", f"/v2/{self.repository}/blobs/{digest}")
        if resp.status != 200:
            raise self._fail(resp, f"{self.name}: fetching blob {digest}")
        return resp

    def blob_exists(self, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{self.repository}/blobs/{digest}")
        resp.close()
        if resp.status in (200, 404):
            return resp.status == 200
        raise RegistryError(f"{self.name}: checking blob {digest}: {resp.status} {resp.reason}")

    def mount_blob(self, digest: str, source_repository: str) -> bool:
        """Cross-repository mount; True if mounted, False if the registry declined."""
        query = urllib.parse.urlencode({"mount": digest, "from": source_repository})
        resp = self.request("POST", f"/v2/{self.repository}/blobs/uploads/?{query}")
        resp.body()
        if resp.status == 201:
            return True
        if resp.status == 202:  # an upload session was opened instead: cancel it
            location = resp.header("location")
            if location:
                self.request("DELETE", self._absolute(location)).close()
            return False
        raise self._fail(resp, f"{self.name}: mounting blob {digest}")

    def _absolute(self, location: str) -> str:
        return urllib.parse.urljoin(self._url(f"/v2/{self.repository}/blobs/uploads/"),
                                    location)

    def _start_upload(self) -> str:
        resp = self.request("POST", f"/v2/{self.repository}/blobs/uploads/")
        resp.body()
        if resp.status != 202 or not resp.header("location"):
            raise self._fail(resp, f"{self.name}: starting an upload")
        return self._absolute(resp.header("location"))

    @staticmethod
    def _with_query(url: str, **params: str) -> str:
        return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)

    def upload_blob(self, stream: IO[bytes], digest: str, size: int,
                    on_bytes: Any = None) -> None:
        """Upload a blob: monolithic PUT when small, else PATCH chunks and a closing PUT."""
        location = self._start_upload()
        chunk = chunk_size()
        headers = {"Content-Type": "application/octet-stream"}
        if size <= chunk:
            data = stream.read(size + 1)
            if len(data) != size:
                raise RegistryError(f"blob {digest} changed size while being pushed")
            resp = self.request("PUT", self._with_query(location, digest=digest),
                                {**headers, "Content-Length": str(size)}, data)
            if resp.status != 201:
                raise self._fail(resp, f"{self.name}: uploading blob {digest}")
            resp.body()
            if on_bytes:
                on_bytes(size)
            return
        offset = 0
        while offset < size:
            data = stream.read(min(chunk, size - offset))
            if not data:
                raise RegistryError(f"blob {digest} ended early while being pushed")
            resp = self.request("PATCH", location, {
                **headers, "Content-Range": f"{offset}-{offset + len(data) - 1}"}, data)
            if resp.status != 202:
                raise self._fail(resp, f"{self.name}: uploading blob {digest}")
            resp.body()
            location = self._absolute(resp.header("location") or location)
            offset += len(data)
            if on_bytes:
                on_bytes(offset)
        resp = self.request("PUT", self._with_query(location, digest=digest))
        if resp.status != 201:
            raise self._fail(resp, f"{self.name}: finishing the upload of {digest}")
        resp.body()
