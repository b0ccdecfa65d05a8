import json
import pickle
import struct
import sys
import types

import joblib
import pytest
from ml import ArtifactError, LeadPropensityModel, dumps_signed, loads_signed, persistence
from synthetic import COLUMNS, make_leads

KEY = b"database-derived-key"


@pytest.fixture(scope="module")
def blob():
    X, y, _p = make_leads(300)
    return dumps_signed(LeadPropensityModel(**COLUMNS).fit(X, y), KEY, meta={"task": "lead_propensity"})


def test_round_trip(blob):
    model = loads_signed(blob, KEY)
    X, _y, _p = make_leads(10, seed=9)
    assert model.predict_proba(X).shape == (10, 2)
    assert persistence.read_header(blob)["meta"] == {"task": "lead_propensity"}


@pytest.mark.parametrize("tamper", [
    lambda b: b[:-10] + bytes(10),                      # payload altered
    lambda b: b.replace(b'"task"', b'"tusk"', 1),       # header altered
    lambda b: b[:len(persistence.MAGIC) + 4],          # truncated
    lambda b: b"\x80\x04garbage pickle",               # not ours at all
    lambda b: b"",
])
def test_altered_or_foreign_blobs_are_never_unpickled(blob, tamper, monkeypatch):
    def forbidden(*_a, **_k):
        raise AssertionError("joblib.load must not run on an unverified blob")
    monkeypatch.setattr(joblib, "load", forbidden)
    with pytest.raises(ArtifactError):
        loads_signed(tamper(blob), KEY)


def test_other_key_is_refused(blob, monkeypatch):
    monkeypatch.setattr(joblib, "load", lambda *_a, **_k: pytest.fail("loaded"))
    with pytest.raises(ArtifactError, match="signature"):
        loads_signed(blob, b"another database")


def test_other_library_versions_are_refused(blob, monkeypatch):
    monkeypatch.setattr(persistence, "_library_version", {"scikit-learn": "0.1", "numpy": "1"}.get)
    with pytest.raises(ArtifactError, match="retrain"):
        loads_signed(blob, KEY)


def test_signing_needs_a_key():
    with pytest.raises(ValueError):
        dumps_signed({}, b"")


# -- libraries recorded and checked -------------------------------------------------
def test_library_versions_only_for_the_named_libraries():
    assert set(persistence.library_versions()) == {"scikit-learn", "numpy"}
    assert set(persistence.library_versions(("scipy", "pandas"))) == {"scipy", "pandas"}
    assert persistence.library_versions(("numpy",))["numpy"].isdigit()  # major only
    with pytest.raises(ValueError, match="unknown library 'tensorflow'"):
        persistence.library_versions(("numpy", "tensorflow"))
    with pytest.raises(ValueError, match="sequence"):
        persistence.library_versions("numpy")


def test_header_records_only_the_named_libraries():
    blob = dumps_signed({}, KEY, libraries=("scikit-learn", "numpy", "joblib"))
    assert set(persistence.read_header(blob)["versions"]) == {"scikit-learn", "numpy", "joblib"}
    assert set(persistence.read_header(dumps_signed({}, KEY))["versions"]) == {"scikit-learn", "numpy"}
    with pytest.raises(ValueError, match="unknown library"):
        dumps_signed({}, KEY, libraries=("sklearn",))


def test_an_unused_library_is_not_checked(blob, monkeypatch):
    """lightfm upgraded, or gone: a scikit-learn model does not care."""
    asked = []
    real = persistence._library_version

    def spy(name):
        asked.append(name)
        if name == "lightfm":
            return "999.0"
        return real(name)
    monkeypatch.setattr(persistence, "_library_version", spy)
    monkeypatch.setitem(sys.modules, "lightfm", None)  # and not importable
    assert isinstance(loads_signed(blob, KEY), LeadPropensityModel)
    assert sorted(asked) == ["numpy", "scikit-learn"]


def test_a_listed_library_with_another_version_is_refused(monkeypatch):
    blob = dumps_signed({"a": 1}, KEY, libraries=("scikit-learn", "numpy", "joblib"))
    assert loads_signed(blob, KEY) == {"a": 1}
    real = persistence._library_version
    monkeypatch.setattr(persistence, "_library_version", lambda name: "0.0" if name == "joblib" else real(name))
    monkeypatch.setattr(joblib, "load", lambda *_a, **_k: pytest.fail("loaded"))
    with pytest.raises(ArtifactError, match="'joblib': '0.0'.*retrain"):
        loads_signed(blob, KEY)


