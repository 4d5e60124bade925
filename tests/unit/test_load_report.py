"""load.json / xunit.xml / load.html from a run directory (qa.load.report, qa.load.plots).

The run directories are synthetic, written with qa.load.model's own writers: a clean
run, a stress run that broke, a soak killed mid-write (torn last lines, no ``end``
event), and a run that placed no call. The verdict is given as a plain dict in the
shape of qa.load.criteria's dataclasses (``verdict_dict``), so these tests prove the
report's own numbers; the last test goes through the real judge() when it exists.
"""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from qa.errors import BadInput
from qa.load import model, plots, report
from qa.load.model import CallRow, CsvAppender, Second, SecondHistograms
from qa.load.profile import parse_profile

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "load.schema.json").read_text())
STARTED = "2024-05-01T10:00:00Z"
SECRET_DIGEST = "deadbeefcafe0123"
SECRET_PASSWORD = "hunter2-very-secret"


# -- building run directories -------------------------------------------------------------------
def profile_dict(kind: str) -> dict:
    """A profile as run.json holds it: validated, then ``model_dump(mode="json")``."""
    return parse_profile(profile_yaml(kind), "synthetic.yaml").model_dump(mode="json")


def profile_yaml(kind: str) -> dict:
    return {
        "description": f"synthetic {kind} run",
        "kind": kind,
        "scenario": {"sipp": "uac_load", "transport": "udp",
                     "destinations": [{"number": "15550001234", "weight": 1, "expect": 200}],
                     "accounts": "all", "hold": "2s", "media": False, "call_timeout": "32s"},
        "rate": {"shape": "constant", "cps": 10, "duration": "20s", "max_concurrent": 500},
        "criteria": {"asr_min": 0.99, "failed_pct_max": 1.0, "setup_ms": {"p95": 800}},
        "judging": {"window": "5s", "settle": "2s", "warmup": "0s", "stop_on_break": False, "min_calls": 20},
    }


def make_run(root: Path, kind: str, seconds: list[Second], histograms: list[SecondHistograms], *,
             events: list[tuple[float, str, dict]] = (), resources: list[tuple[float, str, float]] = (),
             cdr: dict | None = None, calls: list[CallRow] = (), extra_files: tuple[str, ...] = (),
             torn: bool = False, run_extra: dict | None = None) -> Path:
    """A run directory as the master writes it; ``torn`` cuts every file mid-line (a kill)."""
    run_dir = root / kind
    run_dir.mkdir()
    run = {"profile_name": kind, "profile_path": f"profiles/{kind}.yaml", "profile": profile_dict(kind),
           "kind": kind, "environment": "lab", "target": "sip:127.0.0.1:5060", "workers": 2, "started": STARTED,
           "overrides": {"rate": None, "duration": None}, "capture": {"enabled": False, "files": []},
           **(run_extra or {})}
    model.write_json(run_dir / model.RUN_FILE, run)
    if seconds:
        timeline = CsvAppender(run_dir / model.TIMELINE_FILE, Second.columns())
        for s in seconds:
            timeline.write(s.to_row())
        timeline.close()
        with open(run_dir / model.HISTOGRAMS_FILE, "w", encoding="utf-8") as fh:
            fh.writelines(h.to_json() + "\n" for h in histograms)
    if calls:
        appender = CsvAppender(run_dir / model.CALLS_FILE, CallRow.COLUMNS)
        appender.write_text(model.call_rows_text(calls))
        appender.close()
    if resources:
        appender = CsvAppender(run_dir / model.RESOURCES_FILE, ("t", "metric", "value"))
        for t, metric, value in resources:
            appender.write((t, metric, value))
        appender.close()
    for t, name, data in events:
        model.append_event(run_dir / model.EVENTS_FILE, t, name, **data)
    if cdr is not None:
        model.write_json(run_dir / model.CDR_FILE, cdr)
    for name in extra_files:
        (run_dir / name).write_bytes(b"x")
    if torn:
        for name, tail in ((model.TIMELINE_FILE, "10,5,5,3,2"), (model.HISTOGRAMS_FILE, '{"t":10,"pdd":{"9'),
                           (model.EVENTS_FILE, '{"t":10.0,"event":"sta'), (model.CALLS_FILE, "10,w1,abc@h,17")):
            with open(run_dir / name, "a", encoding="utf-8") as fh:
                fh.write(tail)
    return run_dir


