"""substitute() and interpolate_tree(): the grammar's corners, casts, located errors.

Edge cases marked (oracle) were checked against `docker compose config` v2.40.3.
"""

from __future__ import annotations

from typing import Any

import pytest

from compose.errors import InterpolationError
from compose.loader.interpolate import (
    InvalidTemplateError,
    MissingRequiredError,
    cast_for,
    interpolate_tree,
    substitute,
)
from compose.loader.yamlload import Tagged, parse_yaml


def sub(template: str, **env: str) -> str:
    return substitute(template, env.get)


@pytest.mark.parametrize(("template", "env", "expected"), [
    ("${UNSET-myerror?msg}", {}, "myerror?msg"),  # the first operator wins (oracle)
    ("${FOO-a:-b}", {}, "a:-b"),  # (oracle)
    ("${FOO:-a-b}", {}, "a-b"),
    ("${FOO:+a}b}", {"FOO": "1"}, "ab}"),  # (oracle)
    ("${FOO?a}b}", {"FOO": "1"}, "1b}"),  # (oracle)
    ("${FOO:-a}}b}", {}, "a}b}"),  # (oracle)
    ("${FOO:-a}${BAR:?x}", {"BAR": "1"}, "a1"),  # (oracle)
    ("$$$${A}", {"A": "1"}, "$${A}"),  # (oracle)
    ("p${A:-{:+=}q", {"A": "a"}, "paq"),  # (oracle)
    # how compose-go pairs braces: after a `{` the next character is skipped (oracle)
    ("${A:-{}}${C:-c}}", {}, "{}}c"),
    ("${A:-{x}y}z}", {}, "{x}yz}"),
    ("${A:-{}}}", {}, "{}}"),
    ("${A:-{}}x", {}, "{}x"),
    ("${BAR+$FOO ${FOO:+second}}", {"BAR": "", "FOO": "f"}, "f second"),
    ("${missing:-{\"json\":1}}", {}, '{"json":1}'),
    # Go's case folding: long s and Kelvin sign are name letters, dotless i is not (oracle)
    ("$FOOſ", {"FOOſ": "long-s"}, "long-s"),
    ("${FOO\u212a}", {"FOO": "x"}, ""),
    ("$FOOı", {"FOO": "x"}, "xı"),
])
def test_grammar_corners(template: str, env: dict[str, str], expected: str) -> None:
    assert substitute(template, env.get) == expected


