"""Validate the generated FreeSWITCH configuration without a FreeSWITCH (sans-I/O).

FreeSWITCH cannot run on every machine the tests run on, so a rendering that FreeSWITCH
would load but route differently, or refuse to load, would only show up in the lab. This
module reads the rendered files (``{relative path: text}``, as :func:`qa.carrier.freeswitch.render`
returns them) and the number plan, and returns one line per problem, naming the file:

- **routing**: every number derived from the plan (each prefix, prefix + digits, just
  outside each prefix, the ``+`` form the plan ignores, a ``00`` form) on every carrier name
  of the plan and an unknown one is hunted through the dialplan the way mod_dialplan_xml
  does (extensions in document order, the first whose conditions all match wins, PCRE
  searched unanchored, ``transfer`` re-enters the context) and must land on the extension of
  the route :meth:`NumberPlan.lookup` picks. Expressions must stay in the PCRE subset Python
  ``re`` evaluates identically, or the comparison would prove nothing.
- **modules**: every ``<load module>`` is a FreeSWITCH 1.10 module; every dialplan
  application, ``*_stream://`` source and codec (profile prefs, ``absolute_codec_string``)
  is provided by the core or a loaded module.
- **shape**: roots, elements and attributes as FreeSWITCH's loaders read them; an element
  or attribute they would ignore is reported (ignored silently is how typos survive).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from qa.carrier.freeswitch import CONTEXT, extension_name
from qa.carrier.plan import NumberPlan

__all__ = ["FS_110_MODULES", "check_files", "hunt", "numbers_to_try", "parse_extensions", "regex_problem"]

CORE = "core"
UNKNOWN_CARRIER = "voipqa-unknown-carrier"
MAX_ROUTING_LINES = 20

#: Every module of FreeSWITCH 1.10's build/modules.conf.in (signalwire/freeswitch, built by
#: default or commented out there): a name outside this set cannot be loaded by a stock build.
FS_110_MODULES = frozenset({
    "mod_abstraction", "mod_av", "mod_avmd", "mod_bert", "mod_blacklist", "mod_callcenter",
    "mod_cidlookup", "mod_cluechoo", "mod_commands", "mod_conference", "mod_curl", "mod_cv", "mod_db",
    "mod_directory", "mod_distributor", "mod_dptools", "mod_easyroute", "mod_enum", "mod_esf",
    "mod_esl", "mod_expr", "mod_fifo", "mod_fsk", "mod_fsv", "mod_hash", "mod_hiredis", "mod_httapi",
    "mod_http_cache", "mod_ladspa", "mod_lcr", "mod_memcache", "mod_mongo", "mod_mp4", "mod_mp4v2",
    "mod_nibblebill", "mod_oreka", "mod_osp", "mod_prefix", "mod_rad_auth", "mod_redis", "mod_rss",
    "mod_signalwire", "mod_sms", "mod_sms_flowroute", "mod_snapshot", "mod_snom", "mod_sonar",
    "mod_soundtouch", "mod_spandsp", "mod_spy", "mod_stress", "mod_test", "mod_translate",
    "mod_valet_parking", "mod_video_filter", "mod_vmd", "mod_voicemail", "mod_voicemail_ivr",
    "mod_cepstral", "mod_flite", "mod_pocketsphinx", "mod_tts_commandline", "mod_unimrcp", "mod_amr",
    "mod_amrwb", "mod_b64", "mod_bv", "mod_clearmode", "mod_codec2", "mod_com_g729", "mod_dahdi_codec",
    "mod_g723_1", "mod_g729", "mod_h26x", "mod_ilbc", "mod_isac", "mod_mp4v", "mod_opus",
    "mod_sangoma_codec", "mod_silk", "mod_siren", "mod_theora", "mod_mariadb", "mod_pgsql",
    "mod_dialplan_asterisk", "mod_dialplan_directory", "mod_dialplan_xml", "mod_ldap", "mod_alsa",
    "mod_gsmopen", "mod_h323", "mod_khomp", "mod_loopback", "mod_opal", "mod_portaudio", "mod_rtc",
    "mod_rtmp", "mod_skinny", "mod_sofia", "mod_verto", "mod_amqp", "mod_cdr_csv", "mod_cdr_mongodb",
    "mod_cdr_pg_csv", "mod_cdr_sqlite", "mod_erlang_event", "mod_event_multicast", "mod_event_socket",
    "mod_fail2ban", "mod_format_cdr", "mod_json_cdr", "mod_radius_cdr", "mod_odbc_cdr", "mod_kazoo",
    "mod_rayo", "mod_smpp", "mod_snmp", "mod_event_zmq", "mod_imagick", "mod_local_stream",
    "mod_native_file", "mod_png", "mod_portaudio_stream", "mod_shell_stream", "mod_shout",
    "mod_sndfile", "mod_ssml", "mod_tone_stream", "mod_vlc", "mod_opusfile", "mod_basic", "mod_java",
    "mod_lua", "mod_managed", "mod_perl", "mod_python", "mod_python3", "mod_v8", "mod_yaml",
    "mod_console", "mod_graylog2", "mod_logfile", "mod_syslog", "mod_raven", "mod_say_de", "mod_say_en",
    "mod_say_es", "mod_say_es_ar", "mod_say_fa", "mod_say_fr", "mod_say_he", "mod_say_hr", "mod_say_hu",
    "mod_say_it", "mod_say_ja", "mod_say_nl", "mod_say_pl", "mod_say_pt", "mod_say_ru", "mod_say_sv",
    "mod_say_th", "mod_say_zh", "mod_posix_timer", "mod_timerfd", "mod_xml_cdr", "mod_xml_curl",
    "mod_xml_ldap", "mod_xml_radius", "mod_xml_rpc", "mod_xml_scgi",
})

#: Dialplan applications -> module (SWITCH_ADD_APP in each module's load function).
_DPTOOLS_APPS = (
    "answer", "pre_answer", "ring_ready", "respond", "park", "sleep", "hangup", "set", "unset",
    "export", "multiset", "set_global", "echo", "read", "play_and_get_digits", "start_dtmf",
    "stop_dtmf", "start_dtmf_generate", "stop_dtmf_generate", "send_dtmf", "flush_dtmf", "sched_hangup",
    "sched_transfer", "sched_broadcast", "sched_cancel", "playback", "endless_playback",
    "loop_playback", "gentones", "transfer", "bridge", "log", "info", "event", "record",
    "record_session", "stop_record_session", "redirect", "deflect", "displace_session",
    "wait_for_silence", "tone_detect", "stop_tone_detect", "say", "phrase", "limit", "privacy",
    "eavesdrop", "three_way", "bind_meta_app",
)
_APP_MODULE: dict[str, str] = {app: "mod_dptools" for app in _DPTOOLS_APPS} | {
    "conference": "mod_conference", "voicemail": "mod_voicemail", "fifo": "mod_fifo", "hash": "mod_hash",
    "db": "mod_db", "lua": "mod_lua", "spandsp_start_dtmf": "mod_spandsp", "txfax": "mod_spandsp",
    "rxfax": "mod_spandsp", "esf_page_group": "mod_esf"}

#: ``scheme://`` sources in application data -> module (mod_tone_stream registers both
#: ``tone_stream`` and ``silence_stream`` as file interfaces, see its load function).
_STREAM_MODULE = {"tone_stream": "mod_tone_stream", "silence_stream": "mod_tone_stream",
                  "local_stream": "mod_local_stream", "file_string": CORE}

#: FreeSWITCH codec (IANA) name, upper case -> modules providing it. Sources, FreeSWITCH 1.10
#: tree: PCMU/PCMA/L16 src/switch_pcm.c and SPEEX src/switch_speex.c (core, no module; there is
#: no mod_speex in 1.10's modules.conf.in); G722, GSM, G726-*, DVI4 and LPC are registered by
#: mod_spandsp (src/mod/applications/mod_spandsp/mod_spandsp_codecs.c; 1.10 ships neither
#: mod_g722 nor mod_gsm); the rest by the module named after them.
_CODEC_MODULES: dict[str, tuple[str, ...]] = {
    "PCMU": (CORE,), "PCMA": (CORE,), "L16": (CORE,), "SPEEX": (CORE,),
    "G722": ("mod_spandsp",), "GSM": ("mod_spandsp",), "DVI4": ("mod_spandsp",), "LPC": ("mod_spandsp",),
    "G726-16": ("mod_spandsp",), "G726-24": ("mod_spandsp",), "G726-32": ("mod_spandsp",),
    "G726-40": ("mod_spandsp",), "OPUS": ("mod_opus",), "G729": ("mod_g729", "mod_com_g729"),
    "G723": ("mod_g723_1",), "AMR": ("mod_amr",), "AMR-WB": ("mod_amrwb",), "ILBC": ("mod_ilbc",),
    "BV16": ("mod_bv",), "BV32": ("mod_bv",), "SILK": ("mod_silk",), "CODEC2": ("mod_codec2",),
    "G7221": ("mod_siren",), "ISAC": ("mod_isac",), "H264": ("mod_h26x",), "H263": ("mod_h26x",),
}

#: mod_json_cdr's load function: the <param name> it reads from json_cdr.conf <settings>.
_JSON_CDR_PARAMS = frozenset({
    "cred", "url", "log-http-and-disk", "delay", "log-b-leg", "prefix-a-leg", "disable-100-continue",
    "encode", "retries", "rotate", "log-dir", "err-log-dir", "enable-cacert-check", "ssl-cert-path",
    "ssl-key-path", "ssl-key-password", "ssl-version", "ssl-cacert-file", "enable-ssl-verifyhost",
    "auth-scheme", "encode-values", "queue-capacity", "timeout",
})
_PRE_PROCESS_CMDS = frozenset({"set", "exec-set", "env-set", "stun-set", "include", "exec",
                               "include-file", "comment"})


# ---------------------------------------------------------------- shapes

@dataclass(frozen=True)
class Shape:
    """One element as FreeSWITCH reads it: its attributes and the children it looks at."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    children: Mapping[str, Shape] = field(default_factory=dict)


