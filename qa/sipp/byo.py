"""Bring your own SIPp scenario: read a user's XML as it is, decide its peer, run and judge it.

Platform teams own libraries of SIPp XML. voipqa runs them unchanged: it supplies the
target (the environment's platform, or its carrier), the accounts (``-inf`` CSV, ``-au``/
``-ap``, ``-s`` service), free local ports and the traces, and judges the call on the
same witnesses as its own calls (customer by SIPp's exit code and final response, carrier
and platform CDR by the Call-ID found in the ``-trace_msg`` log).

:func:`inspect_scenario` parses the file strictly first, so a broken file is one line
naming ``file:line:col``. SIPp's own XML reader accepts ``<`` inside attribute values
(``display="<<<< hold"``) without a word, but stops reading the scenario there: SIPp
3.6.1 runs pbertera's Hold-UAC/uac-hold.xml as INVITE, ACK and a pause, reports the call
successful and never sends the hold re-INVITEs nor the BYE. Such a file is therefore an
error here too, and the message says so.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from qa.errors import BadInput
from qa.sipp.agent import Agent
from qa.sipp.process import SippResult
from qa.sipp.process import run as run_sipp

#: Requests voipqa's own UAC (sipp/uac_call.xml, uac_cancel.xml) sends to a UAS scenario.
PEER_UAC_SENDS = frozenset({"INVITE", "ACK", "BYE", "CANCEL"})
#: Initial requests a UAC scenario may start with, and which peer takes them.
UAC_INITIAL = {"INVITE": ("platform", "carrier"), "REGISTER": ("platform",), "OPTIONS": ("carrier",)}
#: In-dialog requests the platform relays and the mock carrier answers.
IN_DIALOG_OK = frozenset({"ACK", "BYE", "CANCEL", "INVITE", "INFO", "OPTIONS"})
_PCAP_ATTRS = ("play_pcap_audio", "play_pcap_video")
_KEYWORD_RE = re.compile(r"\[([A-Za-z_][A-Za-z0-9_-]*)")
_FIELD_RE = re.compile(r"\[field(\d+)")


class ScenarioError(BadInput):
    """A scenario voipqa cannot run: the message is one line naming the file and why."""

    ROBOT_SUPPRESS_NAME = True  # Robot shows the line alone, not "ScenarioError: ..."


@dataclass(frozen=True)
class ScenarioInfo:
    """What a scenario is and what it needs from voipqa, read from its XML alone."""

    path: Path
    name: str
    role: str                         # uac | uas | 3pcc
    initial_method: str | None        # the first request sent (uac) or awaited (uas)
    keywords: frozenset[str]
    fields: tuple[int, ...]           # the [fieldN] indexes used (the -inf CSV columns)
    authentication: bool              # uses [authentication] (needs -au/-ap)
    three_pcc: bool                   # sendCmd/recvCmd: needs a -3pcc twin SIPp
    pcap_files: tuple[Path, ...]      # play_pcap_* files, resolved from the scenario's folder
    sends: tuple[str, ...]            # request methods sent, in order
    receives: tuple[str, ...]         # request methods awaited (not optional), in order
    responses: tuple[int, ...]        # response codes awaited (not optional), in order
    pause_s: float = 0.0              # the sum of its <pause milliseconds>: how long it runs at least
    stops_itself: bool = False        # <exec int_cmd="stop_now"/>: SIPp exits 97 by design

    @property
    def relative_pcaps(self) -> bool:
        """SIPp opens play_pcap_* paths from its working directory, not the scenario's."""
        return any(not Path(p).is_absolute() for p in self._raw_pcaps())

    def _raw_pcaps(self) -> list[str]:
        text = self.path.read_text("latin-1")
        return re.findall(r'play_pcap_(?:audio|video)\s*=\s*"([^"]*)"', text)


def inspect_scenario(path: str | Path) -> ScenarioInfo:
    """Parse ``path`` and say what it is; ScenarioError (one line, file:line:col) when it is
    not a scenario SIPp can load or its media files are missing."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror}") from None
    root = _parse(path, data)
    if root.tag != "scenario":
        raise ScenarioError(f"{path}:1:1: root element is <{root.tag}>, not <scenario>")
    return _describe(path, root, data.decode("latin-1"))


def _parse(path: Path, data: bytes) -> ET.Element:
    """Strict parse; the error names file:line:col (column from 1) and, for a '<' inside an
    attribute value, says what SIPp would do with it: read the file only up to there."""
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        line, col = exc.position
        where = f"{path}:{line}:{col + 1}"
        reason = str(exc).split(":")[0]
    try:
        ET.fromstring(_escape_attribute_lt(data.decode("latin-1")).encode("latin-1"))
    except ET.ParseError:
        raise ScenarioError(f"{where}: invalid XML: {reason}") from None
    raise ScenarioError(f"{where}: invalid XML: '<' inside an attribute value (write &lt;); "
                        "SIPp 3.6.1 stops reading the scenario there and runs it cut short")


def _escape_attribute_lt(text: str) -> str:
    """Replace '<' inside quoted attribute values by '&lt;' (CDATA and comments untouched)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        for start, end in (("<![CDATA[", "]]>"), ("<!--", "-->")):
            if text.startswith(start, i):
                j = text.find(end, i)
                j = n if j < 0 else j + len(end)
                out.append(text[i:j])
                i = j
                break
        else:
            if text[i] != "<":
                out.append(text[i])
                i += 1
                continue
            i = _copy_tag(text, i, out)
    return "".join(out)


