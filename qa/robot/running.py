"""What Robot is running now: the test and suite a keyword is called from.

Call records name their Robot test (``test``: ``suite file::test name``) so the wire
witness, judged after the run, fails the right test in the report, whatever the call's
``case`` name (a `Start Call` alias, a ``case=`` given to `Place Call`, two suites with a
test of the same name).
"""

from __future__ import annotations

from pathlib import Path

from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from qa.record import test_id


def _variable(name: str) -> str | None:
    try:
        value = BuiltIn().get_variable_value(name)
    except RobotNotRunningError:
        return None
    return str(value) if value else None


def test_name() -> str | None:
    """The running test's name (None outside a test: suite setup, or no Robot at all)."""
    return _variable("${TEST NAME}")


def suite_dir() -> Path | None:
    """The running suite file's folder."""
    source = _variable("${SUITE SOURCE}")
    return Path(source).parent if source else None


def running_test() -> str | None:
    """The running test as a call record's ``test``, or None outside a test."""
    name, source = test_name(), _variable("${SUITE SOURCE}")
    return test_id(source, name) if name and source else None
