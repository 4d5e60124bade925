"""``tests/corpus.py``: a missing shared corpus fails where CI requires it and skips, with its
path, in a plain clone; it never yields an empty (silently passing) parameter set."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.outcomes import Failed, Skipped

from tests import corpus


@pytest.fixture
def missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the corpus at a directory that does not exist, with no CI variables set."""
    for name in ("CI", "GITHUB_ACTIONS", "VOIPQA_REQUIRE_CORPUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(corpus, "CORPUS", tmp_path / "nowhere")
    return tmp_path / "nowhere"


@pytest.mark.parametrize(("env", "required"), [
    ({}, False), ({"CI": "true"}, True), ({"CI": "1"}, True), ({"CI": "false"}, False),
    ({"CI": "true", "GITHUB_ACTIONS": "true"}, False),
    ({"CI": "true", "GITHUB_ACTIONS": "true", "VOIPQA_REQUIRE_CORPUS": "1"}, True),
    ({"CI": "true", "VOIPQA_REQUIRE_CORPUS": "0"}, False),
])
def test_required_where_ci_lays_it_out(missing: Path, monkeypatch: pytest.MonkeyPatch,
                                       env: dict[str, str], required: bool) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert corpus.corpus_required() is required


def test_missing_corpus_skips_with_its_path_in_a_plain_clone(missing: Path) -> None:
    with pytest.raises(Skipped, match=f"shared corpus not found at {missing}/pcaps: conformance tests skipped"):
        corpus.require_corpus("pcaps")


def test_missing_corpus_fails_in_ci(missing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="CI requires it"):
        corpus.require_corpus("rfc4475")


def test_present_corpus_is_returned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pcaps").mkdir()
    monkeypatch.setattr(corpus, "CORPUS", tmp_path)
    assert corpus.require_corpus("pcaps") == tmp_path / "pcaps"
    assert corpus.corpus_params(lambda: ["a", "b"], "pcaps") == ["a", "b"]


def test_missing_corpus_gives_one_marked_placeholder_case(missing: Path) -> None:
    [param] = corpus.corpus_params(lambda: pytest.fail("read without a corpus"), "pcaps", arity=2)
    assert param.id == "corpus-missing" and param.values == (None, None)
    assert [(m.name, m.args) for m in param.marks] == [("corpus", ("pcaps",))]


def test_default_location_is_beside_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOIPQA_CORPUS", raising=False)
    assert corpus.locate() == corpus.ROOT.parent / "shared" / "corpus"
    monkeypatch.setenv("VOIPQA_CORPUS", "/somewhere/else")
    assert corpus.locate() == Path("/somewhere/else")