_ACTION = Shape(("application",), ("data", "inline"))
_DIALPLAN = Shape(children={"context": Shape(("name",), children={"extension": Shape(
    ("name",), ("continue",), {"condition": Shape(("field", "expression"), ("break",),
                                                  {"action": _ACTION})})})})
_PARAM = Shape(("name", "value"))
_PROFILE = Shape(("name",), children={"aliases": Shape(children={"alias": Shape(("name",))}),
                                      "gateways": Shape(), "domains": Shape(children={
                                          "domain": Shape(("name",), ("alias", "parse"))}),
                                      "settings": Shape(children={"param": _PARAM})})
_SETTINGS_CONF = Shape(("name",), ("description",), {"settings": Shape(children={"param": _PARAM})})
_MODULES_CONF = Shape(("name",), ("description",), {"modules": Shape(children={
    "load": Shape(("module",), ("critical",))})})
_VARS = Shape(children={"X-PRE-PROCESS": Shape(("cmd", "data"))})

#: file -> (root tag -> shape); a profile may stand alone (as FreeSWITCH's vanilla
#: sip_profiles/*.xml do) or sit in <include>, which the preprocessor strips.
_FILE_SHAPES: dict[str, dict[str, Shape]] = {
    "sip_profiles/voipqa.xml": {"profile": _PROFILE, "include": Shape(children={"profile": _PROFILE})},
    "dialplan/voipqa.xml": {"include": _DIALPLAN},
    "vars_voipqa.xml": {"include": _VARS},
    "autoload_configs/json_cdr.conf.xml": {"configuration": _SETTINGS_CONF},
    "autoload_configs/modules.conf.xml": {"configuration": _MODULES_CONF},
}
_CONF_NAMES = {"autoload_configs/json_cdr.conf.xml": "json_cdr.conf",
               "autoload_configs/modules.conf.xml": "modules.conf"}