def criterion(name: str, limit: float, value: float | None, passed: bool, unit: str, where: str = "run") -> dict:
    return {"name": name, "limit": limit, "value": value, "passed": passed, "unit": unit, "where": where}


def window(start: int, end: int, offered: float, achieved: float, completed: int, failed: int,
           setup_p95: float | None, broken: list[str]) -> dict:
    """A Window of qa.load.criteria as a dict."""
    return {"start": start, "end": end, "offered_cps": offered, "achieved_cps": achieved, "completed": completed,
            "answered": completed - failed, "failed": failed, "aborted": 0,
            "asr": (completed - failed) / completed if completed else None,
            "failed_pct": 100.0 * failed / completed if completed else None, "retransmissions_pct": 0.0,
            "pdd": {"p50": 90.0, "p95": 400.0, "p99": 400.0}, "setup": {"p50": 150.0, "p95": setup_p95, "p99": None},
            "cdr_checked": None, "cdr_missing": None, "cdr_loss_pct": None, "generator_saturated": False,
            "reasons_generator": [], "broken": broken}


def resource_summary(samples: list[tuple[float, float]], slope: float) -> dict:
    values = [v for _, v in samples]
    return {"first": values[0], "last": values[-1], "min": min(values), "max": max(values),
            "mean": sum(values) / len(values), "slope_per_h": slope, "samples": len(values)}


def write_with(monkeypatch, run_dir: Path, verdict_dict: dict, resources_dict: dict | None = None) -> dict:
    """report.write() with the verdict engine replaced by a given verdict (plain dicts)."""
    monkeypatch.setattr(report, "judge_run", lambda run: (verdict_dict, resources_dict or {}))
    return report.write(run_dir)


def validate(data: dict) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(data)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


# -- the four runs ------------------------------------------------------------------------------
@pytest.fixture
def clean_run(tmp_path):
    """20 s at 10 calls/s, all answered; seconds 5 and 6 are bursty (13 then 7 created)."""
    seconds, histograms = [], []
    for t in range(20):
        created = {5: 13, 6: 7}.get(t, 10)
        seconds.append(Second(t=t, offered_cps=10.0, created=created, concurrent=20, completed=created,
                              answered=created, codes={"200": created}, pdd_p95=999.0, setup_p95=999.0,
                              sent=70, retransmissions=0, sipp_cpu_max=20.0, host_cpu_max=15.0, workers=2, sipps=2))
        pdd = {90: 9, 400: 1} if t < 19 else {90: 8, 400: 1, 1000: 1}
        histograms.append(SecondHistograms(t=t, pdd=pdd, setup={150: 9, 300: 1}))
    rss = [(float(t), 100.0 + 0.01 * t) for t in range(0, 20, 5)]
    resources = [(t, "platform.rss_mb", v) for t, v in rss] + [(float(t), "platform.cpu_pct", 40.0)
                                                              for t in range(0, 20, 5)]
    events = [(0, "start", {"rate": 10}),
              (5, "stage", {"note": f'Authorization: Digest username="1001", response="{SECRET_DIGEST}"',
                            "password": SECRET_PASSWORD}),
              (6, "worker_joined", {"worker": {"id": "w2", "account": {"user": "1001", "secret": SECRET_PASSWORD}}}),
              (20, "end", {})]
    cdr = {"checked": 200, "answered": 200, "missing": 0, "duplicate": 0, "mismatched": 0, "loss_pct": 0.0,
           "billable_seconds_lost": 0.0, "source": "sqlite:///lab/lab.db", "by_second": {"3": [10, 0]},
           "examples": []}
    calls = [CallRow(t, "w1", f"{t}@h", 1.7e9 + t, 90.0, 150.0, 2.0, 200, 200, "1001", "15550001234")
             for t in range(5)]
    run_dir = make_run(tmp_path, "load", seconds, histograms, events=events, resources=resources, cdr=cdr,
                       calls=calls, extra_files=("capture-0001.pcap", "capture-0002.pcap", "locust_stats.csv"),
                       run_extra={"interrupted": False})
    verdict_dict = {
        "verdict": "pass", "bottleneck": "none", "breaking_point_cps": None, "broke_at": None,
        "criteria": [criterion("asr_min", 0.99, 1.0, True, "ratio"),
                     criterion("failed_pct_max", 1.0, 0.0, True, "%"),
                     criterion("setup_p95_ms_max", 800.0, 300.0, True, "ms"),
                     criterion("memory_slope_max_mb_per_h", 50.0, 36.0, True, "MB/h")],
        "windows": [window(s, s + 5, 10.0, 10.0, 50, 0, 300.0, []) for s in range(0, 20, 5)],
        "reasons": [],
    }
    return run_dir, verdict_dict, {"platform.rss_mb": resource_summary(rss, 36.0)}


