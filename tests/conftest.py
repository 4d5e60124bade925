"""Project-wide pytest hooks: the ``corpus`` marker (see ``tests/corpus.py``)."""

from __future__ import annotations

import pytest

from tests.corpus import require_corpus


def pytest_configure(config: pytest.Config) -> None:
    """Register ``corpus`` so ``--strict-markers`` accepts it and ``--markers`` explains it."""
    config.addinivalue_line(
        "markers", "corpus(sub=''): reads the shared corpus (sub-directory sub); fails in CI and "
                   "skips in a plain clone when it is missing")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Check every ``corpus`` mark before the test runs, so no corpus test passes vacuously."""
    for mark in item.iter_markers("corpus"):
        require_corpus(*mark.args, **mark.kwargs)
