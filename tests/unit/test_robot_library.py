"""The Robot library as a user reads it in libdoc: an introduction, a version, typed options."""

from __future__ import annotations

from robot.libdocpkg import LibraryDocumentation

from qa import __version__

PLACE_CALL_OPTIONS = {"password", "transport", "duration", "timeout", "codecs", "dtmf", "dtmf_mode", "media",
                      "expect_media", "session_expires", "padding", "cancel_after", "local_ip"}


def _doc():
    return LibraryDocumentation("qa.robot.VoipQA")


def test_the_library_has_a_version_and_an_introduction_with_examples() -> None:
    doc = _doc()
    assert doc.version == __version__
    assert "= Examples =" in doc.doc and "Place Call" in doc.doc and "Run Load Profile" in doc.doc


def test_place_call_and_start_call_list_every_option_with_its_type() -> None:
    keywords = {kw.name: kw for kw in _doc().keywords}
    for name in ("Place Call", "Start Call"):
        args = {a.name: a for a in keywords[name].args}
        assert PLACE_CALL_OPTIONS <= set(args), f"{name}: {PLACE_CALL_OPTIONS - set(args)} missing"
        assert not any(a.kind == "VAR_NAMED" for a in args.values()), f"{name} still takes **options"
        assert all(args[o].type is not None for o in PLACE_CALL_OPTIONS), f"{name}: an option without a type"
        assert [t.name for t in args["transport"].type.nested] == ["'udp'", "'tcp'", "'tls'"]
