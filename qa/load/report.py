"""``load.json``, ``xunit.xml`` and ``load.html`` of a load run, made from its directory alone.

A load run is judged from its files (:mod:`qa.load.model`), never from the runner's
memory, so ``voipqa load report DIR`` gives a killed soak the same report a finished one
gets: missing or torn files are tolerated and such a run is marked ``interrupted``.
The only file that must be there is ``run.json`` (it holds the validated profile the
run was judged against). ``load.json`` is documented in ``docs/load-json.md`` and its
JSON Schema is ``docs/load.schema.json``.

Reading (:func:`read_run`), judging (:func:`judge_run`, through :mod:`qa.load.criteria`
and :mod:`qa.load.resources`) and assembling (:func:`assemble`, pure) are separate, so
the numbers of ``load.json`` can be tested without a profile or a verdict engine.

Length: read, judge and assemble are separate functions of one report; the HTML part
is most of it, and it reads only what ``assemble`` returns.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from qa.errors import BadInput
from qa.load import model
from qa.load.model import Second, SecondHistograms
from qa.sipp.agent import MASK, mask_secrets

VERSION = 1
LOAD_JSON = "load.json"
LOAD_HTML = "load.html"
XUNIT_XML = "xunit.xml"
#: Files a person may want to open, by role (``files`` of ``load.json``), besides the globs below.
_FILE_ROLES = (
    ("run", model.RUN_FILE), ("timeline", model.TIMELINE_FILE), ("histograms", model.HISTOGRAMS_FILE),
    ("calls", model.CALLS_FILE), ("resources", model.RESOURCES_FILE), ("events", model.EVENTS_FILE),
    ("cdr", model.CDR_FILE), ("html", LOAD_HTML), ("xunit", XUNIT_XML),
)
_FILE_GLOBS = (("capture", "capture*.pcap*"), ("locust", "locust*.csv"), ("locust", "locust*.html"),
               ("sipp", "sipp*.log"))
_CDR_KEYS = ("checked", "missing", "duplicate", "mismatched", "loss_pct", "billable_seconds_lost")
_CDR_EXAMPLES_MAX = 20
#: Moving-average width (seconds) of ``achieved_cps_max``: one bursty second does not count.
ACHIEVED_AVERAGE_S = 3
_SECRET_KEY_RE = re.compile(r"pass|secret|token|authorization", re.IGNORECASE)
_HTML_WINDOWS_MAX = 300
_HTML_EVENTS_MAX = 200


@dataclass
class RunFiles:
    """What a run directory holds, read tolerantly (a torn last line is skipped)."""

    dir: Path
    run: dict[str, Any]
    seconds: list[Second]
    histograms: list[SecondHistograms]
    resources: dict[str, list[tuple[float, float]]]
    events: list[dict[str, Any]]
    cdr: dict[str, Any] | None
    calls_logged: int


# -- reading ------------------------------------------------------------------------------------
def read_run(run_dir: Path) -> RunFiles:
    """Every file of the run directory; ``BadInput`` when it is not one (no ``run.json``)."""
    run_dir = Path(run_dir)
    run_path = run_dir / model.RUN_FILE
    if not run_dir.is_dir() or not run_path.is_file():
        raise BadInput(f"not a load run directory: {run_dir} (no {model.RUN_FILE})")
    run = model.read_json(run_path)
    if run is None:
        raise BadInput(f"{run_path}: not a JSON object (the file is damaged)")
    if not isinstance(run.get("profile"), dict):
        raise BadInput(f"{run_path}: profile: missing (the run's validated profile is needed to judge it)")
    return RunFiles(
        dir=run_dir, run=run,
        seconds=sorted(model.read_timeline(run_dir / model.TIMELINE_FILE), key=lambda s: s.t),
        histograms=model.read_histograms(run_dir / model.HISTOGRAMS_FILE),
        resources=model.read_resources(run_dir / model.RESOURCES_FILE),
        events=model.read_events(run_dir / model.EVENTS_FILE),
        cdr=model.read_json(run_dir / model.CDR_FILE),
        calls_logged=_count_rows(run_dir / model.CALLS_FILE),
    )


def _count_rows(path: Path) -> int:
    """Complete data rows of a CSV with a header, counted in bulk (a soak has millions)."""
    try:
        with open(path, "rb") as fh:
            newlines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0
    return max(0, newlines - 1)


# -- judging (the seam to qa.load.profile / criteria / resources) ---------------------------------
def load_profile(run: RunFiles) -> Any:
    """The run's profile as validated when it started, rebuilt from ``run.json``.

    A problem names ``run.json`` and the dotted field (the profile file may have changed
    since; what was run is what ``run.json`` holds).
    """
    from qa.load.profile import parse_profile

    profile = parse_profile(run.run["profile"], run.dir / model.RUN_FILE)
    if run.run.get("profile_path"):
        profile._path = Path(str(run.run["profile_path"]))  # its name is the file's, not run.json's
    return profile


def judge_run(run: RunFiles) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(verdict, resources summary)`` as plain dicts, from the verdict engine of helper B."""
    from qa.load import criteria, resources

    profile = load_profile(run)
    verdict = criteria.judge(profile, run.seconds, run.histograms, cdr=run.cdr, resources=run.resources,
                             environment=environment_name(run.run))
    summary = resources.summarize(run.resources, warmup_s=warmup_seconds(run.run))
    return plain(verdict), plain(summary)