@pytest.fixture
def stress_run(tmp_path):
    """Offered 10 -> 39 calls/s; the platform holds 30; 503s from t=20, timeouts from t=25.

    The last second has 5 calls created but never completed (``unfinished``).
    """
    seconds, histograms = [], []
    for t in range(30):
        created = 10 + t if t < 20 else 30
        completed = created if t < 29 else 25
        codes = {"200": created} if t < 20 else {"200": completed - 5 - (1 if t >= 25 else 0), "503": 5}
        if t >= 25:
            codes["timeout"] = 1
        failed = completed - codes["200"]
        seconds.append(Second(t=t, offered_cps=10.0 + t, created=created, concurrent=3 * created,
                              completed=completed, answered=codes["200"], failed=failed,
                              aborted=codes.get("timeout", 0), codes=codes, sent=1000,
                              retransmissions=30 if t >= 20 else 0, sipp_cpu_max=35.0, host_cpu_max=30.0,
                              workers=1, sipps=1))
        histograms.append(SecondHistograms(t=t, pdd={100: completed}, setup={200 if t < 20 else 1200: completed}))
    windows = [window(s, s + 5, 12.0 + s, min(12.0 + s, 30.0), 60, 0 if s < 20 else 25, 200.0 if s < 20 else 1200.0,
                      [] if s < 20 else ["failed_pct_max", "setup_p95_ms_max"]) for s in range(0, 30, 5)]
    verdict_dict = {
        "verdict": "fail", "bottleneck": "platform", "breaking_point_cps": 27.0, "broke_at": 20,
        "criteria": [criterion("asr_min", 0.9, 0.97, True, "ratio", "t=0-20 s"),
                     criterion("failed_pct_max", 1.0, 8.33, False, "%", "t=20-25 s"),
                     criterion("setup_p95_ms_max", 800.0, 1200.0, False, "ms", "t=20-25 s"),
                     criterion("breaking_point_min_cps", 30.0, 27.0, False, "calls/s", "run")],
        "windows": windows,
        "reasons": ["failed 8.33 % > 1 % at 32 calls/s (t=20-25 s)",
                    "setup p95 1,200 ms > 800 ms at 32 calls/s (t=20-25 s)"],
    }
    events = [(0, "start", {}), (20, "break", {"criteria": ["failed_pct_max"]}), (30, "end", {})]
    return make_run(tmp_path, "stress", seconds, histograms, events=events), verdict_dict


