"""The operation catalog: every operation the agent may run, with typed, bounded parameters."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.lib.risk.models import RiskTier

ExecutorKind = Literal["docker", "ssh", "http"]
ParamType = Literal["int", "float", "str", "bool", "url", "list[str]"]

_TRUE_WORDS = {"true", "yes", "on", "1"}
_FALSE_WORDS = {"false", "no", "off", "0"}


class UnknownOperationError(LookupError):
    """An operation name the catalog does not define."""

    def __init__(self, operation: str, known: list[str]) -> None:
        self.operation = operation
        self.known = known
        super().__init__(
            f"unknown operation '{operation}' (known: {', '.join(known)}); "
            "choose one of those or add it to config/catalog.yml"
        )


class InvalidParamsError(ValueError):
    """Parameters that break an operation's declared types or bounds."""

    def __init__(self, *, operation: str, field: str, value: Any, problem: str) -> None:
        self.operation = operation
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"operation '{operation}': parameter '{field}' {problem}")


class ParamValueError(ValueError):
    """A single parameter value outside its spec; the caller adds the operation and field."""


class ParameterSpec(BaseModel):
    """A typed parameter. `min`/`max` bound numbers, string lengths and list sizes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ParamType
    description: str = ""
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    choices: tuple[str | int, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.required and self.default is not None:
            raise ValueError("a required parameter cannot also have a default")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is greater than max {self.max:g}")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        if self.default is not None:
            try:
                self.normalize(self.default)
            except ParamValueError as exc:
                raise ValueError(f"default {exc}") from None
        return self

    def allowed(self) -> str:
        """The allowed values in words, for error messages."""
        if self.choices:
            return "one of " + ", ".join(str(choice) for choice in self.choices)
        bounds = self._bounds()
        noun = {"list[str]": "a list of {} strings", "str": "a string of {} characters"}
        kind = {"int": "a whole number", "float": "a number", "bool": "true or false"}
        if self.type in noun:
            return noun[self.type].format(bounds or "any number of")
        if self.type == "url":
            return "an http(s) URL"
        return kind[self.type] + (f" in {bounds}" if bounds else "")

    def _bounds(self) -> str:
        if self.min is None and self.max is None:
            return ""
        low = "-inf" if self.min is None else f"{self.min:g}"
        high = "inf" if self.max is None else f"{self.max:g}"
        return f"{low}..{high}"

    def normalize(self, value: Any) -> Any:
        """The value coerced to this type and checked, the default when absent, or an error."""
        if value is None:
            if self.required:
                raise ParamValueError(f"is required ({self.allowed()})")
            return None if self.default is None else self._coerce(self.default)
        coerced = self._coerce(value)
        self._check_bounds(coerced, given=value)
        self._check_text(coerced)
        return coerced

    def _coerce(self, value: Any) -> Any:
        converter = {
            "int": _as_int,
            "float": _as_float,
            "bool": _as_bool,
            "str": _as_str,
            "url": _as_url,
            "list[str]": _as_str_list,
        }[self.type]
        try:
            return converter(value)
        except (TypeError, ValueError):
            raise ParamValueError(f"= {value!r} is not {self.allowed()}") from None

    def _check_bounds(self, value: Any, *, given: Any) -> None:
        size = len(value) if isinstance(value, str | list) else value
        if isinstance(size, bool) or not isinstance(size, int | float):
            return
        too_small = self.min is not None and size < self.min
        too_large = self.max is not None and size > self.max
        if too_small or too_large:
            raise ParamValueError(f"= {given!r} is out of range (allowed: {self.allowed()})")

    def _check_text(self, value: Any) -> None:
        if self.choices is not None and value not in self.choices:
            raise ParamValueError(f"= {value!r} is not allowed (allowed: {self.allowed()})")
        if self.regex is None:
            return
        for text in value if isinstance(value, list) else [value]:
            if not re.fullmatch(self.regex, str(text)):
                raise ParamValueError(f"= {text!r} does not match {self.regex!r}")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not a whole number")
    return int(value.strip() if isinstance(value, str) else value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    number = float(value)
    if not math.isfinite(number):  # "nan" and "inf" convert, and pass every bound
        raise ValueError("not a finite number")
    return number


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE_WORDS | _FALSE_WORDS:
        return word in _TRUE_WORDS
    raise ValueError("not a bool")


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _as_url(value: Any) -> str:
    text = _as_str(value).strip()
    parsed = urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("not an http(s) URL")
    return text


def _as_str_list(value: Any) -> list[str]:
    # A bare string is refused rather than split: splitting is how quoting bugs start.
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise TypeError("not a list of strings")
    return list(value)


class OperationSpec(BaseModel):
    """One catalog operation: what it does, who runs it, and how dangerous it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = Field(min_length=1)
    executors: tuple[ExecutorKind, ...] = Field(min_length=1)
    mutates: bool
    inverse: str | None = None
    default_risk: RiskTier
    allows_shell: bool = False
    command_param: str | None = None
    """The argv parameter the command policy must approve before this operation runs."""
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    grace_param: str | None = None
    """A parameter in seconds the operation may legitimately wait on top of `timeout_s`."""
    params: dict[str, ParameterSpec] = Field(default_factory=dict)
    leaves: Literal["running", "stopped"] | None = None
    """The state verification expects the target in once the operation succeeded."""
    drift: tuple[str, ...] = ()
    """Fields of the target's health probe that, changed between the approval's pause and its
    execution, mean the approver decided about a different target: the run asks again."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for reference in (self.command_param, self.grace_param):
            if reference is not None and reference not in self.params:
                raise ValueError(f"'{reference}' is not one of this operation's params")
        if self.command_param and self.default_risk.rank < RiskTier.HIGH.rank:
            raise ValueError("an operation that runs a free-form command is never below 'high'")
        if self.inverse == self.name:
            raise ValueError("an operation cannot be its own inverse")
        if self.drift and not self.mutates:
            raise ValueError("only a mutating operation declares drift fields (reads never wait)")
        return self

    def budget_s(self, params: Mapping[str, Any]) -> float:
        """How long an executor may take: the base budget plus any grace the caller asked for."""
        grace = params.get(self.grace_param, 0) if self.grace_param else 0
        return self.timeout_s + float(grace or 0)


class Catalog(BaseModel):
    """All operations, keyed by name; loaded and validated once at start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    operations: dict[str, OperationSpec]

    @model_validator(mode="before")
    @classmethod
    def _name_operations(cls, data: Any) -> Any:
        # The YAML key is the name; copying it in keeps each spec self-describing.
        if isinstance(data, dict) and isinstance(data.get("operations"), dict):
            operations = {
                name: {"name": name, **spec} if isinstance(spec, dict) else spec
                for name, spec in data["operations"].items()
            }
            data = {**data, "operations": operations}
        return data

    @model_validator(mode="after")
    def _inverses_pair_up(self) -> Self:
        for spec in self.operations.values():
            if spec.inverse is None:
                continue
            inverse = self.operations.get(spec.inverse)
            if inverse is None:
                raise ValueError(f"operation '{spec.name}': inverse '{spec.inverse}' is undefined")
            if inverse.inverse != spec.name:
                raise ValueError(
                    f"operation '{spec.name}' names '{spec.inverse}' as its inverse, "
                    f"but '{spec.inverse}' names {inverse.inverse!r}"
                )
        return self

    def names(self) -> list[str]:
        return sorted(self.operations)

    def get(self, operation: str) -> OperationSpec:
        """The operation's spec, or UnknownOperationError listing the known ones."""
        spec = self.operations.get(operation)
        if spec is None:
            raise UnknownOperationError(operation, self.names())
        return spec

    def for_executor(self, kind: str) -> list[OperationSpec]:
        """Operations that executors of `kind` implement."""
        return [spec for spec in self.operations.values() if kind in spec.executors]

    def validate_params(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized params (defaults filled, values coerced) or a domain error saying why not."""
        spec = self.get(operation)
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            allowed = ", ".join(sorted(spec.params)) or "none"
            raise InvalidParamsError(
                operation=operation,
                field=unknown[0],
                value=params[unknown[0]],
                problem=f"is not a parameter of this operation (allowed: {allowed})",
            )
        normalized: dict[str, Any] = {}
        for name, param in spec.params.items():
            try:
                value = param.normalize(params.get(name))
            except ParamValueError as exc:
                raise InvalidParamsError(
                    operation=operation, field=name, value=params.get(name), problem=str(exc)
                ) from None
            if value is not None:
                normalized[name] = value
        return normalized
