"""The customer call scenarios in ``sipp/``, written from one description each.

SIPp XML has no includes, so the call flow every customer scenario shares (INVITE with
digest auth on 401/407, ~55 failure codes each ACKed and ending the call cleanly, a BYE
from the callee at any time, transactions matched with ``start_txn``/``response_txn``)
would otherwise be copied into every file. Here it is written once; each scenario adds
only what differs: extra INVITE headers, what happens after the ACK ("talk"), whether we
hang up, and for CANCEL what happens on a provisional response.

The files in ``sipp/`` are this module's output and stay plain XML that bare ``sipp``
runs (the command line is in each file's comment). After editing a :class:`Spec`::

    python -m qa.sipp.scenarios          # rewrite sipp/uac_*.xml
    python -m qa.sipp.scenarios --check  # exit 1 if a file differs (the unit tests do this)

Length: one Spec per shipped scenario plus the shared flow they are rendered from; each
Spec is a few lines, and keeping them beside the flow is what stops the XML being copied.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.paths import SIPP_DIR
from qa.sipp.media import STATIC_PAYLOAD_TYPES, pcap_key

#: Final failure responses to an INVITE that end the call cleanly (ACK, then end).
#: 401/407 to the first INVITE mean "retry with credentials" instead.
FAILURE_CODES = (
    300, 301, 302, 305, 380, 400, 401, 402, 403, 404, 405, 406, 407, 408, 410, 413, 414, 415,
    416, 420, 421, 422, 423, 428, 429, 433, 436, 437, 438, 480, 481, 482, 483, 484, 485, 486,
    487, 488, 489, 491, 493, 494, 500, 501, 502, 503, 504, 505, 513, 580, 600, 603, 604, 606,
    607, 608,
)
#: Final responses to our BYE after which the call is over anyway.
BYE_CODES = (404, 408, 481, 486, 487, 500, 503)
CHALLENGES = (401, 407)

_FROM = 'From: "[from_user]" <sip:[from_user]@[domain]>;tag=[pid]SIPpTag00[call_number]'
_CONTACT = "Contact: <sip:[from_user]@[local_ip]:[local_port];transport=[transport]>"
_SDP = """v=0
o=voipqa 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=voipqa
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP [sdp_formats]
[sdp_attributes]
a=sendrecv"""


@dataclass(frozen=True)
class Spec:
    """What one customer scenario adds to the shared call flow."""

    name: str                              # file stem in sipp/
    doc: str                               # the comment: command line, keys, flow
    talk: str                              # XML after the ACK of the 2xx
    invite_headers: tuple[str, ...] = ()   # extra INVITE headers (before Content-Type)
    hangs_up: bool = True                  # talk is followed by our BYE
    bye_cseq: str = "3"
    on_ringing: Callable[[int], str] | None = None  # XML for 180/183 to INVITE n; None: stay
    accounting: str = ""                   # load runs: "starts" (a VQ0 line per call) or "calls" (VQ0 + VQ1)
    injection: bool = False                # caller, callee and credentials from the -inf CSV
    on_answer: tuple[str, ...] = ()        # actions run on the 200 to either INVITE


# -- small XML pieces ---------------------------------------------------------------
def _cdata(lines: list[str]) -> str:
    body = "\n".join(f"      {line}" if line else "" for line in lines)
    return f"    <![CDATA[\n{body}\n    ]]>"


def send(lines: list[str] | str, **attrs: str) -> str:
    """A ``<send>`` element; ``lines`` is the message (one string or a list of lines)."""
    if isinstance(lines, str):
        lines = lines.split("\n")
    return f"  <send{_attrs(attrs)}>\n{_cdata(lines)}\n  </send>"


def recv(*actions: str, **attrs: str) -> str:
    """A ``<recv/>`` element; ``response=`` / ``request=`` and the rest as given, with
    ``actions`` (action XML elements) run when it matches."""
    if not actions:
        return f"  <recv{_attrs(attrs)}/>"
    return f"  <recv{_attrs(attrs)}><action>{''.join(actions)}</action></recv>"


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k.rstrip("_")}="{v}"' for k, v in attrs.items())


def label(name: str) -> str:
    return f'  <label id="{name}"/>'


def jump(name: str) -> str:
    return f'  <nop hide="true" next="{name}"/>'


def pause_for_key(key: str) -> str:
    """Pause for the milliseconds in ``-key KEY`` (``<pause milliseconds>`` takes no keys).

    SIPp substitutes keys in ``assignstr`` values at run time; ``todouble`` turns the text
    into the number ``<pause variable>`` wants.
    """
    return (f'  <nop hide="true"><action>\n'
            f'    <assignstr assign_to="{key}_text" value="[{key}]"/>\n'
            f'    <todouble assign_to="{key}" variable="{key}_text"/>\n'
            f'  </action></nop>\n'
            f'  <pause variable="{key}"/>')


# -- the shared call flow -------------------------------------------------------------
def _invite(n: int, spec: Spec) -> str:
    lines = [
        "INVITE sip:[service]@[domain] SIP/2.0",
        f"Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-inv{n}",
        _FROM, "To: <sip:[service]@[domain]>", "Call-ID: [call_id]", f"CSeq: {n} INVITE",
        _CONTACT, "Max-Forwards: 70",
        *(["[authentication]"] if n == 2 else []),
        "User-Agent: voipqa-sipp", *spec.invite_headers,
        "Content-Type: application/sdp", "Content-Length: [len]", "", *_SDP.split("\n"),
    ]
    return send(lines, retrans="500", start_txn=f"invite{n}")


def _responses(n: int, spec: Spec) -> list[str]:
    txn = f"invite{n}"
    acct = _Accounting(spec.accounting == "calls")
    out = [recv(request="BYE", optional="global", next="callee_bye")] if n == 1 else []
    out.append(recv(response="100", optional="true", response_txn=txn))
    for code in (180, 183):
        ring = {"next": f"ringing{n}"} if spec.on_ringing else {}
        out.append(recv(*acct.ringing(), response=str(code), optional="true", response_txn=txn, **ring))
    if n == 1:
        out += [recv(response=str(c), optional="true", auth="true", response_txn=txn, next="auth")
                for c in CHALLENGES]
    out += [recv(*acct.final(c), response=str(c), optional="true", response_txn=txn, next=f"failed{n}")
            for c in FAILURE_CODES if n == 2 or c not in CHALLENGES]
    out.append(recv(*acct.answer(), *spec.on_answer, response="200", response_txn=txn, rtd="true",
                    rrs="true", next=f"answered{n}"))
    return out


class _Accounting:
    """The actions behind the per-call accounting line of load scenarios (KAMAILIO-NOTES:
    a ``<log>`` per call costs SIPp nothing measurable at 12,000 calls/s).

    SIPp has no conditional assignment, so every 18x appends its clock tick to ``t18``
    and the reader takes the first (the post-dial delay); the final response's code is a
    constant per ``<recv>``. Variables print empty until assigned. Times are SIPp's
    ``[clock_tick]`` only (milliseconds since SIPp started; its ``-trace_stat`` StartTime
    is the wall clock of tick 0): a ``<gettimeofday>`` per call cost 6 % of SIPp's ceiling.
    """

    LINE = "VQ1;[call_id];[$t0];[$t18];[$t200];[clock_tick];[$code];[field0];[field1];[field3]"
    START = "VQ0;[clock_tick]"

    def __init__(self, on: bool, *, starts: bool | None = None) -> None:
        self.on = on                                  # the call line (and the ticks it needs)
        self.starts = on if starts is None else starts  # the start line

    def ringing(self) -> tuple[str, ...]:
        return ('<assignstr assign_to="t18" value="[$t18] [clock_tick]"/>',) if self.on else ()

    def final(self, code: int) -> tuple[str, ...]:
        return (f'<assignstr assign_to="code" value="{code}"/>',) if self.on else ()

    def answer(self) -> tuple[str, ...]:
        if not self.on:
            return ()
        return ('<assignstr assign_to="t200" value="[clock_tick]"/>', '<assignstr assign_to="code" value="200"/>')

    def start(self) -> list[str]:
        if not self.starts:
            return []
        tick = '<assignstr assign_to="t0" value="[clock_tick]"/>' if self.on else ""
        return ["  <!-- accounting: a start line (calls counted in the second they began, not when SIPp's",
                "       statistics next say so) and the tick of the first INVITE -->",
                f'  <nop hide="true"><action>{tick}<log message="{self.START}"/></action></nop>']

    def end(self) -> list[str]:
        if not self.on:
            return []
        return ["  <!-- accounting: one line per call that reached the end (qa.load.generator reads it) -->",
                f'  <nop hide="true"><action><log message="{self.LINE}"/></action></nop>']


def ack(n: int, *, answered: bool) -> str:
    """ACK of INVITE ``n``: for a failure in its transaction (RFC 3261 §17.1.1.3), else for the 2xx."""
    branch = f"ack{n}" if answered else f"inv{n}"
    lines = [
        f"ACK {'[next_url]' if answered else 'sip:[service]@[domain]'} SIP/2.0",
        f"Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-{branch}",
        "[routes]", _FROM, "To: <sip:[service]@[domain]>[peer_tag_param]", "Call-ID: [call_id]",
        f"CSeq: {n} ACK", *([_CONTACT] if answered else []), "Max-Forwards: 70", "Content-Length: 0",
    ]
    return send(lines, ack_txn=f"invite{n}")


def in_dialog(method: str, cseq: str, branch: str, *, headers: tuple[str, ...] = (),
              body: str = "") -> list[str]:
    """The lines of a request inside the dialog (after the 2xx: [next_url], [routes]).

    ``branch`` ends the Via branch and must differ per transaction (a loop sending the
    same element again needs a variable in it: SIPp's [branch] would repeat).
    """
    lines = [
        f"{method} [next_url] SIP/2.0",
        f"Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-{branch}",
        "[routes]", _FROM, "To: <sip:[service]@[domain]>[peer_tag_param]", "Call-ID: [call_id]",
        f"CSeq: {cseq} {method}", _CONTACT, "Max-Forwards: 70", *headers,
    ]
    if body:
        return lines + ["Content-Length: [len]", "", *body.split("\n")]
    return lines + ["Content-Length: 0"]


def _bye(spec: Spec) -> list[str]:
    out = [label("hangup"),
           "  <!-- a tiny pause so a proxy has relayed our ACK before the BYE (KAMAILIO-NOTES) -->",
           '  <pause milliseconds="10"/>',
           send(in_dialog("BYE", spec.bye_cseq, "bye"), retrans="500", start_txn="bye"),
           recv(response="100", optional="true", response_txn="bye")]
    out += [recv(response=str(c), optional="true", response_txn="bye", next="end") for c in BYE_CODES]
    out.append(recv(response="200", response_txn="bye", next="end"))
    return out


def _callee_bye() -> list[str]:
    reply = ["SIP/2.0 200 OK", "[last_Via:]", "[last_From:]", "[last_To:]", "[last_Call-ID:]",
             "[last_CSeq:]", _CONTACT, "Content-Length: 0"]
    return ["  <!-- the callee (or the platform) hung up -->", label("callee_bye"), send(reply)]


def render(spec: Spec) -> str:
    """The complete scenario file for ``spec``."""
    if "--" in spec.doc:
        raise ValueError(f"{spec.name}: '--' is not allowed in an XML comment")
    acct = _Accounting(spec.accounting == "calls", starts=bool(spec.accounting))
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1" ?>',
        '<!DOCTYPE scenario SYSTEM "sipp.dtd">',
        f"<!--\n{spec.doc.strip(chr(10))}\n\n  Generated by qa/sipp/scenarios.py (python -m qa.sipp.scenarios): edit it there.\n-->",
        f'<scenario name="voipqa {spec.name}">', "", *acct.start(),
        _invite(1, spec), *_responses(1, spec), "",
        label("auth"), ack(1, answered=False), "",
        _invite(2, spec), *_responses(2, spec), "",
        label("answered1"), ack(1, answered=True), jump("talk"), "",
        label("answered2"), ack(2, answered=True), "",
        label("talk"), spec.talk, "",
    ]
    if spec.hangs_up:
        parts += [*_bye(spec), ""]
    for n in (1, 2):
        parts += [label(f"failed{n}"), ack(n, answered=False), jump("end"), ""]
    if spec.on_ringing:
        parts += [text for n in (1, 2) for text in (spec.on_ringing(n), "")]
    parts += [*_callee_bye(), "", label("end"), *acct.end(),
              "  <!-- absorb retransmitted final responses / BYEs for a moment -->",
              '  <timewait milliseconds="200"/>', "",
              '  <ResponseTimeRepartition value="10, 20, 50, 100, 200, 500, 1000, 2000"/>',
              '  <CallLengthRepartition value="100, 500, 1000, 5000, 10000, 30000, 60000"/>',
              "</scenario>", ""]
    text = "\n".join(parts)
    return _inject(text) if spec.injection else text


#: Keywords a load scenario takes from its -inf CSV instead (qa.load.generator writes it).
_INJECTED = {"[from_user]": "[field0]", "[service]": "[field1]", "[authentication]": "[field2]"}


def _inject(text: str) -> str:
    """Caller, callee and credentials per call from the -inf CSV.

    SIPp 3.6.1 cannot nest ``[field0]`` inside ``[authentication username=...]``; it
    parses an injected field that itself holds ``[authentication username=U password=P]``
    when the field is inserted, so the CSV carries the whole keyword in field 2.
    """
    head, sep, body = text.partition('<scenario name=')
    for keyword, field in _INJECTED.items():
        body = body.replace(keyword, field)
    return head + sep + body


# -- the scenarios ----------------------------------------------------------------------
_COMMON_ARGS = ("-i 127.0.0.1 -p 5071 -cp 8871 -ci 127.0.0.1 -mp 6100 \\\n"
                "         -t u1 -s 1000 -au alice -ap secret -m 1")
_SDP_KEYS = ("-key from_user alice -key domain 127.0.0.1:5060 -key sdp_formats \"0 8 101\" \\\n"
             "         -key sdp_attributes $'a=rtpmap:0 PCMU/8000\\r\\na=rtpmap:8 PCMA/8000\\r\\n"
             "a=rtpmap:101 telephone-event/8000\\r\\na=fmtp:101 0-16'")
_KEYS_DOC = """  Keys:  from_user       user part of From (and Contact)
         domain          host[:port] of the Request-URI, From and To (default: the remote host:port)
         sdp_formats     payload types on the m= line of the offer, e.g. "0 8 101"
         sdp_attributes  the a=rtpmap/a=fmtp lines of the offer, joined with CRLF"""
_AGENT_DOC = """  (qa.sipp.Agent builds this argv and fills these keys: "codecs" (default
  "PCMU,PCMA,telephone-event") becomes sdp_formats/sdp_attributes.)"""
_FLOW_DOC = """  Shared flow: INVITE(SDP) -> [100] [180] [183] ->
          401/407: ACK, INVITE with credentials (CSeq 2, same Call-ID) -> ...
          any final failure (3xx-6xx, incl. a second 401/407): ACK -> end (the call still
            ends cleanly for SIPp; voipqa judges whether the code was the expected one)
          200: ACK -> talk (below)
        A BYE from the callee at any time after the INVITE is answered 200 and ends the call.
  Branches are deterministic (z9hG4bK-[pid]-[call_number]-invN) so the ACK for a failure
  carries its INVITE's branch (RFC 3261 17.1.1.3); start_txn/response_txn/ack_txn let
  SIPp ignore provisionals a proxy relays after the 200 (KAMAILIO-NOTES)."""


def _doc(title: str, scenario: str, extra_args: str, keys: str, flow: str) -> str:
    return (f"  {title}\n\n  Bare command line (from the repository root; every [key] below must be given):\n\n"
            f"    sipp -sf sipp/{scenario}.xml 127.0.0.1:5060 {_COMMON_ARGS} {extra_args}\\\n"
            f"         -timeout 30s -timeout_error -nostdin \\\n         {_SDP_KEYS}\n\n"
            f"{_KEYS_DOC}\n{keys}\n{_AGENT_DOC}\n\n{_FLOW_DOC}\n{flow}")


_TALK_PAUSE = "  <!-- talk time: -d -->\n  <pause/>"

#: The answer's first payload type, from the m=audio line of the 200's SDP (the format the
#: answerer prefers: RFC 3264 §6.1). check_it="false": an answer without SDP leaves it unset.
_ANSWER_PT = ('<ereg regexp="m=audio [0-9]+ [A-Z/]+ ([0-9]+)" search_in="body" check_it="false" '
              'assign_to="m_audio,pt"/>')
#: What the customer played, one line per call in -log_file: qa.cases.customers reads it.
MEDIA_LOG = "media: [call_id] pt=[$pt] play={what}"


def _media_start(codecs: dict[str, int]) -> str:
    """Start the pcap of the answer's payload type (SIPp plays it in a thread while the
    scenario goes on), or log that none fits; then carry on at ``media_started``.

    SIPp has no switch: each codec gets a ``strcmp`` (0 when equal) turned into a boolean
    by ``test``, and a ``nop test=... next=...`` jumps to its ``exec play_pcap_audio``.
    A payload type without a pcap (opus, G.729, no SDP) falls through and plays nothing.
    """
    none = f'  <nop hide="true"><action><log message="{MEDIA_LOG.format(what="none")}"/></action></nop>'
    return "\n".join([
        "  <!-- media: the answer's first payload type [$pt] picks the pcap to play -->",
        '  <nop hide="true"><action>', *(_is_codec(c, pt) for c, pt in codecs.items()), "  </action></nop>",
        *(f'  <nop hide="true" test="is_{c.lower()}" next="play_{c.lower()}"/>' for c in codecs),
        none, jump("media_started"), *(_play(c) for c in codecs), label("media_started")])


def _is_codec(codec: str, pt: int) -> str:
    """Actions setting the boolean ``is_<codec>``: is [$pt] this codec's payload type?"""
    low = codec.lower()
    return (f'    <strcmp assign_to="cmp_{low}" variable="pt" value="{pt}"/>\n'
            f'    <test assign_to="is_{low}" variable="cmp_{low}" compare="equal" value="0"/>')