def _shape_problems(node: ET.Element, shape: Shape, where: str) -> list[str]:
    """Attributes missing/unknown and children unknown, recursively, as ``where`` lines."""
    out = []
    label = f"<{node.tag}" + (f' name="{node.get("name")}"' if node.get("name") else "") + ">"
    for attr in shape.required:
        if not node.get(attr):
            out.append(f"{where}: {label} has no {attr}= (FreeSWITCH needs it)")
    for attr in sorted(set(node.attrib) - set(shape.required) - set(shape.optional)):
        out.append(f"{where}: {label}: attribute {attr}= is not one FreeSWITCH reads here")
    for child in node:
        if not isinstance(child.tag, str):       # comments
            continue
        if child.tag in shape.children:
            out += _shape_problems(child, shape.children[child.tag], where)
        else:
            out.append(f"{where}: {label}: element <{child.tag}> is not one FreeSWITCH reads here")
    return out


# ---------------------------------------------------------------- regexes

_ALLOWED_ESCAPE = re.compile(r"\\(d|[^A-Za-z0-9])")
_QUANTIFIER = re.compile(r"\{\d+(,\d*)?\}")


def regex_problem(expression: str) -> str | None:
    """Why ``expression`` may not mean the same in PCRE and Python ``re`` (None: it does).

    Allowed: literals, ``. ^ $ | * + ? {n,m}``, groups ``(...)``/``(?:...)``, ``\\d``, escaped
    punctuation and ``[...]`` classes of those. Not: ``\\w \\s \\b`` (Unicode in Python),
    backreferences, lookarounds, possessive quantifiers, POSIX classes, inline flags."""
    i = 0
    while i < len(expression):
        c = expression[i]
        if c == "\\":
            m = _ALLOWED_ESCAPE.match(expression, i)
            if not m:
                return f"uses {expression[i:i + 2]}"
            i = m.end()
            continue
        if c == "[":
            end = expression.find("]", i + 2)
            body = expression[i + 1:end] if end > 0 else ""
            if end < 0 or "[:" in body or re.sub(r"\\(d|[^A-Za-z0-9])", "", body).count("\\"):
                return f"uses the class {expression[i:end + 1] or expression[i:]}"
            i = end + 1
            continue
        if c == "(" and expression.startswith("(?", i) and not expression.startswith("(?:", i):
            return f"uses {expression[i:i + 3]}"
        if c in "*+?}" and expression[i + 1:i + 2] == "+":
            return f"uses the possessive {c}+"
        if c == "{":
            m = _QUANTIFIER.match(expression, i)
            if not m:
                return "uses a { that is not a {n,m} quantifier"
            i = m.end()
            continue
        i += 1
    try:
        re.compile(expression, re.ASCII)
    except re.error as exc:
        return f"does not compile: {exc}"
    return None


