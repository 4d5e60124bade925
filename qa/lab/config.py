"""Files the lab needs in its run directory: kamailio.cfg, dispatcher list, TLS config and
certificates, the SQLite database. Pure file generation; no process is left running.

The Kamailio config is ``lab/kamailio.cfg``, a template with ``{{NAME}}`` placeholders
(see its header). ``render_config`` fails on a placeholder it has no value for and on a
value it was given that the template never uses, so template and code cannot drift.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from pathlib import Path

from qa.errors import VoipqaError
from qa.lab.seed import ALGORITHMS, Seed
from qa.paths import LAB_DIR
from qa.tools import require_tool

TEMPLATE = LAB_DIR / "kamailio.cfg"
SCHEMA = LAB_DIR / "schema.sql"
TLS_SERVER_NAME = "lab.voipqa.test"
#: days the lab's CA and server certificate are valid: above `voipqa security`'s default
#: warning threshold (30), as a real platform's certificate should be
CERT_DAYS = 90
HOST = "127.0.0.1"

_PLACEHOLDER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")

# The queued accounting writer (lab/kamailio.cfg, ACCOUNTING). The queue holds about 30 s of
# 1,000 calls/s (3 events a call: the INVITE's and the BYE's acc rows, the CDR); the writer
# runs every 50 ms (a CDR is in the DB 30-60 ms after the BYE) and moves at most ACC_BATCH
# events per run, in one transaction; it waits up to ACC_BUSY_TIMEOUT_MS for a lock someone
# else holds (a balance update) instead of failing.
ACC_QUEUE_SIZE = 100_000
ACC_BATCH = 1000
ACC_WRITER_INTERVAL_MS = 50
ACC_BUSY_TIMEOUT_MS = 5000


def render_template(text: str, values: dict[str, object]) -> str:
    """Replace every ``{{NAME}}``; unknown or unused names are errors."""
    used: set[str] = set()
    missing: set[str] = set()

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            missing.add(name)
            return m.group(0)
        used.add(name)
        return str(values[name])

    out = _PLACEHOLDER.sub(sub, text)
    if missing:
        raise VoipqaError(f"kamailio.cfg template: no value for {', '.join(sorted(missing))}")
    unused = set(values) - used
    if unused:
        raise VoipqaError(f"kamailio.cfg template: never uses {', '.join(sorted(unused))}")
    if "{{" in out:
        raise VoipqaError("kamailio.cfg template: malformed placeholder left after rendering")
    return out


def callback_source(host: str) -> str:
    """The source address of rtpengine's XML-RPC callback to ``host``: rtpengine cannot bind
    its client, and for a loopback destination the kernel sends from 127.0.0.1 (the local
    route's preferred source), so a platform on 127.0.0.10 (the docker lab's host variant)
    would otherwise refuse its own rtpengine's media timeouts."""
    import ipaddress

    return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else host


def config_values(seed: Seed, ports: dict[str, int], run_dir: Path, ctl_socket: Path,
                  *, debug_level: int = 2) -> dict[str, object]:
    """The placeholder values for one lab instance. ``seed`` is already shaped
    (:func:`qa.lab.seed.shaped`): workers, anti-flood, routing and rtpengine timeouts
    are the shape's. ``ACCOUNTING`` (QUEUED | DIRECT) picks the accounting writer through
    the template's ``#!define ACCOUNTING_...`` and ``#!ifdef`` blocks."""
    return {
        "DEBUG_LEVEL": debug_level,
        "WORKERS": seed.workers,
        "DOMAIN": seed.domain,
        "TLS_SERVER_NAME": TLS_SERVER_NAME,
        "HOST": HOST,
        "SIP_PORT": ports["sip"],
        "TLS_PORT": ports["sip_tls"],
        "TLS_EXPIRED_PORT": ports["sip_tls_expired"],
        "RTPENGINE_SOCK": f"udp:{HOST}:{ports['rtpengine_ng']}",
        "XMLRPC_SOURCE": callback_source(HOST),
        "SET2_RE": set2_regex(seed),
        "MIN_SE_S": seed.min_se_s,
        "CTL_SOCKET": ctl_socket,
        "FR_TIMER_MS": int(seed.fr_timer_s * 1000),
        "FR_INV_TIMER_MS": int(seed.fr_inv_timer_s * 1000),
        "DB_URL": f"sqlite://{db_path(run_dir)}",
        "PIKE_WINDOW_S": seed.pike_window_s,
        "PIKE_DENSITY": seed.pike_max_requests,
        "BAN_SECONDS": seed.ban_s,
        "DISPATCHER_LIST": run_dir / "dispatcher.list",
        "DS_PING_INTERVAL_S": seed.probe_interval_s,
        "DIALOG_TIMEOUT_S": seed.dialog_timeout_s,
        "TLS_CFG": run_dir / "tls.cfg",
        "DS_ALGORITHM": ALGORITHMS[seed.algorithm],
        "RTPENGINE_TOUT_MS": seed.rtpengine_tout_ms,
        "RTPENGINE_RETRIES": seed.rtpengine_retries,
        "RTPENGINE_DISABLE_S": seed.rtpengine_disable_s,
        "ACCOUNTING": seed.accounting.upper(),
        "DEFENCES": defence_defines(seed),
        "AUTH_BAN_FAILURES": seed.auth_ban_failures,
        "AUTH_BAN_WINDOW_S": seed.auth_ban_window_s,
        "ACC_QUEUE_SIZE": ACC_QUEUE_SIZE,
        "ACC_BATCH": ACC_BATCH,
        "ACC_WRITER_INTERVAL_MS": ACC_WRITER_INTERVAL_MS,
        "ACC_WRITER_INTERVAL_US": ACC_WRITER_INTERVAL_MS * 1000,
        "ACC_BUSY_TIMEOUT_MS": ACC_BUSY_TIMEOUT_MS,
    }