def _copy_tag(text: str, i: int, out: list[str]) -> int:
    """Copy one tag from ``text[i] == '<'`` to its closing '>', escaping quoted '<'."""
    out.append("<")
    quote = None
    for j in range(i + 1, len(text)):
        c = text[j]
        if quote is not None:
            if c == quote:
                quote = None
            elif c == "<":
                c = "&lt;"
        elif c in "\"'":
            quote = c
        elif c == ">":
            out.append(c)
            return j + 1
        out.append(c)
    return len(text)


def _first_method(message: str) -> str | None:
    """The method of a message template (None for a response: ``SIP/2.0 200 OK``)."""
    for line in message.splitlines():
        token = line.strip().split(" ", 1)[0]
        if token:
            return None if token.startswith(("SIP/", "[")) else token.upper()
    return None


def _describe(path: Path, root: ET.Element, text: str) -> ScenarioInfo:
    role, initial = None, None
    sends: list[str] = []
    receives: list[str] = []
    responses: list[int] = []
    three_pcc = False
    for el in root:
        if el.tag in ("sendCmd", "recvCmd"):
            three_pcc = True
            role = role or "3pcc"
        elif el.tag == "send":
            method = _first_method(el.text or "")
            if method:
                sends.append(method)
            if role is None:
                role, initial = "uac", method
        elif el.tag == "recv":
            optional = el.get("optional", "false").lower() == "true"
            if el.get("request") and not optional:
                receives.append(el.get("request", "").upper())
            if el.get("response") and not optional and el.get("response", "").isdigit():
                responses.append(int(el.get("response", "0")))
            if role is None:
                role, initial = "uas", (el.get("request") or "").upper() or None
    pcaps = tuple((path.parent / p).resolve() for el in root.iter("exec") for a in _PCAP_ATTRS
                  if (p := el.get(a)))
    for pcap in pcaps:
        if not pcap.is_file():
            raise ScenarioError(f"{path}: media file {pcap} (play_pcap_*, from the scenario's folder) not found")
    return ScenarioInfo(
        path=path, name=root.get("name") or path.stem, role=role or "uac", initial_method=initial,
        keywords=frozenset(_KEYWORD_RE.findall(text)),
        fields=tuple(sorted({int(n) for n in _FIELD_RE.findall(text)})),
        authentication="[authentication" in text, three_pcc=three_pcc, pcap_files=pcaps,
        sends=tuple(sends), receives=tuple(receives), responses=tuple(responses),
        pause_s=sum(int(el.get("milliseconds", "0")) for el in root.iter("pause")
                    if el.get("milliseconds", "").isdigit()) / 1000.0,
        stops_itself=any(el.get("int_cmd") in ("stop_now", "stop_gracefully") for el in root.iter("exec")))


# -- which peer ---------------------------------------------------------------------------------
def choose_peer(info: ScenarioInfo, wanted: str = "auto") -> str:
    """``platform`` (the environment's SIP target), ``carrier`` (its mock carrier, a UAS) or
    ``uac`` (voipqa's own SIPp UAC calling the scenario); ScenarioError saying which peer the
    scenario needs when voipqa provides none."""
    where = str(info.path)
    if info.three_pcc:
        raise ScenarioError(f"{where}: a 3PCC scenario (sendCmd/recvCmd): it needs its -3pcc twin SIPp, "
                            "which voipqa does not provide")
    if info.role == "uas":
        return _uas_peer(info, wanted)
    method = info.initial_method or "?"
    peers = UAC_INITIAL.get(method)
    if peers is None:
        raise ScenarioError(f"{where}: a UAC that sends {method}: it needs a peer that accepts {method}; "
                            "voipqa's platform takes INVITE and REGISTER, its carrier INVITE and OPTIONS")
    odd = sorted(set(info.sends) - IN_DIALOG_OK - {method})
    if odd:
        raise ScenarioError(f"{where}: sends {', '.join(odd)} in the call: it needs a peer that answers "
                            f"{', '.join(odd)}, which voipqa's platform and carrier do not")
    if wanted != "auto":
        if wanted not in peers:
            raise ScenarioError(f"{where}: peer {wanted} does not take {method} (use {' or '.join(peers)})")
        return wanted
    # digest auth (or REGISTER) goes through the platform; a scenario without credentials
    # would only collect 407s there, so it calls the carrier (a plain UAS) directly
    return "platform" if info.authentication or info.fields or method == "REGISTER" else peers[-1]


