"""A user's own SIPp scenario as a case: environment in, judged call record out.

The scenario is read and run by :mod:`qa.sipp.byo`; this module is where the environment
comes in (the platform's address, its carrier, the accounts and numbers) and where the
call is judged on the witnesses that apply: the customer (SIPp's exit code: the scenario's
own expectations held; and the final response vs ``expect``), the carrier and the
platform's CDR by the Call-ID the message log shows. The wire witness is joined after the
run, like every other call, from calls.jsonl. :func:`write_suite` wraps .xml sources of
``voipqa run`` into a generated Robot suite so they share the run's lab, capture and reports.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from qa.cases.checks import Expectation, judge
from qa.cases.runner import CONTRACT_FIELDS, CUSTOMER_FIELDS, _handling_carrier
from qa.cdr.normalise import call_cdr
from qa.cdr.source import wait_for_rows, written_since
from qa.config import Environment
from qa.errors import BadInput
from qa.record import CallRecord, CallRecordWriter
from qa.sipp import CallResult, Outcome, SippResult
from qa.sipp.agent import mask_secrets
from qa.sipp.byo import (
    Account,
    ScenarioInfo,
    ScenarioRun,
    choose_peer,
    inspect_scenario,
    run_scenario,
)

#: Default called number: answered at once by the mock carrier (carriers/numberplan.yaml).
DEFAULT_SERVICE = "1555000100"
DEFAULT_FIELDS = "{user};{user};{password}"
GENERATED_SUITE = "byo_scenarios.robot"
#: Time a scenario gets beyond the sum of its own pauses when no timeout is given.
TIMEOUT_MARGIN_S = 15.0


@dataclass(frozen=True)
class ByoOptions:
    """How to run one scenario; ``None`` means the environment's default."""

    expect: int | None = 200
    service: str | None = None
    user: str | None = None
    fields: str = DEFAULT_FIELDS
    peer: str = "auto"
    timeout_s: float | None = None   # None: the scenario's pauses + TIMEOUT_MARGIN_S
    transport: str = "udp"


def carrier_address(env: Environment) -> str | None:
    """Where the environment's mock carrier listens: the lab's carrier-a, or ``carrier.bind``."""
    if env.name == "lab" and env.extra.get("run_dir"):
        from qa import lab

        state = lab.load_state(Path(env.extra["run_dir"]))
        if state is not None and "carrier-a" in state.ports:
            return f"{state.host}:{state.ports['carrier-a']}"
    bind = env.settings.carrier.bind if env.settings is not None else None
    return bind


def _account(env: Environment, opts: ByoOptions) -> Account:
    positive = env.extra.get("positive_accounts") or sorted(env.accounts)
    user = opts.user or (positive[0] if positive else None)
    if user is None:
        raise BadInput(f"environment {env.name}: no account to run the scenario as")
    numbers = env.settings.numbers if env.settings is not None else {}
    service = opts.service or numbers.get("answer-echo") or DEFAULT_SERVICE
    return Account(user=user, password=env.password(user), domain=env.target.domain or env.target.host,
                   service=service)


def _remote(env: Environment, peer: str, info: ScenarioInfo) -> str | None:
    if peer == "platform":
        return env.target.address()
    if peer == "carrier":
        address = carrier_address(env)
        if address is None:
            raise BadInput(f"{info.path}: needs a plain UAS (no digest auth in the scenario) and environment "
                           f"{env.name} names no carrier (carrier.bind)")
        return address
    return None


def run_case(path: str | Path, env: Environment, output: Path, *, case: str,
             opts: ByoOptions = ByoOptions(), test: str | None = None) -> CallRecord:
    """Inspect, run and judge one scenario; the record is appended to ``output/calls.jsonl``.

    Raises ScenarioError (one line) when the scenario cannot run: invalid XML, or a peer
    voipqa does not provide.
    """
    info = inspect_scenario(path)
    peer = choose_peer(info, opts.peer)
    account = _account(env, opts)
    workdir = (Path(output) / "sipp" / f"{_slug(case)}-{os.getpid()}").resolve()  # SIPp runs in it
    timeout_s = opts.timeout_s if opts.timeout_s is not None else info.pause_s + TIMEOUT_MARGIN_S
    run = asyncio.run(run_scenario(info, workdir, peer=peer, remote=_remote(env, peer, info) or "",
                                   account=account, fields_template=opts.fields, timeout_s=timeout_s,
                                   transport=opts.transport))
    _scrub(workdir, env)
    record = build_record(run, case, account, opts)
    record.test = test
    expect = Expectation(final_code=opts.expect, check_cdr=peer == "platform" and info.initial_method == "INVITE")
    _join_witnesses(record, env, run, expect)
    judge(record, expect)
    record.expect = expect.to_json()
    CallRecordWriter(Path(output) / "calls.jsonl").write(record)
    return record


