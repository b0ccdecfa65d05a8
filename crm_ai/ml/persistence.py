"""Signed model artifacts: joblib bytes that are only ever loaded if we wrote them.

Unpickling is code execution, so a blob is verified before ``joblib.load`` sees it:

    MAGIC | header length (4 bytes, big endian) | header (JSON) | HMAC-SHA256 | payload

The HMAC covers header and payload, keyed by a secret the caller derives (in Odoo:
from the database secret).  The header records

* ``meta``: what the model is for (task, company, version...); the loader may
  demand values (``expect_meta``), so a model signed for one company or task is
  never used for another;
* ``versions``: the versions of the libraries the model needs (by default
  scikit-learn and numpy).  A mismatch is refused too (an estimator pickled by
  another scikit-learn may load and silently predict wrong), and the caller
  retrains.  Only the listed libraries are checked: upgrading one a model does not
  use leaves it loadable.

Every refusal, including a verified payload that no longer unpickles (a class
renamed since), is an :class:`ArtifactError`: callers have one "refused" path.
"""

import hashlib
import hmac
import importlib
import importlib.metadata
import io
import json
import struct
from collections.abc import Mapping

import joblib

MAGIC = b"CRMAI-MODEL-1\n"
_DIGEST_SIZE = hashlib.sha256().digest_size


class ArtifactError(ValueError):
    """The blob is not a model this key signed, or cannot be used here."""


#: Libraries whose versions a header can record: name -> (module, major version only?).
#: numpy keeps its pickles readable within a major version.
KNOWN_LIBRARIES = {
    "scikit-learn": ("sklearn", False),
    "numpy": ("numpy", True),
    "scipy": ("scipy", False),
    "pandas": ("pandas", False),
    "joblib": ("joblib", False),
    "lightfm": ("lightfm", False),
    "textblob": ("textblob", False),
    "vaderSentiment": ("vaderSentiment", False),
    "py3langid": ("py3langid", False),
}
#: What a scikit-learn estimator needs: recorded unless the caller says otherwise.
DEFAULT_LIBRARIES = ("scikit-learn", "numpy")


def _library_version(name):
    """Installed version of the known library ``name``: imported lazily, so a library
    nobody asks about is never imported.  ValueError for an unknown name,
    ImportError when it cannot be imported."""
    if name not in KNOWN_LIBRARIES:
        raise ValueError(f"unknown library {name!r}; known: {', '.join(sorted(KNOWN_LIBRARIES))}")
    module_name, major_only = KNOWN_LIBRARIES[name]
    module = importlib.import_module(module_name)
    version = getattr(module, "__version__", None) or importlib.metadata.version(name)
    return version.split(".")[0] if major_only else version


def library_versions(libraries=DEFAULT_LIBRARIES):
    """``{name: version}`` of the named libraries (names from :data:`KNOWN_LIBRARIES`).

    >>> sorted(library_versions())
    ['numpy', 'scikit-learn']
    >>> library_versions(("numpy",))["numpy"].isdigit()  # major version only
    True
    >>> library_versions(("tensorflow",))
    Traceback (most recent call last):
    ...
    ValueError: unknown library 'tensorflow'; known: joblib, lightfm, numpy, ..., vaderSentiment
    """
    if isinstance(libraries, (str, bytes)):
        raise ValueError(f"libraries must be a sequence of names, not the string {libraries!r}.")
    return {name: _library_version(name) for name in libraries}


def _sign(key, header, payload):
    return hmac.new(key, header + payload, hashlib.sha256).digest()


def dumps_signed(obj, key, *, meta=None, libraries=DEFAULT_LIBRARIES):
    """Serialise ``obj`` with joblib and sign it with ``key`` (bytes).

    ``meta``: a JSON-serialisable dict recorded (and signed) in the header, for
    :func:`loads_signed`'s ``expect_meta``.  ``libraries``: the libraries ``obj``
    needs; only their versions are recorded, and checked when loading.
    """
    if not key or not isinstance(key, bytes):
        raise ValueError("A non-empty bytes key is required to sign a model.")
    if meta is not None and not isinstance(meta, Mapping):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}.")
    versions = library_versions(libraries)
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    payload = buffer.getvalue()
    header = json.dumps({"versions": versions, "meta": dict(meta or {})}, sort_keys=True).encode()
    return MAGIC + struct.pack(">I", len(header)) + header + _sign(key, header, payload) + payload