def _play(codec: str) -> str:
    """The branch of one codec: log it, start its pcap (SIPp plays it in a thread), talk."""
    return (f"{label(f'play_{codec.lower()}')}\n"
            f'  <nop hide="true"><action><log message="{MEDIA_LOG.format(what=codec)}"/>'
            f'<exec play_pcap_audio="[{pcap_key(codec)}]"/></action></nop>\n{jump("media_started")}')


#: The codecs the negotiated-media scenarios have pcaps for (qa.sipp.media encodes them).
_MEDIA_CODECS = dict(STATIC_PAYLOAD_TYPES)
_MEDIA_ARGS = "".join(f"-key {pcap_key(c)} {c.lower()}.pcap " for c in _MEDIA_CODECS)
_MEDIA_KEYS_DOC = ("\n".join(f"         {pcap_key(c):<15} the pcap to play when the answer's first payload type is "
                              f"{pt} ({c})" for c, pt in _MEDIA_CODECS.items())
                   + "\n                         (qa.sipp.media.negotiated_play_keys writes them; SIPp reads\n"
                     "                         every one when it loads the scenario)")
_MEDIA_FLOW_DOC = ("  Media: on the 200, <ereg search_in=\"body\"> takes the first payload type of the\n"
                   "  answer's m=audio line into [$pt]; after the ACK the pcap of that payload type starts\n"
                   "  (strcmp/test and a jump per codec) and plays while the talk goes on. Another payload\n"
                   "  type (opus, G.729) or no SDP plays nothing. Either way -log_file gets one line per\n"
                   "  answered call:  media: Call-ID pt=PT play=PCMU|PCMA|G722|none")
