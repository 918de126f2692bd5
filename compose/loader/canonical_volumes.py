"""Service volume short syntax (`SRC:DST:OPTS`) -> long syntax, as compose-go parses it."""

from __future__ import annotations

import posixpath
from typing import Any

_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_SELINUX = ("z", "Z")


def _is_file_path(source: str) -> bool:
    if not source:
        return False
    if source[0] in "./~" or source.startswith("\\\\"):
        return True
    return len(source) >= 2 and source[0].isalpha() and source[1] == ":"


def _is_windows_drive(buffer: list[str], char: str) -> bool:
    return char == ":" and len(buffer) == 1 and buffer[0].isalpha()


def clean_target(target: str) -> str:
    return posixpath.normpath(target) if target else ""


def parse_volume(spec: str) -> dict[str, Any]:
    """`"./data:/data:ro"` -> {type, source, target, read_only, bind|volume}."""
    if not spec:
        raise ValueError("invalid empty volume spec")
    if len(spec) <= 2:
        return {"type": "volume", "target": spec}
    vol: dict[str, Any] = {}
    buffer: list[str] = []
    depth = 0

    def populate(char: str) -> None:
        text = "".join(buffer)
        if not buffer:
            raise ValueError("empty section between colons")
        if "source" not in vol and char == "":
            vol["target"] = text
            return
        if "source" not in vol:
            vol["source"] = text
            return
        if "target" not in vol:
            vol["target"] = text
            return
        if char == ":":
            raise ValueError("too many colons")
        for option in text.split(","):
            if option == "ro":
                vol["read_only"] = True
            elif option == "rw":
                vol["read_only"] = False
            elif option == "nocopy":
                vol["volume"] = {"nocopy": True}
            elif option in _PROPAGATIONS:
                vol.setdefault("bind", {})["propagation"] = option
            elif option in _SELINUX:
                vol.setdefault("bind", {})["selinux"] = option

    previous = ""
    try:
        for char in spec:
            if _is_windows_drive(buffer, char):
                buffer.append(char)
            elif char == "{" and previous == "$":
                depth += 1
                buffer.append(char)
            elif char == "}" and depth > 0:
                depth -= 1
                buffer.append(char)
            elif char == ":" and depth == 0:
                populate(":")
                buffer = []
            else:
                buffer.append(char)
            previous = char
        populate("")
    except ValueError as exc:
        raise ValueError(f"invalid spec: {spec}: {exc}") from None
    source = vol.get("source", "")
    if _is_file_path(source):
        vol["type"] = "bind"
        vol.setdefault("bind", {})["create_host_path"] = True
    else:
        vol["type"] = "volume"
        vol.setdefault("volume", {})
    return _ordered(vol)


_ORDER = ("type", "source", "target", "read_only", "consistency", "bind", "volume",
          "tmpfs", "image")


def _ordered(vol: dict[str, Any]) -> dict[str, Any]:
    out = {k: vol[k] for k in _ORDER if k in vol}
    if out.get("read_only") is False:
        del out["read_only"]
    return out


def canonical_volume(entry: Any) -> Any:
    """services.*.volumes[i]: short syntax parsed, target cleaned."""
    if isinstance(entry, str):
        vol = parse_volume(entry)
        if vol.get("target"):
            vol["target"] = clean_target(vol["target"])
        return vol
    return entry
