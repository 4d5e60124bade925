"""The library class and the context its keyword groups share."""

from __future__ import annotations

import os
from pathlib import Path

from robot.api import logger
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from robotlibcore import DynamicCore

from qa import __version__
from qa.cases import Session
from qa.config import Environment
from qa.environments import load_environment
from qa.robot.calls import CallKeywords
from qa.robot.labctl import LabKeywords
from qa.robot.load import LoadKeywords
from qa.robot.pcap import PcapKeywords
from qa.robot.scenario import ScenarioKeywords
from qa.robot.security import SecurityKeywords
from qa.robot.tls import TlsKeywords
from qa.robot.wireshark import WiresharkKeywords
from qa.robot.witnesses import WitnessKeywords


class LibraryContext:
    """Lazily connects to the environment and owns the call session of the suite run."""

    def __init__(self, env: str | None) -> None:
        self.env_name = env or os.environ.get("VOIPQA_ENV") or None
        self._env: Environment | None = None
        self._session: Session | None = None

    def connect(self, env: str | None = None) -> Environment:
        if env is not None and env != self.env_name:
            self.close()
            self.env_name = env
        if self._env is None:
            self._env = load_environment(self.env_name)
            logger.info(f"platform under test: {self._env.name} at {self._env.target.address()}")
        return self._env

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self.connect(), self.output_dir())
        return self._session

    @staticmethod
    def output_dir() -> Path:
        """Where this run's files go: ``voipqa run``'s output (each parallel item runs its own
        ``robot`` whose ``${OUTPUT DIR}`` is only the working directory), else Robot's."""
        if os.environ.get("VOIPQA_OUTPUT"):
            return Path(os.environ["VOIPQA_OUTPUT"])
        try:
            return Path(BuiltIn().get_variable_value("${OUTPUT DIR}"))
        except RobotNotRunningError:
            return Path.cwd()

    def mask(self, text: str) -> str:
        return self._env.mask(text) if self._env else text

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None
        self._env = None


class VoipQA(DynamicCore):
    """Place real calls through the SIP platform under test and judge each one on four
    witnesses: what the customer saw, what the carrier saw, what the platform billed (its
    CDR) and what crossed the wire (the run's capture).

    Import with ``Library    qa.robot.VoipQA`` (optionally ``env=NAME``: an environment
    name or file; default the running native lab, or ``$VOIPQA_ENV``). Run suites with
    ``voipqa run``, which starts the lab, the capture and the cases concurrently.

    = Examples =

    | ${call}=    `Place Call`    1001    15550001234    codecs=PCMA,telephone-event    duration=3s
    | `Call Should Pass`    ${call}
    | ${blocked}=    `Place Call`    1001    1900555000    expect=403    carrier_sees=${FALSE}
    | `Start Call`    a    1001    15550001234
    | `Start Call`    b    1002    15550001234
    | ${a}=    `Wait For Call`    a
    | ${summary}=    `Run Load Profile`    smoke.yaml
    | `Load Criteria Should Pass`    ${summary}
    | `Run SIPp Scenario`    my-scenarios/uac.xml    expect=200
    | ${attack}=    `Run Attack`    brute-force
    | `Capture Should Match`    ${call}    sip.Method == "INVITE" && sdp.media.format contains "PCMA"    count=1
    | `Defence Should Hold`    ${attack}

    A keyword that judges a call fails with every failing check, one per line, each named
    by its witness (``customer:``, ``carrier:``, ``platform:``, ``wire:``). Passwords and
    digest responses never reach the log.
    """

    ROBOT_LIBRARY_VERSION = __version__
    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, env: str | None = None) -> None:
        self.ctx = LibraryContext(env)
        self.ROBOT_LIBRARY_LISTENER = self
        self._lab = LabKeywords(self.ctx)
        super().__init__([CallKeywords(self.ctx), WitnessKeywords(self.ctx), self._lab,
                          TlsKeywords(self.ctx), PcapKeywords(self.ctx), LoadKeywords(self.ctx),
                          ScenarioKeywords(self.ctx), SecurityKeywords(self.ctx),
                          WiresharkKeywords(self.ctx)])

    def start_test(self, data, result) -> None:  # noqa: ANN001 - Robot's running/result models
        """Listener hook: a case tagged ``lab-only`` is skipped, with the reason, before its
        first keyword when the platform is not the native lab (its setup becomes a Skip)."""
        if "lab-only" in result.tags:
            reason = self._lab.skip_reason()
            if reason:
                data.setup.config(name="BuiltIn.Skip", args=(reason,))

    def close(self) -> None:
        """Listener hook: the library's last suite ended; stop calls still running."""
        self.ctx.close()
