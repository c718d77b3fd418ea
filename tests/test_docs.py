"""The documentation reads offline: maths rendered when built, every public method documented on its class page."""

import inspect
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

import sklearn_id

DOCS = Path(__file__).parents[1] / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("sphinx")
    out = tmp_path_factory.mktemp("html")
    # plot_gallery=0: the examples' pages without running them (tests/test_examples.py runs them).
    command = [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "-D", "plot_gallery=0", str(DOCS), str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_no_page_holds_raw_latex_and_the_maths_is_mathml(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    raw = [page.name for page in pages if re.search(r"\\\(|\\\[|\$\$", page.read_text())]
    assert raw == []
    guide = (site / "user_guide.html").read_text()
    assert guide.count("<math") > 20
    assert "mathjax" not in guide.lower()


@pytest.mark.slow
def test_every_public_method_is_documented_on_its_class_page(site):
    for name in ("TwoNNDimension", "GRIDEDimension", "PCADimension", "LayerActivationTransformer", "DepthProfile"):
        cls = getattr(sklearn_id, name)
        html = (site / "generated" / f"sklearn_id.{name}.html").read_text()
        own = [
            member
            for member, value in inspect.getmembers(cls)
            if not member.startswith("_")
            and (inspect.isfunction(value) or isinstance(value, property))
            and getattr(value, "__module__", getattr(getattr(value, "fget", None), "__module__", "")).startswith(
                "sklearn_id"
            )
        ]
        assert {"fit"} <= set(own)
        for member in own:
            anchor = f'id="sklearn_id.{name}.{member}"'
            assert anchor in html, f"{name}.{member} is not documented on its page"
            summary = inspect.getdoc(getattr(cls, member)).splitlines()[0]
            words = re.sub(r"``|`|:\w+:", "", summary).split()[:3]
            text = unescape(re.sub(r"<[^>]+>", "", html)).replace("\u2019", "'")
            assert " ".join(words) in text, f"{name}.{member}'s docstring is not rendered"


@pytest.mark.slow
def test_the_footer_has_a_copyright_line(site):
    assert "the sklearn-id developers (BSD-3-Clause)" in (site / "index.html").read_text()
