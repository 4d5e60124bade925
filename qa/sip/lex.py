"""The one quote-aware splitter of SIP header values (RFC 3261 §25.1, §7.3.1).

A separator inside a ``quoted-string`` (with ``\\`` quoted-pairs) is not a separator, nor
is a comma inside ``<...>`` in a list of name-addrs. Every parser of ``qa.sip`` (URI
parameters, digest challenges, header lists, the strict checker) splits through here, so
they cannot disagree on where an element ends.
"""

from __future__ import annotations

from qa.errors import ParseError

__all__ = ["element_spans", "quoted_end", "split_unquoted"]


def quoted_end(text: str, start: int) -> int:
    """Index just past the quoted-string that opens at ``text[start]`` (a ``"``)."""
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
        elif ch == '"':
            return i + 1
        else:
            i += 1
    raise ParseError("unterminated quoted string", start)


def element_spans(text: str, sep: str = ",", *, angle: bool = False,
                  strict: bool = True) -> list[tuple[int, int]]:
    """``(start, end)`` of each element of ``text`` between separators ``sep`` outside
    quoted strings (and, with ``angle``, outside ``<...>``).

    ``strict``: an unterminated quote or ``<`` is a ParseError at its position; otherwise
    it runs to the end of ``text`` (lenient readers keep what they can).
    """
    spans: list[tuple[int, int]] = []
    start, i, n, inside, opened = 0, 0, len(text), False, 0
    while i < n:
        ch = text[i]
        if ch == '"':
            try:
                i = quoted_end(text, i)
            except ParseError:
                if strict:
                    raise
                break
            continue
        if angle and ch == "<":
            inside, opened = True, i
        elif angle and ch == ">":
            inside = False
        elif ch == sep and not inside:
            spans.append((start, i))
            start = i + 1
        i += 1
    if inside and strict:
        raise ParseError("unterminated '<'", opened)
    spans.append((start, n))
    return spans


def split_unquoted(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside quoted strings; ParseError for an open quote."""
    if '"' not in text:
        return text.split(sep)
    return [text[a:b] for a, b in element_spans(text, sep)]
