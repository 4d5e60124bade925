"""The one quote-aware splitter (qa.sip.lex) that URI parameters, digest challenges, header
lists and the strict checker all split through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.errors import ParseError
from qa.sip.lex import element_spans, quoted_end, split_unquoted


def parts(text: str, sep: str = ",", **kw) -> list[str]:
    return [text[a:b] for a, b in element_spans(text, sep, **kw)]


def test_separators_inside_quotes_and_quoted_pairs_are_text():
    assert split_unquoted('realm="a,b", nonce="x\\"y,z", qop=auth', ",") == [
        'realm="a,b"', ' nonce="x\\"y,z"', " qop=auth"]
    assert split_unquoted(';lr;x="a;b"', ";") == ["", "lr", 'x="a;b"']


def test_angle_brackets_hold_commas_of_a_name_addr_list():
    value = '"Doe, J" <sip:a@h;p=1,2>;tag=1, <sip:b@h>'
    assert parts(value, angle=True) == ['"Doe, J" <sip:a@h;p=1,2>;tag=1', " <sip:b@h>"]
    assert parts(value) == ['"Doe, J" <sip:a@h;p=1', "2>;tag=1", " <sip:b@h>"]


def test_an_open_quote_or_angle_is_a_parse_error_at_its_position_unless_lenient():
    with pytest.raises(ParseError) as err:
        element_spans('a, "open, b', ",")
    assert err.value.offset == 3
    with pytest.raises(ParseError, match="unterminated '<'") as err:
        element_spans("<sip:a@h, b", ",", angle=True)
    assert err.value.offset == 0
    assert parts('a, "open, b', strict=False) == ["a", ' "open, b']
    assert quoted_end('"a\\"b" rest', 0) == 6


@given(st.text(alphabet='ab,;"<>\\ ', max_size=40), st.sampled_from([",", ";"]), st.booleans())
def test_spans_tile_the_text_or_the_error_is_a_parse_error(text, sep, angle):
    try:
        spans = element_spans(text, sep, angle=angle)
    except ParseError as exc:
        assert 0 <= exc.offset < len(text)
        spans = element_spans(text, sep, angle=angle, strict=False)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(b == c - 1 and text[b] == sep for (_, b), (c, _) in zip(spans, spans[1:]))