#: Talk that starts the negotiated codec's audio first (every answered call carries media).
_MEDIA_TALK = _media_start(_MEDIA_CODECS)


UAC_CALL = Spec(
    name="uac_call",
    doc=_doc("voipqa customer call (UAC) through an authenticating proxy.", "uac_call",
             "-d 2000 ", "  Built-ins used: [service] (-s), -au/-ap, -d (the talk time).",
             "  Talk: pause for -d, then BYE -> 200."),
    talk=_TALK_PAUSE,
)

UAC_LARGE_INVITE = Spec(
    name="uac_large_invite",
    doc=_doc("voipqa customer call whose INVITE is padded past the UDP limit (RFC 3261 18.1.1:\n"
             "  1300 bytes with an unknown path MTU); the platform should relay it over TCP.",
             "uac_large_invite", "-d 1000 -key padding \"$(printf 'x%.0s' {1..1500})\" " + _MEDIA_ARGS,
             "         padding         value of the X-Padding header (qa.sipp.Agent: key\n"
             "                         padding_bytes, default 1500, becomes that many 'x')\n" + _MEDIA_KEYS_DOC,
             _MEDIA_FLOW_DOC + "\n  Talk: the media, pause for -d, then BYE -> 200. -t u1 sends the big INVITE\n"
             "  over UDP anyway (SIPp does not switch); -t t1 sends it over TCP."),
    talk=_MEDIA_TALK + "\n" + _TALK_PAUSE,
    invite_headers=("X-Padding: [padding]",),
    on_answer=(_ANSWER_PT,),
)