@pytest.mark.parametrize(("template", "env", "message"), [
    ("${FOO?a:-b}", {}, "required variable FOO is missing a value: a:-b"),  # (oracle)
    ("${FOO:?}", {"FOO": ""}, "required variable FOO is missing a value"),  # (oracle)
    ("${FOO:-a} ${BAR:?err}", {}, "required variable BAR is missing a value: err"),  # (oracle)
    ("${FOO:+${BAR:?nested}}", {}, "required variable BAR is missing a value: nested"),
])
def test_required_errors(template: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(MissingRequiredError) as caught:
        substitute(template, env.get)
    assert caught.value.message == message
    assert caught.value.file is None and caught.value.line is None


@pytest.mark.parametrize(("template", "shown"), [
    ("${FOO:-${BAR}", "${BAR"),  # the nested template is the one reported (oracle)
    ("${A}${", "${A}${"),  # (oracle)
    ("${A:-{:+=}${B}${B}", "{:+=}${B}${B"),  # (oracle)
    ("${A:-{}}${A}", "{}}${A"),  # (oracle)
    ("${İ}", "${İ}"),  # (oracle)
    ("${ FOO}", "${ FOO}"),
])
def test_invalid_templates(template: str, shown: str) -> None:
    with pytest.raises(InvalidTemplateError) as caught:
        sub(template, A="1")
    assert caught.value.template == shown


def test_unset_variables_warn_once_each_use() -> None:
    warnings: list[str] = []
    assert substitute("$A-${B}-${C:-c}", {}.get, warn=warnings.append) == "--c"
    assert warnings == ['The "A" variable is not set. Defaulting to a blank string.',
                        'The "B" variable is not set. Defaulting to a blank string.']


def test_tree_values_not_keys_and_escapes() -> None:
    text = ("services:\n  s:\n    image: 'img:${TAG:-latest}'\n    labels:\n"
            "      $KEY: '$$literal'\n    command: [echo, '$X', 2]\n")
    tree, source = parse_yaml(text, "c.yaml")
    out = interpolate_tree(tree, {"TAG": "1.0", "X": "x", "KEY": "k"}, source=source,
                           warn=lambda _: None)
    assert out["services"]["s"] == {"image": "img:1.0", "labels": {"$KEY": "$literal"},
                                    "command": ["echo", "x", 2]}
    assert tree["services"]["s"]["image"] == "img:${TAG:-latest}"  # input left untouched


def test_tagged_values_are_interpolated_and_kept_tagged() -> None:
    tree, source = parse_yaml("services:\n  s:\n    ports: !override ['${P}:80']\n", "c.yaml")
    out = interpolate_tree(tree, {"P": "8080"}, source=source, warn=lambda _: None)
    assert out["services"]["s"]["ports"] == Tagged("!override", ["8080:80"])


def test_error_is_located_at_the_value() -> None:
    # Deviation: compose-go names a list item `services.s.command.[]`; pycompose gives
    # its index and the file position.
    text = "services:\n  s:\n    image: x\n    command:\n      - run\n      - ${NEED:?set NEED}\n"
    tree, source = parse_yaml(text, "/p/compose.yaml")
    with pytest.raises(InterpolationError) as caught:
        interpolate_tree(tree, {}, source=source, warn=lambda _: None)
    assert str(caught.value) == ("/p/compose.yaml:6:9: error while interpolating "
                                 "services.s.command[1]: "
                                 "required variable NEED is missing a value: set NEED")


def test_casts_after_interpolation() -> None:
    text = ("services:\n  s:\n    privileged: '${PRIV}'\n    init: 'true'\n"
            "    cpus: '${CPUS}'\n    scale: '2'\n    ports:\n      - target: '${T}'\n"
            "    ulimits:\n      nofile: {soft: '1', hard: '2'}\n    environment:\n      A: 'yes'\n"
            "networks:\n  n:\n    internal: 'off'\nvolumes:\n  v:\n    external: 'false'\n")
    tree, source = parse_yaml(text, "c.yaml")
    warnings: list[str] = []
    out = interpolate_tree(tree, {"PRIV": "yes", "CPUS": "0.5", "T": "80"}, source=source,
                           warn=warnings.append)
    service: dict[str, Any] = out["services"]["s"]
    assert service["privileged"] is True and service["init"] is True
    assert service["cpus"] == 0.5 and service["scale"] == 2
    assert service["ports"] == [{"target": 80}]
    assert service["ulimits"] == {"nofile": {"soft": 1, "hard": 2}}
    assert service["environment"] == {"A": "yes"}  # no cast outside the table
    assert out["networks"]["n"]["internal"] is False and out["volumes"]["v"]["external"] is False
    assert warnings == ['"yes" for boolean is not supported by YAML 1.2, please use `true`',
                        '"off" for boolean is not supported by YAML 1.2, please use `false`']


def test_invalid_template_in_a_tree_is_located() -> None:
    tree, source = parse_yaml("services:\n  s:\n    image: '${TAG'\n", "c.yaml")
    with pytest.raises(InterpolationError) as caught:
        interpolate_tree(tree, {}, source=source, warn=lambda _: None)
    assert str(caught.value) == ('c.yaml:3:12: invalid interpolation format for '
                                 'services.s.image: "${TAG" '
                                 "(you may need to escape any $ with another $)")


def test_cast_failure_is_located() -> None:
    tree, source = parse_yaml("services:\n  s:\n    tty: '${T}'\n", "c.yaml")
    with pytest.raises(InterpolationError) as caught:
        interpolate_tree(tree, {"T": "maybe"}, source=source, warn=lambda _: None)
    assert str(caught.value) == ("c.yaml:3:10: error while interpolating services.s.tty: "
                                 "failed to cast to expected type: invalid boolean: maybe")


def test_cast_table_matches_paths() -> None:
    assert cast_for(("services", "web", "ports", 0, "target")) == "int"
    assert cast_for(("services", "web", "ports", "x", "target")) is None
    assert cast_for(("services", "web", "ulimits", "nproc")) == "int"
    assert cast_for(("services", "web", "image")) is None
    assert cast_for(("secrets", "s", "external")) == "bool"
