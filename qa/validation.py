"""One-line problems for validated YAML files (environments, load profiles).

Every file a user writes is read the same way: parse the YAML, insist on a mapping,
validate with pydantic, and report the *first* problem as one line naming the file and
the dotted field (``profiles/x.yaml: rate.cps: must be > 0``, exit 2). Kept in one place
so the environment file and the load profile speak with the same voice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from qa.errors import ConfigError

_MISSING = object()


def load_yaml_mapping(path: Path | str, what: str) -> dict[str, Any]:
    """The file's YAML as a dict; unreadable, invalid or not a mapping is one ConfigError.

    ``what`` is the hint shown when the top level is not a mapping, e.g.
    ``"target:, accounts:, ..."`` gives ``must be a mapping (target:, accounts:, ...)``.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(path, "", f"not valid YAML{f' (line {mark.line + 1})' if mark else ''}") from None
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
    parts = list(err["loc"])
    if parts and parts[-1] == "[key]":  # a dict key that failed its pattern: name the key itself
        parts.pop()
    if data is not _MISSING:
        parts = _drop_tags(parts, data)
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if kind == "missing":
        return loc, "required"
    if kind == "extra_forbidden":
        return loc, "unknown key"
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
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
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
    if isinstance(node, dict) and isinstance(part, str) and part in node.values() and rest:
        if (skipped := _walk(rest, node)) is not None:
            readings.append(skipped)
    if not present and not rest:
        readings.append(([part], False))  # a missing key: the error is that it is not there
    exact = [r for r in readings if r[1]]
    return (exact or readings or [None])[0]
