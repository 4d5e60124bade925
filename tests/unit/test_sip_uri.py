"""qa.sip URIs and structured header values (RFC 3261 §19.1, §20.10, §20.42)."""

from __future__ import annotations

import pytest

from qa.errors import ParseError
from qa.sip import NameAddr, SipUri, Via, parse_name_addr, parse_params, parse_uri, parse_via, unescape


# -- SipUri ------------------------------------------------------------------------------
def test_full_uri() -> None:
    uri = parse_uri("sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr;maddr=239.255.255.1"
                    "?subject=project%20x&priority=urgent")
    assert uri == SipUri("sips", "alice", "secret", "atlanta.example.com", 5061,
                         {"transport": "tcp", "lr": None, "maddr": "239.255.255.1"},
                         {"subject": "project%20x", "priority": "urgent"})
    assert uri.transport == "TCP" and uri.aor == "sips:alice@atlanta.example.com"
    assert str(uri) == ("sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr;"
                        "maddr=239.255.255.1?subject=project%20x&priority=urgent")


@pytest.mark.parametrize("text", [
    "sip:alice@atlanta.com",
    "sip:atlanta.com",
    "sip:+12125551212@phone2net.com;user=phone",
    "sip:alice@192.0.2.4:5060",
    "sip:[2001:db8::10]:5070;transport=udp",
    "sip:bob@[::1]",
    "sip:user;par=u%40example.net@example.com",
    "sip:p2.example.com;lr",
])
def test_round_trip(text: str) -> None:
    assert str(parse_uri(text)) == text


def test_ipv6_and_case() -> None:
    uri = parse_uri("SIP:bob@[2001:db8::10]:5070")
    assert (uri.scheme, uri.host, uri.port) == ("sip", "2001:db8::10", 5070)
    assert parse_uri("sip:[::1]").port is None and parse_uri("sip:x").transport == "UDP"
    assert parse_uri("sip:a@b;TRANSPORT=TLS").params == {"transport": "TLS"}


