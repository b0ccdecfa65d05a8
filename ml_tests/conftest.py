"""Tests of the pure engine ``crm_ai/ml``. Make it importable as the top-level package ``ml``, without Odoo.

``crm_ai/__init__.py`` imports the Odoo models, so the engine is never imported
through ``crm_ai``: these tests prove it runs with no Odoo at all.
"""
import pathlib
import sys

ADDON_DIR = pathlib.Path(__file__).resolve().parents[1] / "crm_ai"
if str(ADDON_DIR) not in sys.path:
    sys.path.insert(0, str(ADDON_DIR))
