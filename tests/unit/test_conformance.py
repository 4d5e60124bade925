"""RFC 4475 and RFC 5118 torture corpora, message by message, as their INDEX.tsv says.

valid / valid-but-tricky -> no error (warnings allowed); invalid-should-reject -> at least
one error, and it carries the rule that names what the RFC says is wrong.
"""

from __future__ import annotations

import csv

import pytest

from qa.sip.strict import check_message
from tests.corpus import CORPUS, corpus_params

#: invalid-should-reject message -> the rule of the RFC's stated reason.
REJECT_RULE = {
    "badinv01": "sip.header.syntax",            # 3.1.2.1 extraneous ;;,;,, separators
    "clerr": "sip.content-length.mismatch",     # 3.1.2.2 Content-Length larger than message
    "ncl": "sip.content-length.syntax",         # 3.1.2.3 negative Content-Length
    "scalar02": "sip.value.oversized",          # 3.1.2.4 overlarge CSeq / Expires
    "scalarlg": "sip.value.oversized",          # 3.1.2.5 overlarge CSeq / Retry-After
    "quotbal": "sip.header.syntax",             # 3.1.2.6 unterminated quoted string
    "ltgtruri": "sip.uri.syntax",               # 3.1.2.7 <> around the Request-URI
    "lwsruri": "sip.uri.syntax",                # 3.1.2.8 LWS inside the Request-URI
    "lwsstart": "sip.whitespace",               # 3.1.2.9 multiple SP in the Request-Line
    "trws": "sip.whitespace",                   # 3.1.2.10 SP at the end of the Request-Line
    "escruri": "sip.uri.syntax",                # 3.1.2.11 escaped headers in the Request-URI
    "baddate": "sip.header.syntax",             # 3.1.2.12 non-GMT Date
    "regbadct": "sip.header.syntax",            # 3.1.2.13 name-addr URI not in <>
    "badaspec": "sip.whitespace",               # 3.1.2.14 spaces within addr-spec
    "baddn": "sip.header.syntax",               # 3.1.2.15 non-token display name
    "badvers": "sip.version",                   # 3.1.2.16 SIP/7.0
    "mismatch01": "sip.cseq.method-mismatch",   # 3.1.2.17
    "mismatch02": "sip.cseq.method-mismatch",   # 3.1.2.18
    "bigcode": "sip.start-line",                # 3.1.2.19 overlarge response code
    "insuf": "sip.header.missing",              # 3.3.1 missing required headers
    "multi01": "sip.header.duplicate",          # 3.3.8 multiple single-valued headers
    "mcl01": "sip.header.duplicate",            # 3.3.9 multiple Content-Length values
    "ipv6-bad": "sip.uri.syntax",               # RFC 5118 4.2 IPv6 without brackets
    "ipv6-bug-abnf-3-colons": "sip.uri.syntax",  # RFC 5118 4.10 three colons
}
#: what the reason must mention, where a rule alone is not specific enough.
REASON_HINT = {
    "badinv01": "empty", "quotbal": "unterminated quoted string", "ltgtruri": "absolute URI",
    "lwsruri": "whitespace", "escruri": "headers", "baddate": "GMT", "regbadct": "'<' '>'",
    "baddn": "quoted-string", "insuf": "Call-ID", "mcl01": "Content-Length",
    "ipv6-bad": "'[' ']'", "ipv6-bug-abnf-3-colons": "not a valid IPv6",
    "scalar02": "CSeq", "scalarlg": "Retry-After",
}


def _rows() -> list[tuple[str, str, str]]:
    rows = []
    for corpus in ("rfc4475", "rfc5118"):
        index = CORPUS / corpus / "INDEX.tsv"
        if index.exists():
            with open(index, newline="") as f:
                rows += [(corpus, r["name"], r["expected"]) for r in csv.DictReader(f, delimiter="\t")]
    return rows


ROWS = _rows()


@pytest.mark.corpus("rfc4475")
@pytest.mark.corpus("rfc5118")
def test_corpus_complete() -> None:
    assert sum(1 for c, _, _ in ROWS if c == "rfc4475") == 49
    assert sum(1 for c, _, _ in ROWS if c == "rfc5118") == 12
    rejects = {name for _, name, expected in ROWS if expected == "invalid-should-reject"}
    assert rejects == set(REJECT_RULE)


@pytest.mark.parametrize(("corpus", "name", "expected"),
                         corpus_params(ROWS, "rfc4475", arity=3, ids=lambda r: f"{r[0]}/{r[1]}"))
def test_classification(corpus: str, name: str, expected: str) -> None:
    problems = check_message((CORPUS / corpus / f"{name}.dat").read_bytes())
    errors = [p for p in problems if p.severity == "error"]
    if expected != "invalid-should-reject":
        assert errors == [], errors
        return
    matching = [p for p in errors if p.rule == REJECT_RULE[name]]
    assert matching, problems
    hint = REASON_HINT.get(name)
    assert hint is None or any(hint in p.reason for p in matching), matching


@pytest.mark.corpus("rfc4475")
@pytest.mark.corpus("rfc5118")
def test_tricky_ones_warn() -> None:
    """Where RFC 4475 / 5118 call a valid message tricky, the checker says why (a warning)."""
    expect = {("rfc4475", "badbranch"): "sip.via.branch", ("rfc4475", "bcast"): "sip.via.broadcast",
              ("rfc4475", "zeromf"): "sip.max-forwards", ("rfc4475", "unkscm"): "sip.uri.scheme",
              ("rfc4475", "novelsc"): "sip.uri.scheme", ("rfc4475", "unksm2"): "sip.uri.scheme",
              ("rfc4475", "inv2543"): "sip.header.missing", ("rfc5118", "port-ambiguous"): "sip.uri.syntax"}
    for (corpus, name), rule in expect.items():
        path = CORPUS / corpus / f"{name}.dat"
        if path.exists():
            assert rule in [p.rule for p in check_message(path.read_bytes()) if p.severity == "warning"], name