UAC_DTMF = Spec(
    name="uac_dtmf",
    doc=_doc("voipqa customer call that plays a pcap after the ACK: RFC 4733 digits,\n"
             "  in-band DTMF tones or codec audio (qa.sipp.media writes the pcaps).",
             "uac_dtmf", "-key media_pcap /usr/share/sip-tester/dtmf_2833_1.pcap -key media_ms 1000 ",
             "         media_pcap      the pcap to play (Ethernet/IPv4/UDP; SIPp reads it when it loads\n"
             "                         the scenario: play_pcap_audio=\"[key]\" is substituted then)\n"
             "         media_ms        how long to wait for it to play before the BYE\n"
             "  (qa.sipp.media.play_keys(path) gives both.)",
             "  Talk: play [media_pcap] to the port of the answer's SDP, wait [media_ms], BYE -> 200."),
    talk=('  <nop hide="true"><action><exec play_pcap_audio="[media_pcap]"/></action></nop>\n'
          + pause_for_key("media_ms")),
)

_INFO_LOOP = """  <!-- one INFO per digit: take the first character of what is left, send it, repeat.
       CSeq counts on from the INVITE's in info_cseq; SIPp prints a number variable as
       "3.000000", so its integer part is cut out into the string variable cseq. -->
  <nop hide="true"><action>
    <assignstr assign_to="digits_left" value="[dtmf_digits]"/>
    <assign assign_to="info_cseq" value="2"/>
  </action></nop>
  <label id="next_digit"/>
  <nop hide="true"><action>
    <ereg regexp="^(.)(.*)$" search_in="var" variable="digits_left" assign_to="digits_all,digit,digits_rest"/>
    <log message="dtmf-info: [call_id] sends [$digit] of [$digits_all]"/>
    <assignstr assign_to="digits_left" value="[$digits_rest]"/>
    <strcmp assign_to="left_cmp" variable="digits_left" value=""/>
    <test assign_to="more_digits" variable="left_cmp" compare="not_equal" value="0"/>
    <add assign_to="info_cseq" value="1"/>
    <assignstr assign_to="cseq_text" value="[$info_cseq]"/>
    <ereg regexp="^[0-9]+" search_in="var" variable="cseq_text" assign_to="cseq"/>
  </action></nop>
{send}
  <recv response="100" optional="true" response_txn="info"/>
{failures}
  <recv response="200" response_txn="info"/>
  <pause milliseconds="100"/>
  <nop hide="true" next="next_digit" test="more_digits"/>
  <nop hide="true"><action>
    <add assign_to="info_cseq" value="1"/>
    <assignstr assign_to="cseq_text" value="[$info_cseq]"/>
    <ereg regexp="^[0-9]+" search_in="var" variable="cseq_text" assign_to="cseq"/>
  </action></nop>"""

