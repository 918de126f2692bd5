"""Docker image references: parse, validate and normalise them as Docker does.

`busybox` -> `docker.io/library/busybox:latest`; `localhost:5000/app@sha256:...` keeps
its registry and digest. The grammar follows distribution/reference (`reference.go`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.api import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
HEX64_RE = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A normalised reference: domain, path, optional tag and digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, e.g. `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short repository name Docker prints, e.g. `busybox`."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_PREFIX):]
            return self.path
        return self.name

    def __str__(self) -> str:
        return self._with_tag_and_digest(self.name)

    def familiar(self) -> str:
        """`busybox:latest`, `localhost:5000/app:1`, `busybox@sha256:...`."""
        return self._with_tag_and_digest(self.familiar_name)

    def _with_tag_and_digest(self, name: str) -> str:
        text = name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)


def _invalid(ref: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid reference format: {why}: {ref!r}")


def parse(ref: str, default_tag: bool = True) -> Reference:
    """Parse and normalise `ref`; adds `:latest` when it has neither tag nor digest.

    Raises InvalidArgument with Docker's wording for malformed references.
    """
    if not isinstance(ref, str) or not ref:
        raise _invalid(str(ref), "empty reference")
    if any(c.isspace() for c in ref):
        raise _invalid(ref, "contains whitespace")
    if HEX64_RE.match(ref):
        raise InvalidArgument(f"invalid repository name ({ref}), cannot specify 64-byte "
                              "hexadecimal strings")
    remainder, digest = ref, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise _invalid(ref, "invalid digest")
        if digest.startswith("sha256:") and not _SHA256_RE.match(digest):
            raise _invalid(ref, "invalid checksum digest length")
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG_RE.match(tag):
            raise _invalid(ref, "invalid tag")
    domain, path = _split_domain(ref, remainder)
    if not _PATH_RE.match(path):
        if path.lower() != path and _PATH_RE.match(path.lower()):
            raise _invalid(ref, "repository name must be lowercase")
        raise _invalid(ref, "invalid repository name")
    if len(f"{domain}/{path}") > NAME_TOTAL_MAX:
        raise _invalid(ref, f"repository name must not be more than {NAME_TOTAL_MAX} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(ref: str, name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost"
                or first.lower() != first):
        if not _DOMAIN_RE.match(first):
            raise _invalid(ref, "invalid domain")
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def normalize(ref: str) -> str:
    """The canonical string of `ref`: `docker.io/library/busybox:latest`."""
    return str(parse(ref))


def familiar(ref: str) -> str:
    """The short string Docker prints for a canonical reference."""
    return parse(ref, default_tag=False).familiar()


def is_image_id(text: str) -> bool:
    """True for `sha256:<64 hex>`."""
    return bool(_SHA256_RE.match(text))


def looks_like_id_prefix(text: str) -> bool:
    """A (possibly short) hex id, with or without `sha256:`."""
    hexpart = text.removeprefix("sha256:")
    return bool(re.fullmatch(r"[a-f0-9]{1,64}", hexpart))