def plain(value: Any) -> Any:
    """Dataclasses (Verdict, Window, CriterionResult…) as dicts, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# -- building -----------------------------------------------------------------------------------
def build(run_dir: Path) -> dict[str, Any]:
    """The ``load.json`` dict of a run directory (nothing is written)."""
    run = read_run(run_dir)
    verdict, resources = judge_run(run)
    return assemble(run, verdict, resources)


def assemble(run: RunFiles, verdict: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    """``load.json`` from what the run directory holds and what the judge said (pure)."""
    info = run.run
    started = _parse_time(info.get("started"))
    duration = run_duration(run)
    ended = _parse_time(info.get("ended")) or (started + timedelta(seconds=duration) if started else None)
    profile = info.get("profile") or {}
    report = {
        "version": VERSION,
        "profile": str(info.get("profile_name") or Path(str(info.get("profile_path") or "profile")).stem),
        "profile_path": _str_or_none(info.get("profile_path")),
        "description": _str_or_none(profile.get("description")),
        "kind": str(info.get("kind") or profile.get("kind") or ""),
        "environment": environment_name(info),
        "target": _str_or_none(_mask(str(info["target"])) if info.get("target") else None),
        "started": _iso(started) if started else _str_or_none(info.get("started")),
        "ended": _iso(ended) if ended else None,
        "duration_s": round(duration, 3),
        "interrupted": is_interrupted(run),
        "workers": _int(info.get("workers")),
        "overrides": _overrides(info.get("overrides")),
        "verdict": str(verdict.get("verdict") or "fail"),
        "bottleneck": str(verdict.get("bottleneck") or "none"),
        "breaking_point_cps": _num(verdict.get("breaking_point_cps")),
        "broke_at": _int(verdict.get("broke_at")),
        "offered_cps_max": round(max((s.offered_cps for s in run.seconds), default=0.0), 3),
        "achieved_cps_max": round(achieved_cps_max(run.seconds), 3),
        "calls": calls_summary(run),
        "pdd_ms": _merged_percentiles(run.histograms, "pdd"),
        "setup_ms": _merged_percentiles(run.histograms, "setup"),
        "retransmissions_pct": retransmissions_pct(run.seconds),
        "criteria": [criterion_item(c) for c in verdict.get("criteria") or []],
        "cdr": cdr_summary(run.cdr),
        "resources": {str(k): v for k, v in (resources or {}).items()},
        "timeline": model.TIMELINE_FILE if (run.dir / model.TIMELINE_FILE).exists() else None,
        "windows": [dict(w) for w in verdict.get("windows") or []],
        "reasons": [str(r) for r in verdict.get("reasons") or []],
        "generator": generator_summary(run.seconds, verdict.get("windows") or []),
        "files": files_of(run.dir),
    }
    return _finite(report)


def environment_name(info: dict[str, Any]) -> str:
    env = info.get("environment")
    if isinstance(env, dict):
        env = env.get("name")
    return str(env or "")


def run_duration(run: RunFiles) -> float:
    """Seconds of load: the ``end`` event's t, else the last thing the files saw."""
    ends = [e for e in run.events if e.get("event") == "end" and _num(e.get("t")) is not None]
    if ends:
        return float(ends[-1]["t"])
    last = [float(run.seconds[-1].t + 1)] if run.seconds else []
    last += [float(e["t"]) for e in run.events if _num(e.get("t")) is not None]
    last += [t for samples in run.resources.values() for t, _ in samples[-1:]]
    return max(last, default=0.0)