# ---------------------------------------------------------------- the dialplan as data

@dataclass
class Extension:
    name: str
    conditions: list[tuple[str, str]]
    actions: list[tuple[str, str]]
    continues: bool = False


def parse_extensions(root: ET.Element, context: str = CONTEXT) -> list[Extension]:
    """The extensions of ``context`` in document order."""
    exts = []
    for ctx in root.iter("context"):
        if ctx.get("name") != context:
            continue
        for ext in ctx.findall("extension"):
            conds = [(c.get("field", ""), c.get("expression", "")) for c in ext.findall("condition")]
            acts = [(a.get("application", ""), a.get("data", "")) for a in ext.iter("action")]
            exts.append(Extension(ext.get("name", ""), conds, acts, ext.get("continue") == "true"))
    return exts


def hunt(exts: list[Extension], number: str, variables: Mapping[str, str]) -> Extension | None:
    """The extension mod_dialplan_xml executes for ``number``, following ``transfer`` actions
    into the same context (capture groups ``$1``..), like FreeSWITCH's routing state."""
    for _ in range(10):                                   # FreeSWITCH also stops transfer loops
        picked, groups = None, ()
        for ext in exts:
            matched = _conditions_match(ext, number, variables)
            if matched is not None and not ext.continues:
                picked, groups = ext, matched
                break
        if picked is None:
            return None
        target = next((d for a, d in picked.actions if a == "transfer"), None)
        if target is None:
            return picked
        dest, *rest = target.split()
        if rest not in ([], ["XML"], ["XML", CONTEXT]):
            return picked                                  # leaves the context: not modelled
        number = re.sub(r"\$(\d)", lambda m, g=groups: (g[int(m.group(1)) - 1] or "")
                        if 0 < int(m.group(1)) <= len(g) else "", dest)
    return None


def _conditions_match(ext: Extension, number: str, variables: Mapping[str, str]) -> tuple | None:
    """The destination_number match groups when every condition matches (break=on-false)."""
    groups: tuple = ()
    for fld, expression in ext.conditions:
        value = number if fld == "destination_number" else variables.get(fld)
        if value is None:
            return None
        m = re.search(expression, value, re.ASCII)
        if m is None:
            return None
        if fld == "destination_number":
            groups = m.groups()
    return groups


# ---------------------------------------------------------------- the checks

