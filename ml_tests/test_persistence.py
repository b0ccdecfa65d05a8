import joblib
import pytest

from ml import ArtifactError, LeadPropensityModel, dumps_signed, loads_signed
from ml import persistence
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
    monkeypatch.setattr(persistence, "library_versions", lambda: {"scikit-learn": "0.1", "numpy": "1"})
    with pytest.raises(ArtifactError, match="retrain"):
        loads_signed(blob, KEY)


def test_signing_needs_a_key():
    with pytest.raises(ValueError):
        dumps_signed({}, b"")
