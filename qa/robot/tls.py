"""Keywords that check the platform's TLS certificate (issue 3), thin over ``qa.customer.tls``."""

from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword
from robot.utils import timestr_to_secs

from qa.customer.result import TLS_ERRORS, TlsReport
from qa.customer.tls import tls_check
from qa.errors import BadInput


class TlsKeywords:
    """Check the certificate behind a TLS port and assert on the report."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def _port(self, env, port: str | int) -> int:
        """``tls`` (the environment's TLS port), a number, or a lab port name (``tls_expired``)."""
        text = str(port).strip().lower()
        if text.isdigit():
            return int(text)
        if text == "tls" and env.target.tls_port:
            return env.target.tls_port
        named = getattr(getattr(getattr(env.settings, "target", None), "ports", None), text, None)
        if isinstance(named, int):  # an environment file's target.ports (tls_expired)
            return named
        run_dir = (env.extra or {}).get("run_dir")
        if run_dir:
            from qa.lab import load_state
            state = load_state(run_dir)
            if state is not None and f"sip_{text}" in state.ports:
                return state.ports[f"sip_{text}"]
        if text != "tls":  # a case about a port this platform does not offer cannot run here
            from robot.libraries.BuiltIn import BuiltIn

            BuiltIn().skip(f"environment {env.name} names no TLS port {text!r} (target.ports.{text})")
        raise BadInput(f"environment {env.name} has no TLS port {port!r}")

    @keyword
    def check_tls_certificate(self, server_name: str | None = None, port: str | int = "tls",
                              timeout: str = "5s") -> TlsReport:
        """Handshake with the platform's TLS ``port`` (``tls``, ``tls_expired`` or a number) using
        SNI ``server_name`` (default: the environment's TLS server name) and its CA; return the
        report (``${report.error}``, ``${report.days_to_expiry}``, ...). Never fails by itself."""
        env = self.ctx.connect()
        target = env.target
        name = server_name or target.tls_server_name or target.host
        cafile = str(target.ca_cert) if target.ca_cert else None
        report = tls_check(target.host, self._port(env, port), name, cafile, timestr_to_secs(timeout))
        logger.info(f"TLS {target.host}:{report.port} ({name}): {report}")
        return report

    @keyword
    def tls_certificate_should_be_valid(self, report: TlsReport) -> None:
        """The chain verified against the CA and the server name matched."""
        if not report.ok:
            raise AssertionError(f"TLS {report.host}:{report.port}: {report}")

    @keyword
    def tls_certificate_should_be_rejected(self, report: TlsReport, reason: str) -> None:
        """Verification failed for ``reason``: expired, hostname-mismatch, untrusted, handshake, refused."""
        if reason not in TLS_ERRORS:
            raise BadInput(f"unknown TLS rejection {reason!r} (known: {', '.join(TLS_ERRORS)})")
        if report.ok:
            raise AssertionError(f"TLS {report.host}:{report.port} was accepted ({report}), "
                                 f"expected it rejected as {reason}")
        if report.error != reason:
            raise AssertionError(f"TLS {report.host}:{report.port} rejected as {report.error}, "
                                 f"expected {reason}: {report}")

    @keyword
    def tls_days_to_expiry_should_be_at_least(self, report: TlsReport, days: int | str) -> None:
        """The certificate is valid for at least ``days`` more days."""
        if report.days_to_expiry is None or report.days_to_expiry < int(days):
            raise AssertionError(f"TLS {report.host}:{report.port}: {report.days_to_expiry} days to "
                                 f"expiry, expected at least {int(days)} ({report})")
