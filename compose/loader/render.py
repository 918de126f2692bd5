"""`config` output: JSON and YAML exactly as the reference prints them.

JSON: Go's `json.MarshalIndent` (two spaces, `<>&` escaped, no trailing newline).
YAML: yaml.v3's block style (two-space indent, sequences indented under their key,
its quoting rules). In both, every `$` in a string is doubled so the output can be
loaded again; the top level is ordered as the reference orders it.
"""

from __future__ import annotations

import json
import re
from typing import Any

_YAML_TOP = ("name", "services", "networks", "volumes", "secrets", "configs", "models")


def escape_dollars(value: Any) -> Any:
    """A copy with every `$` of every string (keys too) written `$$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {escape_dollars(k): escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value


def _go_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _go_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    return value


def json_view(data: dict[str, Any]) -> dict[str, Any]:
    """The tree as the reference's JSON shows it: top level sorted, and no extensions
    on develop.watch triggers nor top-level models (the reference's JSON has no
    field for them)."""
    top = {k: data[k] for k in sorted(data) if k != "models"}
    services = top.get("services")
    if not isinstance(services, dict):
        return top
    out = {}
    for name, service in services.items():
        develop = service.get("develop") if isinstance(service, dict) else None
        if isinstance(develop, dict) and isinstance(develop.get("watch"), list):
            service = {**service, "develop": {**develop, "watch": [
                {k: v for k, v in w.items() if not str(k).startswith("x-")}
                if isinstance(w, dict) else w for w in develop["watch"]]}}
        out[name] = service
    return {**top, "services": out}


def render_json(data: dict[str, Any]) -> str:
    top = json_view(data)
    text = json.dumps(_go_numbers(escape_dollars(top)), indent=2, ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# --- YAML ------------------------------------------------------------------------------

def yaml_view(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON tree as the reference's YAML shows it: empty structs and null commands
    left out, blkio device keys in lower case, top-level keys in YAML order."""
    out: dict[str, Any] = {k: data[k] for k in _YAML_TOP if k in data}
    out.update({k: v for k, v in data.items() if k not in out})
    services = {}
    for name, service in (out.get("services") or {}).items():
        service = dict(service)
        for key in ("command", "entrypoint"):
            if service.get(key, 0) is None:
                del service[key]
        deploy = service.get("deploy")
        if isinstance(deploy, dict):
            service["deploy"] = {k: v for k, v in deploy.items()
                                 if not (k in ("resources", "placement") and v == {})}
        blkio = service.get("blkio_config")
        if isinstance(blkio, dict):
            service["blkio_config"] = {
                k: [{kk.lower(): vv for kk, vv in i.items()} if isinstance(i, dict) else i
                    for i in v] if isinstance(v, list) else v for k, v in blkio.items()}
        build = service.get("build")
        if isinstance(build, dict) and isinstance(build.get("ssh"), list):
            service["build"] = {**build, "ssh": [
                ": ".join(str(k).split("=", 1)) for k in build["ssh"]]}
        develop = service.get("develop")
        if isinstance(develop, dict) and isinstance(develop.get("watch"), list):
            service["develop"] = {**develop, "watch": [
                {k: v for k, v in w.items() if not (k == "exec" and v == {"command": None})}
                if isinstance(w, dict) else w for w in develop["watch"]]}
        services[name] = service
    if "services" in out:
        out["services"] = services
    if isinstance(out.get("networks"), dict):
        out["networks"] = {name: {k: v for k, v in (net or {}).items()
                                  if not (k == "ipam" and v == {})}
                           for name, net in out["networks"].items()}
    return out


_OLD_BOOL = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO",
             "off", "Off", "OFF"}
_RESOLVED = {"", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False",
             "FALSE", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
             "-.INF", ".nan", ".NaN", ".NAN", "<<"}
_GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_TIMESTAMP = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:(?:[Tt]|[ \t]+)\d{1,2}:\d{2}:\d{2}.*)?")
_FLOAT = re.compile(r"[-+]?(?:\d[\d_]*\.?[\d_]*|\.[\d_]+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|infinity|nan)",
                    re.IGNORECASE)