def is_interrupted(run: RunFiles) -> bool:
    """The runner said so, or it died before writing the ``end`` event."""
    names = {e.get("event") for e in run.events}
    return bool(run.run.get("interrupted")) or "interrupted" in names or "end" not in names


def achieved_cps_max(seconds: list[Second]) -> float:
    """Highest calls created per second, averaged over 3 s so one bursty second does not count.

    Windows are ``[t, t+3)`` on the timeline's own clock: a second missing from the
    timeline counts as nothing created. Runs shorter than the window give their mean.
    """
    if not seconds:
        return 0.0
    created = {s.t: s.created for s in seconds}
    first, last = min(created), max(created)
    width = min(ACHIEVED_AVERAGE_S, last - first + 1)
    return max(sum(created.get(t + i, 0) for i in range(width)) / width for t in range(first, last - width + 2))


def calls_summary(run: RunFiles) -> dict[str, Any]:
    """Totals of the timeline; calls placed but never completed are ``unfinished``."""
    by_code: dict[str, int] = {}
    for s in run.seconds:
        for code, count in s.codes.items():
            by_code[code] = by_code.get(code, 0) + count
    attempted = sum(s.created for s in run.seconds)
    completed = sum(s.completed for s in run.seconds)
    if attempted > completed:
        by_code["unfinished"] = attempted - completed
    return {
        "attempted": attempted,
        "completed": completed,
        "answered": sum(s.answered for s in run.seconds),
        "failed": sum(s.failed for s in run.seconds),
        "aborted": sum(s.aborted for s in run.seconds),
        "logged": run.calls_logged,
        "by_code": dict(sorted(by_code.items(), key=lambda kv: _code_order(kv[0]))),
    }


def _code_order(code: str) -> tuple[int, int, str]:
    return (0, int(code), "") if code.isdigit() else (1, 0, code)


def _merged_percentiles(histograms: list[SecondHistograms], kind: str) -> dict[str, float | None]:
    merged: model.Histogram = {}
    for h in histograms:
        model.merge(merged, getattr(h, kind))
    return model.percentiles(merged)


def retransmissions_pct(seconds: list[Second]) -> float | None:
    sent = sum(s.sent for s in seconds)
    return round(100.0 * sum(s.retransmissions for s in seconds) / sent, 4) if sent else None


def criterion_item(c: dict[str, Any]) -> dict[str, Any]:
    """A ``CriterionResult`` as ``load.json`` spells it (``passed`` -> ``pass``)."""
    passed = c.get("passed", c.get("pass"))
    return {"name": str(c.get("name", "")), "limit": _num(c.get("limit")), "value": _num(c.get("value")),
            "pass": bool(passed), "unit": str(c.get("unit") or ""), "where": str(c.get("where") or "")}


def cdr_summary(cdr: dict[str, Any] | None) -> dict[str, Any] | None:
    """``cdr.json`` without its per-second detail; ``None`` when no reconciliation was written."""
    if cdr is None:
        return None
    out: dict[str, Any] = {key: _num(cdr.get(key)) for key in _CDR_KEYS}
    out["checked"] = _int(cdr.get("checked")) or 0
    for key in ("missing", "duplicate", "mismatched"):
        out[key] = _int(cdr.get(key))
    out["source"] = _str_or_none(_mask(str(cdr["source"])) if cdr.get("source") else None)
    out["skipped"] = _str_or_none(cdr.get("skipped"))
    examples = cdr.get("examples") if isinstance(cdr.get("examples"), list) else []
    out["examples"] = [{str(k): _mask(str(v)) for k, v in e.items()}
                       for e in examples[:_CDR_EXAMPLES_MAX] if isinstance(e, dict)]
    return out


