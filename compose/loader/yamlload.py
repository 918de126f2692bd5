"""Compose YAML -> plain Python tree + SourceMap, with Go yaml.v3 scalar semantics.

Anchors and aliases are expanded, `<<` merge keys applied (keys written in the mapping
win, then earlier merged maps), duplicate keys are errors, and `!reset` / `!override`
values come back as `Tagged`. Plain scalars resolve as yaml.v3 does (YAML 1.2 core plus
its 1.1 leftovers): `yes`/`on` stay strings, `0755` is octal, timestamps are datetimes.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from compose.errors import YamlError
from compose.loader.source import Mark, Path, SourceMap, format_path

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PLAIN = "!pycompose/plain"
MERGE = "tag:yaml.org,2002:merge"
COMPOSE_TAGS = ("!reset", "!override")

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_SPECIAL_FLOATS = {
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
    ".inf": math.inf, ".Inf": math.inf, ".INF": math.inf,
    "+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf,
    "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
# yaml.v3's timestamp layouts: date, date + `T`/`t` time + zone, date + space + time.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?(Z|([-+])(\d{2}):(\d{2})))"
    r"|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?))?")
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class Tagged:
    """A value carrying a Compose merge tag: `!reset` or `!override`."""

    tag: str
    value: Any


def _resolve_tag(loader: Any, kind: Any, value: Any, implicit: Any) -> str:
    """Untagged plain scalars get PLAIN (resolved later, yaml.v3's way), `<<` gets MERGE."""
    if kind is ScalarNode and implicit[0]:
        return MERGE if value == "<<" else PLAIN
    return str(yaml.resolver.Resolver.resolve(loader, kind, value, implicit))


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The fast (libyaml) composer; it refuses a redefined anchor."""

    resolve = _resolve_tag


class _RedefiningLoader(yaml.SafeLoader):
    """The pure-Python composer, letting a later `&anchor` replace an earlier one as
    YAML 1.2 and yaml.v3 do; used only for documents that redefine an anchor."""

    resolve = _resolve_tag

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if not isinstance(event, yaml.AliasEvent) and event.anchor is not None:
            self.anchors.pop(event.anchor, None)
        return super().compose_node(parent, index)


def _allowed_alias_share(built: int) -> float:
    """yaml.v3's limit: 99% of values may come from aliases up to 400k, 10% from 4M."""
    low, high = 400_000, 4_000_000
    if built <= low:
        return 0.99
    if built >= high:
        return 0.10
    return 0.99 - 0.89 * (built - low) / (high - low)


def go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), falling back to ParseUint, as yaml.v3 tries them."""
    if not _GO_INT.fullmatch(text):
        return None
    sign = -1 if text[0] == "-" else 1
    digits = text.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1] in "0123456789":
        value = int(digits, 8)
    else:
        value = int(digits, 0)
    value *= sign
    if _INT64[0] <= value <= _INT64[1]:
        return value
    if text[0] not in "+-" and value <= _UINT64_MAX:
        return value
    return None


def go_format_float(value: float) -> str:
    """A float as Go's `fmt.Sprint` writes it (`%v`): 1e+06, 123456.7, 1e-05, +Inf, NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    from decimal import Decimal  # rare: floats are few; the import costs start-up time

    sign = "-" if value < 0 else ""
    exact = Decimal(repr(abs(value))).normalize()  # repr: the shortest round-trip digits
    digits = "".join(str(d) for d in exact.as_tuple().digits)
    exponent = exact.adjusted()
    if exponent < -4 or exponent >= 6:  # Go's %g with the shortest precision
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    if len(digits) <= exponent + 1:
        return f"{sign}{digits}{'0' * (exponent + 1 - len(digits))}"
    return f"{sign}{digits[:exponent + 1]}.{digits[exponent + 1:]}"


