"""`config` output: JSON and YAML exactly as the reference prints them.

JSON: Go's `json.MarshalIndent` (two spaces, `<>&` escaped, no trailing newline).
YAML: yaml.v3's block style (two-space indent, sequences indented under their key,
its quoting rules). In both, every `$` in a string is doubled so the output can be
loaded again; the top level is ordered as the reference orders it.
"""

from __future__ import annotations

import functools
import gc
import json
import math
import re
from typing import Any

from compose.errors import LoadError
from compose.loader.canonical_values import StructDict

_YAML_TOP = ("name", "services", "networks", "volumes", "secrets", "configs", "models")


def escape_dollars(value: Any) -> Any:
    """A copy with every `$` of every string (keys too) written `$$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        escaped = {escape_dollars(k): escape_dollars(v) for k, v in value.items()}
        return StructDict(escaped) if isinstance(value, StructDict) else escaped
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value


def go_json_float(value: float) -> str:
    """A float as Go's encoding/json writes it: positional from 1e-6 up to 1e21, else
    exponent form without a leading zero in a negative exponent (1e-7)."""
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        return re.sub(r"e-0(\d)$", r"e-\1", repr(value))
    from decimal import Decimal  # rare: floats are few; the import costs start-up time

    return format(Decimal(repr(value)), "f")


_FLOAT_TOKEN = re.compile(r'"\\u0000F(\d+)\\u0000"')


def _go_numbers(value: Any, floats: list[str] | None = None, path: tuple[Any, ...] = ()) -> Any:
    """A copy JSON can encode: integral floats as ints; with `floats`, other floats as
    placeholder strings whose Go text `_go_json_dumps` puts back. NaN/Inf are errors, as
    Go's json.Marshal refuses them."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            from compose.loader.yamlload import go_format_float

            raise LoadError(f"json: unsupported value: {go_format_float(value)}",
                            path=_dotted(path) or None)
        if value.is_integer() and abs(value) < 1e21:
            return int(value)
        if floats is None:
            return value
        floats.append(go_json_float(value))
        return f"\0F{len(floats) - 1}\0"
    if isinstance(value, dict):
        return {k: _go_numbers(v, floats, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_numbers(v, floats, (*path, i)) for i, v in enumerate(value)]
    return value


def _json_ready(value: Any, floats: list[str]) -> Any:
    """escape_dollars and _go_numbers in one walk (the JSON output's hot loop); NaN/Inf
    raise LoadError without a path (`render_json` walks again to name it)."""
    kind = type(value)
    if kind is str:
        return value.replace("$", "$$")
    if kind is dict:
        return {k.replace("$", "$$") if type(k) is str else k: _json_ready(v, floats)
                for k, v in value.items()}
    if kind is list:
        return [_json_ready(v, floats) for v in value]
    if isinstance(value, str | dict | list):  # subclasses: the general walks
        return _go_numbers(escape_dollars(value), floats)
    return _go_numbers(value, floats)


class _NotPlainJSON(Exception):
    """A key `_indented_json` does not write itself: json.dumps does the whole tree."""


def _indented_json(value: Any) -> str:
    """json.dumps(value, ensure_ascii=False, indent=2), twice as fast: with `indent` the
    json module falls back to its pure-Python encoder; this writes the same text."""
    from json.encoder import encode_basestring

    chunks: list[str] = []
    append = chunks.append

    def write(item: Any, pad: str) -> None:
        if type(item) is str:
            append(encode_basestring(item))
        elif isinstance(item, dict):
            if not item:
                append("{}")
                return
            inner = pad + "  "
            opening = "{\n"
            for key, child in item.items():
                if type(key) is not str:
                    raise _NotPlainJSON()
                append(opening + inner + encode_basestring(key) + ": ")
                opening = ",\n"
                write(child, inner)
            append("\n" + pad + "}")
        elif isinstance(item, list):
            if not item:
                append("[]")
                return
            inner = pad + "  "
            opening = "[\n"
            for child in item:
                append(opening + inner)
                opening = ",\n"
                write(child, inner)
            append("\n" + pad + "]")
        else:
            append(json.dumps(item, ensure_ascii=False))

    try:
        write(value, "")
    except _NotPlainJSON:
        return json.dumps(value, ensure_ascii=False, indent=2)
    return "".join(chunks)


def _dotted(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _go_json_dumps(value: Any, **options: Any) -> str:
    """json.dumps with Go's float texts and its refusal of NaN/Inf."""
    floats: list[str] = []
    text = json.dumps(_go_numbers(value, floats), ensure_ascii=False, **options)
    if floats:
        text = _FLOAT_TOKEN.sub(lambda m: floats[int(m[1])], text)
    return text


_STRUCT_FIELDS = ("build", "deploy", "healthcheck", "logging", "develop", "blkio_config",
                  "credential_spec", "provider")
_STRUCT_LISTS = ("ports", "volumes", "secrets", "configs", "devices", "gpus", "post_start",
                 "pre_stop")
_STRUCT_MAPS = ("networks", "depends_on", "ulimits", "models")


_NESTED_STRUCTS = frozenset(("resources", "limits", "reservations", "restart_policy",
                             "update_config", "rollback_config", "placement", "exec", "bind",
                             "volume", "tmpfs", "image", "ipam"))
_NESTED_STRUCT_LISTS = frozenset(("watch", "config"))


def _no_extensions(value: Any) -> Any:
    """A struct without its `x-` keys, nested structs included (maps left alone)."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if str(key).startswith("x-"):
            continue
        if key in _NESTED_STRUCTS and isinstance(item, dict):
            item = _no_extensions(item)
        elif key in _NESTED_STRUCT_LISTS and isinstance(item, list):
            item = [_no_extensions(i) for i in item]
        out[key] = item
    return out


def _service_json(service: Any) -> Any:
    if not isinstance(service, dict):
        return service
    out = _no_extensions(service)
    for key in _STRUCT_FIELDS:
        if isinstance(out.get(key), dict):
            out[key] = _no_extensions(out[key])
    for key in _STRUCT_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_no_extensions(i) for i in out[key]]
    for key in _STRUCT_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {k: _no_extensions(v) for k, v in out[key].items()}
    return out


def json_view(data: dict[str, Any]) -> dict[str, Any]:
    """The tree as the reference's JSON shows it: top level sorted, no top-level models,
    and no `x-` extensions inside services and resources (their Go fields are json:"-";
    only top-level extensions are printed)."""
    top = {k: data[k] for k in sorted(data) if k != "models"}
    if isinstance(top.get("services"), dict):
        top["services"] = {n: _service_json(s) for n, s in top["services"].items()}
    for kind in ("networks", "volumes", "secrets", "configs"):
        if isinstance(top.get(kind), dict):
            top[kind] = {n: _no_extensions(r) for n, r in top[kind].items()}
    return top


def go_json(value: Any, indent: int | None = None) -> str:
    """json.Marshal(Indent) text: `<>&` escaped, integral floats as integers."""
    separators = (",", ": ") if indent else (",", ":")
    text = _go_json_dumps(value, indent=indent, separators=separators)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def service_json(service: dict[str, Any]) -> dict[str, Any]:
    """One service as the reference's JSON has it (no extensions)."""
    result: dict[str, Any] = _service_json(service)
    return result


def render_json(data: dict[str, Any]) -> str:
    top = json_view(data)
    floats: list[str] = []
    try:
        ready = _json_ready(top, floats)
    except LoadError:
        _go_numbers(top)  # the same error, with the key path
        raise
    text = _indented_json(ready)
    if floats:
        text = _FLOAT_TOKEN.sub(lambda m: floats[int(m[1])], text)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# --- YAML ------------------------------------------------------------------------------

def _struct(items: Any) -> StructDict:
    return StructDict(items)


def yaml_view(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON tree as the reference's YAML shows it: empty structs and null commands
    left out, blkio device keys in lower case, top-level keys in YAML order."""
    out = _struct((k, data[k]) for k in _YAML_TOP if k in data)
    out.update({k: v for k, v in data.items() if k not in out})
    services = {}
    for name, service in (out.get("services") or {}).items():
        service = _struct(service)
        for key in ("command", "entrypoint"):
            if service.get(key, 0) is None:
                del service[key]
        deploy = service.get("deploy")
        if isinstance(deploy, dict):
            service["deploy"] = _struct((k, v) for k, v in deploy.items()
                                        if not (k in ("resources", "placement") and v == {}))
        blkio = service.get("blkio_config")
        if isinstance(blkio, dict):
            service["blkio_config"] = _struct(
                (k, [_struct((kk.lower(), vv) for kk, vv in i.items())
                     if isinstance(i, dict) else i for i in v] if isinstance(v, list) else v)
                for k, v in blkio.items())
        build = service.get("build")
        if isinstance(build, dict) and isinstance(build.get("ssh"), list):
            service["build"] = _struct({**build, "ssh": [
                ": ".join(str(k).split("=", 1)) for k in build["ssh"]]})
        develop = service.get("develop")
        if isinstance(develop, dict) and isinstance(develop.get("watch"), list):
            service["develop"] = _struct({**develop, "watch": [
                _struct((k, v) for k, v in w.items()
                        if not (k == "exec" and v == {"command": None}))
                if isinstance(w, dict) else w for w in develop["watch"]]})
        services[name] = service
    if "services" in out:
        out["services"] = services
    if isinstance(out.get("networks"), dict):
        out["networks"] = {name: _struct((k, v) for k, v in (net or {}).items()
                                         if not (k == "ipam" and v == {}))
                           for name, net in out["networks"].items()}
    return out


def _natural_less(a: str, b: str) -> bool:
    """yaml.v3's key order: letters before digits, digit runs compared as numbers."""
    digits = False
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            digits = ca.isdigit()
            continue
        al, bl = ca.isalpha(), cb.isalpha()
        if al and bl:
            return ca < cb
        if al or bl:
            return al if digits else bl
        an = bn = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and a[j].isdigit():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdigit():
            an = an * 10 + int(a[ai])
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdigit():
            bn = bn * 10 + int(b[bi])
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ca < cb
    return len(a) < len(b)


def _compare_keys(a: str, b: str) -> int:
    return -1 if _natural_less(a, b) else 1 if _natural_less(b, a) else 0


def yaml_key_order(keys: list[str]) -> list[str]:
    """Map keys in the order yaml.v3 writes them."""
    return sorted(keys, key=functools.cmp_to_key(_compare_keys))


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


_SAFE_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./=+@~-]*")


def _analyze(s: str) -> tuple[bool, bool, bool]:
    """(plain allowed, single-quoted allowed, block allowed) in block context (libyaml)."""
    if _SAFE_PLAIN.fullmatch(s):
        return True, True, True
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
        return _yaml_float(value)
    s = str(value)
    if "\n" not in s:
        return _one_line(s)
    plain, single, block = _analyze(s)
    if not is_key:
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


@functools.lru_cache(maxsize=8192)
def _one_line(s: str) -> str:
    """A string without line breaks as yaml.v3 writes it (keys and values repeat a lot:
    cached)."""
    if _resolves_to_non_string(s):
        return _double_quoted(s)
    plain, single, _ = _analyze(s)
    if plain:
        return s
    if single:
        return "'" + s.replace("'", "''") + "'"
    return _double_quoted(s)


def _yaml_float(value: float) -> str:
    """yaml.v3's float text: strconv 'g' shortest, `.inf`/`-.inf`/`.nan`."""
    from compose.loader.yamlload import go_format_float

    text = go_format_float(value)
    return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        keys = list(value) if isinstance(value, StructDict) else yaml_key_order(list(value))
        for key in keys:
            item = value[key]
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
        _go_numbers(data)  # NaN/Inf are refused, as Go's json.Marshal does
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


def render(data: dict[str, Any], fmt: str, *, raw: bool = False) -> str:
    was_enabled = gc.isenabled()
    gc.disable()  # as in `load`: many small containers, nothing cyclic
    try:
        if raw:
            return render_raw(data, fmt)
        return render_json(data) if fmt == "json" else render_yaml(data)
    finally:
        if was_enabled:
            gc.enable()
