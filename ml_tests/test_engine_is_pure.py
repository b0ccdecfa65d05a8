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


#: import name -> distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
#: imported by ml/ but installed with what it depends on: Odoo itself (lxml), scikit-learn (numpy)
INSTALLED_ANYWAY = {"lxml", "numpy"}


def test_manifest_lists_every_library_the_engines_import():
    """Odoo refuses to install the addon until its external_dependencies import: every
    third-party library ml/ imports (at the top or inside a function) is listed."""
    import ast
    import sys

    manifest = ast.literal_eval((ML_DIR.parent / "__manifest__.py").read_text())
    listed = set(manifest["external_dependencies"]["python"])
    imported = set()
    for path in ML_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - INSTALLED_ANYWAY
    missing = {DISTRIBUTIONS.get(name, name) for name in third_party} - listed
    assert not missing, f"ml/ imports {sorted(missing)}: add them to the manifest's external_dependencies"