UAC_DTMF_INFO = Spec(
    name="uac_dtmf_info",
    doc=_doc("voipqa customer call that sends its digits as SIP INFO (application/dtmf-relay).",
             "uac_dtmf_info", "-key dtmf_digits '0123456789*#' " + _MEDIA_ARGS,
             "         dtmf_digits     the digits, 1..16 of 0-9 * # A-D, one INFO each, in order\n"
             + _MEDIA_KEYS_DOC,
             _MEDIA_FLOW_DOC + "\n  Talk: the media; for each digit INFO (Signal=D, Duration=160) -> [100] -> 200, a short gap;\n"
             "  an INFO refused (4xx/5xx) stops the digits. Then pause for -d, BYE -> 200.\n"
             "  SIPp cannot iterate over a string: the loop takes the first character of a\n"
             "  variable with <ereg search_in=\"var\">, keeps the rest, and jumps back while\n"
             "  something is left (actions.log gets one 'dtmf-info:' line per digit)."),
    talk=_MEDIA_TALK + "\n" + _INFO_LOOP.format(
        send=send(in_dialog("INFO", "[$cseq]", "info[$cseq]", headers=("Content-Type: application/dtmf-relay",),
                            body="Signal=[$digit]\nDuration=160"), retrans="500", start_txn="info"),
        failures="\n".join(recv(response=str(c), optional="true", response_txn="info", next="hangup")
                           for c in (403, 404, 405, 406, 415, 481, 488, 500, 501, 503))) + "\n" + _TALK_PAUSE,
    bye_cseq="[$cseq]",
    on_answer=(_ANSWER_PT,),
)

