"""Bounds on what callers may send, checked at the edge before anything is stored.

Postgres refuses NUL in `text` and `jsonb` and cannot encode a lone UTF-16 surrogate; the
checkpointer's serializer refuses integers beyond 64 bits. Refusing them here turns what would be
a 500 (or a workflow that fails for good) into a 422 naming the field.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 8
"""How deeply `params` values may nest (lists and objects)."""

# C0 controls except tab, newline and carriage return; DEL; lone surrogates.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` may not be stored, or None when it may."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    char = found.group()
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return (
        f"contains {kind} (U+{ord(char):04X}) at position {found.start()}; send printable "
        "text (tab, newline and carriage return are allowed)"
    )


def check_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_json(value: Any, *, where: str, depth: int = 0) -> Any:
    """A JSON value whose strings are printable, integers fit in 64 bits and numbers are finite,
    or ValueError."""
    if depth > MAX_DEPTH:
        raise ValueError(f"'{where}' nests deeper than {MAX_DEPTH} levels; flatten it")
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise ValueError(f"'{where}' {problem}")
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, float):
        if not math.isfinite(value):  # the json module reads NaN and Infinity; Postgres does not
            raise ValueError(f"'{where}' is {value}, which JSON cannot carry; send a finite number")
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(
                f"'{where}' is {value}, beyond the 64-bit integer range "
                f"[{INT64_MIN}, {INT64_MAX}]; send a smaller number"
            )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, where=f"{where}[{index}]", depth=depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json(key, where=f"{where} key", depth=depth + 1)
            check_json(item, where=f"{where}.{key}", depth=depth + 1)
    return value


def check_params(value: dict[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = check_json(value, where="params")
    return checked


SafeText = Annotated[str, AfterValidator(check_text)]
"""A string without NUL, other control characters (but tab and line breaks) or lone surrogates."""

Params = Annotated[dict[str, Any], AfterValidator(check_params)]
"""Operation parameters: printable strings, 64-bit integers, bounded nesting."""
