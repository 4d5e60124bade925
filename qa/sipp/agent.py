"""A SIPp process described as configuration (pysipp-style), turned into an argv list.

An :class:`Agent` never becomes a shell string: :meth:`Agent.argv` returns the list that
``asyncio.create_subprocess_exec`` runs. Every port is given explicitly (SIPp's default
control port 8888 and media port 6000 collide between parallel instances, KAMAILIO-NOTES)
and allocated with :mod:`qa.ports` when not set. Secrets never appear in
:meth:`Agent.describe` or ``repr``.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path

from qa.errors import BadInput
from qa.paths import SIPP_DIR
from qa.ports import AGENT_MEDIA_POOL, allocate_ports, allocate_udp_block

#: Scenarios compiled into SIPp (``-sn NAME``).
BUILTIN_SCENARIOS = frozenset({
    "uac", "uas", "regexp", "branchc", "branchs", "uac_pcap",
    "3pcc-C-A", "3pcc-C-B", "3pcc-A", "3pcc-B",
})

#: voipqa transport name -> SIPp ``-t`` mode
TRANSPORTS = {"udp": "u1", "tcp": "t1", "tcp-per-call": "tn"}

#: The codecs offered when nothing else is asked for.
DEFAULT_CODECS = ("PCMU", "PCMA", "telephone-event")

#: Well-known payload types and rtpmap encodings (RFC 3551) for the SDP keys.
_STATIC_CODECS: dict[str, tuple[int, str]] = {
    "PCMU": (0, "PCMU/8000"), "GSM": (3, "GSM/8000"), "G723": (4, "G723/8000"),
    "PCMA": (8, "PCMA/8000"), "G722": (9, "G722/8000"), "CN": (13, "CN/8000"),
    "G729": (18, "G729/8000"),
}
_DYNAMIC_CODECS: dict[str, tuple[int, str, str | None]] = {
    "telephone-event": (101, "telephone-event/8000", "0-16"),
    "opus": (111, "opus/48000/2", None),
    "iLBC": (97, "iLBC/8000", "mode=30"),
    "speex": (98, "speex/8000", None),
    "G726-32": (2, "G726-32/8000", None),
    "AMR": (96, "AMR/8000", None),
    "AMR-WB": (100, "AMR-WB/16000", None),
}

MASK = "******"
_KEYWORD_RE = re.compile(rb"\[([A-Za-z_][A-Za-z0-9_-]*)\]")
_DIGEST_RE = re.compile(r'(response|nonce|cnonce)\s*=\s*("[^"]*"|[^,\s]+)', re.IGNORECASE)
_SECRET_KEY_RE = re.compile(r"pass|secret|token", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """Hide digest ``response=`` values (and nonces) in a header, log line or argv."""
    return _DIGEST_RE.sub(lambda m: f'{m.group(1)}="{MASK}"', text)


def sdp_keys(codecs: str | list[str] | tuple[str, ...]) -> dict[str, str]:
    """Codec names -> the ``sdp_formats`` / ``sdp_attributes`` keys of the voipqa scenarios.

    ``"PCMU,PCMA,telephone-event"`` -> ``{"sdp_formats": "0 8 101", "sdp_attributes":
    "a=rtpmap:0 PCMU/8000\\r\\n...\\r\\na=fmtp:101 0-16"}``. A name may carry its own
    clock rate (``"G722/8000"``, ``"L16/16000"``); unknown names get dynamic payload
    types from 96 upward.
    """
    names = [c.strip() for c in (codecs.split(",") if isinstance(codecs, str) else codecs) if c.strip()]
    if not names:
        raise BadInput("codecs: at least one codec is needed for the SDP offer")
    formats: list[str] = []
    lines: list[str] = []
    used: set[int] = set()
    next_dynamic = 96

    def dynamic(preferred: int | None) -> int:
        nonlocal next_dynamic
        if preferred is not None and preferred not in used:
            return preferred
        while next_dynamic in used or next_dynamic in reserved:
            next_dynamic += 1
        if next_dynamic > 127:
            raise BadInput("codecs: too many dynamic payload types")
        return next_dynamic

    lookup = {k.lower(): k for k in (*_STATIC_CODECS, *_DYNAMIC_CODECS)}
    # payload types the well-known dynamic codecs asked for will take
    reserved = {_DYNAMIC_CODECS[lookup[n.lower()]][0] for n in names
                if "/" not in n and lookup.get(n.lower()) in _DYNAMIC_CODECS}
    for raw in names:
        name, slash, rate = raw.partition("/")
        canonical = lookup.get(name.lower())
        fmtp = None
        if canonical in _STATIC_CODECS and not slash:
            pt, encoding = _STATIC_CODECS[canonical]
        elif canonical in _DYNAMIC_CODECS and not slash:
            preferred, encoding, fmtp = _DYNAMIC_CODECS[canonical]
            pt = dynamic(preferred)
        elif canonical in _STATIC_CODECS:
            pt, encoding = _STATIC_CODECS[canonical][0], f"{canonical}/{rate}"
        else:
            if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name) or (slash and not re.fullmatch(r"\d+(/\d+)?", rate)):
                raise BadInput(f"codecs: {raw!r} is not a codec name (NAME or NAME/RATE)")
            pt = dynamic(None)
            encoding = f"{name}/{rate or 8000}"
        if pt in used:
            continue
        used.add(pt)
        formats.append(str(pt))
        lines.append(f"a=rtpmap:{pt} {encoding}")
        if fmtp:
            lines.append(f"a=fmtp:{pt} {fmtp}")
    return {"sdp_formats": " ".join(formats), "sdp_attributes": "\r\n".join(lines)}


def _split_hostport(text: str) -> tuple[str, int | None]:
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        return text, None
    if not port.isdigit():
        raise BadInput(f"remote: {text!r} is not host:port")
    return host, int(port)


@dataclass
class Agent:
    """One SIPp process: which scenario, against whom, how many calls, with which keys.

    ``scenario`` is a path to an XML file, the name of a voipqa scenario in ``sipp/``
    (``"uac_call"``, ``"uas_answer"``, ``"uac_register"``) or a SIPp built-in
    (``"uac"``, ``"uas"``, ...). ``remote`` is ``"host:port"`` (absent for a UAS).
    Ports left ``None`` are allocated on first use (:meth:`ensure_ports`).
    """

    scenario: str | Path = "uac_call"
    remote: str | None = None
    local_ip: str = "127.0.0.1"
    transport: str = "udp"
    service: str | None = None
    auth_user: str | None = None
    auth_password: str | None = None
    from_user: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    dtmf: str | None = None
    calls: int | None = 1
    rate: float | None = None
    rate_period_ms: int | None = None
    limit: int | None = None
    call_duration_ms: int | None = None
    timeout_s: float | None = 30.0
    inf: str | Path | None = None
    port: int | None = None
    control_port: int | None = None
    media_port: int | None = None
    media_ip: str | None = None
    max_socket: int | None = None
    stat_period_s: int = 1
    recv_timeout_s: float | None = None   # -recv_timeout: a call waiting longer is aborted
    buff_size: int | None = None          # -buff_size: socket buffers (load: KAMAILIO-NOTES)
    load_traces: bool = False             # load: stat/counts/errors/accounting log only, no -trace_msg
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            hint = " (SIPp 3.6.1 here is built without TLS)" if self.transport.startswith("tls") else ""
            raise BadInput(f"transport: {self.transport!r} is not one of "
                           f"{', '.join(TRANSPORTS)}{hint}")
        self.keys = {str(k): str(v) for k, v in self.keys.items()}
        for k in self.keys:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", k):
                raise BadInput(f"keys: {k!r} is not a SIPp keyword name")
        if self.dtmf is not None:
            self.dtmf = self.dtmf.upper()
            if not re.fullmatch(r"[0-9*#A-D]{1,16}", self.dtmf):
                raise BadInput(f"dtmf: {self.dtmf!r} must be 1..16 of 0-9 * # A-D")
        if self.calls is not None and self.calls < 1:
            raise BadInput(f"calls: must be >= 1, got {self.calls}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise BadInput(f"timeout_s: must be > 0, got {self.timeout_s}")
        self.extra_args = [str(a) for a in self.extra_args]

    # -- scenario -----------------------------------------------------------------
    @property
    def builtin(self) -> bool:
        """True when the scenario is one compiled into SIPp (``-sn``)."""
        return isinstance(self.scenario, str) and self.scenario in BUILTIN_SCENARIOS

    @property
    def scenario_path(self) -> Path | None:
        """The scenario file (``None`` for a built-in); not checked for existence."""
        if self.builtin:
            return None
        text = str(self.scenario)
        if isinstance(self.scenario, Path) or "/" in text or text.endswith(".xml"):
            return Path(self.scenario)
        return SIPP_DIR / f"{text}.xml"

    def check_scenario(self) -> None:
        """Raise BadInput naming the scenario file when it does not exist or is unreadable."""
        path = self.scenario_path
        if path is None:
            return
        if not path.is_file():
            raise BadInput(f"{path}: scenario file not found")
        try:
            path.read_bytes()
        except OSError as exc:
            raise BadInput(f"{path}: cannot read scenario file: {exc.strerror}") from None

    def scenario_keywords(self) -> set[str]:
        """The ``[keyword]`` names the scenario file uses (empty for built-ins)."""
        path = self.scenario_path
        if path is None:
            return set()
        try:
            return {m.decode("ascii") for m in _KEYWORD_RE.findall(path.read_bytes())}
        except OSError:
            return set()

    # -- ports ----------------------------------------------------------------------
    def ensure_ports(self) -> Agent:
        """Allocate the signalling, control and media ports that are not set yet."""
        if self.port is None or self.control_port is None:
            exclude = {p for p in (self.port, self.control_port, self.media_port, self.media_port and self.media_port + 1) if p}
            a, b = allocate_ports(2, self.local_ip, exclude=exclude)
            if self.port is None:
                self.port = a
            if self.control_port is None:
                self.control_port = b
        if self.media_port is None:
            # SIPp binds -mp .. -mp+3 (audio, video, each with RTCP), from a pool below the
            # kernel's ephemeral range so TCP connects and port-0 binds never take them.
            self.media_port = allocate_udp_block(4, self.local_ip, AGENT_MEDIA_POOL)
        return self

    @property
    def address(self) -> str:
        """``local_ip:port`` where this agent listens (allocating the port if needed)."""
        self.ensure_ports()
        return f"{self.local_ip}:{self.port}"

    # -- keys -----------------------------------------------------------------------
    def effective_keys(self) -> dict[str, str]:
        """The ``-key`` pairs passed to SIPp: ``keys`` plus defaults the scenario needs.

        Defaults are added only for keywords the scenario file uses: ``from_user``
        (``from_user`` field, else ``auth_user``, else ``sipp``), ``domain`` (the remote
        ``host:port``, else ``local_ip``), ``expires`` (3600), ``dtmf_digits`` (the
        ``dtmf`` field), ``session_expires``/``min_se`` (1800/90), ``cancel_ms`` (1000),
        ``padding`` (``padding_bytes`` times ``x``, default 1500) and ``sdp_formats`` /
        ``sdp_attributes`` built from the key ``codecs`` (default PCMU, PCMA,
        telephone-event; see :func:`sdp_keys`).
        """
        out = dict(self.keys)
        if self.from_user is not None:
            out["from_user"] = self.from_user
        used = self.scenario_keywords()
        padding_bytes = out.pop("padding_bytes", "1500")
        if not padding_bytes.isdigit() or not 0 < int(padding_bytes) <= 65000:
            raise BadInput(f"keys: padding_bytes must be 1..65000, got {padding_bytes!r}")
        defaults: dict[str, str] = {
            "from_user": self.auth_user or "sipp",
            "domain": self.remote or self.local_ip,
            "expires": "3600",
            "session_expires": "1800",
            "min_se": "90",
            "cancel_ms": "1000",
            "padding": "x" * int(padding_bytes),
        }
        if self.dtmf is not None:
            defaults["dtmf_digits"] = self.dtmf
        for name, value in defaults.items():
            if name in used and name not in out:
                out[name] = value
        if {"sdp_formats", "sdp_attributes"} & used or "codecs" in out:
            generated = sdp_keys(out.get("codecs") or ",".join(DEFAULT_CODECS))
            for name, value in generated.items():
                out.setdefault(name, value)
        return out

    # -- argv -----------------------------------------------------------------------
    def trace_files(self, workdir: Path) -> dict[str, Path]:
        """Where SIPp writes its traces for a run in ``workdir``."""
        workdir = Path(workdir)
        return {
            "messages": workdir / "messages.log",
            "errors": workdir / "errors.log",
            "stat": workdir / "stat.csv",
            "screen": workdir / "screen.log",
            "logs": workdir / ("calls.log" if self.load_traces else "actions.log"),
            "stdout": workdir / "sipp.stdout",
            "stderr": workdir / "sipp.stderr",
        }

    def argv(self, workdir: Path, *, sipp: str = "sipp") -> list[str]:
        """The full SIPp command as an argv list (allocates missing ports)."""
        self.ensure_ports()
        files = self.trace_files(workdir)
        args: list[str] = [sipp]
        if self.builtin:
            args += ["-sn", str(self.scenario)]
        else:
            args += ["-sf", str(self.scenario_path)]
        if self.remote:
            _split_hostport(self.remote)
            args.append(self.remote)
        args += ["-i", self.local_ip, "-p", str(self.port),
                 "-cp", str(self.control_port), "-ci", self.local_ip,
                 "-mi", self.media_ip or self.local_ip, "-mp", str(self.media_port),
                 "-t", TRANSPORTS[self.transport]]
        if self.transport == "tcp-per-call":
            args += ["-max_socket", str(self.max_socket or _default_max_socket())]
        elif self.max_socket:
            args += ["-max_socket", str(self.max_socket)]
        if self.service is not None:
            args += ["-s", self.service]
        if self.auth_user is not None:
            args += ["-au", self.auth_user]
        if self.auth_password is not None:
            args += ["-ap", self.auth_password]
        for name, value in self.effective_keys().items():
            args += ["-key", name, value]
        if self.calls is not None:
            args += ["-m", str(self.calls)]
        if self.rate is not None:
            args += ["-r", _num(self.rate)]
        if self.rate_period_ms is not None:
            args += ["-rp", str(self.rate_period_ms)]
        if self.limit is not None:
            args += ["-l", str(self.limit)]
        if self.call_duration_ms is not None:
            args += ["-d", str(int(self.call_duration_ms))]
        if self.timeout_s is not None:
            # SIPp 3.6.1 truncates "-timeout 1500ms" to whole seconds: give seconds.
            args += ["-timeout", f"{max(1, math.ceil(self.timeout_s))}s", "-timeout_error"]
        if self.inf is not None:
            args += ["-inf", str(self.inf)]
        if self.recv_timeout_s is not None:
            args += ["-recv_timeout", str(max(1, int(self.recv_timeout_s * 1000)))]
        if self.buff_size is not None:
            args += ["-buff_size", str(self.buff_size)]
        args += ["-nostdin", *self._trace_args(files)]
        args += self.extra_args
        return args

    def _trace_args(self, files: dict[str, Path]) -> list[str]:
        """Per-message traces for a functional call; aggregates only under load, where
        ``-trace_msg`` would cost more than the calls (``-trace_counts`` writes
        ``<scenario>_<pid>_counts.csv`` in the working directory: it takes no file name)."""
        common = ["-trace_err", "-error_file", str(files["errors"]),
                  "-trace_stat", "-stf", str(files["stat"]), "-fd", str(self.stat_period_s),
                  "-trace_logs", "-log_file", str(files["logs"])]
        if self.load_traces:
            return [*common, "-trace_counts"]
        return ["-trace_msg", "-message_file", str(files["messages"]), *common,
                "-trace_screen", "-screen_file", str(files["screen"])]

    @property
    def effective_timeout_s(self) -> float | None:
        """The ``-timeout`` SIPp will really apply (whole seconds)."""
        return None if self.timeout_s is None else float(max(1, math.ceil(self.timeout_s)))

    # -- secrets --------------------------------------------------------------------
    def masked_argv(self, workdir: Path, *, sipp: str = "sipp") -> list[str]:
        """:meth:`argv` with the password and any digest response replaced by ******."""
        return mask_argv(self.argv(workdir, sipp=sipp))

    def describe(self) -> str:
        """A one-line, shell-quoted, secret-free summary of this agent's command line."""
        args = self.argv(Path("."), sipp="sipp")
        if "-nostdin" in args:
            args = args[:args.index("-nostdin")] + [a for a in self.extra_args]
        return " ".join(_quote(a) for a in mask_argv(args))

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "auth_password" and value is not None:
                value = MASK
            elif f.name == "keys":
                value = {k: (MASK if _SECRET_KEY_RE.search(k) else mask_secrets(v)) for k, v in value.items()}
            elif f.name == "extra_args":
                value = mask_argv(value)
            parts.append(f"{f.name}={value!r}")
        return f"Agent({', '.join(parts)})"

    __str__ = describe


def mask_argv(args: list[str]) -> list[str]:
    """Mask the value after ``-ap``, secret-looking ``-key``/``-set`` values and digests."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        out.append(mask_secrets(arg))
        if arg == "-ap" and i + 1 < len(args):
            out.append(MASK)
            i += 2
        elif arg in ("-key", "-set") and i + 2 < len(args):
            name = args[i + 1]
            out += [name, MASK if _SECRET_KEY_RE.search(name) else mask_secrets(args[i + 2])]
            i += 3
        else:
            i += 1
    return out


def _quote(arg: str) -> str:
    """Shell-quote one argument; CR/LF become bash ``$'...'`` escapes so the line stays one."""
    if "\r" in arg or "\n" in arg:
        escaped = arg.replace("\\", "\\\\").replace("'", "\\'").replace("\r", "\\r").replace("\n", "\\n")
        return f"$'{escaped}'"
    return shlex.quote(arg)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _default_max_socket() -> int:
    """``-max_socket`` for a TCP connection per call: 10000, but below ``ulimit -n``."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 10000
    if soft == resource.RLIM_INFINITY:
        return 10000
    return max(64, min(10000, soft - 64))
