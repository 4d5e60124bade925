"""voipqa from pytest: fixtures that place real calls and judge them on four witnesses.

Installed with voipqa and registered through the ``pytest11`` entry point (``-p voipqa``
names it too). A thin front end, like the Robot library: the calls go through the same
API (:func:`qa.cases.api.call_spec`, :class:`qa.cases.Session`), the records land in the
same ``calls.jsonl``, the display filters are :class:`qa.analysis.wireshark.LiveCapture`.

Fixtures (docs/pytest.md):

- ``voipqa_env``: the environment (``--voipqa-env NAME|FILE``, ``$VOIPQA_ENV``; default the lab);
- ``voipqa_lab``: the lab's state when the environment is the lab: the running one, or one
  started for the session and stopped after it (one lab for every pytest-xdist worker);
- ``place_call``: ``place_call(caller, callee, expect=200, carrier_sees=None, **options)`` with
  ``Place Call``'s options (seconds as numbers), returning the judged call record
  (``assert call.passed, call.reasons``);
- ``voipqa_capture``: the session's capture with display-filter assertions
  (``voipqa_capture.should_match(call, 'sip.Method == "INVITE"')``);
- ``run_load``: ``run_load(profile, rate=None, duration=None, workers=1)`` → the load summary.

Nothing here is imported by voipqa's own modules, and importing it starts nothing: a
pytest run that uses none of the fixtures pays nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DEFAULT_OUTPUT = Path("results") / "pytest"
_LOAD_RUNS = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voipqa", "voipqa: calls through the platform under test")
    group.addoption("--voipqa-env", default=None, metavar="ENV",
                    help="environment name or file (default: $VOIPQA_ENV, else the lab: the running one, "
                         "or one started for the session)")
    group.addoption("--voipqa-output", default=None, metavar="DIR",
                    help=f"calls.jsonl, the capture and load runs (default: {DEFAULT_OUTPUT})")


def _env_name(config: pytest.Config) -> str | None:
    name = config.getoption("voipqa_env") or os.environ.get("VOIPQA_ENV") or None
    return None if name == "lab" else name


def _worker(config: pytest.Config) -> str:
    """The pytest-xdist worker id (``gw0``...), or ``main`` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def voipqa_output(pytestconfig: pytest.Config) -> Path:
    """The session's output directory: calls.jsonl (shared by xdist workers), per-worker files below."""
    out = Path(pytestconfig.getoption("voipqa_output") or DEFAULT_OUTPUT).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def voipqa_lab(pytestconfig: pytest.Config, voipqa_output: Path) -> Iterator[Any]:
    """The lab's state (None when the environment is not the lab). A lab already running is
    used and left running; otherwise the first worker starts one and the last one stops it."""
    if _env_name(pytestconfig) is not None:
        yield None
        return
    from qa import lab

    run_dir = Path(os.environ.get("VOIPQA_LAB_DIR") or lab.default_run_dir()).resolve()
    os.environ["VOIPQA_LAB_DIR"] = str(run_dir)   # the environment and the load runs find it
    lock, users = voipqa_output / ".lab.lock", voipqa_output / ".lab-users.json"
    with _locked(lock):
        shared = json.loads(users.read_text()) if users.is_file() and users.stat().st_size else {}
        state = lab.load_state(run_dir)
        if state is None:
            state, _ = lab.up(run_dir, timeout=30)
            shared = {"started": True, "users": 0}
        shared["users"] = shared.get("users", 0) + 1
        users.write_text(json.dumps(shared))
    try:
        yield state
    finally:
        with _locked(lock):
            shared = json.loads(users.read_text())
            shared["users"] -= 1
            if shared["users"] <= 0 and shared.get("started"):
                lab.down(run_dir)
                shared = {}
            users.write_text(json.dumps(shared))


@pytest.fixture(scope="session")
def voipqa_env(pytestconfig: pytest.Config, voipqa_lab: Any) -> Any:
    """The environment under test (:class:`qa.config.Environment`)."""
    from qa.environments import load_environment

    return load_environment(_env_name(pytestconfig))