def check_files(files: Mapping[str, str], plan: NumberPlan, root: str = "") -> list[str]:
    """Every problem of the rendered ``files`` for ``plan``, one line each naming the file
    (``root/relative path`` when ``root`` is given). Empty when FreeSWITCH would load them
    and route every tested number like the native carrier."""
    def where(rel: str) -> str:
        return f"{root.rstrip('/')}/{rel}" if root else rel

    problems: list[str] = []
    docs: dict[str, ET.Element] = {}
    for rel, shapes in _FILE_SHAPES.items():
        if rel not in files:
            problems.append(f"{where(rel)}: missing")
            continue
        try:
            doc = ET.fromstring(files[rel])
        except ET.ParseError as exc:
            problems.append(f"{where(rel)}: not well-formed XML: {exc}")
            continue
        docs[rel] = doc
        if doc.tag not in shapes:
            problems.append(f"{where(rel)}: root <{doc.tag}>, FreeSWITCH expects "
                            + " or ".join(f"<{t}>" for t in shapes))
            continue
        problems += _shape_problems(doc, shapes[doc.tag], where(rel))
        if rel in _CONF_NAMES and doc.get("name") != _CONF_NAMES[rel]:
            problems.append(f'{where(rel)}: <configuration name="{doc.get("name")}">, FreeSWITCH looks for '
                            f'name="{_CONF_NAMES[rel]}"')
    problems += _vars_problems(docs.get("vars_voipqa.xml"), where("vars_voipqa.xml"))
    problems += _json_cdr_problems(docs.get("autoload_configs/json_cdr.conf.xml"),
                                   where("autoload_configs/json_cdr.conf.xml"))
    problems += _module_problems(docs, where)
    dialplan = docs.get("dialplan/voipqa.xml")
    if dialplan is not None:
        bad_regex = _regex_problems(dialplan, where("dialplan/voipqa.xml"))
        problems += bad_regex
        if not bad_regex:
            variables = _variables(docs.get("vars_voipqa.xml"))
            problems += [f"{where('dialplan/voipqa.xml')}: condition field {fld} is a variable "
                         f"{where('vars_voipqa.xml')} does not set (FreeSWITCH expands it to '')"
                         for fld in sorted({c.get("field", "") for c in dialplan.iter("condition")})
                         if fld.startswith("${") and fld not in variables]
            problems += _routing_problems(parse_extensions(dialplan), plan, variables,
                                          where("dialplan/voipqa.xml"))
    return problems


def _vars_problems(doc: ET.Element | None, where: str) -> list[str]:
    out = []
    for pre in [] if doc is None else doc.iter("X-PRE-PROCESS"):
        cmd, data = pre.get("cmd", ""), pre.get("data", "")
        if cmd not in _PRE_PROCESS_CMDS:
            out.append(f'{where}: X-PRE-PROCESS cmd="{cmd}" is not a preprocessor command')
        elif cmd == "set" and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", data):
            out.append(f'{where}: X-PRE-PROCESS set data="{data}" is not name=value')
    return out


def _variables(doc: ET.Element | None) -> dict[str, str]:
    """``${name}`` -> value of every global the vars file sets."""
    out = {}
    for pre in [] if doc is None else doc.iter("X-PRE-PROCESS"):
        if pre.get("cmd") == "set" and "=" in pre.get("data", ""):
            name, value = pre.get("data", "").split("=", 1)
            out["${" + name + "}"] = value
    return out


def _json_cdr_problems(doc: ET.Element | None, where: str) -> list[str]:
    return [f"{where}: mod_json_cdr has no param {p.get('name')!r} (it would be ignored)"
            for p in ([] if doc is None else doc.iter("param")) if p.get("name") not in _JSON_CDR_PARAMS]


