"""Every script under examples/ runs to the end and saves its figure, so none of them rots."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def test_the_examples_are_found():
    assert [path.name for path in EXAMPLES] == [
        "grid_search_with_id.py",
        "plot_char_lm.py",
        "plot_compare_layers.py",
        "plot_hunchback.py",
        "plot_id_during_training.py",
        "plot_id_vs_accuracy.py",
        "plot_per_text_id.py",
        "plot_shuffled_labels.py",
        "plot_twonn_scale.py",
        "plot_which_scale.py",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_and_saves_its_figure(script, tmp_path):
    figures = re.findall(r'savefig\("([^"]+\.png)"', script.read_text())
    # No time limit: the slowest example takes two minutes on a quiet 2-core machine and several on a busy one.
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert figures and all((tmp_path / figure).stat().st_size > 20_000 for figure in figures)
