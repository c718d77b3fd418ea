"""The README stays true: its snippets print what it shows, and the main job prints its tables.

Two kinds of output stand in the README. What is computed from fixed data in float64 (the Swiss
roll, the ID curves, the input rows of the profiles) is the same on every CPU up to the last bits,
so the test compares its digits, to one unit of the last one shown. What a trained network prints
is introduced by "A run printed:": training rounds differently on other CPUs' float32 kernels, and
those digits are one run's. For them the test checks the layout and what the README says about the
numbers (the hunchback, the gap to PCA-ID), not the digits.
"""

import contextlib
import io
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from sklearn_id._cli import main

README = (Path(__file__).parents[1] / "README.md").read_text()
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
HIDDEN = ["pool1", "pool2", "d1"]


def _pairs():
    """Each ```python block of the README, whether "A run printed:" its output, and that output."""
    found = re.findall(r"```python\n(.*?)```\s*(A run printed:)?\s*```text\n(.*?)```", README, flags=re.S)
    return [(code, bool(marker), shown) for code, marker, shown in found]


def _tokens(text):
    return [line.split() for line in text.strip().splitlines()]


def assert_same_layout(printed, shown):
    """The same lines and words; a number wherever the README shows one."""
    printed_lines, shown_lines = _tokens(printed), _tokens(shown)
    assert len(printed_lines) == len(shown_lines), printed
    for got, expected in zip(printed_lines, shown_lines):
        assert len(got) == len(expected), (got, expected)
        for a, b in zip(got, expected):
            assert bool(NUMBER.fullmatch(a)) == bool(NUMBER.fullmatch(b)), (got, expected)
            if not NUMBER.fullmatch(b):
                assert a == b, (got, expected)


def assert_same_numbers(got, expected):
    """Equal to one unit of the last digit the README shows (``got`` and ``expected`` as printed)."""
    for a, b in zip(got, expected, strict=True):
        decimals = len(b.split(".")[1]) if "." in b and "e" not in b else 0
        assert abs(float(a) - float(b)) <= 10.0**-decimals * 1.0001, (got, expected)


def assert_same_printout(printed, shown):
    """Equal token by token; numbers within one unit of the last digit the README shows."""
    assert_same_layout(printed, shown)
    for got, expected in zip(_tokens(printed), _tokens(shown)):
        assert_same_numbers([a for a in got if NUMBER.fullmatch(a)], [b for b in expected if NUMBER.fullmatch(b)])


def assert_hunchback(rows, *, trained):
    """What the README says of a digits CNN's profile, given {layer: (id, pca_id)} read off its table."""
    input_id = rows["input"][0]
    for layer in HIDDEN:
        dimension, pca_id = rows[layer]
        assert pca_id > dimension, layer  # curved representations: the linear ID is larger
    for layer in ["pool1", "pool2"]:
        assert rows[layer][1] >= 2 * rows[layer][0], layer  # "several times" in the pooling layers
    if trained:
        assert rows["pool1"][0] > input_id  # it rises at the first pooling layer...
        assert rows["d1"][0] < input_id  # ...and falls below the input's at the last hidden layer
    else:
        assert all(rows[layer][0] > input_id for layer in HIDDEN)  # stays above the input's
        assert rows["output"][0] < input_id


def test_the_readme_shows_its_snippets_with_their_output():
    assert [printed_by_a_run for _, printed_by_a_run, _ in _pairs()] == [False, False, True, True]


@pytest.mark.slow
def test_the_readme_snippets_print_what_it_shows(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for code, printed_by_a_run, shown in _pairs():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "README.md", "exec"), namespace)
        if printed_by_a_run:
            assert_same_layout(printed.getvalue(), shown)
        else:
            assert_same_printout(printed.getvalue(), shown)
    # The trained digits CNN: the pipeline's ID is the profile's d1 row; the input row holds no
    # training, so its digits are the README's.
    table = namespace["profile"].profile_
    rows = {row.layer: (row.id, row.pca_id) for row in table.itertuples()}
    assert namespace["pipeline"][-1].dimension_ == pytest.approx(rows["d1"][0], rel=1e-9)
    assert_hunchback(rows, trained=True)
    (profile_shown,) = [shown for code, _, shown in _pairs() if "DepthProfile(net" in code]
    header = next(line.split() for line in profile_shown.splitlines() if line.split()[:1] == ["layer"])
    shown_input = next(line.split() for line in profile_shown.splitlines() if line.split()[:1] == ["input"])
    printed_input = table.round(2).astype(str).set_index("layer").loc["input"]
    columns = ["n_features", "id", "id_std", "scale", "pca_id"]
    assert_same_numbers([printed_input[c] for c in columns], [shown_input[header.index(c)] for c in columns])
    # The grid search: the wider network is the more accurate; both IDs are finite and below d1's width.
    results = namespace["search"].cv_results_
    assert list(results["param_module__width"]) == [4, 16]
    assert results["mean_test_accuracy"][1] > results["mean_test_accuracy"][0]
    assert np.all((results["mean_test_id"] > 1) & (results["mean_test_id"] < 128))


def _profile_tables(printout):
    """{"trained": {layer: tokens}, "untrained": {...}} from the main job's printout."""
    tables = {}
    for name, body in re.findall(r"^(trained|untrained)\n(.*?)(?:\n\n|\Z)", printout, flags=re.S | re.M):
        rows = [line.split() for line in body.strip().splitlines()[1:]]
        tables[name] = {row[0]: row for row in rows}
    return tables


@pytest.mark.slow
def test_the_main_job_prints_the_readme_tables(tmp_path):
    (shown,) = re.findall(r"writes `depth_profile.png`. A run printed:\s*```text\n(.*?)```", README, flags=re.S)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--out", str(tmp_path), "--quiet"]) == 0
    lines = printed.getvalue().strip().splitlines()
    assert lines[-1] == f"wrote {tmp_path / 'depth_profile.png'}"
    printout = "\n".join(lines[:-1])
    assert_same_layout(printout, shown)
    accuracy = float(re.search(r"test accuracy (\S+)", printout).group(1))
    assert accuracy > 0.9  # a network that learned (chance is 0.1)
    got, expected = _profile_tables(printout), _profile_tables(shown)
    for name in ("trained", "untrained"):
        assert list(got[name]) == list(expected[name]) == ["input", *HIDDEN, "output"]
        for layer, row in got[name].items():
            assert row[1:3] == expected[name][layer][1:3]  # relative depth and width: the architecture
        # Columns: layer, depth, features, id, "+/-", std, PCA-ID. No training reaches the input row.
        (got_input, expected_input) = (table["input"] for table in (got[name], expected[name]))
        assert_same_numbers([got_input[i] for i in (3, 5, 6)], [expected_input[i] for i in (3, 5, 6)])
        rows = {layer: (float(row[3]), float(row[6])) for layer, row in got[name].items()}
        assert_hunchback(rows, trained=name == "trained")
        got[name] = rows
    # The untrained ID rises higher, and its output falls "much less far" than the trained one's.
    peak = {name: max(rows[layer][0] for layer in HIDDEN) for name, rows in got.items()}
    assert peak["untrained"] > peak["trained"]
    assert got["trained"]["output"][0] < got["untrained"]["output"][0]