@pytest.fixture(scope="session")
def voipqa_session(voipqa_env: Any, voipqa_output: Path) -> Iterator[Any]:
    """The calls of the session (:class:`qa.cases.Session`), written to calls.jsonl."""
    from qa.cases import Session

    session = Session(voipqa_env, voipqa_output)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def place_call(voipqa_session: Any, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``place_call(caller, callee, expect=200, carrier_sees=None, **options)`` → the call
    record; the options are ``Place Call``'s (``codecs="PCMA"``, ``duration_s=3``, ``dtmf="123"``...)."""
    from qa.cases.api import call_spec

    def place(caller: str, callee: str, expect: int | str | None = 200, carrier_sees: bool | None = None,
              **options: Any) -> Any:
        case = options.pop("case", None) or request.node.name
        return voipqa_session.place(call_spec(case, caller, callee, expect=expect, carrier_sees=carrier_sees,
                                              test=request.node.nodeid, **options))
    return place


@pytest.fixture(scope="session")
def voipqa_capture(pytestconfig: pytest.Config, voipqa_lab: Any, voipqa_output: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The session's capture (this worker's) with display-filter assertions over one call:
    ``should_match(call, FILTER, count=None)``, ``should_not_match``, ``fields(call, NAME)``,
    ``field_should_be(call, NAME, VALUE)``; ``call`` is a record, a Call-ID or None (all)."""
    from qa.analysis.wireshark import LiveCapture
    from qa.cases.suites import capture_for_run

    out = voipqa_output / _worker(pytestconfig)
    out.mkdir(parents=True, exist_ok=True)
    lab_dir = Path(os.environ["VOIPQA_LAB_DIR"]) if voipqa_lab is not None else None
    with capture_for_run(lab_dir, out, echo=lambda line: None, env=_env_name(pytestconfig)) as run:
        if run.off_reason:
            pytest.skip(f"voipqa_capture: {run.off_reason}")
        yield _CallFilters(LiveCapture(out / "capture.pcapng", tmp_path_factory.mktemp("voipqa-filters")))


class _CallFilters:
    """:class:`LiveCapture`'s assertions taking a call record (or a Call-ID, or None)."""

    def __init__(self, live: Any) -> None:
        self.live = live

    def __getattr__(self, name: str) -> Callable[..., Any]:
        action = getattr(self.live, name)

        def on_call(call: Any, *args: Any, **kwargs: Any) -> Any:
            call_id = call if call is None or isinstance(call, str) else call.call_id
            return action(call_id, *args, **kwargs)
        return on_call


@pytest.fixture
def run_load(pytestconfig: pytest.Config, voipqa_lab: Any, voipqa_output: Path) -> Callable[..., dict[str, Any]]:
    """``run_load(profile, rate=None, duration=None, workers=1)`` → the run's summary
    (load.json as a dictionary), its files under the output's ``load/``."""
    env = _env_name(pytestconfig) or "lab"

    def load(profile: str, rate: float | None = None, duration: float | None = None, workers: int = 1) -> dict[str, Any]:
        return load_run(env, voipqa_output, profile, rate=rate, duration=duration, workers=workers)
    return load


def load_run(env: str, output: Path, profile: str, *, rate: float | None = None, duration: float | None = None,
             workers: int = 1) -> dict[str, Any]:
    """One load run of ``profile`` against ``env``, its files in ``output/load/PROFILE-PID-N``."""
    from qa.load.runner import LoadRequest, run_load as run

    out = output / "load" / f"{Path(profile).stem}-{os.getpid()}-{next(_LOAD_RUNS)}"
    outcome = run(LoadRequest(profile=profile, env=env, rate=rate, duration=duration, workers=workers, output=out),
                  echo=lambda line: None)
    if outcome.signal is not None:
        raise KeyboardInterrupt(f"load run interrupted by signal {outcome.signal}; what ran is in {out}")
    return outcome.result