def resign(blob, key, meta):
    """``blob`` with its header's meta replaced by ``meta``, signed again with ``key``.

    The old signature is verified first, and the payload is never unpickled: an
    upgrade can bind models written before meta existed to their task, company and
    version without loading them.

    >>> old = dumps_signed([1, 2], b"k")
    >>> loads_signed(resign(old, b"k", {"version": 2}), b"k", expect_meta={"version": 2})
    [1, 2]
    """
    header, signature, payload = _split(blob)
    if not hmac.compare_digest(signature, _sign(key, header, payload)):
        raise ArtifactError("signature mismatch: the model was not written by this database")
    fields_ = json.loads(header)
    fields_["meta"] = dict(meta)
    header = json.dumps(fields_, sort_keys=True).encode()
    return MAGIC + struct.pack(">I", len(header)) + header + _sign(key, header, payload) + payload


def read_header(blob):
    """The (unverified) header: for display only, never trust it."""
    header, _sig, _payload = _split(blob)
    return json.loads(header)


def _split(blob):
    if not isinstance(blob, (bytes, bytearray)) or not blob.startswith(MAGIC):
        raise ArtifactError("not a crm_ai model artifact")
    pos = len(MAGIC)
    if len(blob) < pos + 4:
        raise ArtifactError("truncated artifact")
    (n,) = struct.unpack(">I", blob[pos:pos + 4])
    pos += 4
    header = bytes(blob[pos:pos + n])
    signature = bytes(blob[pos + n:pos + n + _DIGEST_SIZE])
    payload = bytes(blob[pos + n + _DIGEST_SIZE:])
    if len(header) != n or len(signature) != _DIGEST_SIZE or not payload:
        raise ArtifactError("truncated artifact")
    return header, signature, payload


def loads_signed(blob, key, *, expect_meta=None):
    """Verify, then unpickle.  Raises :class:`ArtifactError`, before loading anything,
    for a blob that this key did not sign, that was signed for other ``expect_meta``
    values, or that needs a library version this server does not run; and when
    the verified payload cannot be unpickled any more.

    >>> blob = dumps_signed({"a": 1}, b"k", meta={"task": "lead_propensity", "company": 1})
    >>> loads_signed(blob, b"k", expect_meta={"company": 1})
    {'a': 1}
    >>> def refused(*args, **kwargs):
    ...     try:
    ...         loads_signed(*args, **kwargs)
    ...     except ArtifactError as error:
    ...         print(error)
    >>> refused(blob, b"other")
    signature mismatch: the model was not written by this database
    >>> refused(blob, b"k", expect_meta={"company": 2})
    the model was signed for company 1, not company 2
    """
    if expect_meta is not None and not isinstance(expect_meta, Mapping):
        raise ValueError(f"expect_meta must be a dict, got {type(expect_meta).__name__}.")
    header, signature, payload = _split(blob)
    if not hmac.compare_digest(signature, _sign(key, header, payload)):
        raise ArtifactError("signature mismatch: the model was not written by this database")
    header = json.loads(header)
    _check_meta(header.get("meta", {}), expect_meta or {})
    _check_versions(header.get("versions", {}))
    try:
        return joblib.load(io.BytesIO(payload))
    except Exception as error:
        raise ArtifactError(f"cannot load the model: {type(error).__name__}: {error}") from error


_MISSING = object()


def _check_meta(meta, expect_meta):
    """Every item of ``expect_meta`` must equal the signed ``meta``'s (compared as JSON:
    a tuple expects the list the header stores)."""
    for name, expected in expect_meta.items():
        expected = json.loads(json.dumps(expected))
        signed = meta.get(name, _MISSING)
        if signed is _MISSING:
            raise ArtifactError(f"the model was signed without a {name}, not for {name} {expected}")
        if signed != expected:
            raise ArtifactError(f"the model was signed for {name} {signed}, not {name} {expected}")


def _check_versions(written):
    """The libraries the header lists must be importable here, at the same versions."""
    if not isinstance(written, Mapping):
        raise ArtifactError("malformed artifact header: versions")
    running = {}
    for name in sorted(written):
        try:
            running[name] = _library_version(name)
        except ImportError:
            running[name] = "not importable"
        except ValueError:
            running[name] = "unknown here"
    if running != dict(written):
        raise ArtifactError(f"model written with {dict(sorted(written.items()))}, this server runs {running}: "
                            "retrain it")