def test_semicolon_in_user_part() -> None:  # RFC 4475 §3.1.1.9
    uri = parse_uri("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u%40example.net" and uri.host == "example.com"
    assert unescape(uri.user) == "user;par=u@example.net"


def test_unescape() -> None:
    assert unescape("sips%3Auser%40example.com") == "sips:user@example.com"
    assert unescape("null-%00-null") == "null-\x00-null"
    assert unescape("%Z%45%4") == "%ZE%4"
    assert unescape("%C3%A9") == "\u00e9"


@pytest.mark.parametrize(("text", "offset"), [
    ("", 0), ("alice@example.com", 0), ("tel:+1234", 0), ("http://x", 0),
    ("sip:", 4), ("sip:@host", 4), ("sip:a@", 6), ("sip:a@host:port", 10),
    ("sip:a@host:70000", 10), ("sip:a@host:", 10), ("sip:a b@host", 5), ("sip:a@[::1", 6),
    ("sip:a@[zz]", 6), ("sip:a@host;=x", 11), ("sip:a@host;p=", 11), ("sip:a@host?x", 11),
    ("sip:a@ho<st", 6),
])
def test_bad_uris(text: str, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_uri(text)
    assert info.value.offset == offset


# -- NameAddr ----------------------------------------------------------------------------
def test_name_addr_forms() -> None:
    assert parse_name_addr('"Alice Liddell" <sip:alice@atlanta.com>;tag=1928301774') == NameAddr(
        "Alice Liddell", "sip:alice@atlanta.com", {"tag": "1928301774"})
    bare = parse_name_addr("sip:alice@atlanta.com;tag=88sja8x")
    assert bare == NameAddr(None, "sip:alice@atlanta.com", {"tag": "88sja8x"})
    assert bare.tag == "88sja8x"
    assert parse_name_addr("Bob <sip:bob@biloxi.com>").display == "Bob"
    assert parse_name_addr("Anonymous Caller <sip:c@x;lr>").display == "Anonymous Caller"
    assert parse_name_addr("<sip:c@x;lr>;expires=60").params == {"expires": "60"}
    assert parse_name_addr('"caller"<sip:caller@example.com>;tag=323').tag == "323"  # no LWS
    assert parse_name_addr("*").uri == "*"
    esc = parse_name_addr(r'"J Rosenberg \\\"" <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert esc.display == 'J Rosenberg \\"' and esc.tag == "98asjd8"
    assert parse_name_addr("<tel:+1-212-555-1212>").uri == "tel:+1-212-555-1212"
    contact = parse_name_addr('<sip:a@b>;q=0.7;expires=3600;+sip.instance="<urn:uuid:1>"')
    assert contact.params == {"q": "0.7", "expires": "3600", "+sip.instance": '"<urn:uuid:1>"'}


def test_name_addr_str() -> None:
    na = parse_name_addr('"A \\"B\\"" <sip:a@b>;tag=x;lr')
    assert na.display == 'A "B"'
    assert str(na) == '"A \\"B\\"" <sip:a@b>;tag=x;lr'
    assert parse_name_addr(str(na)) == na
    assert str(NameAddr(None, "sip:a@b")) == "<sip:a@b>"


@pytest.mark.parametrize("text", [
    "", '"unterminated <sip:a@b>', "Bell, Alexander <sip:a@b>", "< sip:a@b >", "<sip:a@b",
    '"name" sip:a@b', "<sip:a@b> junk", "<sip:a@b>;;", "<sip:a@b>;tag=", "<>", "<nocolon>",
    "alice@example.com", "sip:a@b c",
])
def test_bad_name_addrs(text: str) -> None:
    with pytest.raises(ParseError):
        parse_name_addr(text)


# -- Via -------------------------------------------------------------------------------------
def test_via() -> None:
    via = parse_via("SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5066")
    assert via == Via("SIP/2.0/UDP", "UDP", "pc33.atlanta.com", 5066,
                      {"branch": "z9hG4bK776asdhds", "received": "192.0.2.1", "rport": "5066"})
    assert via.rport == 5066 and via.received == "192.0.2.1" and via.sent_by == "pc33.atlanta.com:5066"
    assert str(via) == "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5066"
    assert parse_via(str(via)) == via


def test_via_lws_and_ipv6() -> None:
    via = parse_via("SIP  / 2.0  / TCP     spindle.example.com   ;\t branch  =   z9hG4bK9ikj8")
    assert (via.protocol, via.transport, via.host, via.branch) == (
        "SIP/2.0/TCP", "TCP", "spindle.example.com", "z9hG4bK9ikj8")
    v6 = parse_via("SIP/2.0/TLS [2001:db8::9:1] : 5061;branch=z9hG4bKas;rport")
    assert (v6.host, v6.port, v6.rport, "rport" in v6.params) == ("2001:db8::9:1", 5061, None, True)
    assert str(v6) == "SIP/2.0/TLS [2001:db8::9:1]:5061;branch=z9hG4bKas;rport"
    assert parse_via("sip/2.0/ws df7jal23ls0d.invalid;branch=z9hG4bK").transport == "WS"


@pytest.mark.parametrize("text", [
    "", "SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDP host:abc", "SIP/2.0/UDP host:99999",
    "SIP/2.0/UDP 192.0.2.15;;,;,,", "SIP/2.0/UDP host junk", "SIP/2.0/UDP [::1;branch=x",
])
def test_bad_vias(text: str) -> None:
    with pytest.raises(ParseError):
        parse_via(text)


def test_parse_params() -> None:
    assert parse_params("") == {}
    assert parse_params(' ; A = 1 ;b; c="x;y"') == {"a": "1", "b": None, "c": '"x;y"'}
    for bad in ("x=1", ";", ";=1", ';a="x'):
        with pytest.raises(ParseError):
            parse_params(bad)
