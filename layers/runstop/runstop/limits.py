"""What DynamoDB can store, checked before any write, so a caller's data is refused with a 4xx
naming the field instead of reaching DynamoDB as a ValidationException (or a 500).

Pydantic-free: the lean cancel path checks its reason here too.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

MAX_DEPTH = 32
"""DynamoDB nests lists and maps at most 32 levels deep (the item itself is level 1)."""
_SMALLEST = Decimal("1E-130")
_LARGEST = Decimal("9.9999999999999999999999999999999999999E+125")
_MAX_DIGITS = 38


def text_problem(value: str) -> str | None:
    """Why DynamoDB cannot store this string (it must be valid UTF-8: no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate, which is not valid UTF-8"
    return None


def number_problem(value: int | float) -> str | None:
    """Why DynamoDB cannot store this number: 38 significant digits, magnitude 1E-130..1E+126."""
    try:
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        return "is not a finite number"
    if not exact.is_finite():
        return "is not a finite number"
    if exact == 0:
        return None
    if not _SMALLEST <= abs(exact) <= _LARGEST:
        return "is outside DynamoDB's number range (1E-130 to 9.99E+125 in magnitude)"
    # Digits as sent (boto3 sends the number as written): DynamoDB counts an integer's zeros too.
    digits = exact.as_tuple().digits
    if len(digits) > _MAX_DIGITS:
        return f"has more than {_MAX_DIGITS} significant digits"
    return None


def value_problems(value: Any, path: str = "", depth: int = 2) -> list[str]:
    """Every reason DynamoDB would refuse `value` as an attribute nested at `depth` (an
    attribute of the item is at depth 2), each prefixed with where it is."""
    where = path or "value"
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, str):
        problem = text_problem(value)
        return [f"{where} {problem}"] if problem else []
    if isinstance(value, (int, float)):
        problem = number_problem(value)
        return [f"{where} {problem}"] if problem else []
    if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
        return [f"{where} is nested deeper than DynamoDB's {MAX_DEPTH} levels"]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or key == "":
                found.append(f"{where} has an empty key")
                continue
            if (problem := text_problem(key)) is not None:
                found.append(f"{where} has a key that {problem}")
                continue
            found += value_problems(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += value_problems(item, f"{where}[{index}]", depth + 1)
    return found