def defence_defines(seed: Seed) -> str:
    """``#!define DEFENCE_<NAME>`` for every defence that is on: the template's ``#!ifdef``
    blocks hold each defence, so one turned off in the seed is absent from the config."""
    return "\n".join(f"#!define DEFENCE_{name.upper()}" for name in sorted(seed.defences)) or "# no defences"


def render_config(seed: Seed, ports: dict[str, int], run_dir: Path, ctl_socket: Path,
                  template: Path = TEMPLATE) -> str:
    return render_template(template.read_text(encoding="utf-8"),
                           config_values(seed, ports, run_dir, ctl_socket))


def set2_regex(seed: Seed) -> str:
    """POSIX regex for the destinations that go to dispatcher set 2 (one that never
    matches a normalised number when there are none)."""
    if not seed.set2_prefixes:
        return "^no-set-2$"
    return "^(" + "|".join(seed.set2_prefixes) + ")"


def dispatcher_list(seed: Seed, ports: dict[str, int]) -> str:
    """One line per carrier in its set; attrs carry the name the CDR shows."""
    lines = ["# setid destination flags priority attrs (generated by voipqa lab up)"]
    for c in seed.carriers:
        lines.append(f"{c.set} sip:{HOST}:{ports[c.name]} 0 {c.priority} name={c.name}")
    return "\n".join(lines) + "\n"


#: the seed's ``modern_tls`` defence: TLS 1.2 and later with OpenSSL's default ciphers; off,
#: TLS 1.0 and 1.1 and every cipher OpenSSL still has (security level 0) are accepted too
MODERN_TLS = "method = TLSv1.2+\n"
LEGACY_TLS = "method = TLSv1+\ncipher_list = ALL:@SECLEVEL=0\n"


def tls_config(run_dir: Path, expired_port: int | None = None, *, modern: bool = True) -> str:
    """The default server profile (valid certificate) and, on ``expired_port``, a
    profile serving the expired certificate (for the "certificate expired" cases)."""
    method = MODERN_TLS if modern else LEGACY_TLS
    expired = ""
    if expired_port is not None:
        expired = (
            f"[server:{HOST}:{expired_port}]\n"
            f"{method}"
            "verify_certificate = no\n"
            "require_certificate = no\n"
            f"private_key = {run_dir / 'expired.key'}\n"
            f"certificate = {run_dir / 'expired.crt'}\n"
            "\n"
        )
    return expired + (
        "[server:default]\n"
        f"{method}"
        "verify_certificate = no\n"
        "require_certificate = no\n"
        f"private_key = {run_dir / 'server.key'}\n"
        f"certificate = {run_dir / 'server.crt'}\n"
        f"ca_list = {run_dir / 'ca.crt'}\n"
        "\n"
        "[client:default]\n"
        "method = TLSv1.2+\n"
        "verify_certificate = no\n"
        "require_certificate = no\n"
    )


def db_path(run_dir: Path) -> Path:
    return run_dir / "lab.db"


def make_certs(run_dir: Path, server_name: str = TLS_SERVER_NAME) -> Path:
    """Self-signed CA + server certificate (EC P-256, SAN DNS:server_name, IP:127.0.0.1),
    and an expired server certificate from the same CA (see :func:`make_expired_cert`)."""
    openssl = require_tool("openssl")
    ca_key, ca_crt = run_dir / "ca.key", run_dir / "ca.crt"
    key, csr, crt = run_dir / "server.key", run_dir / "server.csr", run_dir / "server.crt"
    ext = run_dir / "server.ext"
    ext.write_text(f"subjectAltName=DNS:{server_name},IP:{HOST}\n"
                   "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\n")
    steps = [
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt), "-days", str(CERT_DAYS),
         "-subj", "/CN=voipqa lab CA"],
        [openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={server_name}"],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", str(CERT_DAYS), "-extfile", str(ext)],
    ]
    _run_openssl(steps)
    key.chmod(0o600)
    ca_key.chmod(0o600)
    make_expired_cert(run_dir, ext, server_name)
    return ca_crt


