"""The shared conformance corpus (RFC 4475/5118 torture messages, public SIP captures).

It is not part of the repository: ``.ci/run`` finds it in ``../shared/corpus`` beside the
checkout (or at ``$VOIPQA_CORPUS``). Tests that read it say so with
``@pytest.mark.corpus("sub")`` (checked in ``tests/conftest.py``) or call
:func:`require_corpus`. Where it is missing:

* where CI requires it (``CI`` set, outside GitHub Actions' public workflow, which runs
  in a bare clone), the test **fails**, so a broken CI layout never passes silently;
* elsewhere (a plain clone), the test is **skipped** with the path it looked at.

``VOIPQA_REQUIRE_CORPUS=1`` / ``0`` overrides that decision either way.
Product code (``qa/``) never reads the corpus: only tests do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_FALSE = ("", "0", "false", "no")


#: Where this project's own machines keep the corpus when a checkout has nothing beside it.
HOST_CORPUS = Path("/work/shared/corpus")


def locate() -> Path:
    """``$VOIPQA_CORPUS``, else ``../shared/corpus`` beside the checkout (CI's layout), else
    the development machine's copy; a plain clone elsewhere has none (skipped or failed)."""
    explicit = os.environ.get("VOIPQA_CORPUS")
    if explicit:
        return Path(explicit)
    beside = ROOT.parent / "shared" / "corpus"
    return beside if beside.is_dir() or not HOST_CORPUS.is_dir() else HOST_CORPUS


CORPUS: Path = locate()


def corpus_required() -> bool:
    """Whether a missing corpus is a failure (CI's layout) rather than a skip (a plain clone)."""
    override = os.environ.get("VOIPQA_REQUIRE_CORPUS")
    if override is not None:
        return override.strip().lower() not in _FALSE
    in_ci = os.environ.get("CI", "").strip().lower() not in _FALSE
    return in_ci and os.environ.get("GITHUB_ACTIONS", "").lower() != "true"


def require_corpus(sub: str = "") -> Path:
    """``CORPUS / sub`` if it exists; otherwise fail (CI) or skip (plain clone) the test."""
    path = CORPUS / sub if sub else CORPUS
    if path.exists():
        return path
    if corpus_required():
        pytest.fail(f"shared corpus not found at {path}, and CI requires it: put shared/corpus beside "
                    f"the checkout or set VOIPQA_CORPUS", pytrace=False)
    pytest.skip(f"shared corpus not found at {path}: conformance tests skipped")


def corpus_params(rows: Iterable[Any] | Callable[[], Iterable[Any]], sub: str = "", *, arity: int = 1,
                  ids: Callable[[Any], str] | None = None) -> list[Any]:
    """Parameters read off the corpus, for ``pytest.mark.parametrize``.

    Without the corpus an empty list would make pytest skip quietly ("got empty parameter
    set"), which CI would count as passing; instead there is one placeholder case marked
    ``corpus``, which fails or skips like every other corpus test. ``rows`` may be a
    callable so the corpus is only read when it is there.
    """
    if not (CORPUS / sub).exists():
        return [pytest.param(*([None] * arity), id="corpus-missing", marks=pytest.mark.corpus(sub))]
    values: Sequence[Any] = list(rows() if callable(rows) else rows)
    if ids is None:
        return list(values)
    return [pytest.param(*(v if arity > 1 else (v,)), id=ids(v)) for v in values]