UAC_SESSION_TIMER = Spec(
    name="uac_session_timer",
    doc=_doc("voipqa customer call asking for session timers (RFC 4028) and never refreshing.",
             "uac_session_timer", "-key session_expires 90 -key min_se 90 " + _MEDIA_ARGS,
             "         session_expires Session-Expires of the INVITE (refresher=uac)\n"
             "         min_se          Min-SE of the INVITE (qa.sipp.Agent defaults: 1800 / 90)\n"
             + _MEDIA_KEYS_DOC,
             _MEDIA_FLOW_DOC + "\n  422 (Session Interval Too Small) is a final failure like any other: ACK -> end;\n"
             "  voipqa reads its Min-SE from the trace (CallResult.min_se).\n"
             "  Talk: no refresh (no re-INVITE/UPDATE): wait, up to -timeout, for the platform's\n"
             "  BYE at expiry -> 200 -> end (CallResult.bye_by == 'callee')."),
    talk=_MEDIA_TALK + "\n  <!-- never refresh: the platform has to end the call at expiry -->\n"
         '  <recv request="BYE" next="callee_bye"/>',
    on_answer=(_ANSWER_PT,),
    invite_headers=("Supported: timer", "Session-Expires: [session_expires];refresher=uac",
                    "Min-SE: [min_se]"),
    hangs_up=False,
)

