"""SIP header fields as an ordered, case-insensitive multi-dict (RFC 3261 §7.3).

Header names are compared case-insensitively and the compact forms of RFC 3261 §7.3.3
(and the IANA "Header Fields" registry) are mapped to their full names on lookup. The
original spelling and order of every header line are kept so a parsed message
serialises back the way it arrived.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from qa.sip.lex import element_spans

__all__ = ["COMPACT_FORMS", "LIST_HEADERS", "Headers", "canonical_name", "split_list"]

#: Compact form -> lower-case full name (RFC 3261 §7.3.3, §20; IANA SIP Header Fields).
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",      # RFC 3841
    "b": "referred-by",         # RFC 3892
    "c": "content-type",
    "d": "request-disposition",  # RFC 3841
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",      # RFC 3841
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",       # RFC 4474
    "o": "event",               # RFC 6665
    "r": "refer-to",            # RFC 3515
    "s": "subject",
    "t": "to",
    "u": "allow-events",        # RFC 6665
    "v": "via",
    "x": "session-expires",     # RFC 4028
    "y": "identity",            # RFC 8224
}

#: Header fields whose grammar is ``field *(COMMA field)`` (RFC 3261 §7.3.1): several
#: values may share one header line. Authorization/WWW-Authenticate and friends are NOT
#: here: their commas separate auth-params, not values.
LIST_HEADERS: frozenset[str] = frozenset({
    "accept", "accept-contact", "accept-encoding", "accept-language", "alert-info",
    "allow", "allow-events", "call-info", "contact", "content-encoding",
    "content-language", "error-info", "history-info", "in-reply-to",
    "p-asserted-identity", "p-associated-uri", "p-preferred-identity", "path",
    "proxy-require", "reason", "record-route", "reject-contact", "request-disposition",
    "require", "route", "security-client", "security-server", "security-verify",
    "service-route", "supported", "unsupported", "via", "warning",
})

_FULL_NAMES = {
    "call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version", "rack": "RAck", "rseq": "RSeq",
}


def canonical_name(name: str) -> str:
    """Lower-case full header name for ``name`` (compact forms expanded, §7.3.3)."""
    low = name.lower()
    return COMPACT_FORMS.get(low, low)


def pretty_name(name: str) -> str:
    """Conventional spelling of a header name: ``v`` -> ``Via``, ``call-id`` -> ``Call-ID``."""
    key = canonical_name(name)
    return _FULL_NAMES.get(key) or "-".join(p.capitalize() for p in key.split("-"))


def split_list(value: str) -> list[str]:
    """Split a header value on the commas that separate values (RFC 3261 §7.3.1).

    Commas inside quoted strings (with ``\\`` quoted-pairs, §25.1) and inside ``<...>``
    are not separators (:func:`qa.sip.lex.element_spans`, lenient: an open quote runs to
    the end). Empty elements are dropped and each element is stripped.
    """
    if "," not in value:
        value = value.strip()
        return [value] if value else []
    parts = (value[a:b].strip() for a, b in element_spans(value, ",", angle=True, strict=False))
    return [part for part in parts if part]


class Headers:
    """Ordered multi-dict of SIP header lines (RFC 3261 §7.3).

    Lookups are case-insensitive and understand compact forms (``i`` is ``Call-ID``).
    Iteration yields ``(name, value)`` per header line, in order, with the name as it
    was added. ``get_all`` yields one entry per *value*, splitting comma-separated
    lines of list headers (Via, Contact, Route, ...).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        # (canonical key, name as given, value)
        self._items: list[tuple[str, str, str]] = [
            (canonical_name(n), n, v) for n, v in items]

    # -- lookup -------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of ``name`` (the first list element for list headers), or ``default``."""
        key = canonical_name(name)
        for k, _, v in self._items:
            if k == key:
                if key in LIST_HEADERS:
                    vals = split_list(v)
                    if vals:
                        return vals[0]
                    continue
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order; list headers are split on commas (§7.3.1)."""
        key = canonical_name(name)
        if key in LIST_HEADERS:
            out: list[str] = []
            for k, _, v in self._items:
                if k == key:
                    out.extend(split_list(v))
            return out
        return [v for k, _, v in self._items if k == key]

    def lines(self, name: str) -> list[str]:
        """The raw values of the header *lines* called ``name`` (no comma splitting)."""
        key = canonical_name(name)
        return [v for k, _, v in self._items if k == key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name)
        return any(k == key for k, _, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    # -- mutation -----------------------------------------------------------------
    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        self._items.append((canonical_name(name), name, str(value)))

    def set(self, name: str, value: str) -> None:
        """Replace all lines of ``name`` by one line, at the first one's position (or last)."""
        key = canonical_name(name)
        new = (key, name, str(value))
        items = self._items
        for i, (k, _, _) in enumerate(items):
            if k == key:
                items[i] = new
                self._items = items[:i + 1] + [it for it in items[i + 1:] if it[0] != key]
                return
        items.append(new)

    def remove(self, name: str) -> None:
        """Delete every line of ``name`` (no error if absent)."""
        key = canonical_name(name)
        self._items = [it for it in self._items if it[0] != key]

    def copy(self) -> Headers:
        """A shallow copy (values are strings, so effectively independent)."""
        h = Headers()
        h._items = list(self._items)
        return h
