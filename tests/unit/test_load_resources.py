"""Resource sampling and drift: /proc readers, kamcmd parsing, Prometheus and JSON stats over a
real local HTTP server, the recorder's file and its error reporting, slopes and summaries."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from qa.errors import ConfigError
from qa.load import resources as R
from qa.load.model import read_resources

# What kamcmd printed against the lab (Kamailio 5.6.3), trimmed to two processes.
SHMMEM = "{\n\ttotal: 67108864\n\tfree: 60208696\n\tused: 5143184\n\treal_used: 6900168\n\tmax_used: 6953504\n" \
         "\tfragments: 39\n}\n"
PKG_STATS = ("{\n\tentry: 0\n\tpid: 7357\n\trank: 0\n\tused: 1030016\n\tfree: 6862816\n\treal_used: 1525792\n"
             "\ttotal_size: 8388608\n\ttotal_frags: 15\n\tdesc: main process - attendant\n}\n"
             "{\n\tentry: 1\n\tpid: 7362\n\trank: 1\n\tused: 1031256\n\tfree: 6860640\n\treal_used: 1527968\n"
             "\ttotal_size: 8388608\n\ttotal_frags: 13\n\tdesc: udp receiver child=0 sock=127.0.0.1:47758\n}\n")
DIALOG_STATS = "dialog:active_dialogs = 17\ndialog:early_dialogs = 0\ndialog:expired_dialogs = 0\n" \
               "dialog:failed_dialogs = 0\ndialog:processed_dialogs = 40\n"


def test_kamcmd_outputs_parse_to_megabytes_and_dialogs() -> None:
    assert R.parse_shmmem_used(SHMMEM) == pytest.approx(5.143184)       # used, not real_used
    assert R.parse_pkg_used(PKG_STATS) == pytest.approx((1030016 + 1031256) / 1e6)
    assert R.parse_active_dialogs(DIALOG_STATS) == 17.0
    assert R.parse_shmmem_used("error: 500 - command not found\n") is None
    assert R.parse_active_dialogs("") is None  # what 5.6 prints for 'dialog:active_dialogs'


# ----------------------------------------------------------------------------- /proc
def test_descendants_walk_the_whole_process_tree() -> None:
    stats = {p: R.ProcStat(p, pp, 0, 0) for p, pp in ((10, 1), (11, 10), (12, 10), (13, 11), (20, 1))}
    assert R.descendants(10, stats) == [10, 11, 12, 13]
    assert R.descendants(99, stats) == []


def test_process_sampler_reads_our_own_rss_and_cpu() -> None:
    sampler = R.ProcessSampler("voipqa", lambda: [os.getpid()])
    first = sampler.sample()
    assert first["voipqa.rss_mb"] > 1 and "voipqa.cpu_pct" not in first  # nothing to compare with yet
    wall0, cpu0 = time.monotonic(), time.process_time()
    while time.process_time() < cpu0 + 0.3:  # burn 0.3 s of CPU (a busy machine takes longer)
        pass
    second = sampler.sample()
    measured = 100 * (time.process_time() - cpu0) / (time.monotonic() - wall0)
    # /proc counts 10 ms ticks: the sampler's share of one core is ours, within a few ticks
    assert second["voipqa.cpu_pct"] == pytest.approx(measured, abs=max(5.0, 0.25 * measured)), measured


def test_process_sampler_is_quiet_when_its_processes_are_gone() -> None:
    """voipqa's own processes come and go (a run ending): no sample, and no complaint."""
    problems: list[str] = []
    assert R.ProcessSampler("voipqa", lambda: [2 ** 22 + 1]).sample(problems.append) == {}
    assert problems == []


def test_cpu_meter_ignores_a_reused_pid() -> None:
    meter = R.CpuMeter()
    assert meter.update([R.ProcStat(5, 1, 100, 7)], now=10.0) is None
    tck = R._CLK_TCK
    assert meter.update([R.ProcStat(5, 1, 100 + tck, 7)], now=12.0) == pytest.approx(50.0)
    assert meter.update([R.ProcStat(5, 1, 3, 999)], now=14.0) is None  # same pid, another process


def test_host_cpu_from_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    sampler = R.HostCpuSampler(str(stat))
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3\n")
    assert sampler.sample() == {}
    stat.write_text("cpu  250 0 150 900 100 0 0 0 0 0\ncpu0 1 2 3\n")  # +200 busy, +200 idle/iowait
    assert sampler.sample() == {"generator.host_cpu_pct": 50.0}