def _cancel_request(n: int) -> str:
    lines = [
        "CANCEL sip:[service]@[domain] SIP/2.0",
        f"Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-inv{n}",
        "[routes]", _FROM, "To: <sip:[service]@[domain]>", "Call-ID: [call_id]", f"CSeq: {n} CANCEL",
        "Max-Forwards: 70", "Content-Length: 0",
    ]
    return send(lines, retrans="500")


def _cancel_on_ringing(n: int) -> str:
    """Ringing on INVITE ``n``: wait [cancel_ms], CANCEL (its branch), 200, 487 -> ACK."""
    txn = f"invite{n}"
    return "\n".join([
        f"  <!-- ringing on INVITE {n}: wait [cancel_ms], CANCEL it (same branch, RFC 3261 9.1) -->",
        label(f"ringing{n}"), pause_for_key("cancel_ms"), _cancel_request(n),
        recv(response="180", optional="true", response_txn=txn),
        recv(response="183", optional="true", response_txn=txn),
        # the CANCEL shares the INVITE's branch, so response_txn cannot tell their 200s
        # apart; without it SIPp matches the CSeq method of the request just sent
        recv(response="200"),
        recv(response="487", optional="true", response_txn=txn, next=f"failed{n}"),
        recv(response="200", response_txn=txn, next=f"answered{n}"),
    ])


UAC_CANCEL = Spec(
    name="uac_cancel",
    doc=_doc("voipqa customer call cancelled while it rings.", "uac_cancel", "-key cancel_ms 1000 ",
             "         cancel_ms       how long after the first 180/183 the caller sends CANCEL",
             "  On 180/183: wait [cancel_ms], CANCEL -> 200 (CANCEL) -> 487 -> ACK -> end.\n"
             "  If the 200 to the INVITE arrives after the CANCEL's 200 (it won the race),\n"
             "  ACK -> BYE -> 200 (final_code 200). A 2xx before the CANCEL's 200, or a\n"
             "  provisional during the wait, fails the call (SIPp: unexpected message)."),
    talk="  <!-- answered before our CANCEL arrived: hang up at once -->",
    on_ringing=_cancel_on_ringing,
)

UAC_MEDIA = Spec(
    name="uac_media",
    doc=_doc("voipqa customer call that sends RTP for its whole talk time on the codec the answer\n"
             "  chose (the default call of the catalogue: every answered call carries media).",
             "uac_media", "-d 2000 " + _MEDIA_ARGS, _MEDIA_KEYS_DOC,
             _MEDIA_FLOW_DOC + "\n  Talk: the media, pause for -d, BYE -> 200."),
    talk=_MEDIA_TALK + "\n" + _TALK_PAUSE,
    on_answer=(_ANSWER_PT,),
)

_ACCOUNTING_DOC = """  Per call, one line in -log_file when it starts and one at the end (no secrets in them):
      VQ0;tick at the INVITE
      VQ1;Call-ID;tick at the INVITE;ticks of every 18x;tick of the 200;tick at the end;
      final code;caller;number;expected code
  (ticks are SIPp's [clock_tick], milliseconds since SIPp started; the StartTime column of
  its -trace_stat file is the wall clock of tick 0). A call SIPp aborts (no final response
  within -recv_timeout, unexpected message, retransmissions exhausted) writes no line;
  -trace_stat counts it."""