def _resolves_to_non_string(s: str) -> bool:
    if s in _RESOLVED or s in _OLD_BOOL or _BASE60.fullmatch(s):
        return True
    if s and s[0] in "0123456789+-.":
        plain = s.replace("_", "")
        if _GO_INT.fullmatch(plain) or _FLOAT.fullmatch(plain) or _TIMESTAMP.fullmatch(s):
            return True
    return False


def _printable(ch: str) -> bool:
    o = ord(ch)
    return ch == "\n" or 0x20 <= o <= 0x7E or o == 0x85 or (0xA0 <= o <= 0xD7FF) \
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF) or 0x10000 <= o <= 0x10FFFF


def _analyze(s: str) -> tuple[bool, bool, bool]:
    """(plain allowed, single-quoted allowed, block allowed) in block context (libyaml)."""
    if s.startswith(("---", "...")):
        return False, True, True
    block_ind = False
    special = any(not _printable(c) for c in s)
    for i, c in enumerate(s):
        nxt = s[i + 1] if i + 1 < len(s) else ""
        followed_ws = nxt in ("", " ", "\t", "\n")
        if i == 0:
            indicator = c in "#,[]{}&*!|>'\"%@`" or (c in "?:-" and followed_ws)
        else:
            indicator = (c == ":" and followed_ws) or (c == "#" and s[i - 1] in " \t\n")
        block_ind = block_ind or indicator
    lines = s.split("\n")
    line_breaks = len(lines) > 1
    leading_space = s[:1] == " "
    trailing_space = s[-1:] == " "
    leading_break = s[:1] == "\n"
    trailing_break = s[-1:] == "\n"
    space_break = any(line.endswith(" ") for line in lines[:-1])
    break_space = any(line.startswith(" ") for line in lines[1:])
    plain = not (leading_space or leading_break or trailing_space or trailing_break
                 or line_breaks or block_ind or special or space_break or break_space)
    single = not (special or space_break or break_space)
    block = not (special or space_break or trailing_space)
    return plain, single, block


def _double_quoted(s: str) -> str:
    out = ['"']
    for c in s:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif not _printable(c):
            o = ord(c)
            out.append(f"\\x{o:02X}" if o <= 0xFF else f"\\u{o:04X}" if o <= 0xFFFF
                       else f"\\U{o:08X}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _scalar(value: Any, indent: int, is_key: bool = False) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    s = str(value)
    plain, single, block = _analyze(s)
    if "\n" in s and not is_key:
        if block and s.strip("\n"):
            chomp = "-" if not s.endswith("\n") else "+" if s.endswith("\n\n") else ""
            pad = " " * (indent + 2)
            body = s[:-1] if s.endswith("\n") else s
            head = "2" if s[0] in " \n" else ""
            lines = [pad + line if line else "" for line in body.split("\n")]
            return f"|{head}{chomp}\n" + "\n".join(lines)
        return _double_quoted(s)
    if _resolves_to_non_string(s):
        return _double_quoted(s)
    if plain:
        return s
    if single:
        return "'" + s.replace("'", "''") + "'"
    return _double_quoted(s)


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            k = _scalar(str(key), indent, is_key=True)
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{k}:")
                _emit(item, indent + 2, lines)
            else:
                lines.append(f"{pad}{k}: {_inline(item, indent)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sub)
                sub[0] = f"{pad}- " + sub[0][indent + 2:]
                lines.extend(sub)
            else:
                lines.append(f"{pad}- {_inline(item, indent)}")


def _inline(value: Any, indent: int) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value, indent)


def render_yaml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    _emit(escape_dollars(yaml_view(data)), 0, lines)
    return "\n".join(lines) + "\n"


def render_raw(data: dict[str, Any], fmt: str) -> str:
    """The bare model (`--no-interpolate`): keys sorted, strings as written."""
    if fmt == "json":
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


def render(data: dict[str, Any], fmt: str, *, raw: bool = False) -> str:
    if raw:
        return render_raw(data, fmt)
    return render_json(data) if fmt == "json" else render_yaml(data)