def test_a_listed_library_that_cannot_be_imported_is_refused(monkeypatch):
    blob = dumps_signed({"a": 1}, KEY, libraries=("scikit-learn", "numpy", "textblob"))
    monkeypatch.setitem(sys.modules, "textblob", None)  # import textblob now raises ImportError
    monkeypatch.setattr(joblib, "load", lambda *_a, **_k: pytest.fail("loaded"))
    with pytest.raises(ArtifactError, match="'textblob': 'not importable'.*retrain"):
        loads_signed(blob, KEY)


# -- meta expected by the caller ------------------------------------------------------
SIDE_EFFECTS = []


def _record_unpickling():
    SIDE_EFFECTS.append("unpickled")
    return "payload"


class Tripwire:
    """Unpickling it leaves a trace: proof of whether the payload was unpickled."""

    def __reduce__(self):
        return (_record_unpickling, ())


META = {"task": "lead_propensity", "company": 1, "version": 2}


def test_expected_meta_is_checked_before_unpickling():
    blob = dumps_signed(Tripwire(), KEY, meta=META)
    SIDE_EFFECTS.clear()
    with pytest.raises(ArtifactError, match="signed for company 1, not company 2"):
        loads_signed(blob, KEY, expect_meta={"task": "lead_propensity", "company": 2})
    with pytest.raises(ArtifactError, match="signed for task lead_propensity, not task lead_churn"):
        loads_signed(blob, KEY, expect_meta={"task": "lead_churn"})
    with pytest.raises(ArtifactError, match="signed without a stage, not for stage 4"):
        loads_signed(blob, KEY, expect_meta={"stage": 4})
    assert SIDE_EFFECTS == []  # refused before unpickling
    assert loads_signed(blob, KEY, expect_meta=META) == "payload"
    assert SIDE_EFFECTS == ["unpickled"]  # the tripwire does fire when the meta matches


def test_expected_meta_is_compared_as_stored():
    blob = dumps_signed({"a": 1}, KEY, meta={"fields": ("source", "team"), "company": None})
    assert loads_signed(blob, KEY, expect_meta={"fields": ("source", "team"), "company": None}) == {"a": 1}
    assert loads_signed(blob, KEY, expect_meta={}) == {"a": 1}
    with pytest.raises(ArtifactError, match="signed for company None, not company 0"):
        loads_signed(blob, KEY, expect_meta={"company": 0})
    with pytest.raises(ValueError, match="expect_meta must be a dict"):
        loads_signed(blob, KEY, expect_meta=[("company", None)])


def test_signature_is_checked_before_meta():
    blob = dumps_signed({"a": 1}, KEY, meta=META)
    with pytest.raises(ArtifactError, match="signature"):
        loads_signed(blob, b"another database", expect_meta={"company": 2})


# -- a verified payload that cannot be unpickled any more -----------------------------
class Vanishing:
    """A class renamed or removed after a model was pickled."""


def _raise(error):
    raise error


class Raising:
    def __init__(self, error):
        self.error = error

    def __reduce__(self):
        return (_raise, (self.error,))


@pytest.mark.parametrize("error", [
    EOFError("ran out of input"), pickle.UnpicklingError("invalid load key"), ValueError("bad dtype"),
    ImportError("cannot import name"), RuntimeError("anything else"),
])
def test_unpickling_errors_are_artifact_errors(error):
    blob = dumps_signed(Raising(error), KEY)
    with pytest.raises(ArtifactError, match=f"cannot load the model: {type(error).__name__}: {error}") as info:
        loads_signed(blob, KEY)
    assert type(info.value.__cause__) is type(error)


def test_a_class_that_no_longer_exists_is_an_artifact_error(monkeypatch):
    blob = dumps_signed(Vanishing(), KEY)
    monkeypatch.delattr(sys.modules[__name__], "Vanishing")
    with pytest.raises(ArtifactError, match="cannot load the model: AttributeError"):
        loads_signed(blob, KEY)


def test_a_module_that_no_longer_exists_is_an_artifact_error(monkeypatch):
    gone = types.ModuleType("crm_ai_module_since_removed")
    exec("class Model:\n    pass", gone.__dict__)
    monkeypatch.setitem(sys.modules, gone.__name__, gone)
    blob = dumps_signed(gone.Model(), KEY)
    monkeypatch.delitem(sys.modules, gone.__name__)
    with pytest.raises(ArtifactError, match="cannot load the model: ModuleNotFoundError"):
        loads_signed(blob, KEY)


def test_signed_garbage_is_an_artifact_error():
    """Signed with the right key (a bug, not an attack): still one refusal path."""
    header = json.dumps({"versions": persistence.library_versions(), "meta": {}}, sort_keys=True).encode()
    payload = b"\x80\x04this is not a pickle"
    blob = (persistence.MAGIC + struct.pack(">I", len(header)) + header
            + persistence._sign(KEY, header, payload) + payload)
    with pytest.raises(ArtifactError, match="cannot load the model"):
        loads_signed(blob, KEY)
