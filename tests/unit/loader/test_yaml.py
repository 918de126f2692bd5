"""parse_yaml: yaml.v3 scalar semantics, anchors and merge keys, tags, errors with marks.

The scalar table was checked against `docker compose config` v2.40.3 (environment values
of one service): e.g. `yes` -> "yes", `0755` -> "493", `09` -> "9", `1e3` -> "1000".
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import pytest

from compose.errors import ConfigError, YamlError
from compose.loader.source import Mark, SourceMap, error_at, format_path
from compose.loader.yamlload import (
    Tagged,
    go_string,
    parse_yaml,
    parse_yaml_documents,
    resolve_plain,
)


@pytest.mark.parametrize(("text", "value"), [
    ("yes", "yes"), ("on", "on"), ("no", "no"), ("off", "off"), ("y", "y"),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False),
    ("tRUE", "tRUE"), ("~", None), ("null", None), ("Null", None), ("NULL", None),
    ("0755", 493), ("09", 9.0), ("0x1F", 31), ("-0x10", -16), ("0o17", 15), ("0b101", 5),
    ("1_000", 1000), ("+12", 12), ("1e3", 1000.0), ("1.10", 1.1), (".5", 0.5), ("0.", 0.0),
    ("1e", "1e"), ("12345678901234567890", 12345678901234567890),
    ("123456789012345678901234", 1.2345678901234568e23), ("abc", "abc"), ("1.2.3", "1.2.3"),
    ("-", "-"), ("+", "+"), (".", "."),
])
def test_plain_scalars_resolve_as_yaml_v3(text: str, value: Any) -> None:
    resolved = resolve_plain(text)
    assert resolved == value and type(resolved) is type(value)


def test_special_floats_and_timestamps() -> None:
    assert resolve_plain(".inf") == math.inf and resolve_plain("-.Inf") == -math.inf
    assert math.isnan(resolve_plain(".NaN"))
    assert resolve_plain("2001-12-14") == datetime.date(2001, 12, 14)
    stamp = resolve_plain("2001-12-14t21:59:43.10-05:00")
    assert isinstance(stamp, datetime.datetime) and stamp.utcoffset() == datetime.timedelta(hours=-5)
    assert resolve_plain("2001-13-14") == "2001-13-14"
    assert resolve_plain("2001-1-2") == datetime.date(2001, 1, 2)
    assert isinstance(resolve_plain("2001-12-14 21:59:43"), datetime.datetime)
    # layouts yaml.v3 does not take stay strings (oracle)
    assert resolve_plain("2001-12-14T21:59:43") == "2001-12-14T21:59:43"
    assert resolve_plain("2001-12-14 21:59:43.10 -5") == "2001-12-14 21:59:43.10 -5"


def test_quoted_and_tagged_scalars_stay_strings() -> None:
    tree, _ = parse_yaml("a: '0755'\nb: \"true\"\nc: !!str 12\nd: !!int '12'\ne: !!float 1\n"
                         "f:\ng: ''\n", "c.yaml")
    assert tree == {"a": "0755", "b": "true", "c": "12", "d": 12, "e": 1.0, "f": None, "g": ""}


def test_empty_document_is_none() -> None:
    assert parse_yaml("", "c.yaml")[0] is None
    assert parse_yaml("# only a comment\n", "c.yaml")[0] is None


def test_marks_of_values_and_keys() -> None:
    text = "services:\n  web:\n    image: nginx\n    ports:\n      - 80:80\n      - '443:443'\n"
    tree, source = parse_yaml(text, "/p/compose.yaml")
    assert tree["services"]["web"]["ports"] == ["80:80", "443:443"]
    assert source.get(("services", "web", "image")) == Mark("/p/compose.yaml", 3, 12)
    assert source.key(("services", "web", "image")) == Mark("/p/compose.yaml", 3, 5)
    assert source.get(("services", "web", "ports", 1)) == Mark("/p/compose.yaml", 6, 9)
    assert source.locate(("services", "web", "ports", 1, "target")) == Mark("/p/compose.yaml", 6, 9)


def test_anchors_aliases_and_extension_fields() -> None:
    text = ("x-common: &common\n  image: base\n  labels: [a]\n"
            "services:\n  a: *common\n  b:\n    <<: *common\n    image: mine\n")
    tree, source = parse_yaml(text, "c.yaml")
    assert tree["x-common"] == {"image": "base", "labels": ["a"]}
    assert tree["services"]["a"] == {"image": "base", "labels": ["a"]}
    assert tree["services"]["b"] == {"image": "mine", "labels": ["a"]}
    assert tree["services"]["a"] is not tree["x-common"]  # aliases are expanded copies
    assert source.get(("services", "b", "image")).line == 8
    assert source.get(("services", "b", "labels")).line == 3


def test_a_redefined_anchor_replaces_the_earlier_one() -> None:  # (oracle: C is "2")
    text = "x-a: &x 1\nx-b: &x 2\nservices:\n  s:\n    environment:\n      C: *x\n"
    tree, source = parse_yaml(text, "c.yaml")
    assert tree["services"]["s"]["environment"] == {"C": 2}
    assert source.get(("services", "s", "environment", "C")) == Mark("c.yaml", 2, 6)


def test_merge_sequence_earlier_maps_win_and_explicit_keys_win_anywhere() -> None:
    text = ("x-a: &a {A: 1}\nx-b: &b {A: 3, B: 3}\n"
            "env:\n  C: 0\n  <<: [*a, *b]\n  B: 2\n")
    tree, _ = parse_yaml(text, "c.yaml")
    assert tree["env"] == {"C": 0, "B": 2, "A": 1}


def test_merge_of_a_scalar_is_an_error() -> None:
    with pytest.raises(YamlError, match="map merge requires map"):
        parse_yaml("x: &x 1\ny:\n  <<: *x\n", "c.yaml")


def test_a_second_merge_key_is_a_duplicate() -> None:  # (oracle)
    with pytest.raises(YamlError, match='mapping key "<<" already defined at line 2'):
        parse_yaml("a:\n  <<: {x: 1}\n  <<: {y: 1}\n", "c.yaml")


def test_binary_scalars_are_decoded() -> None:  # (oracle: `!!binary aGVsbG8=` -> "hello")
    assert parse_yaml("a: !!binary aGVsbG8=\n", "c.yaml")[0] == {"a": "hello"}
    with pytest.raises(YamlError, match="invalid base64"):
        parse_yaml("a: !!binary '%%%'\n", "c.yaml")


@pytest.mark.parametrize(("value", "text"), [
    (1e6, "1e+06"), (123456.7, "123456.7"), (1234567.0, "1.234567e+06"), (1e-05, "1e-05"),
    (0.0001, "0.0001"), (1e20, "1e+20"), (100000.0, "100000"), (-0.0, "-0"), (1.1, "1.1"),
    (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"), (True, "true"), (493, "493"),
])
def test_go_string_of_scalars(value: Any, text: str) -> None:  # (oracle, environment values)
    assert go_string(value) == text


def test_reset_and_override_tags() -> None:
    text = "s:\n  a: !reset null\n  b: !reset []\n  c: !override [1, 2]\n  d: !override {k: v}\n"
    tree, _ = parse_yaml(text, "c.yaml")
    assert tree["s"] == {"a": Tagged("!reset", None), "b": Tagged("!reset", []),
                         "c": Tagged("!override", [1, 2]), "d": Tagged("!override", {"k": "v"})}


def test_duplicate_key_is_an_error_with_position() -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml("services:\n  s:\n    image: x\n    image: y\n", "/p/compose.yaml")
    error = caught.value
    assert (error.file, error.line, error.column) == ("/p/compose.yaml", 4, 5)
    assert error.path == "services.s.image"
    assert 'mapping key "image" already defined at line 3' in str(error)
    assert str(error).startswith("/p/compose.yaml:4:5: services.s.image: ")


def test_non_string_key_is_an_error() -> None:
    with pytest.raises(YamlError, match="non-string key in services.s.environment: 1"):
        parse_yaml("services:\n  s:\n    environment:\n      1: a\n", "c.yaml")


def test_recursive_alias_is_an_error() -> None:
    with pytest.raises(YamlError, match="cycle detected"):
        parse_yaml("services:\n  s: &s\n    image: x\n    labels: *s\n", "c.yaml")


def test_alias_bomb_fails_fast() -> None:
    # docker compose v2.40.3 expands this kind of document until memory runs out;
    # pycompose refuses it (deviation: an error instead of a hang).
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcde", "bcdef", strict=True):
        levels.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    with pytest.raises(YamlError, match="document contains excessive aliasing"):
        parse_yaml("\n".join(levels) + "\n", "bomb.yaml")
    tree, _ = parse_yaml("\n".join(levels[:3]) + "\n", "ok.yaml")  # 729 values: fine
    assert len(tree["c"]) == 9 and tree["c"][8][8] == ["lol"] * 9


def test_syntax_error_is_located() -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml("services:\n  s:\n    image: [x\n", "c.yaml")
    assert str(caught.value) == ("c.yaml:4:1: did not find expected ',' or ']' "
                                 "(while parsing a flow sequence at line 3, column 12)")
    with pytest.raises(YamlError, match="undefined alias|found undefined"):
        parse_yaml("a: *nothing\n", "c.yaml")


def test_several_documents() -> None:
    docs = parse_yaml_documents("a: 1\n---\nb: 2\n", "c.yaml")
    assert [tree for tree, _ in docs] == [{"a": 1}, {"b": 2}]
    assert docs[1][1].get(("b",)) == Mark("c.yaml", 3, 4)
    assert parse_yaml("a: 1\n---\nb: 2\n", "c.yaml")[0] == {"a": 1}


def test_source_map_helpers() -> None:
    source = SourceMap()
    source.set(("services", "web"), Mark("a.yaml", 2, 3), Mark("a.yaml", 2, 1))
    source.set(("services", "web", "ports", 1), Mark("a.yaml", 5, 9))
    assert format_path(("services", "web", "ports", 1, "target")) == "services.web.ports[1].target"
    assert format_path(()) == ""
    assert source.locate(("services", "web", "image")) == Mark("a.yaml", 2, 3)
    assert source.locate(("volumes",)) is None
    assert source.key(("services", "web")) == Mark("a.yaml", 2, 1)
    moved = source.rebase(("services", "web"), ("services", "api"))
    assert moved.get(("services", "api", "ports", 1)) == Mark("a.yaml", 5, 9)
    assert moved.key(("services", "api")) == Mark("a.yaml", 2, 1)
    other = SourceMap()
    other.update(moved)
    assert ("services", "api") in other and len(other) == 2
    error = error_at(ConfigError, "bad port", ("services", "web", "ports", 1, "target"), source)
    assert isinstance(error, ConfigError)
    assert str(error) == "a.yaml:5:9: services.web.ports[1].target: bad port"
    assert str(error_at(ConfigError, "no file", ("x",), None)) == "x: no file"