def generator_summary(seconds: list[Second], windows: list[dict[str, Any]]) -> dict[str, Any]:
    """How hard the generator worked (maxima) and what SIPp counted against itself (sums)."""
    sums = ("sent", "retransmissions", "timeouts", "unexpected", "outbound_congestion", "dead_msgs")
    out: dict[str, Any] = {
        "sipp_cpu_max": max((s.sipp_cpu_max for s in seconds), default=0.0),
        "sipp_cpu_allowance": min((s.sipp_cpu_allowance for s in seconds), default=100.0),
        "host_cpu_max": max((s.host_cpu_max for s in seconds), default=0.0),
        "worker_cpu_max": max((s.worker_cpu_max for s in seconds), default=0.0),
        "workers_max": max((s.workers for s in seconds), default=0),
        "sipps_max": max((s.sipps for s in seconds), default=0),
        "concurrent_max": max((s.concurrent for s in seconds), default=0),
    }
    out.update({name: sum(getattr(s, name) for s in seconds) for name in sums})
    out["saturated_windows"] = sum(1 for w in windows if w.get("generator_saturated"))
    return out


def files_of(run_dir: Path) -> dict[str, Any]:
    """Role -> relative path (captures, Locust's files: lists) of what is worth opening."""
    out: dict[str, Any] = {role: name for role, name in _FILE_ROLES if (run_dir / name).exists()}
    for role, pattern in _FILE_GLOBS:
        found = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.glob(pattern) if p.is_file())
        if found:
            out[role] = sorted(set(out.get(role, [])) | set(found))
    return out


# -- writing ------------------------------------------------------------------------------------
def write(run_dir: Path) -> dict[str, Any]:
    """Build the report and write ``xunit.xml``, ``load.html`` and, last, ``load.json``."""
    run = read_run(run_dir)
    verdict, resources = judge_run(run)
    return write_report(run, verdict, resources)


def write_report(run: RunFiles, verdict: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    """The writing half of :func:`write` (``load.json`` last: its presence means done)."""
    report = assemble(run, verdict, resources)
    report["files"].update(html=LOAD_HTML, xunit=XUNIT_XML)
    _write_text(run.dir / XUNIT_XML, xunit_xml(report))
    _write_text(run.dir / LOAD_HTML, html_page(report, run))
    model.write_json(run.dir / LOAD_JSON, report)
    return report


def _write_text(path: Path, text: str) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# -- xunit --------------------------------------------------------------------------------------
def failure_message(c: dict[str, Any]) -> str:
    """The numbers first (``setup_p95_ms_max: 1,240 ms > 800 ms``), then the judge's sentence.

    A CI view shows only this line; ``where`` says over what and why (``not judged: …``).
    """
    unit = _unit_text(c.get("unit"))
    where = f" — {c['where']}" if c.get("where") else ""
    if c.get("value") is None:
        return f"{c['name']}: no value (limit {_fmt(c.get('limit'))}{unit}){where}"
    op = "<" if "_min" in c["name"] else ">"
    return f"{c['name']}: {_fmt(c['value'])}{unit} {op} {_fmt(c.get('limit'))}{unit}{where}"


def _unit_text(unit: Any) -> str:
    return "" if not unit or unit == "ratio" else f" {unit}"


def xunit_xml(report: dict[str, Any]) -> str:
    """One testsuite, one testcase per criterion, and a ``verdict`` case with the break."""
    suite_name = f"voipqa.load.{report['profile']}"
    criteria = report["criteria"]
    verdict_failed = report["verdict"] != "pass"
    failures = sum(1 for c in criteria if not c["pass"]) + int(verdict_failed)
    suite = ET.Element("testsuite", name=suite_name, tests=str(len(criteria) + 1), failures=str(failures),
                       errors="0", skipped="0", time=f"{report['duration_s']:.3f}",
                       timestamp=str(report.get("started") or ""))
    for c in criteria:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=c["name"], time="0")
        if not c["pass"]:
            message = failure_message(c)
            ET.SubElement(case, "failure", message=message, type="criterion").text = message
    case = ET.SubElement(suite, "testcase", classname=suite_name, name="verdict",
                         time=f"{report['duration_s']:.3f}")
    if verdict_failed:
        first = report["reasons"][0] if report["reasons"] else "the run failed"
        message = f"{report['verdict']} (bottleneck: {report['bottleneck']}): {first}"
        ET.SubElement(case, "failure", message=message, type="verdict").text = message
    ET.SubElement(case, "system-out").text = "\n".join(verdict_lines(report))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def verdict_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"verdict: {report['verdict']}", f"bottleneck: {report['bottleneck']}",
             f"breaking point: {breaking_point_text(report)}"]
    if report["interrupted"]:
        lines.append("interrupted: the run did not finish; judged on what it recorded")
    return lines + [f"reason: {r}" for r in report["reasons"]]