def _uas_peer(info: ScenarioInfo, wanted: str) -> str:
    where = str(info.path)
    if info.initial_method != "INVITE":
        raise ScenarioError(f"{where}: a UAS that waits for {info.initial_method}: it needs a UAC that sends "
                            f"{info.initial_method}; voipqa's own UAC places INVITE calls only")
    extra = sorted(set(info.receives) - PEER_UAC_SENDS)
    if extra:
        raise ScenarioError(f"{where}: a UAS that waits for {', '.join(extra)}: it needs a UAC that sends "
                            f"{', '.join(extra)}, which voipqa's own UAC does not")
    if info.receives.count("INVITE") > 1:
        raise ScenarioError(f"{where}: a UAS that waits for a re-INVITE: it needs a UAC that sends one "
                            "(e.g. its own UAC pair), which voipqa's own UAC does not")
    if wanted not in ("auto", "uac"):
        raise ScenarioError(f"{where}: a UAS scenario: its peer is voipqa's own UAC, not {wanted}")
    return "uac"


# -- running ------------------------------------------------------------------------------------
@dataclass
class ScenarioRun:
    """The SIPp runs of one scenario: the user's, and voipqa's own peer UAC for a UAS."""

    info: ScenarioInfo
    peer: str
    remote: str | None
    scenario: SippResult
    peer_uac: SippResult | None = None


@dataclass(frozen=True)
class Account:
    """Who the scenario calls as, and what (the -inf row is built from these)."""

    user: str
    password: str
    domain: str
    service: str


def inf_row(fields_template: str, account: Account) -> str:
    """One -inf row from a ``;``-separated template with {user} {password} {domain} {service}."""
    try:
        return fields_template.format(user=account.user, password=account.password,
                                      domain=account.domain, service=account.service)
    except (KeyError, IndexError) as exc:
        raise BadInput(f"fields: unknown placeholder {exc} "
                       "(use {user} {password} {domain} {service})") from None


def runnable_copy(info: ScenarioInfo, workdir: Path) -> Path:
    """The scenario path SIPp is given: the file itself, or (when it plays pcaps by relative
    path, which SIPp opens from its working directory) a copy with those paths made absolute."""
    if not info.pcap_files or not info.relative_pcaps:
        return info.path.resolve()
    text = info.path.read_bytes().decode("latin-1")

    def absolute(m: re.Match[str]) -> str:
        target = Path(m.group(2))
        return f'{m.group(1)}"{target if target.is_absolute() else (info.path.parent / target).resolve()}"'

    copy = workdir / f"{info.path.stem}.run.xml"
    copy.write_bytes(re.sub(r'(play_pcap_(?:audio|video)\s*=\s*)"([^"]*)"', absolute, text).encode("latin-1"))
    return copy


async def run_scenario(info: ScenarioInfo, workdir: Path, *, peer: str, remote: str, account: Account,
                       fields_template: str = "{user};{user};{password}", timeout_s: float = 30.0,
                       transport: str = "udp") -> ScenarioRun:
    """Run the scenario against ``remote`` (uac) or under voipqa's own UAC (uas), one call,
    bounded by ``timeout_s``; the -inf file (it holds the password) is deleted afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    inf = workdir / "accounts.csv" if info.fields else None
    if inf is not None:
        inf.write_text(f"SEQUENTIAL\n{inf_row(fields_template, account)}\n")
    try:
        def agent() -> Agent:
            return Agent(scenario=runnable_copy(info, workdir), remote=None if peer == "uac" else remote,
                         service=account.service, auth_user=account.user, auth_password=account.password,
                         calls=1, timeout_s=timeout_s, inf=inf, transport=transport)

        if peer == "uac":
            return await _run_with_peer_uac(info, agent(), workdir, account, timeout_s, transport)
        result = await run_sipp(agent(), workdir / "scenario")
        if not result.calls and any("bind" in line.lower() for line in result.errors):
            # another process took a port between allocation and SIPp's bind: once more, new ports
            result = await run_sipp(agent(), workdir / "scenario")
        return ScenarioRun(info, peer, remote, result)
    finally:
        if inf is not None:
            inf.unlink(missing_ok=True)


async def _run_with_peer_uac(info: ScenarioInfo, uas: Agent, workdir: Path, account: Account,
                             timeout_s: float, transport: str) -> ScenarioRun:
    """The user's UAS listens; voipqa's UAC (uac_cancel when the UAS awaits a CANCEL) calls it."""
    cancel = "CANCEL" in info.receives
    uac = Agent(scenario="uac_cancel" if cancel else "uac_call", remote=uas.address, service=account.service,
                keys={"from_user": account.user, "domain": uas.address} | ({"cancel_ms": "200"} if cancel else {}),
                calls=1, call_duration_ms=500, timeout_s=timeout_s, transport=transport)
    uas_task = asyncio.ensure_future(run_sipp(uas, workdir / "scenario"))
    await asyncio.sleep(0.3)  # let the UAS bind before the INVITE
    try:
        uac_result = await run_sipp(uac, workdir / "peer-uac")
    except BaseException:
        uas_task.cancel()
        raise
    return ScenarioRun(info, "uac", uas.address, await uas_task, peer_uac=uac_result)
