"""The per-file phases, in compose-go's order, shared by the main load, include and extends.

For each YAML document: strip `!reset`/`!override` -> interpolate -> extends ->
clear reset paths -> include -> merge into the accumulated tree -> unicity ->
schema -> canonical -> unicity again (ranges can reveal duplicates). Then, once per
model: defaults -> relative paths -> environment pass-through.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compose.errors import LoadError, YamlError
from compose.loader.source import SourceMap
from compose.loader.treepath import TreePath

Warn = Callable[[str], None]


@dataclass
class FileLoader:
    """Options and shared state for loading one (sub-)project's files."""

    environment: Mapping[str, str]
    warn: Warn
    source: SourceMap
    base_dir: str
    home: str | None = None
    project_dir: str | None = None  # the main project's directory
    keep_relative: bool = False  # --no-path-resolution of the main project
    interpolate: bool = True
    resolve_paths: bool = True
    skip_extends: bool = False
    skip_include: bool = False
    skip_validation: bool = False
    skip_defaults: bool = False
    parsed: dict[str, list[tuple[Any, SourceMap]]] = field(default_factory=dict)
    stdin: Callable[[], str] = field(default=lambda: sys.stdin.read())

    def relative_to(self) -> str | None:
        return self.project_dir if self.keep_relative else None

    def derive(self, **changes: Any) -> FileLoader:
        return dataclasses.replace(self, **changes)

    def documents(self, filename: str) -> list[tuple[Any, SourceMap]]:
        """The YAML documents of a file, parsed once per load (positions kept)."""
        if filename not in self.parsed:
            from compose.loader.yamlload import parse_yaml_documents

            if filename == "-":
                text, shown = self.stdin(), "-"
            else:
                try:
                    with open(filename, encoding="utf-8") as handle:
                        text = handle.read()
                except FileNotFoundError:
                    from compose.errors import FileNotFound

                    raise FileNotFound(f"open {filename}: no such file or directory") from None
                except UnicodeDecodeError as exc:
                    raise YamlError(f"invalid UTF-8: {exc.reason}", file=filename) from None
                shown = filename
            self.parsed[filename] = parse_yaml_documents(text, shown)
        return self.parsed[filename]

    def load_file(self, filename: str, working_dir: str, acc: dict[str, Any],
                  included: list[str]) -> tuple[dict[str, Any], list[TreePath]]:
        from compose.loader.canonical import canonical
        from compose.loader.merge import apply_resets, enforce_unicity, merge, strip_tags

        resets: list[TreePath] = []
        for doc, source in self.documents(filename):
            self.source.update(source)
            if not isinstance(doc, dict):
                # an explicit empty document (`---` at the end) counts, as in the reference
                mark = source.get(())
                raise LoadError("top-level object must be a mapping", file=filename,
                                line=mark.line if mark else None,
                                column=mark.column if mark else None)
            cfg, resets = strip_tags(doc)
            if self.interpolate:
                from compose.loader.interpolate import interpolate_tree

                cfg = interpolate_tree(cfg, self.environment, source=source, warn=self.warn)
            if not self.skip_extends and _uses_extends(cfg):
                from compose.loader.extends import apply_extends

                apply_extends(cfg, filename, self, resets)
            apply_resets(acc, resets)
            if not self.skip_include and "include" in cfg:
                from compose.loader.include import apply_include

                apply_include(cfg, working_dir, self, [*included, filename])
            acc = merge(acc, cfg)
            try:
                acc = enforce_unicity(acc)
            except LoadError as exc:
                self._locate(exc)
                raise
            if not self.skip_validation:
                self._validate(acc, filename)
            try:
                acc = canonical(acc)
            except LoadError as exc:
                self._locate(exc)
                raise
            acc = enforce_unicity(acc)
        return acc, resets

    def _locate(self, exc: LoadError) -> None:
        if exc.file is None and exc.path:
            parts = re.findall(r"[^.\[\]]+", exc.path)
            path = tuple(int(p) if p.isdigit() else p for p in parts)
            mark = self.source.locate(path)
            if mark is not None:
                exc.file, exc.line, exc.column = mark.file, mark.line, mark.column

    def _validate(self, tree: dict[str, Any], filename: str) -> None:
        from compose.errors import SchemaError
        from compose.loader.validate import validate_schema

        try:
            validate_schema(tree, self.source)
        except SchemaError as exc:
            if not exc.file:
                exc.message = f"validating {filename}: {exc.message}"
            raise
        if "version" in tree:
            self.warn(f"{filename}: the attribute `version` is obsolete, it will be ignored, "
                      "please remove it to avoid potential confusion")
            del tree["version"]

    def load_model(self, files: list[str], working_dir: str,
                   included: list[str]) -> dict[str, Any]:
        from compose.loader.defaults import resolve_environment, set_defaults
        from compose.loader.paths import resolve_relative_paths

        tree: dict[str, Any] = {}
        for filename in files:
            tree, _ = self.load_file(filename, working_dir, tree, included)
        if not self.skip_defaults:
            tree = set_defaults(tree)
        if self.resolve_paths:
            tree = resolve_relative_paths(tree, working_dir, self.home, self.relative_to())
        resolve_environment(tree, self.environment)
        return tree


def _uses_extends(cfg: dict[str, Any]) -> bool:
    """Whether any service of one file's tree has `extends` (else that phase is skipped)."""
    services = cfg.get("services")
    return isinstance(services, dict) and any(
        isinstance(service, dict) and "extends" in service for service in services.values())