def breaking_point_text(report: dict[str, Any]) -> str:
    bp, at = report.get("breaking_point_cps"), report.get("broke_at")
    text = "—" if bp is None else f"{_fmt(bp)} calls/s"
    return text + (f" (first broken window at t={at} s)" if at is not None else "")


# -- html ---------------------------------------------------------------------------------------
def html_page(report: dict[str, Any], run: RunFiles) -> str:
    """One self-contained page: header, tables, the figures (base64 PNG), the files."""
    from qa.load import plots

    figures = plots.figures(plot_data(report, run))
    body = "\n".join([
        _html_header(report), _html_reasons(report), _html_criteria(report), _html_calls(report),
        _html_cdr(report), _html_resources(report), _html_windows(report),
        '<h2>Plots</h2>\n' + "\n".join(
            f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            f'</figure>' for title, png in figures),
        _html_events(run.events), _html_files(report),
    ])
    return _PAGE.format(title=_e(f"voipqa load — {report['profile']} — {report['verdict'].upper()}"), body=body)


def plot_data(report: dict[str, Any], run: RunFiles) -> Any:
    from qa.load.plots import PlotData

    profile = run.run.get("profile") or {}
    destinations = (profile.get("scenario") or {}).get("destinations") or []
    expected = frozenset(str(d.get("expect", 200)) for d in destinations if isinstance(d, dict)) or frozenset({"200"})
    return PlotData(
        seconds=run.seconds, duration_s=report["duration_s"], histograms=run.histograms, resources=run.resources,
        windows=report["windows"], limits={c["name"]: c["limit"] for c in report["criteria"] if c["limit"] is not None},
        breaking_point_cps=report["breaking_point_cps"], broke_at=report["broke_at"],
        warmup_s=warmup_seconds(run.run), max_concurrent=_int((profile.get("rate") or {}).get("max_concurrent")),
        expected_codes=expected,
        slopes={m: _num(s.get("slope_per_h")) for m, s in report["resources"].items() if isinstance(s, dict)},
    )


def _html_header(report: dict[str, Any]) -> str:
    verdict = report["verdict"].upper()
    colour = "#1a7f37" if report["verdict"] == "pass" else "#cf222e"
    interrupted = '<span class="badge">INTERRUPTED</span>' if report["interrupted"] else ""
    facts = [("profile", report["profile"]), ("kind", report["kind"]), ("environment", report["environment"]),
             ("target", report["target"] or "—"), ("started", report["started"] or "—"),
             ("duration", duration_text(report["duration_s"])), ("workers", report["workers"]),
             ("bottleneck", report["bottleneck"]), ("breaking point", breaking_point_text(report)),
             ("offered max", f"{_fmt(report['offered_cps_max'])} calls/s"),
             ("achieved max (3 s avg)", f"{_fmt(report['achieved_cps_max'])} calls/s")]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return (f'<h1 class="verdict" style="color:{colour}">{_e(verdict)} {interrupted}</h1>\n'
            f'<p class="desc">{_e(report["description"] or "")}</p>\n<table class="facts">{rows}</table>')