_LOAD_DOC = """  voipqa load customer (UAC): the traffic engine of `voipqa load run` (qa.load.generator).
  {what}

  Bare command line (from the repository root; calls.csv as below):

    sipp -sf sipp/{name}.xml 127.0.0.1:5060 -i 127.0.0.1 -p 5071 -cp 8871 -ci 127.0.0.1 -mp 6100 \\
         -t u1 -inf calls.csv -r 10 -m 100 -d 2000 -recv_timeout 32000 -nostdin \\
         -buff_size 4194304 -trace_logs -log_file calls.log {extra}\\
         -key domain 127.0.0.1:5060 -key sdp_formats "0 8 101" \\
         -key sdp_attributes $'a=rtpmap:0 PCMU/8000\\r\\na=rtpmap:8 PCMA/8000\\r\\na=rtpmap:101 telephone-event/8000'

  calls.csv (-inf), one line per call, used in turn:
      SEQUENTIAL
      1001;15550001234;[authentication username=1001 password=secret];200
    field0 caller (From user), field1 the number dialled, field2 the credentials as SIPp's
    whole [authentication] keyword (SIPp 3.6.1 cannot nest [field0] inside it, but parses
    the keyword when an injected field carries it; empty when the target never
    challenges), field3 the final code this destination should give (for the report).

{accounting}
{flow}"""

UAC_LOAD = Spec(
    name="uac_load",
    doc=_LOAD_DOC.format(what="Talk: pause for -d, then BYE -> 200. No media (see uac_load_media).",
                         name="uac_load", extra="", flow=_FLOW_DOC, accounting=_ACCOUNTING_DOC),
    talk=_TALK_PAUSE,
    accounting="calls",
    injection=True,
)

UAC_LOAD_MEDIA = Spec(
    name="uac_load_media",
    doc=_LOAD_DOC.format(what="Talk: play [media_pcap] (G.711 audio, qa.sipp.media.audio_pcap) to the port of\n"
                              "  the answer's SDP while pausing for -d, then BYE -> 200.",
                         name="uac_load_media", extra="-key media_pcap audio.pcap ", flow=_FLOW_DOC,
                         accounting=_ACCOUNTING_DOC),
    talk=('  <nop hide="true"><action><exec play_pcap_audio="[media_pcap]"/></action></nop>\n' + _TALK_PAUSE),
    accounting="calls",
    injection=True,
)

UAC_LOAD_LEAN = Spec(
    name="uac_load_lean",
    doc=_LOAD_DOC.format(what="Talk: pause for -d, then BYE -> 200. Only the start line of each call, not its\n"
                              "  accounting line: the generator's raw capacity (the ceiling profile). voipqa counts\n"
                              "  how calls ended from SIPp's own statistics (cleanly, aborted), with no Call-IDs (no\n"
                              "  CDR check) and no PDD or setup times; the accounting line and the ticks it records\n"
                              "  cost SIPp about a fifth of its ceiling here.",
                         name="uac_load_lean", extra="", flow=_FLOW_DOC,
                         accounting="  Per call, one line in -log_file when it starts: VQ0;tick (see uac_load)."),
    talk=_TALK_PAUSE,
    accounting="starts",
    injection=True,
)

SPECS: tuple[Spec, ...] = (
    UAC_CALL, UAC_MEDIA, UAC_LARGE_INVITE, UAC_DTMF, UAC_DTMF_INFO, UAC_SESSION_TIMER, UAC_CANCEL, UAC_LOAD,
    UAC_LOAD_MEDIA, UAC_LOAD_LEAN,
)


def files() -> dict[Path, str]:
    """Every generated scenario file and its content."""
    return {SIPP_DIR / f"{spec.name}.xml": render(spec) for spec in SPECS}


def main(argv: list[str] | None = None) -> int:
    """Write the scenarios (or, with ``--check``, report the ones that differ: exit 1)."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for path, text in files().items():
        current = path.read_text(encoding="iso-8859-1") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            path.write_text(text, encoding="iso-8859-1")
    for path in stale:
        print(f"{path}: {'out of date' if check else 'written'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
