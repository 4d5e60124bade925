"""The platform a load run drives, as the runner needs it: where to send the calls, with
which accounts, where its CDRs and resources are read, and that it answers before any load.

``lab`` is the running lab, or one started for the run in its load shape and stopped
after it; ``loopback`` is a SIPp UAS answering on 127.0.0.1 (no platform: the generator's
own ceiling); any other name is an environment file (``qa.config``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from qa.errors import BadInput
from qa.load.plan import ANONYMOUS
from qa.load.processes import terminate
from qa.load.profile import LoadProfile
from qa.ports import AGENT_MEDIA_POOL, allocate_ports, allocate_udp_block
from qa.tools import die_with_parent, require_tool

Echo = Callable[[str], None]


@dataclass
class Platform:
    """The environment as a load run needs it."""

    name: str
    host: str
    port: int
    domain: str
    accounts: list[tuple[str, str | None]]
    cdr_source: Any = None
    cdr_describe: str = ""
    samplers: list[Any] = field(default_factory=list)
    pids: Callable[[], list[int]] = lambda: []
    mask: Callable[[str], str] = lambda text: text


@contextlib.contextmanager
def platform_for(name: str | None, profile: LoadProfile, out: Path, echo: Echo) -> Iterator[Platform]:
    if name == "loopback":
        with _loopback(profile, out) as platform:
            yield platform
        return
    if name in (None, "lab"):
        with _lab(out, echo) as run_dir:
            yield _from_environment("lab", profile, run_dir)
        return
    yield _from_environment(name, profile, None)


@contextlib.contextmanager
def _lab(out: Path, echo: Echo) -> Iterator[Path]:
    """The running lab, or a load-shaped one started for this run (stopped after it)."""
    from qa import lab

    run_dir = Path(os.environ.get("VOIPQA_LAB_DIR") or lab.default_run_dir())
    state = lab.load_state(run_dir)
    if state is not None:
        echo(f"using the running lab in {run_dir} ({state.shape} shape)")
        if state.shape != "load":
            echo("  note: a functional lab has 1 Kamailio worker; 'voipqa lab up --shape load' suits load runs")
        yield run_dir
        return
    run_dir = out / "lab"
    echo(f"no lab running: starting one in the load shape in {run_dir}")
    try:
        lab.up(run_dir, owner_pid=os.getpid(), shape="load")
        yield run_dir
    finally:
        lab.down(run_dir)
        echo("lab stopped")


def _from_environment(name: str, profile: LoadProfile, lab_dir: Path | None) -> Platform:
    from qa.environments import lab_environment, load_environment
    from qa.load.resources import samplers_for_environment

    env = lab_environment(lab_dir) if lab_dir is not None else load_environment(name)
    return Platform(
        name=env.name, host=env.target.host, port=env.target.port,
        domain=env.target.domain or env.target.address(),
        accounts=accounts_for(env, profile), cdr_source=env.platform_cdr,
        cdr_describe=env.mask(env.cdr.dsn) if env.cdr else "", samplers=samplers_for_environment(env),
        mask=env.mask,
    )


def accounts_for(env: Any, profile: LoadProfile) -> list[tuple[str, str | None]]:
    """The profile's accounts with their passwords: ``all`` means the load accounts of a
    load-shaped lab, else the accounts with a positive balance."""
    wanted = profile.scenario.accounts
    if wanted == "all":
        extra = env.extra or {}
        if extra.get("load_accounts"):
            users = list(extra["load_accounts"])
        elif "positive_accounts" in extra:
            users = list(extra["positive_accounts"])
        elif env.settings is not None:
            users = [a.user for a in env.settings.accounts if a.balance_class == "positive"]
        else:
            users = sorted(env.accounts)
    else:
        users = list(wanted)
    if not users:
        raise BadInput(f"environment {env.name}: no account with a positive balance to place calls with")
    return [(user, env.password(user)) for user in users]


@contextlib.contextmanager
def _loopback(profile: LoadProfile, out: Path) -> Iterator[Platform]:
    """A SIPp UAS answering every call on 127.0.0.1: no platform, the generator's own ceiling."""
    sipp = require_tool("sipp")
    port, control = allocate_ports(2, "127.0.0.1")
    media = allocate_udp_block(4, "127.0.0.1", AGENT_MEDIA_POOL)
    work = out / "loopback"
    work.mkdir(parents=True, exist_ok=True)
    transport = {"udp": "u1", "tcp": "t1"}[profile.scenario.transport]
    bound = profile.shape().duration_s + profile.scenario.hold + profile.scenario.call_timeout + 120
    argv = [sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-cp", str(control), "-ci", "127.0.0.1",
            "-mp", str(media), "-t", transport, "-aa", "-nostdin", "-buff_size", str(profile.generator.buff_size),
            "-timeout", f"{int(bound)}s", "-trace_err", "-error_file", str(work / "errors.log")]
    with open(work / "sipp.stdout", "wb") as so, open(work / "sipp.stderr", "wb") as se:
        proc = subprocess.Popen(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                preexec_fn=die_with_parent, start_new_session=True)
    try:
        from qa.load.resources import ProcessSampler

        yield Platform(name="loopback", host="127.0.0.1", port=port, domain=f"127.0.0.1:{port}",
                       accounts=[(ANONYMOUS, None)], samplers=[ProcessSampler("platform", lambda: [proc.pid])])
    finally:
        terminate(proc)


def probe(platform: Platform, profile: LoadProfile, attempts: int = 10) -> None:
    """OPTIONS before any load: an unreachable target is bad input (exit 2), not a failed run."""
    from qa.transport.probe import sip_options

    transport = profile.scenario.transport
    last = ""
    for _ in range(attempts):
        try:
            sip_options(platform.host, platform.port, transport, 1.0)
            return
        except OSError as exc:
            last = str(exc) or type(exc).__name__
            time.sleep(0.2)
    raise BadInput(f"target {platform.host}:{platform.port} ({platform.name}) does not answer OPTIONS over "
                   f"{transport}: {last}")