def _html_reasons(report: dict[str, Any]) -> str:
    if not report["reasons"]:
        return ""
    return "<h2>Why</h2><ul>" + "".join(f"<li>{_e(r)}</li>" for r in report["reasons"]) + "</ul>"


def _html_criteria(report: dict[str, Any]) -> str:
    rows = [[c["name"], f"{_fmt(c['limit'])}{_unit_text(c['unit'])}", f"{_fmt(c['value'])}{_unit_text(c['unit'])}",
             ("pass", "PASS") if c["pass"] else ("fail", "FAIL"), c["where"]] for c in report["criteria"]]
    return "<h2>Criteria</h2>" + _table(["criterion", "limit", "value", "result", "where"], rows,
                                        empty="no criteria in the profile")


def _html_calls(report: dict[str, Any]) -> str:
    calls = report["calls"]
    totals = _table(["attempted", "completed", "answered", "failed", "aborted", "Call-IDs logged"],
                    [[calls["attempted"], calls["completed"], calls["answered"], calls["failed"], calls["aborted"],
                      calls["logged"]]])
    codes = _table(["code", "calls"], [[k, v] for k, v in calls["by_code"].items()], empty="no calls")
    latency = _table(["", "p50", "p95", "p99"],
                     [[name, *(_fmt(report[key][q]) for q in ("p50", "p95", "p99"))]
                      for name, key in (("PDD (ms)", "pdd_ms"), ("setup (ms)", "setup_ms"))])
    retrans = f"<p>SIP retransmissions: {_e(_fmt(report['retransmissions_pct']))} % of messages sent</p>"
    return "<h2>Calls</h2>" + totals + codes + latency + retrans


def _html_cdr(report: dict[str, Any]) -> str:
    cdr = report["cdr"]
    if cdr is None:
        return "<h2>CDRs</h2><p>no CDR reconciliation in this run directory</p>"
    if cdr["skipped"]:
        return f"<h2>CDRs</h2><p>not checked: {_e(cdr['skipped'])}</p>"
    table = _table(list(_CDR_KEYS) + ["source"], [[_fmt(cdr[k]) for k in _CDR_KEYS] + [cdr["source"] or ""]])
    examples = _table(["call_id", "kind", "detail"],
                      [[e.get("call_id", ""), e.get("kind", ""), e.get("detail", "")] for e in cdr["examples"]],
                      empty="")
    return "<h2>CDRs</h2>" + table + examples


def _html_resources(report: dict[str, Any]) -> str:
    keys = ("first", "last", "min", "max", "mean", "slope_per_h", "samples")
    rows = [[metric, *(_fmt(s.get(k)) if isinstance(s, dict) else "" for k in keys)]
            for metric, s in sorted(report["resources"].items())]
    return "<h2>Resources</h2>" + _table(["metric", *keys], rows, empty="no resource samples")


def _html_windows(report: dict[str, Any]) -> str:
    windows = report["windows"]
    shown = windows
    note = ""
    if len(windows) > _HTML_WINDOWS_MAX:
        step = math.ceil(len(windows) / _HTML_WINDOWS_MAX)
        shown = [w for i, w in enumerate(windows) if w.get("broken") or i % step == 0]
        note = f"<p>{len(shown)} of {len(windows)} windows shown (every broken one); all are in load.json</p>"
    rows = []
    for w in shown:
        setup = w.get("setup") if isinstance(w.get("setup"), dict) else {}
        broken = ", ".join(w.get("broken") or [])
        state = ("fail", broken) if broken else ("pass", "held") if w.get("judged", True) else ("", "not judged")
        rows.append([f"{w.get('start')}–{w.get('end')}", _fmt(w.get("offered_cps")), _fmt(w.get("achieved_cps")),
                     w.get("completed"), _fmt(w.get("asr")), _fmt(w.get("failed_pct")), _fmt(setup.get("p95")),
                     state])
    return "<h2>Windows</h2>" + note + _table(
        ["t (s)", "offered", "achieved", "completed", "asr", "failed %", "setup p95", "broken"], rows,
        empty="no judged windows")


