"""One-line problems for validated YAML files (environments, load profiles, the number
plan, the lab seed).

Every file a user writes is read the same way: parse the YAML, insist on a mapping,
validate with pydantic, and report the *first* problem as one line naming the file and
the dotted field (``profiles/x.yaml: rate.cps: must be > 0``, exit 2). Kept in one place
so every file speaks with the same voice; the field checks below are shared for the same
reason (a number, an integer in a range, one of some names say it the same way everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
)

from qa.errors import ConfigError

_MISSING = object()
M = TypeVar("M", bound=BaseModel)
N = TypeVar("N", int, float)


class FileModel(BaseModel):
    """A mapping of a user's file: an unknown key is an error (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldError(ValueError):
    """A validator's problem with a part of what it checks: ``at`` continues the location,
    so a check of a whole list (duplicates) or of a whole mapping (fields that contradict
    each other) names the entry a user must change: ``routes[2].prefix``, not ``routes``."""

    def __init__(self, problem: str, *at: str | int) -> None:
        super().__init__(problem)
        self.at = at


def validate_file(model: type[M], data: Any, path: Path | str) -> M:
    """``data`` (parsed YAML) as ``model``; the first problem is one ConfigError naming
    ``path`` and the dotted field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        loc, problem = pydantic_problem(exc)
        raise ConfigError(path, loc, problem) from None


def load_yaml_mapping(path: Path | str, what: str) -> dict[str, Any]:
    """The file's YAML as a dict; unreadable, invalid or not a mapping is one ConfigError.

    ``what`` is the hint shown when the top level is not a mapping, e.g.
    ``"target:, accounts:, ..."`` gives ``must be a mapping (target:, accounts:, ...)``.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"cannot read: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        raise ConfigError(path, "", f"not valid YAML{f' (line {mark.line + 1})' if mark else ''}"
                                    f"{f': {problem}' if problem else ''}") from None
    if data is None:
        raise ConfigError(path, "", f"must be a mapping ({what}); the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"must be a mapping ({what})")
    return data


def pydantic_problem(exc: ValidationError, data: Any = _MISSING) -> tuple[str, str]:
    """The first error of ``exc`` as ``(dotted field, problem)`` for one line of output.

    Pass the validated input as ``data`` when the model has discriminated unions: pydantic
    puts the union's tag in the error location (``rate.constant.cps``); parts of the
    location that are not in the input are tags and are dropped (``rate.cps``).
    """
    err = exc.errors(include_url=False)[0]
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    parts = list(err["loc"])
    if parts and parts[-1] == "[key]":  # a dict key that failed its pattern: name the key itself
        parts.pop()
    if isinstance(ctx.get("error"), FieldError):
        parts += ctx["error"].at
    if kind == "invalid_key" and parts:  # a key YAML read as a number: a key, not a list index
        parts[-1] = str(parts[-1])
    if data is not _MISSING:
        parts = _drop_tags(parts, data)
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    if kind == "missing":
        return loc, "required"
    if kind in ("extra_forbidden", "invalid_key"):
        return loc, "unknown key"
    if kind in ("list_type", "tuple_type"):
        return loc, "must be a list"
    if kind == "literal_error":
        return loc, f"must be one of {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        return loc, f"{err['input']!r} is not allowed here"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = f"{loc}.{ctx['discriminator'].strip(chr(39))}".lstrip(".")
        if kind == "union_tag_not_found":
            return field, "required"
        return field, f"must be one of {ctx['expected_tags']}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return loc, "must be a mapping"
    if kind == "value_error":  # a validator's own words, as written ("None is not ..." keeps its None)
        return loc, msg.removeprefix("Value error, ")
    return loc, msg if msg[1:2].isupper() else msg[:1].lower() + msg[1:]  # "URL ..." stays


def _drop_tags(parts: list[Any], data: Any) -> list[Any]:
    """The location as the user wrote it: pydantic's tag of a discriminated union (the input's
    discriminator value, e.g. ``stages``) is not a key of the file; a tag may also be a key's
    name, so the reading that follows the input all the way is preferred."""
    found = _walk(parts, data)
    return found[0] if found else parts


def _walk(parts: list[Any], node: Any) -> tuple[list[Any], bool] | None:
    """``(kept parts, every part found in the input)`` for the best reading, or None."""
    if not parts:
        return [], True
    part, rest = parts[0], parts[1:]
    readings: list[tuple[list[Any], bool]] = []
    present = (isinstance(node, dict) and part in node) or \
        (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
    if present and (below := _walk(rest, node[part])) is not None:
        readings.append(([part, *below[0]], below[1]))
    if (isinstance(node, dict) and isinstance(part, str) and part in node.values() and rest
            and (skipped := _walk(rest, node)) is not None):
        readings.append(skipped)
    if not present and not rest:
        readings.append(([part], False))  # a missing key: the error is that it is not there
    exact = [r for r in readings if r[1]]
    return (exact or readings or [None])[0]


# -- field checks: BeforeValidators whose ValueError is the reason a user reads --------------------
# (a ValueError, even for a wrong type: pydantic reports it on the field; a TypeError would escape)
def number(value: Any) -> float:
    """A finite number as a float. ``True`` is not 1 (YAML reads yes/no/true as booleans) and
    ``"5"`` is not 5: a quoted number is a mistake worth a line, not a guess."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("not a number")  # noqa: TRY004
    try:
        result = float(value)
    except OverflowError:  # an integer beyond any float
        raise ValueError("not a finite number") from None
    if not math.isfinite(result):
        raise ValueError("not a finite number")
    return result


def integer(value: Any) -> int:
    """An int; not a bool, a float (1.5 or 2.0) or text."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not an integer")  # noqa: TRY004
    return value


def text(value: Any) -> str:
    """A string; a number is not text (in the number plan ``name: 5`` is a slip)."""
    if not isinstance(value, str):
        raise ValueError("not a string")  # noqa: TRY004
    return value


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(lo: float | None = None, hi: float | None = None, *, above: bool = False) -> Callable[[N], N]:
    """A range check saying ``must be between 1 and 64``, ``must be >= 0`` or (``above``) ``must be > 0``."""
    def check(value: N) -> N:
        if (lo is None or value > lo or (value == lo and not above)) and (hi is None or value <= hi):
            return value
        if lo is not None and hi is not None:
            raise ValueError(f"must be between {_shown(lo)} and {_shown(hi)}")
        if lo is not None:
            raise ValueError(f"must be {'>' if above else '>='} {_shown(lo)}")
        raise ValueError(f"must be <= {_shown(hi)}")
    return check


def number_in(lo: float | None = None, hi: float | None = None, *, above: bool = False) -> BeforeValidator:
    """A number (:func:`number`), if bounds are given within them (``above``: lo itself is out)."""
    check = _bounds(lo, hi, above=above)
    return BeforeValidator(lambda value: check(number(value)))


def integer_in(lo: int, hi: int) -> BeforeValidator:
    """An integer (:func:`integer`) from ``lo`` to ``hi``."""
    check = _bounds(lo, hi)
    return BeforeValidator(lambda value: check(integer(value)))


def one_of(names: Iterable[str]) -> BeforeValidator:
    """One of ``names``, spelled exactly; the message lists them."""
    choices = tuple(names)

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value
    return BeforeValidator(check)


def at_least(count: int) -> AfterValidator:
    """A list of at least ``count`` entries (``needs at least 1 entry``)."""
    def check(items: Sequence[Any]) -> Sequence[Any]:
        if len(items) < count:
            raise ValueError(f"needs at least {count} entr{'y' if count == 1 else 'ies'}")
        return items
    return AfterValidator(check)


def first_duplicate(items: Iterable[Hashable]) -> int | None:
    """The index of the first item equal to an earlier one (None: all differ)."""
    seen: set[Hashable] = set()
    for i, item in enumerate(items):
        if item in seen:
            return i
        seen.add(item)
    return None
