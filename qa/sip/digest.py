"""HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 2617 §3.2).

MD5 and MD5-sess with ``qop`` absent or ``auth``. Pure functions: the caller supplies
the challenge (``WWW-Authenticate`` / ``Proxy-Authenticate`` value) and the cnonce.
"""

from __future__ import annotations

import hashlib
import secrets

from qa.errors import ParseError
from qa.sip.lex import split_unquoted

__all__ = ["parse_digest_challenge", "digest_response", "build_authorization"]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest()


def parse_digest_challenge(value: str) -> dict[str, str]:
    """Parse ``Digest realm="..", nonce="..", qop="auth"`` (RFC 2617 §3.2.1, RFC 3261 §25.1).

    Returns lower-cased parameter names mapped to unquoted values, plus ``"scheme"``.
    Also accepts credentials (``Authorization`` values), which share the syntax.
    """
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if not scheme or "=" in scheme:
        raise ParseError("challenge without auth scheme", 0)
    out = {"scheme": scheme}
    offset = len(scheme) + 1
    try:
        parts = split_unquoted(rest, ",")
    except ParseError as exc:
        raise ParseError("unterminated quoted string in challenge", offset + exc.offset) from None
    for part in parts:
        name, eq, val = part.partition("=")
        name = name.strip().lower()
        if not name and not eq:
            offset += len(part) + 1
            continue
        if not name or not eq:
            raise ParseError(f"bad auth-param {part.strip()!r}", offset)
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[name] = val
        offset += len(part) + 1
    return out


def digest_response(username: str, password: str, realm: str, nonce: str, method: str,
                    uri: str, *, qop: str | None = None, nc: str = "00000001",
                    cnonce: str | None = None, algorithm: str = "MD5") -> str:
    """The ``response`` hex digest (RFC 2617 §3.2.2.1; RFC 3261 §22.4).

    ``qop`` is ``None`` (RFC 2069 compatibility) or ``"auth"``; ``cnonce`` is required
    with ``qop`` or ``MD5-sess``.
    """
    ha1 = _md5(f"{username}:{realm}:{password}")
    if algorithm.upper() == "MD5-SESS":
        if cnonce is None:
            raise ValueError("MD5-sess needs a cnonce")
        ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
    elif algorithm.upper() != "MD5":
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    ha2 = _md5(f"{method}:{uri}")
    if qop is None:
        return _md5(f"{ha1}:{nonce}:{ha2}")
    if qop != "auth":
        raise ValueError(f"unsupported qop {qop!r}")
    if cnonce is None:
        raise ValueError("qop=auth needs a cnonce")
    return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def build_authorization(challenge: dict[str, str], *, username: str, password: str,
                        method: str, uri: str, cnonce: str | None = None,
                        nc: int = 1) -> str:
    """An ``Authorization``/``Proxy-Authorization`` value answering ``challenge``.

    ``challenge`` comes from :func:`parse_digest_challenge`. ``qop=auth`` is used when
    offered (RFC 2617 §3.2.2).
    """
    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    algorithm = challenge.get("algorithm", "MD5")
    offered = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in offered else None
    if qop or algorithm.upper() == "MD5-SESS":
        cnonce = cnonce or secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    resp = digest_response(username, password, realm, nonce, method, uri, qop=qop,
                           nc=nc_text, cnonce=cnonce, algorithm=algorithm)
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"',
             f'uri="{uri}"', f'response="{resp}"', f"algorithm={algorithm}"]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)