def test_host_cpu_of_this_machine_is_a_percentage() -> None:
    sampler = R.HostCpuSampler()
    sampler.sample()
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    value = sampler.sample()["generator.host_cpu_pct"]
    assert 0 < value <= 100


def test_lab_sampler_without_a_lab_says_so(tmp_path: Path) -> None:
    problems: list[str] = []
    assert R.LabSampler(tmp_path).sample(problems.append) == {}
    assert problems == [f"lab: no lab.json in {tmp_path} (is the lab running?)"]


# ----------------------------------------------------------------------------- HTTP sources
EXPOSITION = r"""# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes{job="kamailio",instance="sbc-1"} 1.5e+08
process_resident_memory_bytes{job="kamailio",instance="sbc-2"} 5e+07
process_resident_memory_bytes{job="rtpengine",instance="sbc-1"} 9.9e+07
process_open_fds 42
kamailio_shm_used{note="a \"quoted\", {braced} value"} 1048576 1712345678000
kamailio_dialogs_active NaN
http_request_duration_seconds_bucket{le="+Inf"} 12
not a metric line
"""


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        code, ctype, body = self.routes.get(self.path, (404, "text/plain", b"no such page\n"))
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (port 0) serving the exposition text and a JSON document."""
    _Handler.routes = {
        "/metrics": (200, "text/plain; version=0.0.4", EXPOSITION.encode()),
        "/stats.json": (200, "application/json", json.dumps(
            {"dialog": {"active": 12}, "shmem": {"used_mb": "33.5"}, "procs": [{"rss": 1000}, {"rss": 2000}],
             "flag": True}).encode()),
        "/broken.json": (200, "application/json", b"{not json"),
        "/fail": (500, "text/plain", b"oops"),
    }
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_prometheus_selectors_match_labels_exactly_and_sum_matching_series(server: str) -> None:
    sampler = R.PrometheusSampler(f"{server}/metrics", {
        "platform.rss_mb": 'process_resident_memory_bytes{job="kamailio"}',
        "rtpengine.rss_mb": 'process_resident_memory_bytes{job="rtpengine", instance="sbc-1"}',
        "platform.fds": "process_open_fds",
        "platform.shm_used_mb": 'kamailio_shm_used{note="a \\"quoted\\", {braced} value"}',
    }, scale={"platform.rss_mb": 1e-6, "rtpengine.rss_mb": 1e-6, "platform.shm_used_mb": 1e-6})
    problems: list[str] = []
    got = sampler.sample(problems.append)
    assert got == {"platform.rss_mb": pytest.approx(200.0), "rtpengine.rss_mb": pytest.approx(99.0),
                   "platform.fds": 42.0, "platform.shm_used_mb": pytest.approx(1.048576)}
    assert problems == []


def test_prometheus_missing_or_nan_series_are_left_out_and_reported(server: str) -> None:
    sampler = R.PrometheusSampler(f"{server}/metrics", {
        "platform.dialogs": "kamailio_dialogs_active",
        "platform.rss_mb": 'process_resident_memory_bytes{job="freeswitch"}',
        "platform.fds": "process_open_fds",
    })
    problems: list[str] = []
    assert sampler.sample(problems.append) == {"platform.fds": 42.0}
    assert problems == [f"platform.dialogs: no series kamailio_dialogs_active at {server}/metrics",
                        f'platform.rss_mb: no series process_resident_memory_bytes{{job="freeswitch"}} '
                        f"at {server}/metrics"]


def test_an_unreachable_or_failing_endpoint_is_a_problem_not_an_exception(server: str) -> None:
    problems: list[str] = []
    assert R.PrometheusSampler(f"{server}/fail", {"platform.fds": "process_open_fds"}).sample(problems.append) == {}
    assert problems == [f"prometheus {server}/fail: HTTP 500"]
    problems.clear()
    closed = R.JsonStatsSampler("http://127.0.0.1:9/stats.json", {"platform.dialogs": "dialog.active"})
    assert closed.sample(problems.append) == {}
    assert len(problems) == 1 and problems[0].startswith("stats http://127.0.0.1:9/stats.json: ")


def test_json_stats_follow_dotted_paths(server: str) -> None:
    sampler = R.JsonStatsSampler(f"{server}/stats.json", {
        "platform.dialogs": "dialog.active", "platform.shm_used_mb": "shmem.used_mb",
        "platform.rss_mb": "procs.1.rss", "platform.fds": "dialog.missing", "platform.cpu_pct": "flag",
    }, scale={"platform.rss_mb": 1e-3})
    problems: list[str] = []
    assert sampler.sample(problems.append) == {"platform.dialogs": 12.0, "platform.shm_used_mb": 33.5,
                                               "platform.rss_mb": 2.0}
    assert problems == [f"platform.fds: no dialog.missing in {server}/stats.json (missing 'missing')",
                        f"platform.cpu_pct: flag in {server}/stats.json is not a number"]
    problems.clear()
    assert R.JsonStatsSampler(f"{server}/broken.json", {"x": "y"}).sample(problems.append) == {}
    assert problems == [f"stats {server}/broken.json: not JSON"]


def test_selector_grammar() -> None:
    assert R.parse_selector(' up{job="a",} ') == ("up", {"job": "a"})
    for bad, why in (('up{job=~"a.*"}', "only exact label matches"), ("9up", "not a Prometheus series name"),
                     ('up{job="a"} x', "unexpected 'x'"), ('up{job="a}', "unterminated")):
        with pytest.raises(ValueError, match=why):
            R.parse_selector(bad)


def test_samplers_for_environment() -> None:
    lab_env = SimpleNamespace(name="lab", extra={"run_dir": "/tmp/lab"}, settings=None, path=None)
    (only,) = R.samplers_for_environment(lab_env)
    assert isinstance(only, R.LabSampler) and only.run_dir == Path("/tmp/lab")
    res = SimpleNamespace(prometheus="http://10.0.0.5:9100/metrics", metrics={"platform.fds": "process_open_fds"},
                          scale={"platform.rss_mb": 1e-6}, stats_url="http://10.0.0.5:8080/stats.json",
                          fields={"platform.dialogs": "dialog.active"})
    env = SimpleNamespace(name="staging", extra={}, settings=SimpleNamespace(resources=res),
                          path=Path("environments/staging.yaml"))
    prom, stats = R.samplers_for_environment(env)
    assert isinstance(prom, R.PrometheusSampler) and prom.scale == {"platform.rss_mb": 1e-6}
    assert isinstance(stats, R.JsonStatsSampler) and stats.fields == {"platform.dialogs": "dialog.active"}
    assert R.samplers_for_environment(SimpleNamespace(name="x", extra={}, settings=SimpleNamespace(resources=None),
                                                      path=None)) == []
    res.metrics = {"platform.rss_mb": 'process_resident_memory_bytes{job=~"kam.*"}'}
    with pytest.raises(ConfigError, match=r"^environments/staging.yaml: resources.metrics.platform.rss_mb: only "):
        R.samplers_for_environment(env)


# ----------------------------------------------------------------------------- the recorder
class Counting:
    """Each round: a value that grows, a problem that repeats, and after ``n`` rounds a signal."""

    name = "counting"

    def __init__(self, n: int) -> None:
        self.calls = 0
        self.enough = threading.Event()
        self.n = n

    def sample(self, problem: R.Problem = R._ignore) -> dict[str, float]:
        self.calls += 1
        problem("platform.dialogs: kamcmd gave no answer in 2 s")
        if self.calls >= self.n:
            self.enough.set()
        return {"platform.rss_mb": 100.0 + self.calls, "platform.cpu_pct": float("nan")}


class Broken:
    name = "broken"

    def sample(self, problem: R.Problem = R._ignore) -> dict[str, float]:
        raise RuntimeError("sampler bug")


def test_recorder_appends_flushed_rows_and_reports_each_problem_once(tmp_path: Path) -> None:
    counting = Counting(4)  # round 4 has begun: rounds 1-3 are on disk
    errors: list[str] = []
    ticks = iter(range(0, 1000, 5))
    path = tmp_path / "resources.csv"
    rec = R.Recorder(path, [counting, Broken()], every_s=0.02, clock=lambda: float(next(ticks)),
                     on_error=errors.append).start()
    assert counting.enough.wait(10)
    rows_while_running = read_resources(path)["platform.rss_mb"]  # flushed as it goes
    rec.stop()
    assert not rec._thread.is_alive()
    assert rows_while_running[:3] == [(0.0, 101.0), (5.0, 102.0), (10.0, 103.0)]
    assert path.read_text().splitlines()[:2] == ["t,metric,value", "0.000,platform.rss_mb,101"]
    assert set(read_resources(path)) == {"platform.rss_mb"}  # NaN never reaches the file
    assert errors == ["platform.dialogs: kamcmd gave no answer in 2 s", "broken: RuntimeError: sampler bug"]


def test_recorder_never_raises_into_the_caller(tmp_path: Path) -> None:
    errors: list[str] = []

    def bad_callback(message: str) -> None:
        errors.append(message)
        raise ValueError("callback bug")

    counting = Counting(2)
    rec = R.Recorder(tmp_path / "missing-dir" / "resources.csv", [counting], every_s=0.02, clock=lambda: 1.0,
                     on_error=bad_callback)
    with rec:
        assert counting.enough.wait(10)
    assert any("resources:" in e and "FileNotFoundError" in e for e in errors)
    assert not rec._thread.is_alive()


# ----------------------------------------------------------------------------- drift math
def test_slope_per_hour_needs_three_points_over_a_minute() -> None:
    assert R.slope_per_hour([(0, 1.0), (60, 2.0)]) is None
    assert R.slope_per_hour([(0, 1.0), (20, 2.0), (59, 3.0)]) is None
    assert R.slope_per_hour([(0, 10.0), (30, 10.5), (60, 11.0)]) == pytest.approx(60.0)
    assert R.slope_per_hour([(0, 5.0), (60, 5.0), (120, 5.0)]) == 0.0


def test_summarize_after_warmup() -> None:
    res = {"platform.rss_mb": [(float(t), 100.0 + t / 60) for t in range(0, 301, 30)],
           "voipqa.cpu_pct": [(0.0, 90.0), (5.0, 10.0)]}
    got = R.summarize(res, warmup_s=60)
    rss = got["platform.rss_mb"]
    assert rss["samples"] == 9 and rss["first"] == 101.0 and rss["last"] == 105.0
    assert rss["min"] == 101.0 and rss["max"] == 105.0 and rss["mean"] == pytest.approx(103.0)
    assert rss["slope_per_h"] == pytest.approx(60.0)
    assert got["voipqa.cpu_pct"] == {"first": None, "last": None, "min": None, "max": None, "mean": None,
                                     "slope_per_h": None, "samples": 0}


def test_memory_drift_prefers_rss_then_shared_memory() -> None:
    flat = [(float(t), 50.0) for t in range(0, 300, 10)]
    assert R.memory_drift({"platform.rss_mb": flat, "platform.shm_used_mb": flat}, 0).metric == "platform.rss_mb"
    drift = R.memory_drift({"platform.shm_used_mb": flat}, 0)
    assert (drift.metric, drift.slope_per_h, drift.samples, drift.span_s) == ("platform.shm_used_mb", 0.0, 30, 290)
    assert R.memory_drift({"platform.rss_mb": flat}, 0, until_s=50).samples == 6
    assert R.memory_drift({}, 0).slope_per_h is None


def test_an_environment_file_resources_section_samples_its_endpoints(server: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.environments import environment_from_file
    monkeypatch.setenv("VOIPQA_TEST_PW", "secret")
    path = tmp_path / "staging.yaml"
    path.write_text(f"""\
