"""crm_ai/ml never imports Odoo, and its docstring examples run."""
import doctest
import importlib
import pathlib
import re

import pytest

ML_DIR = pathlib.Path(__file__).resolve().parents[1] / "crm_ai" / "ml"
MODULES = sorted(p.stem for p in ML_DIR.glob("*.py") if p.stem != "__init__")


def test_no_odoo_import():
    offenders = [f"{p.name}:{n}" for p in ML_DIR.rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if re.match(r"\s*(from|import)\s+odoo\b", line) or re.match(r"\s*from\s+\.\.", line)]
    assert not offenders, f"ml/ must stay free of Odoo: {offenders}"


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(f"ml.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in ml/{name}.py"
