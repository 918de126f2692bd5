"""A small, fast JSON-schema validator for the subset the Compose Specification uses.

Keywords: type, properties, patternProperties, additionalProperties, required, enum,
const, pattern, format, minimum/maximum, items, uniqueItems, oneOf/anyOf/allOf, $ref
into `definitions`/`$defs`. Annotations (description, default, deprecated...) are
ignored. It stops at the first problem and describes it in words a user understands;
`oneOf` is checked like `anyOf` (the Compose schema's branches never overlap), and when
no branch fits, the problem reported is the one of the branch whose type fits the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from compose.loader.suggest import did_you_mean

Path = tuple[str | int, ...]
Schema = Mapping[str, Any]
# A format checker returns None when the value is fine, else what is wrong with it.
FormatChecker = Callable[[Any], str | None]

TYPE_WORDS = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "a boolean", "null": "null",
}
# What the schema's value patterns mean, in words.
PATTERN_WORDS = {
    "[a-zA-Z0-9][a-zA-Z0-9_.-]+": "expected at least 2 characters: a letter or digit, then "
                                  'letters, digits, "_", "." or "-"',
    "always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+":
        "expected always, never, build, missing, refresh, daily, weekly or every_<N><w|d|h|m|s>",
}
NAME_PATTERN_WORDS = {
    "^[a-zA-Z0-9._-]+$": 'only letters, digits, ".", "_" and "-" are allowed',
    "^[a-z]+$": "only lowercase letters are allowed",
}


@dataclass(frozen=True)
class Violation:
    """The first problem found: `path` is what the message is about; `at` is where the
    user should look (the offending key for an unknown key, else the value)."""

    path: Path
    message: str
    at: Path
    at_key: bool = False


_EXACT_JSON_TYPES: dict[type, str] = {type(None): "null", bool: "boolean", int: "integer",
                                      float: "number", str: "string", list: "array",
                                      dict: "object"}


def json_type(value: Any) -> str:
    exact = _EXACT_JSON_TYPES.get(type(value))
    if exact is not None:
        return exact
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _has_type(value: Any, name: str) -> bool:
    actual = json_type(value)
    if name == actual:
        return True
    if name == "number":
        return actual == "integer"
    if name == "integer":
        return actual == "number" and float(value).is_integer()
    return False


def describe(value: Any) -> str:
    """A short description of a value for messages: `a list`, `the string "x"`..."""
    kind = json_type(value)
    if kind == "string":
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(text)}"
    if kind in ("integer", "number"):
        return f"the number {value}"
    if kind == "boolean":
        return f"the boolean {'true' if value else 'false'}"
    return TYPE_WORDS.get(kind, kind)


def quote(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _words(types: list[str]) -> str:
    names = [TYPE_WORDS.get(t, t) for t in dict.fromkeys(types)]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _unwrap(value: Any) -> tuple[Any, bool]:
    """YAML `!reset`/`!override` wrappers (loader's Tagged) validate as their content;
    returns (value, skip) where skip means "nothing to check" (a `!reset null`)."""
    if type(value) in _EXACT_JSON_TYPES:
        return value, False
    if type(value).__name__ == "Tagged" and hasattr(value, "tag") and hasattr(value, "value"):
        inner = value.value
        if value.tag.endswith("reset") and inner is None:
            return None, True
        return inner, False
    return value, False


class Validator:
    """A compiled schema; `first_violation(tree)` is the whole interface."""

    def __init__(self, schema: Schema, formats: Mapping[str, FormatChecker] | None = None):
        self.schema = schema
        self.formats = dict(formats or {})
        self._patterns: dict[str, re.Pattern[str]] = {}
        # id of a (sub)schema -> its `type` as a tuple; schemas live as long as self
        self._declared_types: dict[int, tuple[str, ...] | None] = {}

    def first_violation(self, value: Any) -> Violation | None:
        return self._check(self.schema, value, ())

    # -- helpers -----------------------------------------------------------------------
    def _regex(self, pattern: str) -> re.Pattern[str]:
        compiled = self._patterns.get(pattern)
        if compiled is None:
            compiled = self._patterns[pattern] = re.compile(pattern)
        return compiled

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"unsupported $ref {ref!r}")
            node: Any = self.schema
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def types_of(self, schema: Schema) -> list[str] | None:
        """The JSON types a (sub)schema admits, or None if it does not say."""
        schema = self.resolve(schema)
        if "type" in schema:
            t = schema["type"]
            return [t] if isinstance(t, str) else list(t)
        if "const" in schema:
            return [json_type(schema["const"])]
        branches = schema.get("oneOf") or schema.get("anyOf")
        if branches:
            found: list[str] = []
            for branch in branches:
                sub = self.types_of(branch)
                if sub is None:
                    return None
                found += sub
            return found
        return None

    def _admits_type(self, schema: Schema, value: Any) -> bool:
        types = self.types_of(schema)
        return types is None or any(_has_type(value, t) for t in types)

    # -- the check ---------------------------------------------------------------------
    def _check(self, schema: Schema, value: Any, path: Path) -> Violation | None:
        value, skip = _unwrap(value)
        if skip:
            return None
        schema = self.resolve(schema)

        try:
            names = self._declared_types[id(schema)]
        except KeyError:
            types = schema.get("type")
            names = self._declared_types[id(schema)] = None if types is None else \
                (types,) if isinstance(types, str) else tuple(types)
        if names is not None:
            actual = json_type(value)
            if actual not in names and not any(_has_type(value, t) for t in names):
                return Violation(path, f"must be {_words(list(names))}, not {describe(value)}",
                                 path)

        for keyword in ("oneOf", "anyOf"):
            if keyword in schema:
                problem = self._check_alternatives(schema[keyword], value, path)
                if problem is not None:
                    return problem
        for branch in schema.get("allOf", ()):
            problem = self._check(branch, value, path)
            if problem is not None:
                return problem

        if "const" in schema and value != schema["const"]:
            return Violation(path, f"must be {quote(schema['const'])}, not {describe(value)}",
                             path)
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(quote(v) for v in schema["enum"])
            hint = did_you_mean(value, schema["enum"]) if isinstance(value, str) else None
            message = f"{quote(value)} is not allowed (expected one of {allowed})"
            return Violation(path, message + (f' (did you mean "{hint}"?)' if hint else ""),
                             path)

        if isinstance(value, dict):
            return self._check_object(schema, value, path)
        if isinstance(value, list):
            return self._check_array(schema, value, path)
        if isinstance(value, str) and "pattern" in schema \
                and not self._regex(schema["pattern"]).search(value):
            words = PATTERN_WORDS.get(schema["pattern"])
            if words:
                return Violation(path, f"{quote(value)} is not valid ({words})", path)
            return Violation(path, f"{quote(value)} does not match the pattern "
                                   f"'{schema['pattern']}'", path)
        if json_type(value) in ("integer", "number"):
            if "minimum" in schema and value < schema["minimum"]:
                return Violation(path, f"must be at least {schema['minimum']}, not {value}", path)
            if "maximum" in schema and value > schema["maximum"]:
                return Violation(path, f"must be at most {schema['maximum']}, not {value}", path)
        if "format" in schema:
            checker = self.formats.get(schema["format"])
            problem_text = checker(value) if checker is not None else None
            if problem_text:
                return Violation(path, problem_text, path)
        return None

    def _check_alternatives(self, branches: list[Schema], value: Any,
                            path: Path) -> Violation | None:
        fitting: list[Violation] = []
        for branch in branches:
            if not self._admits_type(branch, value):
                continue
            problem = self._check(branch, value, path)
            if problem is None:
                return None
            fitting.append(problem)
        if fitting:
            # The deepest problem is the most specific one.
            return max(fitting, key=lambda v: len(v.at))
        types: list[str] = []
        for branch in branches:
            types += self.types_of(branch) or []
        return Violation(path, f"must be {_words(types)}, not {describe(value)}", path)

    def _check_object(self, schema: Schema, value: dict[Any, Any],
                      path: Path) -> Violation | None:
        properties: Mapping[str, Schema] = schema.get("properties", {})
        patterns: Mapping[str, Schema] = schema.get("patternProperties", {})
        additional = schema.get("additionalProperties", True)
        for name in schema.get("required", ()):
            if name not in value:
                return Violation(path, f'missing required key "{name}"', path)
        for key, item in value.items():
            key_text = str(key)
            child = path + (key_text,)
            matched = False
            if key_text in properties:
                matched = True
                problem = self._check(properties[key_text], item, child)
                if problem is not None:
                    return problem
            for pattern, sub in patterns.items():
                if self._regex(pattern).search(key_text):
                    matched = True
                    problem = self._check(sub, item, child)
                    if problem is not None:
                        return problem
            if matched:
                continue
            if additional is False:
                return Violation(path, self._unknown_key(key_text, properties, patterns),
                                 child, at_key=True)
            if isinstance(additional, Mapping):
                problem = self._check(additional, item, child)
                if problem is not None:
                    return problem
        return None

    @staticmethod
    def _unknown_key(key: str, properties: Mapping[str, Schema],
                     patterns: Mapping[str, Schema]) -> str:
        if properties:
            hint = did_you_mean(key, list(properties))
            text = f'unknown key "{key}"'
            return text + (f' (did you mean "{hint}"?)' if hint else "")
        names = [p for p in patterns if p != "^x-"]
        if names:
            rule = NAME_PATTERN_WORDS.get(names[0], f"it must match '{names[0]}'")
            return f'invalid name "{key}": {rule}'
        return f'unknown key "{key}"'

    def _check_array(self, schema: Schema, value: list[Any], path: Path) -> Violation | None:
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                problem = self._check(items, item, path + (index,))
                if problem is not None:
                    return problem
        if schema.get("uniqueItems"):
            seen: dict[Any, int] = {}
            strings = all(type(item) is str for item in value)
            for index, item in enumerate(value):
                identity = item if strings else \
                    json.dumps(_plain(item), sort_keys=True, default=str)
                if identity in seen:
                    return Violation(path + (index,), f"duplicate item {quote(_plain(item))} "
                                     f"(already at [{seen[identity]}])", path + (index,))
                seen[identity] = index
        return None


def _plain(value: Any) -> Any:
    """The value with Tagged wrappers removed, and True kept apart from 1 for comparison."""
    value, _ = _unwrap(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
