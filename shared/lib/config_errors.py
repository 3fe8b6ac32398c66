"""Start-up configuration errors that name the file, line, field and fix, and the YAML
reading that remembers which line every value came from so such errors can be precise."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

FieldPath = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# How to fix the most common pydantic complaints, by error type.
_FIXES: dict[str, str] = {
    "extra_forbidden": "remove the key or correct its spelling",
    "missing": "add the field",
    "int_type": "use a whole number",
    "int_parsing": "use a whole number",
    "float_type": "use a number",
    "float_parsing": "use a number",
    "bool_type": "use true or false",
    "bool_parsing": "use true or false",
    "string_type": "use a string (quote it if YAML reads it as something else)",
    "list_type": "use a YAML list",
    "dict_type": "use a YAML mapping",
    "model_type": "use a YAML mapping",
    "literal_error": "use one of the allowed values",
    "enum": "use one of the allowed values",
    "union_tag_invalid": "set `kind` to one of the allowed values",
    "union_tag_not_found": "add a `kind` field",
}


class ConfigError(Exception):
    """A configuration file that stops start-up; the message says where and how to fix it."""

    def __init__(
        self,
        problem: str,
        *,
        path: Path | str,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        subject = f" {self.field}:" if self.field else ""
        advice = f"; fix: {self.fix}" if self.fix else ""
        return f"{where}:{subject} {self.problem}{advice}"


@dataclass
class YamlDocument:
    """Plain data parsed from one YAML file, with the 1-based line of every key and item."""

    path: Path
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, location: Sequence[str | int]) -> int | None:
        """The line of the deepest part of `location` present in the file.

        Parts missing from the file (a discriminator tag pydantic adds, a field that was left
        out) are skipped, so the error points at the nearest thing the author actually wrote.
        """
        found: FieldPath = ()
        for part in location:
            if (*found, part) in self.lines:
                found = (*found, part)
        return self.lines.get(found)

    def error(self, problem: str, *, at: Sequence[str | int], fix: str) -> ConfigError:
        """A ConfigError pointing at the field `at` of this document."""
        return ConfigError(
            problem, path=self.path, line=self.line_of(at), field=format_field(at), fix=fix
        )

    def require_unique(
        self, keys: Sequence[str], *, section: str, field: str, problem: str, fix: str
    ) -> None:
        """Refuse the second occurrence of a key in the list `section`, naming its line;
        `problem` may name the key as `{key}`."""
        seen: set[str] = set()
        for index, key in enumerate(keys):
            if key in seen:
                raise self.error(problem.format(key=key), at=(section, index, field), fix=fix)
            seen.add(key)

    def validate(self, model: type[ModelT], *, context: str) -> ModelT:
        """Validate the data into `model`; any problem becomes a ConfigError with its line."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise self._from_validation(exc, context=context) from None

    def _from_validation(self, exc: ValidationError, *, context: str) -> ConfigError:
        # An unknown key usually explains the rest (a misspelt field is also "missing").
        errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        problem = _describe(first)
        if len(errors) > 1:
            others = "; ".join(
                f"line {self.line_of(tuple(e['loc'])) or '?'} {format_field(tuple(e['loc']))}: "
                f"{_describe(e)}"
                for e in errors[1:5]
            )
            problem += f" [also: {others}]"
        fix = _FIXES.get(first["type"], f"correct the value as described in {context}")
        return self.error(problem, at=_location(first), fix=fix)


def _location(error: ErrorDetails) -> FieldPath:
    location = tuple(error["loc"])
    if error["type"] == "union_tag_invalid":
        # Point at the `kind:` line itself rather than the mapping that holds it.
        tag = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
        return (*location, tag) if tag else location
    return location


def _describe(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] == "missing" or isinstance(value, dict | list):
        return message  # the whole mapping would bury the point
    return f"{message} (got {_shown(value)})"


def format_field(location: Sequence[str | int]) -> str:
    """A dotted field path such as `operations.logs.params.tail.max` or `deny[3].pattern`."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def read_yaml(
    path: Path, *, environ: Mapping[str, str] | None = None, what: str = "configuration"
) -> YamlDocument:
    """Parse a YAML file into plain data and per-field line numbers.

    With `environ`, `${VAR}` and `${VAR:-default}` in string values are replaced first, so a
    test bed can point the same file at its own hosts.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the {what} file: {exc.strerror}",
            path=path,
            fix=f"create it or point the service at an existing {what} file",
        ) from None
    except UnicodeDecodeError as exc:  # a ValueError, not an OSError: e.g. Latin-1 from an editor
        raise ConfigError(
            f"the {what} file is not UTF-8: byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}",
            path=path,
            line=exc.object[: exc.start].count(b"\n") + 1,
            fix="save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _from_yaml_error(exc, path) from None
    finally:
        loader.dispose()
    document = YamlDocument(path=path, data=None)
    if root is not None:
        document.data = _build(root, (), document, loader, environ)
    return document


def _from_yaml_error(exc: yaml.YAMLError, path: Path) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    return ConfigError(
        f"invalid YAML: {problem}",
        path=path,
        line=line,
        fix="check indentation, colons and quotes around that line",
    )


def _build(
    node: yaml.Node,
    at: FieldPath,
    document: YamlDocument,
    loader: yaml.SafeLoader,
    environ: Mapping[str, str] | None,
) -> Any:
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(node, at, document, loader, environ)
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            document.lines[(*at, index)] = item.start_mark.line + 1
            items.append(_build(item, (*at, index), document, loader, environ))
        return items
    value = loader.construct_object(node, deep=True)
    if environ is not None and isinstance(value, str):
        return _interpolate(value, environ, document, at)
    return value


def _build_mapping(
    node: yaml.MappingNode,
    at: FieldPath,
    document: YamlDocument,
    loader: yaml.SafeLoader,
    environ: Mapping[str, str] | None,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            key = str(key)  # YAML reads `yes:` or `1:` as non-strings; keys are names here
        if key in result:
            raise ConfigError(
                f"duplicate key '{key}'",
                path=document.path,
                line=line,
                field=format_field((*at, key)),
                fix=f"keep one '{key}' (the first is on line {document.lines[(*at, key)]})",
            )
        document.lines[(*at, key)] = line
        result[key] = _build(value_node, (*at, key), document, loader, environ)
    return result


def _interpolate(
    value: str, environ: Mapping[str, str], document: YamlDocument, at: FieldPath
) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if default is None and found is not None:
            return found
        if default is not None:
            return found or default  # like the shell's :-, an empty value takes the default
        raise document.error(
            f"environment variable {name} is not set and has no default",
            at=at,
            fix=f"set {name}, or write ${{{name}:-default}}",
        )

    return _ENV_REFERENCE.sub(replace, value)


def process_environ() -> Mapping[str, str]:
    """The process environment, for interpolation in the files that allow it."""
    return os.environ