def _html_events(events: list[dict[str, Any]]) -> str:
    rows = [[_fmt(e.get("t")), e.get("event", ""),
             json.dumps({k: v for k, v in mask_fields(e).items() if k not in ("t", "event")}, default=str)]
            for e in events[:_HTML_EVENTS_MAX]]
    more = f"<p>{len(events) - _HTML_EVENTS_MAX} more in events.jsonl</p>" if len(events) > _HTML_EVENTS_MAX else ""
    return "<h2>Events</h2>" + _table(["t (s)", "event", "data"], [[a, b, _mask(c)] for a, b, c in rows],
                                      empty="no events recorded") + more


def _html_files(report: dict[str, Any]) -> str:
    items = []
    for role, paths in report["files"].items():
        for path in paths if isinstance(paths, list) else [paths]:
            items.append(f'<li>{_e(role)}: <a href="{_e(path)}">{_e(path)}</a></li>')
    return "<h2>Files</h2><ul>" + "".join(items) + "</ul>"


def _table(header: list[str], rows: list[list[Any]], empty: str = "—") -> str:
    if not rows:
        return f"<p>{_e(empty)}</p>" if empty else ""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    """A cell; ``(css class, text)`` colours it (pass/fail)."""
    if isinstance(value, tuple):
        return f'<td class="{_e(value[0])}">{_e(value[1])}</td>'
    return f"<td>{_e(value)}</td>"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #1f2328; max-width: 1000px; }}
h1.verdict {{ font-size: 3em; margin: 0.2em 0; }}
.badge {{ font-size: 0.35em; background: #bf8700; color: white; padding: 0.2em 0.5em; border-radius: 4px;
          vertical-align: middle; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }}
th, td {{ border: 1px solid #d0d7de; padding: 0.2em 0.6em; text-align: left; }}
table.facts th {{ background: #f6f8fa; }}
td.pass {{ color: #1a7f37; font-weight: bold; }}
td.fail {{ color: #cf222e; font-weight: bold; }}
figure {{ margin: 0.5em 0; }}
img {{ max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""


# -- small helpers ------------------------------------------------------------------------------
def mask_fields(data: Any) -> Any:
    """An event with secret-looking keys' values hidden, at any depth (passwords never
    reach the page, whatever a future event carries)."""
    if isinstance(data, dict):
        return {k: (MASK if _SECRET_KEY_RE.search(str(k)) else mask_fields(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_fields(v) for v in data]
    return data


_URI_PASSWORD_RE = re.compile(r"((?:sips?|https?|wss?|sqlite|postgres(?:ql)?|mysql)://[^:@/\s]+"
                              r"|sips?:[^:@/\s]+):[^@\s]+@")


def _mask(text: str) -> str:
    """Digest responses and nonces, and ``user:password@`` in URIs, hidden."""
    return _URI_PASSWORD_RE.sub(lambda m: f"{m.group(1)}:{MASK}@", mask_secrets(text))


def warmup_seconds(info: dict[str, Any]) -> float:
    judging = (info.get("profile") or {}).get("judging") or {}
    return seconds_of(judging.get("warmup")) or 0.0


def seconds_of(value: Any) -> float | None:
    """A duration from run.json (the profile's own syntax, or seconds); None when it is not one."""
    from qa.load.profile import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        return None


def duration_text(seconds: float) -> str:
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{seconds:.1f} s"


def _overrides(value: Any) -> dict[str, Any]:
    value = value if isinstance(value, dict) else {}
    return {"rate": _num(value.get("rate")), "duration": _num(seconds_of(value.get("duration")))}


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _fmt(value: Any) -> str:
    """Numbers for people: no trailing noise, thousands separated."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.1f}"


def _finite(value: Any) -> Any:
    """NaN and infinities become null (``json.dumps`` would write invalid JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