target: {{host: 127.0.0.1, ports: {{udp: 5060}}}}
accounts: [{{user: "1001", password_env: VOIPQA_TEST_PW}}]
resources:
  prometheus: {server}/metrics
  metrics:
    platform.rss_mb: 'process_resident_memory_bytes{{job="kamailio"}}'
    platform.fds: process_open_fds
  scale: {{platform.rss_mb: 1.0e-6}}
  stats_url: {server}/stats.json
  fields: {{platform.dialogs: dialog.active}}
""")
    env = environment_from_file(path)
    problems: list[str] = []
    got: dict[str, float] = {}
    for sampler in R.samplers_for_environment(env):
        got.update(sampler.sample(problems.append))
    assert got == {"platform.rss_mb": pytest.approx(200.0), "platform.fds": 42.0, "platform.dialogs": 12.0}
    assert problems == []


def test_a_group_throttled_in_most_periods_is_at_its_quota():
    """psutil counts 10 ms ticks: under a 2 % quota a second reads 1 % or 3 %, and a starved
    generator was once judged "not saturated" from a 1.7 % median. The cgroup's throttle
    counters (cpu.stat, v1 and v2) decide instead."""
    from qa.load.cgroup import at_quota, parse_throttling

    v1 = "nr_periods 120\nnr_throttled 90\nthrottled_time 8000000\n"
    v2 = "usage_usec 5000\nuser_usec 4000\nsystem_usec 1000\nnr_periods 120\nnr_throttled 90\nthrottled_usec 8000\n"
    assert parse_throttling(v1) == parse_throttling(v2) == (120, 90)
    assert parse_throttling("usage_usec 5\n") is None
    assert at_quota((100, 80), (110, 88))          # throttled in 8 of 10 periods
    assert not at_quota((100, 80), (110, 82))      # 2 of 10: it had CPU to spare
    assert not at_quota((100, 80), (100, 80))      # no period elapsed
    assert not at_quota(None, (110, 88))