def _run_openssl(steps: list[list[str]]) -> None:
    for argv in steps:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise VoipqaError(f"openssl failed: {' '.join(argv[:3])}: {proc.stderr.strip()[-300:]}")


def make_expired_cert(run_dir: Path, ext: Path, server_name: str = TLS_SERVER_NAME) -> Path:
    """``expired.crt``: same CA, same names, valid from 30 days ago until yesterday.

    OpenSSL 3.0 ``x509 -req`` cannot back-date (``-not_before`` arrived in 3.4), so this
    uses ``openssl ca`` with ``-startdate/-enddate`` and a throwaway CA database.
    """
    openssl = require_tool("openssl")
    key, csr, crt = run_dir / "expired.key", run_dir / "expired.csr", run_dir / "expired.crt"
    index, serial, cnf = run_dir / "ca-index.txt", run_dir / "ca-serial", run_dir / "ca.cnf"
    index.write_text("")
    serial.write_text("1000\n")
    cnf.write_text(
        "[ca]\ndefault_ca = lab\n"
        f"[lab]\ndatabase = {index}\nnew_certs_dir = {run_dir}\nserial = {serial}\n"
        "default_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\n"
        "[any]\ncommonName = supplied\n")
    now = time.time()
    start = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(now - 30 * 86400))
    end = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(now - 86400))
    _run_openssl([
        [openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={server_name}"],
        [openssl, "ca", "-batch", "-notext", "-config", str(cnf), "-cert", str(run_dir / "ca.crt"),
         "-keyfile", str(run_dir / "ca.key"), "-in", str(csr), "-out", str(crt),
         "-startdate", start, "-enddate", end, "-extfile", str(ext)],
    ])
    key.chmod(0o600)
    return crt


def create_db(path: Path, seed: Seed, schema: Path = SCHEMA) -> None:
    """A fresh SQLite DB from lab/schema.sql, filled from the seed (WAL mode: readers
    never block Kamailio's writers)."""
    if path.exists():
        path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(schema.read_text(encoding="utf-8"))
        conn.executemany(
            "INSERT INTO subscriber (username, domain, password) VALUES (?, ?, ?)",
            [(a.user, seed.domain, a.password) for a in seed.accounts])
        conn.executemany(
            "INSERT INTO voipqa_account (account, balance, name) VALUES (?, ?, ?)",
            [(a.user, a.balance, a.name) for a in seed.accounts])
        conn.executemany(
            "INSERT INTO voipqa_blocked_prefix (prefix, reason) VALUES (?, ?)",
            [(p.prefix, p.reason) for p in seed.blocked_prefixes])
        conn.executemany(
            "INSERT INTO voipqa_account_prefix (account, kind, prefix) VALUES (?, ?, ?)",
            [(a.user, kind, prefix) for a in seed.accounts
             for kind, prefixes in (("deny", a.deny), ("allow", a.allow_only)) for prefix in prefixes])
        rows = []
        for cidr in seed.allow_list:
            net, _, mask = cidr.partition("/")
            rows.append((1, net, int(mask), 0, "seed"))
        conn.executemany("INSERT INTO address (grp, ip_addr, mask, port, tag) VALUES (?, ?, ?, ?, ?)", rows)
        conn.commit()
    finally:
        conn.close()


def write_run_files(run_dir: Path, seed: Seed, ports: dict[str, int], ctl_socket: Path) -> Path:
    """Everything Kamailio reads; returns the rendered config's path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "dispatcher.list").write_text(dispatcher_list(seed, ports))
    (run_dir / "tls.cfg").write_text(tls_config(run_dir, ports["sip_tls_expired"],
                                                    modern="modern_tls" in seed.defences))
    cfg = run_dir / "kamailio.cfg"
    cfg.write_text(render_config(seed, ports, run_dir, ctl_socket))
    return cfg


def check_config(cfg: Path, timeout: float = 20) -> None:
    """``kamailio -c``: raise VoipqaError with its complaint when the config is bad."""
    kamailio = require_tool("kamailio")
    proc = subprocess.run([kamailio, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "ERROR" in ln or "CRITICAL" in ln]
        raise VoipqaError(f"kamailio -c rejected {cfg}: {' | '.join(tail[-4:]) or proc.stderr.strip()[-400:]}")