@pytest.fixture
def killed_run(tmp_path):
    """A soak killed at t=10: every file ends in half a line; no ``end`` event, no cdr.json."""
    seconds = [Second(t=t, offered_cps=5.0, created=5, concurrent=10, completed=5, answered=5, codes={"200": 5})
               for t in range(10)]
    histograms = [SecondHistograms(t=t, pdd={80: 5}, setup={120: 5}) for t in range(10)]
    calls = [CallRow(0, "w1", f"{i}@h", 1.7e9, 80.0, 120.0, 2.0, 200, 200, "1001", "15550001234") for i in range(3)]
    run_dir = make_run(tmp_path, "soak", seconds, histograms, events=[(0, "start", {})], calls=calls,
                       resources=[(0.0, "platform.rss_mb", 100.0), (5.0, "platform.rss_mb", 101.0)], torn=True)
    verdict_dict = {"verdict": "pass", "bottleneck": "none", "breaking_point_cps": None, "broke_at": None,
                    "criteria": [criterion("asr_min", 0.99, 1.0, True, "ratio")],
                    "windows": [window(0, 5, 5.0, 5.0, 25, 0, 120.0, []), window(5, 10, 5.0, 5.0, 25, 0, 120.0, [])],
                    "reasons": []}
    return run_dir, verdict_dict


@pytest.fixture
def empty_run(tmp_path):
    """The target answered the OPTIONS probe, then no call was ever placed."""
    run_dir = make_run(tmp_path, "load", [], [], events=[(0, "start", {}), (3, "end", {})],
                       cdr={"checked": 0, "skipped": "the environment has no CDR source"})
    verdict_dict = {"verdict": "fail", "bottleneck": "generator", "breaking_point_cps": None, "broke_at": None,
                    "criteria": [criterion("asr_min", 0.99, None, False, "ratio")], "windows": [],
                    "reasons": ["no call completed"]}
    return run_dir, verdict_dict


# -- load.json ----------------------------------------------------------------------------------
def test_clean_run_numbers(monkeypatch, clean_run):
    run_dir, verdict_dict, resources_dict = clean_run
    data = write_with(monkeypatch, run_dir, verdict_dict, resources_dict)
    validate(data)
    assert json.loads((run_dir / "load.json").read_text()) == data
    assert (data["version"], data["profile"], data["kind"], data["environment"]) == (1, "load", "load", "lab")
    assert data["verdict"] == "pass" and data["interrupted"] is False
    assert data["started"] == "2024-05-01T10:00:00.000Z" and data["ended"] == "2024-05-01T10:00:20.000Z"
    assert data["calls"] == {"attempted": 200, "completed": 200, "answered": 200, "failed": 0, "aborted": 0,
                             "logged": 5, "by_code": {"200": 200}}
    # seconds 5 and 6 created 13 and 7: the 3-second average never exceeds 11
    assert data["offered_cps_max"] == 10.0 and data["achieved_cps_max"] == 11.0
    # merged histograms, not the timeline's per-second columns (999) nor the worst second (1000)
    assert data["pdd_ms"] == {"p50": 90.0, "p95": 400.0, "p99": 400.0}
    assert data["setup_ms"] == {"p50": 150.0, "p95": 300.0, "p99": 300.0}
    assert data["retransmissions_pct"] == 0.0
    assert data["cdr"]["checked"] == 200 and data["cdr"]["loss_pct"] == 0.0 and "by_second" not in data["cdr"]
    assert data["resources"]["platform.rss_mb"]["slope_per_h"] == 36.0
    assert [c["name"] for c in data["criteria"]] == [c["name"] for c in verdict_dict["criteria"]]
    assert all(c["pass"] for c in data["criteria"])
    assert data["timeline"] == "timeline.csv"
    assert data["files"]["capture"] == ["capture-0001.pcap", "capture-0002.pcap"]
    assert data["files"]["locust"] == ["locust_stats.csv"]
    assert {data["files"][k] for k in ("timeline", "calls", "resources", "events", "cdr", "html", "xunit")} == {
        "timeline.csv", "calls.csv", "resources.csv", "events.jsonl", "cdr.json", "load.html", "xunit.xml"}
    assert all((run_dir / p).exists() for p in data["files"].values() if isinstance(p, str))


