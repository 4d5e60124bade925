"""The library class and the context its keyword groups share."""

from __future__ import annotations

import os
from pathlib import Path

from robot.api import logger
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from robotlibcore import DynamicCore

from qa.cases import Session
from qa.config import Environment, load_environment
from qa.robot.calls import CallKeywords
from qa.robot.labctl import LabKeywords
from qa.robot.load import LoadKeywords
from qa.robot.pcap import PcapKeywords
from qa.robot.tls import TlsKeywords
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
    """Keywords to place calls through the platform under test and judge them.

    Import with ``Library    qa.robot.VoipQA`` (optionally ``env=NAME``; default the
    running native lab, or ``VOIPQA_ENV``).
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, env: str | None = None) -> None:
        self.ctx = LibraryContext(env)
        self.ROBOT_LIBRARY_LISTENER = self
        super().__init__([CallKeywords(self.ctx), WitnessKeywords(self.ctx), LabKeywords(self.ctx),
                          TlsKeywords(self.ctx), PcapKeywords(self.ctx), LoadKeywords(self.ctx)])

    def close(self) -> None:
        """Listener hook: the library's last suite ended; stop calls still running."""
        self.ctx.close()