def go_string(value: Any) -> str:
    """A YAML scalar as compose writes it into a string field (environment, labels...)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_format_float(value)
    return str(value)


def resolve_plain(text: str) -> Any:
    """The value yaml.v3 gives an untagged plain scalar when decoding into `any`."""
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if not text or text[0] not in "+-.0123456789":
        return text
    if text[0].isdigit():
        stamp = _parse_timestamp(text)
        if stamp is not None:
            return stamp
    plain = text.replace("_", "")
    number = go_parse_int(plain)
    if number is not None:
        return number
    if _YAML_FLOAT.fullmatch(plain):
        return float(plain)
    return text


def _parse_timestamp(text: str) -> datetime.date | datetime.datetime | None:
    m = _TIMESTAMP.fullmatch(text)
    if not m:
        return None
    try:
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        if m[4] is None and m[12] is None:
            return datetime.date(year, month, day)
        zoned = m[4] is not None
        hour, minute, second, fraction = (m[4], m[5], m[6], m[7]) if zoned else m.group(12, 13, 14, 15)
        tz: datetime.tzinfo | None = None
        if zoned:
            tz = datetime.UTC
            if m[8] != "Z":
                offset = datetime.timedelta(hours=int(m[10]), minutes=int(m[11]))
                tz = datetime.timezone(-offset if m[9] == "-" else offset)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime.datetime(year, month, day, int(hour), int(minute), int(second), micro,
                                 tzinfo=tz)
    except ValueError:
        return None


def _tagged_scalar(tag: str, text: str, mark: Mark, path: Path) -> Any:
    """A scalar with an explicit `!!type` tag."""
    short = tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else None
    if short in (None, "str", "timestamp"):
        return text
    if short == "binary":
        try:
            return base64.b64decode("".join(text.split()), validate=True).decode("utf-8", "replace")
        except binascii.Error:
            raise _error("!!binary value contains invalid base64 data", mark, path) from None
    if short == "null":
        return None
    if short == "bool":
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
    elif short == "int":
        number = go_parse_int(text.replace("_", ""))
        if number is not None:
            return number
    elif short == "float":
        if text in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[text]
        plain = text.replace("_", "")
        if _YAML_FLOAT.fullmatch(plain) or go_parse_int(plain) is not None:
            number = go_parse_int(plain)
            return float(number) if number is not None else float(plain)
    else:
        return text
    raise _error(f"cannot decode !!{short} `{text}`", mark, path)


def _error(message: str, mark: Mark, path: Path) -> YamlError:
    return YamlError(message, file=mark.file, line=mark.line, column=mark.column,
                     path=format_path(path) or None)


class _Builder:
    """Turns one composed node graph into a plain tree, recording marks on the way."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.source = SourceMap()
        self._value_marks, self._key_marks = self.source.tables()
        self._active: dict[int, Path] = {}
        self._built = 0
        self._distinct: set[int] = set()
        self._marks: dict[int, Mark] = {}  # aliased nodes are met many times

    def mark(self, node: Node) -> Mark:
        mark = self._marks.get(id(node))
        if mark is None:
            start = node.start_mark
            mark = self._marks[id(node)] = Mark(self.filename, start.line + 1, start.column + 1)
        return mark

    # build and _mapping run once per node of every file: calls are inlined on purpose
    def build(self, node: Node, path: Path, key_mark: Mark | None = None) -> Any:
        node_id = id(node)
        mark = self._marks.get(node_id)
        if mark is None:
            start = node.start_mark
            mark = self._marks[node_id] = Mark(self.filename, start.line + 1, start.column + 1)
        self._built += 1
        self._distinct.add(node_id)
        if self._built > 1000 and not self._built % 100:
            self._check_aliasing(mark, path)
        self._value_marks[path] = mark
        if key_mark is not None:
            self._key_marks[path] = key_mark
        tag = node.tag
        if isinstance(node, ScalarNode):
            value: Any = resolve_plain(node.value) if tag == PLAIN else \
                self._scalar(node, mark, path)
        else:
            if node_id in self._active:
                raise _error(f"cycle detected: node at path {format_path(path)} references "
                             f"node at path {format_path(self._active[node_id])}", mark, path)
            self._active[node_id] = path
            try:
                if isinstance(node, MappingNode):
                    value = self._mapping(node, path)
                else:
                    value = [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                del self._active[node_id]
        if tag in COMPOSE_TAGS:
            return Tagged(tag, value)
        return value

    def _check_aliasing(self, mark: Mark, path: Path) -> None:
        """Refuse alias bombs as yaml.v3 does: too large a share of values from aliases."""
        aliased = self._built - len(self._distinct)
        if aliased > 100 and aliased / self._built > _allowed_alias_share(self._built):
            raise _error("document contains excessive aliasing", mark, path)

    def _scalar(self, node: ScalarNode, mark: Mark, path: Path) -> Any:
        if node.tag == PLAIN:
            return resolve_plain(node.value)
        if node.tag == MERGE:
            return node.value
        if node.tag in COMPOSE_TAGS or node.tag == "!":
            return resolve_plain(node.value) if not node.style else node.value
        return _tagged_scalar(node.tag, node.value, mark, path)

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        merges: list[Node] = []
        marks, filename = self._marks, self.filename
        for key_node, value_node in node.value:
            key_mark = marks.get(id(key_node))
            if key_mark is None:
                start = key_node.start_mark
                key_mark = marks[id(key_node)] = Mark(filename, start.line + 1,
                                                      start.column + 1)
            tag = key_node.tag
            if tag == PLAIN and isinstance(key_node, ScalarNode):
                key: Any = resolve_plain(key_node.value)
                if not isinstance(key, str):
                    key = self._key(key_node, key_mark, path)
            elif tag == MERGE and isinstance(key_node, ScalarNode):
                if "<<" in seen:
                    raise _error(f'mapping key "<<" already defined at line {seen["<<"]}',
                                 key_mark, path)
                seen["<<"] = key_mark.line
                merges.append(value_node)
                continue
            else:
                key = self._key(key_node, key_mark, path)
            if key in seen:
                raise _error(f'mapping key "{key}" already defined at line {seen[key]}',
                             key_mark, (*path, key))
            seen[key] = key_mark.line
            out[key] = self.build(value_node, (*path, key), key_mark)
        for merge in merges:
            self._merge(out, merge, path)
        return out

    def _key(self, node: Node, mark: Mark, path: Path) -> str:
        if not isinstance(node, ScalarNode):
            raise _error(f"non-string key in {format_path(path) or 'the top level'}", mark, path)
        key = self._scalar(node, mark, path)
        if isinstance(key, Tagged):
            key = key.value
        if not isinstance(key, str):
            shown = node.value
            raise _error(f"non-string key in {format_path(path) or 'the top level'}: {shown}",
                         mark, path)
        return key

    def _merge(self, out: dict[str, Any], merge: Node, path: Path) -> None:
        """Apply a `<<` value: keys already present win, earlier sources win over later."""
        sources = merge.value if isinstance(merge, SequenceNode) else [merge]
        if isinstance(merge, ScalarNode) or any(not isinstance(s, MappingNode) for s in sources):
            raise _error("map merge requires map or sequence of maps as the value",
                         self.mark(merge), path)
        for source in sources:
            for key_node, value_node in source.value:
                if isinstance(key_node, ScalarNode) and key_node.tag == MERGE:
                    nested: dict[str, Any] = {}
                    self._merge(nested, value_node, path)
                    for key, value in nested.items():
                        out.setdefault(key, value)
                    continue
                key_mark = self.mark(key_node)
                key = self._key(key_node, key_mark, path)
                if key not in out:
                    out[key] = self.build(value_node, (*path, key), key_mark)


def parse_yaml_documents(text: str, filename: str) -> list[tuple[Any, SourceMap]]:
    """Every document of a YAML stream, each as (tree, SourceMap)."""
    try:
        return _parse(_Loader, text, filename)
    except _DuplicateAnchor:
        return _parse(_RedefiningLoader, text, filename)


class _DuplicateAnchor(Exception):
    """libyaml's composer met a redefined anchor: parse again with the Python one."""


def _parse(loader_class: type, text: str, filename: str) -> list[tuple[Any, SourceMap]]:
    loader = loader_class(text)
    docs: list[tuple[Any, SourceMap]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            builder = _Builder(filename)
            tree = builder.build(node, ())
            if tree is None and isinstance(node, ScalarNode) and not node.value:
                builder.source.set((), _document_start(text, builder.mark(node)))
            docs.append((tree, builder.source))
    except yaml.MarkedYAMLError as exc:
        if "duplicate anchor" in str(exc.context) and loader_class is _Loader:
            raise _DuplicateAnchor() from None
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        clearer = _clearer_message(text, mark, message)
        if clearer is not None:
            message = clearer
        elif exc.problem and exc.context:
            message += f" ({exc.context}"
            context = exc.context_mark
            if context is not None and mark is not None and (
                    context.line, context.column) != (mark.line, mark.column):
                message += f" at line {context.line + 1}, column {context.column + 1}"
            message += ")"
        raise YamlError(message, file=filename, line=mark.line + 1 if mark else None,
                        column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc).replace("\n", " "), file=filename) from None
    finally:
        loader.dispose()
    return docs


_ALIAS_NAME = re.compile(r"\*([^\s,\[\]{}]+)")


def _clearer_message(text: str, mark: Any, message: str) -> str | None:
    """libyaml's words for two common mistakes, said the way a user can act on them."""
    if mark is None:
        return None
    line = text.split("\n")[mark.line] if mark.line < text.count("\n") + 1 else ""
    before, at = line[:mark.column], line[mark.column:mark.column + 1]
    if at == "\t" and not before.strip(" \t"):
        return "tab characters are not allowed for indentation"
    if "undefined alias" in message:
        found = _ALIAS_NAME.match(line, mark.column)
        if found:
            return f'found undefined alias "{found[1]}" (no anchor &{found[1]} before it)'
    return None


def _document_start(text: str, empty: Mark) -> Mark:
    """An empty document is marked where its content would be, often past its end: the
    `---` that opened it says better where it is."""
    # at a line start, the empty content ends where the next document begins
    lines = text.split("\n")[:empty.line - 1 if empty.column == 1 else empty.line]
    for number in range(len(lines), 0, -1):
        if lines[number - 1].startswith("---"):
            return Mark(empty.file, number, 1)
    return empty


def parse_yaml(text: str, filename: str) -> tuple[Any, SourceMap]:
    """The first document of `text` as a plain tree (None if empty) and its SourceMap.

    A stream with several documents is read by `parse_yaml_documents`; Compose merges
    them in order like override files.
    """
    docs = parse_yaml_documents(text, filename)
    if not docs:
        return None, SourceMap()
    return docs[0]
