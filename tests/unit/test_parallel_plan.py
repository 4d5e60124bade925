"""How `voipqa run` cuts suites into Robot processes: one per case, serial suites whole,
exclusive suites whole and alone at the end (qa.cases.parallel.plan_items)."""

from __future__ import annotations

from pathlib import Path

from qa.cases.parallel import _argv, plan_items

CASES = """
*** Test Cases ***
One
    No Operation
Two
    No Operation
"""


def suite(folder: Path, name: str, execution: str | None = None, tags: str = "") -> None:
    settings = "*** Settings ***\n" + (f"Metadata    Execution    {execution}\n" if execution else "")
    settings += f"Test Tags    {tags}\n" if tags else ""
    (folder / f"{name}.robot").write_text(settings + CASES)


def test_exclusive_and_serial_suites_are_one_item_each_and_only_exclusive_runs_alone(tmp_path: Path) -> None:
    suite(tmp_path, "a_plain")
    suite(tmp_path, "b_serial", "serial")
    suite(tmp_path, "c_load", "exclusive", tags="load")
    items = plan_items([tmp_path])
    by_name = {i.name.split(".")[-1]: i for i in items}
    assert by_name["One"].kind == "test" and not by_name["One"].exclusive
    assert by_name["B Serial"].kind == "suite" and by_name["B Serial"].tests == 2 and not by_name["B Serial"].exclusive
    assert by_name["C Load"].kind == "suite" and by_name["C Load"].exclusive
    assert len(items) == 4


def test_an_exclusive_suite_filtered_out_by_tags_is_no_item(tmp_path: Path) -> None:
    suite(tmp_path, "a_plain")
    suite(tmp_path, "c_load", "exclusive", tags="load")
    assert all(not i.exclusive for i in plan_items([tmp_path], exclude=["load"]))
    assert [i.exclusive for i in plan_items([tmp_path], include=["load"])] == [True]


def test_a_serial_suite_runs_only_the_cases_the_filters_kept(tmp_path: Path) -> None:
    """--test (or tags) inside a serial suite: its one Robot process gets those cases only."""
    import subprocess

    from robot.api import ExecutionResult

    suite(tmp_path, "b_serial", "serial")
    (item,) = plan_items([tmp_path], tests=["Two"])
    assert item.kind == "suite" and item.tests == 1 and item.selected == (f"{item.name}.Two",)
    subprocess.run(_argv(item, [tmp_path], tmp_path / "out.xml"), check=True, timeout=60)
    assert [t.name for t in ExecutionResult(str(tmp_path / "out.xml")).suite.all_tests] == ["Two"]


def test_progress_says_skip_when_every_case_of_an_item_was_skipped(tmp_path):
    """Robot exits 0 for a skipped case: the progress line must not call it passed."""
    from qa.cases.parallel import ItemResult
    from qa.cases.suites import item_status

    def status(stat: str | None, returncode: int = 0) -> str:
        out = tmp_path / "part.xml"
        body = "<robot>" + ("x" * 20000) + (f"<statistics><total>\n{stat}\n</total></statistics>" if stat else "")
        out.write_text(body + "</robot>")
        return item_status(ItemResult(item=None, output=out, returncode=returncode, elapsed_s=1.0))

    assert status('<stat pass="0" fail="0" skip="1">All Tests</stat>') == "SKIP"
    assert status('<stat pass="1" fail="0" skip="1">All Tests</stat>') == "PASS"
    assert status('<stat pass="0" fail="1" skip="0">All Tests</stat>', returncode=1) == "FAIL"
    assert status(None) == "PASS"
    assert item_status(ItemResult(item=None, output=tmp_path / "none.xml", returncode=0, elapsed_s=0)) == "PASS"
