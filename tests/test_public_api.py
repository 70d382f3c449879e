"""The public API: the names of ``import buzzpipe as bp``, their numpydoc documentation, and every
example in it and in the README's Python blocks run as written (doctest)."""

import doctest
import inspect
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import buzzpipe as bp

README = Path(__file__).resolve().parents[1] / "README.md"
PUBLIC = [
    "fit", "Fit", "margins", "wald_test", "lincom", "nlcom", "suest", "fieller_ratio",
    "WildScoreBootstrap", "bootstrap", "read_survey", "read_edge_list", "Survey", "describe",
    "synthesize", "run_study", "read_results", "write_report", "simulate",
]  # fmt: skip
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def test_every_public_name_is_listed_and_resolves():
    assert sorted(PUBLIC) == sorted(name for name in bp.__all__ if name != "__version__")
    assert set(PUBLIC) <= set(dir(bp))
    for name in PUBLIC:
        assert callable(getattr(bp, name)), name
    with pytest.raises(AttributeError, match="no attribute 'margin'"):
        bp.margin  # noqa: B018


def test_simulate_stays_the_function_once_its_subpackage_is_loaded():
    import buzzpipe.simulate.run  # noqa: F401  (the import system sets bp.simulate to the module)

    assert inspect.isfunction(bp.simulate) and bp.simulate.__module__ == "buzzpipe.simulate.run"


def test_the_top_level_loads_no_stage_until_a_name_is_used():
    code = "import sys, buzzpipe; print(sorted(m for m in sys.modules if m.startswith('buzzpipe')))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "['buzzpipe']"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_docstrings_have_numpydoc_sections_and_type_hints(name):
    obj = getattr(bp, name)
    sections = ["Parameters", "Notes", "Examples"]
    if not inspect.isclass(obj):
        sections.insert(1, "Returns")
    doc = inspect.getdoc(obj)
    found = [s for s in sections if re.search(rf"^{s}\n-{{{len(s)}}}$", doc, re.M)]
    assert found == sections, f"{name}: numpydoc sections {found}, expected {sections}"
    assert doc.index("Parameters") < doc.index("Examples")
    signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    unhinted = [
        p for p in signature.parameters.values()
        if p.name != "self" and p.annotation is inspect.Parameter.empty
    ]  # fmt: skip
    assert not unhinted, f"{name}: parameters without type hints: {unhinted}"
    if not inspect.isclass(obj):
        assert signature.return_annotation is not inspect.Signature.empty, name


def test_help_shows_the_numpydoc_docstring():
    text = pydoc.render_doc(bp.margins, renderer=pydoc.plaintext)
    assert "Parameters\n    ----------" in text and "Examples\n    --------" in text
    assert ">>> ame = bp.margins(product, firms" in text


def _docstring_tests(name):
    return doctest.DocTestFinder(recurse=False).find(getattr(bp, name), f"bp.{name}", globs={})


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tests = [t for t in _docstring_tests(name) if t.examples]
    assert tests, f"bp.{name} has no example"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"bp.{name}: {runner.failures} examples failed (see above)"


def test_fit_convenience_methods_call_the_free_functions():
    from buzzpipe.estimate.hypothesis_tests import TestStatistic

    firms = bp.synthesize("norway2010", seed=3, firms=400).analysis_frame()
    product = bp.fit("product ~ breadth_regional + breadth_international", firms, vcov="robust")
    pairs = [
        (product.margins(firms, "breadth_international", kind="plus_one").table,
         bp.margins(product, firms, "breadth_international", kind="plus_one").table),
        (product.lincom("breadth_international - breadth_regional").table,
         bp.lincom(product, "breadth_international - breadth_regional").table),
        (product.nlcom("exp(breadth_international)").table,
         bp.nlcom(product, "exp(breadth_international)").table),
    ]  # fmt: skip
    for method, function in pairs:
        assert method.equals(function)
    test = product.wald_test("breadth_international = breadth_regional")
    assert test == bp.wald_test(product, "breadth_international = breadth_regional")
    assert isinstance(test, TestStatistic) and isinstance(product.model_test(), TestStatistic)
    assert product.model_test().distribution == "chi2" and product.model_test().df == (2,)


def _readme_python_blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [
        (text[: match.start()].count("\n") + 2, match.group(1))
        for match in re.finditer(r"^```python\n(.*?)^```$", text, re.M | re.S)
    ]


def test_readme_python_blocks_use_only_public_names():
    blocks = _readme_python_blocks()
    assert len(blocks) >= 4
    for line, code in blocks:
        assert "from buzzpipe" not in code and "import buzzpipe." not in code, line
        used = set(re.findall(r"\bbp\.(\w+)", code))
        assert used <= set(PUBLIC), f"README line {line}: {used - set(PUBLIC)} are not public"


@pytest.mark.parametrize("line_and_code", _readme_python_blocks(), ids=lambda b: f"line{b[0]}")
def test_readme_python_blocks_run(line_and_code, tmp_path, monkeypatch):
    line, code = line_and_code
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "readme"})