def test_stress_run_numbers(monkeypatch, stress_run):
    run_dir, verdict_dict = stress_run
    data = write_with(monkeypatch, run_dir, verdict_dict)
    validate(data)
    assert data["calls"]["by_code"] == {"200": 630, "503": 50, "timeout": 5, "unfinished": 5}
    assert sum(data["calls"]["by_code"].values()) == data["calls"]["attempted"] == 690
    assert (data["calls"]["completed"], data["calls"]["answered"], data["calls"]["failed"],
            data["calls"]["aborted"]) == (685, 630, 55, 5)
    assert data["offered_cps_max"] == 39.0 and data["achieved_cps_max"] == 30.0
    assert data["retransmissions_pct"] == 1.0  # 300 of 30,000 messages
    assert data["setup_ms"]["p50"] == 200.0 and data["setup_ms"]["p95"] == 1200.0
    assert (data["verdict"], data["bottleneck"], data["breaking_point_cps"], data["broke_at"]) == (
        "fail", "platform", 27.0, 20)
    assert [w["broken"] != [] for w in data["windows"]] == [False] * 4 + [True] * 2
    assert data["generator"]["retransmissions"] == 300 and data["generator"]["concurrent_max"] == 90
    assert data["cdr"] is None and data["interrupted"] is False


def test_killed_run_is_interrupted_and_keeps_what_it_had(monkeypatch, killed_run):
    run_dir, verdict_dict = killed_run
    data = write_with(monkeypatch, run_dir, verdict_dict)
    validate(data)
    assert data["interrupted"] is True
    assert data["duration_s"] == 10.0 and data["ended"] == "2024-05-01T10:00:10.000Z"
    assert data["calls"]["attempted"] == 50 and data["calls"]["by_code"] == {"200": 50}
    assert data["calls"]["logged"] == 3  # the torn fourth row is not a call
    assert data["pdd_ms"]["p99"] == 80.0 and data["cdr"] is None
    assert "INTERRUPTED" in (run_dir / "load.html").read_text()
    assert "interrupted" in ET.parse(run_dir / "xunit.xml").getroot().find("testcase[@name='verdict']/system-out").text


def test_interrupted_when_runner_says_so_even_with_an_end_event(monkeypatch, tmp_path):
    run_dir = make_run(tmp_path, "load", [], [], events=[(0, "start", {}), (4, "interrupted", {}), (4, "end", {})],
                       run_extra={"interrupted": True})
    data = write_with(monkeypatch, run_dir, {"verdict": "fail", "bottleneck": "none", "criteria": [],
                                             "windows": [], "reasons": []})
    assert data["interrupted"] is True and data["duration_s"] == 4.0


def test_run_without_calls(monkeypatch, empty_run):
    run_dir, verdict_dict = empty_run
    data = write_with(monkeypatch, run_dir, verdict_dict)
    validate(data)
    assert data["calls"] == {"attempted": 0, "completed": 0, "answered": 0, "failed": 0, "aborted": 0,
                             "logged": 0, "by_code": {}}
    assert data["pdd_ms"] == {"p50": None, "p95": None, "p99": None}
    assert data["achieved_cps_max"] == 0.0 and data["retransmissions_pct"] is None
    assert data["timeline"] is None and data["duration_s"] == 3.0
    assert data["cdr"]["checked"] == 0 and data["cdr"]["skipped"] == "the environment has no CDR source"
    assert data["criteria"][0]["value"] is None and data["criteria"][0]["pass"] is False
    html_text = (run_dir / "load.html").read_text()
    assert html_text.count("<img ") == len(plots.PLOTS) and "Traceback" not in html_text


