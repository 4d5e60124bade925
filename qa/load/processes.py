"""The processes of a load run besides the runner: the Locust master and its local workers
(own sessions, so the terminal's Ctrl-C reaches only the runner; PR_SET_PDEATHSIG, so a
runner that dies takes them along), and the kernel's socket buffer maximums SIPp needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from qa.tools import die_with_parent

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
#: How long the master waits for its workers before giving up.
WORKERS_WAIT_S = 60
Echo = Callable[[str], None]


def raise_socket_buffers(size: int) -> dict[Path, str]:
    """Raise net.core.rmem_max/wmem_max to ``size`` where we may (root); the old values of
    what changed (SIPp's -buff_size is capped by them: KAMAILIO-NOTES, 3,000 vs 12,000
    calls/s)."""
    changed: dict[Path, str] = {}
    for name in ("rmem_max", "wmem_max"):
        path = Path("/proc/sys/net/core") / name
        try:
            current = path.read_text().strip()
            if int(current) < size:
                path.write_text(str(size))
                changed[path] = current
        except (OSError, ValueError):
            continue
    return changed


@contextlib.contextmanager
def socket_buffers(size: int) -> Iterator[None]:
    """The kernel's socket buffer maximums raised for the run, restored after it."""
    changed = raise_socket_buffers(size)
    try:
        yield
    finally:
        for path, value in changed.items():
            with contextlib.suppress(OSError):
                path.write_text(value)


class LocustProcesses:
    """The Locust master and local workers: own sessions, die with the runner, logs in the run dir."""

    def __init__(self, out: Path, echo: Echo) -> None:
        self.out = out
        self.echo = echo
        self.master_proc: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.private = Path(tempfile.mkdtemp(prefix="voipqa-load-"))

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        with open(self.out / log, "ab") as fh:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    preexec_fn=die_with_parent, start_new_session=True, env=env,
                                    cwd=self.out)

    def master(self, req: Any, port: int, plan: dict[str, Any]) -> None:
        """The master (``req``: the run's LoadRequest); the plan goes in a private file it deletes."""
        plan_file = self.private / "plan.json"
        fd = os.open(plan_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(plan, fh)
        total = req.workers + req.expect_workers
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master",
                "--master-bind-host", req.master_bind, "--master-bind-port", str(port),
                "--expect-workers", str(total), "--expect-workers-max-wait", str(WORKERS_WAIT_S),
                "--csv", str(self.out.resolve() / "locust"), "--html", str(self.out.resolve() / "locust.html"),
                "--loglevel", "WARNING", "--voipqa-run", str(self.out.resolve()), "--voipqa-plan", str(plan_file)]
        if req.web_ui:
            argv += ["--autostart", "--autoquit", "5", "--web-host", "127.0.0.1"]
        else:
            argv += ["--headless", "--only-summary"]
        self.master_proc = self._spawn(argv, "locust-master.log")

    def worker(self, port: int, n: int) -> None:
        workdir = self.out.resolve() / "workers" / f"local{n}"
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1",
                "--master-port", str(port), "--loglevel", "WARNING", "--voipqa-workdir", str(workdir)]
        self.workers.append(self._spawn(argv, f"locust-worker{n}.log"))

    def interrupt(self) -> None:
        if self.master_proc is not None and self.master_proc.poll() is None:
            os.kill(self.master_proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        for proc in [*self.workers, self.master_proc]:
            if proc is not None:
                terminate(proc)
        for path in self.private.glob("*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.private.rmdir()


def terminate(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, by PID; waits."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


