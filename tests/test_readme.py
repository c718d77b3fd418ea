"""The README stays true: its snippets print what it shows, and the main job prints its tables."""

import contextlib
import io
import re
from pathlib import Path

import matplotlib
import pytest

from sklearn_id._cli import main

README = (Path(__file__).parents[1] / "README.md").read_text()
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _pairs():
    """Each ```python block of the README with the ```text block that follows it."""
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", README, flags=re.S)


def assert_same_printout(printed, shown):
    """Equal token by token; numbers within one unit of the last digit the README shows."""
    printed_lines = [line.split() for line in printed.strip().splitlines()]
    shown_lines = [line.split() for line in shown.strip().splitlines()]
    assert len(printed_lines) == len(shown_lines), printed
    for got, expected in zip(printed_lines, shown_lines):
        assert len(got) == len(expected), (got, expected)
        for a, b in zip(got, expected):
            if NUMBER.fullmatch(b) and NUMBER.fullmatch(a):
                decimals = len(b.split(".")[1]) if "." in b and "e" not in b else 0
                assert abs(float(a) - float(b)) <= 10.0**-decimals * 1.0001, (got, expected)
            else:
                assert a == b, (got, expected)


def test_the_readme_shows_its_snippets_with_their_output():
    assert len(_pairs()) == 4


@pytest.mark.slow
def test_the_readme_snippets_print_what_it_shows(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for code, shown in _pairs():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "README.md", "exec"), namespace)
        assert_same_printout(printed.getvalue(), shown)


@pytest.mark.slow
def test_the_main_job_prints_the_readme_tables(tmp_path):
    (shown,) = re.findall(r"A run printed:\s*```text\n(.*?)```", README, flags=re.S)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--out", str(tmp_path), "--quiet"]) == 0
    lines = printed.getvalue().strip().splitlines()
    assert lines[-1] == f"wrote {tmp_path / 'depth_profile.png'}"
    assert_same_printout("\n".join(lines[:-1]), shown)