def _module_problems(docs: Mapping[str, ET.Element], where: Callable[[str], str]) -> list[str]:
    """Loaded modules exist in 1.10; what the other files use is provided by one of them."""
    rel_mods = "autoload_configs/modules.conf.xml"
    loads = [m.get("module", "") for m in docs[rel_mods].iter("load")] if rel_mods in docs else []
    out = [f"{where(rel_mods)}: {m} is not a FreeSWITCH 1.10 module (build/modules.conf.in)"
           for m in loads if m not in FS_110_MODULES]
    out += [f"{where(rel_mods)}: {m} is loaded twice" for i, m in enumerate(loads) if m in loads[:i]]
    loaded = set(loads) | {CORE}

    def need(rel: str, module: str, what: str) -> None:
        if module not in loaded:
            out.append(f"{where(rel)}: {what} needs {module}, which modules.conf.xml does not load")

    for rel, module in (("sip_profiles/voipqa.xml", "mod_sofia"), ("dialplan/voipqa.xml", "mod_dialplan_xml"),
                        ("autoload_configs/json_cdr.conf.xml", "mod_json_cdr")):
        if rel in docs:
            need(rel, module, "this file")
    dialplan = docs.get("dialplan/voipqa.xml")
    codec_uses: list[tuple[str, str]] = []
    for action in [] if dialplan is None else dialplan.iter("action"):
        app, data = action.get("application", ""), action.get("data", "")
        if app not in _APP_MODULE:
            out.append(f"{where('dialplan/voipqa.xml')}: application {app!r} is not one this check knows "
                       "the module of (qa/carrier/freeswitch_check.py _APP_MODULE)")
        else:
            need("dialplan/voipqa.xml", _APP_MODULE[app], f"application {app}")
        for scheme in re.findall(r"([a-z_]+)://", data):
            if scheme not in _STREAM_MODULE:
                out.append(f"{where('dialplan/voipqa.xml')}: {app} {scheme}:// is not a source this check knows")
            else:
                need("dialplan/voipqa.xml", _STREAM_MODULE[scheme], f"{app} {scheme}://")
        if app in ("set", "export") and data.startswith("absolute_codec_string="):
            codec_uses += [("dialplan/voipqa.xml", c) for c in data.split("=", 1)[1].split(",")]
    profile = docs.get("sip_profiles/voipqa.xml")
    for param in [] if profile is None else profile.iter("param"):
        if param.get("name") in ("inbound-codec-prefs", "outbound-codec-prefs"):
            codec_uses += [("sip_profiles/voipqa.xml", c) for c in param.get("value", "").split(",")]
    for rel, spec in codec_uses:
        name = spec.strip().split("@")[0]
        modules = _CODEC_MODULES.get(name.upper())
        if modules is None:
            out.append(f"{where(rel)}: codec {name!r} is provided by no FreeSWITCH 1.10 module this check knows")
        elif not loaded & set(modules):
            need(rel, " or ".join(modules), f"codec {name}")
    return list(dict.fromkeys(out))


def _regex_problems(dialplan: ET.Element, where: str) -> list[str]:
    out = []
    for ext in dialplan.iter("extension"):
        for cond in ext.findall("condition"):
            expression = cond.get("expression", "")
            why = regex_problem(expression)
            if why:
                out.append(f"{where}: extension {ext.get('name')}: expression '{expression}' {why}, outside the "
                           "PCRE subset Python re evaluates the same (literals, anchors, \\d, classes, groups)")
            fld = cond.get("field", "")
            if fld != "destination_number" and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", fld):
                out.append(f"{where}: extension {ext.get('name')}: condition field {fld!r} is not modelled by this "
                           "check (destination_number or ${variable})")
    return out


def numbers_to_try(plan: NumberPlan) -> list[str]:
    """Numbers derived from the plan: each prefix, longer, just outside, '+' and '00' forms."""
    numbers: dict[str, None] = {}
    for route in plan.routes:
        p = route.prefix
        other_last = str((int(p[-1]) + 1) % 10)
        for n in (p, p + "0", p + "12345", p[:-1], p[:-1] + other_last, p[:-1] + other_last + "0"):
            for form in (n, "+" + n, "00" + n):
                if n:
                    numbers.setdefault(form)
    numbers.setdefault("9")
    return list(numbers)


def _routing_problems(exts: list[Extension], plan: NumberPlan, variables: Mapping[str, str],
                      where: str) -> list[str]:
    """Numbers on which FreeSWITCH's pick differs from :meth:`NumberPlan.lookup`'s route; one
    line per number and outcome, naming the carriers it happens on."""
    named = {c for r in plan.routes for c in r.carriers} | {plan.carrier, variables.get("${voipqa_carrier}", "")}
    carriers = [*sorted(named - {""}), UNKNOWN_CARRIER]
    differ: dict[tuple[str, str, str], list[str]] = {}
    for number in numbers_to_try(plan):
        for carrier in carriers:
            route = plan.lookup(number, carrier)
            want = extension_name(route) if route else "voipqa-no-route"
            got = hunt(exts, number, {**variables, "${voipqa_carrier}": carrier})
            if got is None or got.name != want:
                native = f"route {route.prefix} ({route.name})" if route else f"no route ({plan.no_route})"
                picked = "no extension" if got is None else f"extension {got.name}"
                differ.setdefault((number, picked, native), []).append(carrier)
    out = [f"{where}: {number} on carrier{'s' if len(names) > 1 else ''} {', '.join(names)}: FreeSWITCH picks "
           f"{picked}, the native carrier {native}" for (number, picked, native), names in differ.items()]
    if len(out) > MAX_ROUTING_LINES:
        more = len(out) - MAX_ROUTING_LINES
        out = [*out[:MAX_ROUTING_LINES], f"{where}: ... and {more} more numbers routed differently"]
    return out