def test_not_a_run_directory(tmp_path):
    (tmp_path / "timeline.csv").write_text("t\n")
    with pytest.raises(BadInput, match=r"^not a load run directory: .*\(no run\.json\)$") as info:
        report.build(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_a_damaged_profile_in_run_json_names_the_file_and_field(tmp_path):
    run_dir = make_run(tmp_path, "load", [], [])
    run = json.loads((run_dir / "run.json").read_text())
    run["profile"]["rate"]["cps"] = -1
    model.write_json(run_dir / "run.json", run)
    with pytest.raises(BadInput, match=r"run\.json: rate\.cps: "):
        report.load_profile(report.read_run(run_dir))


def test_schema_rejects_an_undocumented_key(monkeypatch, clean_run):
    run_dir, verdict_dict, resources_dict = clean_run
    data = write_with(monkeypatch, run_dir, verdict_dict, resources_dict)
    for spoil in (lambda d: d.update(surprise=1), lambda d: d["calls"].update(dropped=0),
                  lambda d: d["criteria"][0].update(passed=True), lambda d: d["cdr"].update(by_second={})):
        spoilt = json.loads(json.dumps(data))
        spoil(spoilt)
        with pytest.raises(jsonschema.ValidationError):
            validate(spoilt)


# -- xunit.xml ----------------------------------------------------------------------------------
def test_xunit_one_case_per_criterion_failures_with_numbers(monkeypatch, stress_run):
    run_dir, verdict_dict = stress_run
    write_with(monkeypatch, run_dir, verdict_dict)
    suite = ET.parse(run_dir / "xunit.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "voipqa.load.stress"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == [c["name"] for c in verdict_dict["criteria"]] + ["verdict"]
    failed = {name for name, c in cases.items() if c.find("failure") is not None}
    assert failed == {"failed_pct_max", "setup_p95_ms_max", "breaking_point_min_cps", "verdict"}
    assert suite.get("tests") == "5" and suite.get("failures") == "4"
    assert cases["failed_pct_max"].find("failure").get("message") == "failed_pct_max: 8.33 % > 1 % — t=20-25 s"
    assert cases["breaking_point_min_cps"].find("failure").get("message") == (
        "breaking_point_min_cps: 27 calls/s < 30 calls/s — run")
    out = cases["verdict"].find("system-out").text
    assert "bottleneck: platform" in out and "breaking point: 27 calls/s (first broken window at t=20 s)" in out


def test_xunit_clean_run_has_no_failure(monkeypatch, clean_run):
    run_dir, verdict_dict, resources_dict = clean_run
    write_with(monkeypatch, run_dir, verdict_dict, resources_dict)
    suite = ET.parse(run_dir / "xunit.xml").getroot()
    assert len(suite.findall("testcase")) == 5 and suite.findall(".//failure") == []


def test_xunit_criterion_without_value(monkeypatch, empty_run):
    run_dir, verdict_dict = empty_run
    write_with(monkeypatch, run_dir, verdict_dict)
    failure = ET.parse(run_dir / "xunit.xml").getroot().find("testcase[@name='asr_min']/failure")
    assert failure.get("message") == "asr_min: no value (limit 0.99) — run"


# -- load.html ----------------------------------------------------------------------------------
def test_html_fail_page(monkeypatch, stress_run):
    run_dir, verdict_dict = stress_run
    write_with(monkeypatch, run_dir, verdict_dict)
    page = (run_dir / "load.html").read_text()
    assert '<h1 class="verdict" style="color:#cf222e">FAIL' in page
    assert page.count("<img ") == len(plots.PLOTS) and "Traceback" not in page
    assert "setup p95 1,200 ms &gt; 800 ms at 32 calls/s (t=20-25 s)" in page  # reasons, escaped
    assert "27 calls/s" in page and "platform" in page
    assert "20–25" in page and "failed_pct_max, setup_p95_ms_max" in page  # the windows table
    assert 'href="timeline.csv"' in page


def test_html_pass_page_masks_secrets(monkeypatch, clean_run):
    run_dir, verdict_dict, resources_dict = clean_run
    write_with(monkeypatch, run_dir, verdict_dict, resources_dict)
    page = (run_dir / "load.html").read_text()
    assert '<h1 class="verdict" style="color:#1a7f37">PASS' in page and "INTERRUPTED" not in page
    assert SECRET_DIGEST not in page and SECRET_PASSWORD not in page
    assert "stage" in page and "platform.rss_mb" in page and 'href="capture-0001.pcap"' in page


def test_html_escapes_what_the_run_wrote(monkeypatch, tmp_path):
    run_dir = make_run(tmp_path, "load", [], [], events=[(0, "start", {"note": "<script>alert(1)</script>"})])
    write_with(monkeypatch, run_dir, {"verdict": "fail", "bottleneck": "none", "criteria": [], "windows": [],
                                      "reasons": ["<b>bold</b>"]})
    page = (run_dir / "load.html").read_text()
    assert "<script>" not in page and "<b>bold" not in page and "&lt;b&gt;bold" in page


# -- plots --------------------------------------------------------------------------------------
def test_every_plot_draws_900x300(monkeypatch, stress_run):
    run_dir, verdict_dict = stress_run
    run = report.read_run(run_dir)
    data = report.plot_data(report.assemble(run, verdict_dict, {}), run)
    data.resources = {"platform.rss_mb": [(float(t), 100.0 + t) for t in range(0, 30, 5)],
                      "platform.shm_used_mb": [(float(t), 50.0) for t in range(0, 30, 5)],
                      "platform.cpu_pct": [(float(t), 30.0 + t) for t in range(0, 30, 5)]}
    for title, draw in plots.PLOTS:
        assert png_size(draw(data)) == (900, 300), title  # drawn directly: a bug here raises


def test_long_run_plots_are_binned_and_exact():
    """Two hours: latency percentiles come from histograms merged per 6-second bin."""
    seconds = [Second(t=t, offered_cps=5.0, created=5, completed=5, answered=5, codes={"200": 4, "486": 1},
                      failed=1, sent=35) for t in range(7200)]
    histograms = [SecondHistograms(t=t, pdd={100: 5}, setup={200 if t % 6 else 900: 5}) for t in range(7200)]
    data = plots.PlotData(seconds=seconds, duration_s=7200.0, histograms=histograms)
    axis = plots.TimeAxis.for_duration(7200.0)
    lines = plots.latency_series(data, axis)
    assert axis.bin_s == 6 and len(lines["setup", "p99"][0]) == 1200
    assert set(lines["setup", "p99"][1]) == {900.0} and set(lines["setup", "p50"][1]) == {200.0}
    for title, draw in plots.PLOTS:
        assert png_size(draw(data)) == (900, 300), title


def test_plots_without_data_say_so():
    empty = plots.PlotData(seconds=[], duration_s=0.0)
    for title, draw in plots.PLOTS:
        assert png_size(draw(empty)) == (900, 300), title


def test_time_axis_follows_the_run_length():
    short, hour, soak = (plots.TimeAxis.for_duration(d) for d in (600, 3600, 8 * 3600))
    assert (short.label, short.bin_s) == ("time since start (s)", 1)
    assert hour.label.startswith("time since start (min") and soak.label.startswith("time since start (h")
    assert soak.bin_s == 24 and "mean per 24 s" in soak.label  # 8 h drawn as 1,200 points
    xs, ys = soak.series([(0, 1.0), (10, 3.0), (24, 5.0), (30, None)])
    assert (xs, ys) == ([0.0, 24 / 3600], [2.0, 5.0])


def test_broken_windows_merge_into_spans():
    windows = [{"start": s, "end": s + 5, "broken": ["asr_min"] if s in (10, 15, 30) else []} for s in range(0, 40, 5)]
    assert plots.broken_spans(windows) == [(10.0, 20.0), (30.0, 35.0)]


def test_drift_line_has_the_judged_slope():
    samples = [(float(t), 100.0 + t / 36.0) for t in range(0, 3600, 60)]  # 100 MB/h
    (t0, v0), (t1, v1), slope = plots._drift_line(samples, 0.0, None)
    assert slope == pytest.approx(100.0) and (v1 - v0) / (t1 - t0) * 3600 == pytest.approx(100.0)
    (_, w0), (_, w1), given = plots._drift_line(samples, 600.0, 50.0)
    assert given == 50.0 and (w1 - w0) / (t1 - 600.0) * 3600 == pytest.approx(50.0)


# -- end to end: the real profile model and verdict engine ---------------------------------------
def stepped_stress_run(root: Path) -> Path:
    """A stress step shape 10/20/30/40 calls/s, 5 s a step; at 40 the platform answers 20 % 503
    with 1.2 s setup times while the generator stays idle (a platform bottleneck)."""
    profile = parse_profile({
        "kind": "stress",
        "scenario": {"sipp": "uac_load", "destinations": [{"number": "15550001234"}]},
        "rate": {"shape": "step", "start_cps": 10, "step_cps": 10, "step_duration": "5s", "steps": 4},
        "criteria": {"failed_pct_max": 1.0, "setup_ms": {"p95": 800}, "breaking_point_min_cps": 35},
        "judging": {"window": "5s", "settle": "1s", "min_calls": 5},
    }, "profiles/stress.yaml")
    seconds, histograms = [], []
    for t in range(1, 21):
        cps = 10 * ((t - 1) // 5 + 1)
        failed = cps // 5 if cps == 40 else 0
        setup = 1200 if cps == 40 else 150
        seconds.append(Second(t=t, offered_cps=float(cps), created=cps, concurrent=2 * cps, completed=cps,
                              answered=cps - failed, failed=failed, codes={"200": cps - failed, "503": failed},
                              sent=7 * cps, sipp_cpu_max=20.0, host_cpu_max=20.0, workers=1, sipps=1))
        histograms.append(SecondHistograms(t=t, pdd={100: cps}, setup={setup: cps - failed}))
    run_dir = make_run(root, "stress", seconds, histograms, events=[(0, "start", {}), (20, "end", {})],
                       resources=[(float(t), "platform.rss_mb", 100.0 + t) for t in range(0, 21, 2)],
                       run_extra={"profile": profile.model_dump(mode="json"), "interrupted": False})
    return run_dir


def test_end_to_end_through_the_real_judge(tmp_path):
    run_dir = stepped_stress_run(tmp_path)
    data = report.write(run_dir)
    validate(data)
    assert (data["verdict"], data["bottleneck"], data["breaking_point_cps"]) == ("fail", "platform", 30.0)
    assert data["broke_at"] is not None and 15 <= data["broke_at"] < 20
    assert [c["name"] for c in data["criteria"]] == ["failed_pct_max", "setup_p95_ms_max", "breaking_point_min_cps"]
    assert {c["name"]: c["pass"] for c in data["criteria"]}["breaking_point_min_cps"] is False
    assert data["calls"]["by_code"] == {"200": 460, "503": 40} and data["achieved_cps_max"] == 40.0
    assert data["resources"]["platform.rss_mb"]["samples"] == 11 and data["resources"]["platform.rss_mb"]["max"] == 120
    suite = ET.parse(run_dir / "xunit.xml").getroot()
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == [c["name"] for c in data["criteria"]] + ["verdict"]
    assert cases["breaking_point_min_cps"].find("failure").get("message").startswith(
        "breaking_point_min_cps: 30 calls/s < 35 calls/s — ")
    assert "bottleneck: platform" in cases["verdict"].find("system-out").text
    page = (run_dir / "load.html").read_text()
    assert "FAIL" in page and page.count("<img ") == len(plots.PLOTS) and "Traceback" not in page


def test_real_judge_on_a_killed_run_and_a_run_without_calls(tmp_path, killed_run, empty_run):
    """No verdict engine surprise on the awkward directories: both still get their report."""
    for run_dir, _ in (killed_run, empty_run):
        data = report.write(run_dir)
        validate(data)
        assert (run_dir / "load.html").exists() and ET.parse(run_dir / "xunit.xml").getroot().tag == "testsuite"
    assert report.build(empty_run[0])["verdict"] == "fail"  # nothing completed: nothing proves a pass
    assert report.build(killed_run[0])["interrupted"] is True