def build_record(run: ScenarioRun, case: str, account: Account, opts: ByoOptions) -> CallRecord:
    """The customer witness: the call the scenario placed (or voipqa's UAC placed to it),
    with SIPp's own verdict on the scenario; a failed scenario fails the call."""
    caller = run.peer_uac if run.peer_uac is not None else run.scenario
    call = _first_call(caller)
    record = CallRecord(case=case, from_=account.user, to=account.service, transport=opts.transport)
    record.customer = {"scenario": str(run.info.path), "peer": run.peer, "remote": run.remote,
                       "sipp_exit": run.scenario.exit_code, "sipp_outcome": run.scenario.outcome.value,
                       "workdir": str(run.scenario.workdir)}
    if call is not None:
        for name in CONTRACT_FIELDS:
            setattr(record, name, getattr(call, name))
        record.customer |= {name: getattr(call, name, None) for name in CUSTOMER_FIELDS}
        for problem in call.parse_errors[:3]:
            record.fail("customer", f"malformed SIP in the call: {problem}")
    else:
        record.fail("customer", f"no call in the message log: {run.scenario.describe()}")
    for label, result in (("scenario", run.scenario), ("voipqa's UAC", run.peer_uac)):
        if result is not None and not _scenario_ok(result, run.info if label == "scenario" else None):
            record.fail("customer", f"{label}: SIPp {result.outcome.describe()}{_first_error(result)}")
    return record


def _scenario_ok(result: SippResult, info: ScenarioInfo | None) -> bool:
    """SIPp says every call succeeded, or the scenario stopped SIPp itself (exit 97 is then
    its intended end, as in pbertera's Basic/uas.xml)."""
    return result.ok or (info is not None and info.stops_itself and result.outcome is Outcome.INTERNAL_EXIT)


def _first_error(result: SippResult) -> str:
    """SIPp's first telling error line (``Aborting call on unexpected message ... received
    'SIP/2.0 481 ...'``), cut to one line; the banner lines are skipped."""
    for line in result.errors:
        line = line.strip()
        if line and not line.startswith("The following events occurred"):
            return f"; {line[:300]}"
    return ""


def _first_call(result: SippResult | None) -> CallResult | None:
    if result is None:
        return None
    calls = [c for c in result.calls if c.role == "caller"] or result.calls
    return calls[0] if calls else None


def _join_witnesses(record: CallRecord, env: Environment, run: ScenarioRun, expect: Expectation) -> None:
    """Carrier and platform CDR by Call-ID, where they apply (not for a UAS run: no platform
    and no carrier were on the path)."""
    if record.call_id is None or run.peer == "uac":
        return
    if env.carrier_cdr is not None and record.customer.get("method") == "INVITE":
        lines = wait_for_rows(env.carrier_cdr, record.call_id, expect=record.final_code is not None,
                              keep=written_since(record.started))
        if lines:
            record.carrier = _handling_carrier(lines)
            record.carrier_code = record.carrier.get("final_code")
    if env.platform_cdr is not None and expect.check_cdr:
        rows = wait_for_rows(env.platform_cdr, record.call_id, expect=record.final_code == 200)
        if rows:
            record.cdr = call_cdr(rows)


def _scrub(workdir: Path, env: Environment) -> None:
    """Passwords and digest responses never stay in the case's folder."""
    for path in workdir.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".csv", ".stdout", ".stderr"):
            text = path.read_text(errors="replace")
            masked = env.mask(mask_secrets(text))
            if masked != text:
                path.write_text(masked)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "scenario"


# -- voipqa run SCENARIO.xml ------------------------------------------------------------------
def split_sources(sources: list[str]) -> tuple[list[str], list[Path]]:
    """Robot suites and .xml scenarios among ``voipqa run``'s sources (a missing .xml is bad input)."""
    suites, scenarios = [], []
    for source in sources:
        if source.lower().endswith(".xml") and not source.lower().endswith("output.xml"):
            path = Path(source)
            if not path.is_file():
                raise BadInput(f"scenario {source}: no such file")
            scenarios.append(path.resolve())
        else:
            suites.append(source)
    return suites, scenarios


def write_suite(scenarios: list[Path], output: Path) -> Path:
    """A Robot suite in ``output`` with one case per scenario: `Run SIPp Scenario` expecting
    200, then `Call Should Pass`. Returns its path (a source for the run)."""
    output.mkdir(parents=True, exist_ok=True)
    lines = ["*** Settings ***",
             "Documentation     SIPp scenarios given to voipqa run (generated; see docs/byo-sipp.md).",
             "Library           qa.robot.VoipQA", "Test Tags         byo", "", "*** Test Cases ***"]
    names: set[str] = set()
    for path in scenarios:
        name = _case_name(path, names)
        lines += [name, f"    ${{call}}=    Run SIPp Scenario    {_robot_escape(str(path))}    expect=200",
                  "    Call Should Pass    ${call}", ""]
    suite = output / GENERATED_SUITE
    suite.write_text("\n".join(lines))
    return suite


def _case_name(path: Path, taken: set[str]) -> str:
    base = f"{path.parent.name} {path.stem}".replace("_", " ").strip()
    name, n = base, 2
    while name.lower() in taken:
        name, n = f"{base} {n}", n + 1
    taken.add(name.lower())
    return name


def _robot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("  ", " \\ ").replace("$", "\\$").replace("@", "\\@")


def with_scenarios(sources: list[str], output: Path) -> list[str]:
    """``voipqa run``'s sources with any .xml scenarios replaced by one generated suite in
    ``output`` (unchanged when there is none)."""
    suites, scenarios = split_sources(sources)
    return suites + [str(write_suite(scenarios, Path(output)))] if scenarios else suites
