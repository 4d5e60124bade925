#!/usr/bin/env python3
"""``image-requirements.py PYPROJECT NAME...``: the requirement lines of pyproject.toml's
``[project] dependencies`` for the distributions NAMEd, one per line (the Dockerfiles' stage 1).

Why: the platform and carrier images need two of voipqa's dependencies (PyYAML, pydantic),
not Robot, Locust or matplotlib; naming them here and taking their version bounds from
pyproject.toml keeps one source of truth. A name pyproject.toml lacks is an error (exit 2),
and the image's build-time import check proves the list is enough.
"""

from __future__ import annotations

import re
import sys
import tomllib


def requirements(pyproject: str, names: list[str]) -> list[str]:
    with open(pyproject, "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    by_name = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower(): d for d in deps}
    missing = [n for n in names if n.lower() not in by_name]
    if missing:
        raise SystemExit(f"image-requirements: {', '.join(missing)}: not in {pyproject}'s dependencies")
    return [by_name[n.lower()] for n in names]


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: image-requirements.py PYPROJECT NAME...", file=sys.stderr)
        sys.exit(2)
    try:
        print("\n".join(requirements(sys.argv[1], sys.argv[2:])))
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
