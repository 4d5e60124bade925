"""Sans-I/O SIP (RFC 3261): bytes in, objects out; no sockets.

Parsers raise only :class:`qa.errors.ParseError`.
"""

from qa.sip.digest import build_authorization, digest_response, parse_digest_challenge
from qa.sip.fields import NameAddr, Via, parse_cseq, parse_name_addr, parse_via
from qa.sip.headers import COMPACT_FORMS, LIST_HEADERS, Headers, canonical_name, split_list
from qa.sip.info import info_digit
from qa.sip.message import (
    MANDATORY_HEADERS, SIP_VERSION, Message, Request, Response, StreamFramer, parse_message,
)
from qa.sip.responses import (
    MAGIC_COOKIE, REASON_PHRASES, make_response, new_branch, new_call_id, new_tag,
    reason_phrase,
)
from qa.sip.uri import SipUri, parse_params, parse_uri, unescape

__all__ = [
    "COMPACT_FORMS", "LIST_HEADERS", "MAGIC_COOKIE", "MANDATORY_HEADERS", "REASON_PHRASES",
    "SIP_VERSION", "Headers", "Message", "NameAddr", "Request", "Response", "SipUri",
    "StreamFramer", "Via", "build_authorization", "canonical_name", "digest_response",
    "info_digit", "make_response", "new_branch", "new_call_id", "new_tag", "parse_cseq",
    "parse_digest_challenge", "parse_message", "parse_name_addr", "parse_params",
    "parse_uri", "parse_via", "reason_phrase", "split_list", "unescape",
]
