"""Keywords that change the reference lab while a case runs (balances, carriers).

Only the built-in ``lab`` environment can be changed this way; against another
platform these cases are skipped with the reason, never failed.
"""

from __future__ import annotations

import time
from pathlib import Path

from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn
from robot.utils import timestr_to_secs


class LabKeywords:
    """Balances and carrier processes of the native lab."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def skip_reason(self) -> str | None:
        """Why a ``lab-only`` case cannot run here (None against the native lab). The library's
        listener skips such a case before its first keyword: a case that needs the lab's
        carriers or balances must not run half-way against another platform."""
        env = self.ctx.connect()
        if env.name != "lab" or "run_dir" not in env.extra:
            return f"needs the voipqa lab; environment {env.name} cannot be changed by the test"
        return None

    def _run_dir(self) -> Path:
        reason = self.skip_reason()
        if reason:
            BuiltIn().skip(reason)
        return Path(self.ctx.connect().extra["run_dir"])

    @keyword
    def set_account_balance(self, account: str, balance: float) -> None:
        """Set ``account``'s balance; the platform reads it live on the next INVITE."""
        from qa import lab

        state = lab.load_state(self._run_dir())
        lab.set_balance(state, str(account), float(balance))

    @keyword
    def stop_carrier(self, name: str) -> None:
        """Stop carrier ``name`` (its process exits; it answers nothing, not even OPTIONS)."""
        from qa import lab

        lab.stop_carrier(self._run_dir(), name)

    @keyword
    def start_carrier(self, name: str) -> None:
        """Start carrier ``name`` again on its port (no-op when it runs)."""
        from qa import lab

        lab.start_carrier(self._run_dir(), name)

    @keyword
    def wait_until_carrier_is_active(self, name: str, timeout: str = "15s") -> None:
        """Wait until the platform's OPTIONS probing marks ``name`` active."""
        self._wait_for(name, active=True, timeout=timestr_to_secs(timeout))

    @keyword
    def wait_until_carrier_is_inactive(self, name: str, timeout: str = "15s") -> None:
        """Wait until the platform's OPTIONS probing marks ``name`` inactive."""
        self._wait_for(name, active=False, timeout=timestr_to_secs(timeout))

    def _wait_for(self, name: str, *, active: bool, timeout: float, stable_s: float = 3.0) -> None:
        """Wait until the state has held for ``stable_s`` (longer than the platform's probe
        interval): right after a restart, a late transaction timeout can flip it back."""
        from qa import lab

        run_dir = self._run_dir()
        deadline = time.monotonic() + timeout + stable_s
        flags, since = None, None
        while time.monotonic() < deadline:
            flags = lab.dispatcher_state(run_dir).get(name)
            if flags is not None and flags.startswith("A") == active:
                since = since or time.monotonic()
                if time.monotonic() - since >= stable_s:
                    return
            else:
                since = None
            time.sleep(0.5)
        want = "active" if active else "inactive"
        raise AssertionError(f"platform: carrier {name} not {want} after {timeout:g} s (dispatcher flags {flags})")
