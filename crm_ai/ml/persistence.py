"""Signed model artifacts: joblib bytes that are only ever loaded if we wrote them.

Unpickling is code execution, so a blob is verified before ``joblib.load`` sees it:

    MAGIC | header length (4 bytes, big endian) | header (JSON) | HMAC-SHA256 | payload

The HMAC covers header and payload, keyed by a secret the caller derives (in Odoo:
from the database secret).  The header records the library versions the model was
fitted with; a mismatch is refused too (an estimator pickled by another
scikit-learn may load and silently predict wrong), and the caller retrains.
"""

import hashlib
import hmac
import io
import json
import struct

import joblib

MAGIC = b"CRMAI-MODEL-1\n"
_DIGEST_SIZE = hashlib.sha256().digest_size


class ArtifactError(ValueError):
    """The blob is not a model this key signed, or cannot be used here."""


def library_versions():
    import numpy
    import sklearn
    return {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__.split(".")[0]}


def _sign(key, header, payload):
    return hmac.new(key, header + payload, hashlib.sha256).digest()


def dumps_signed(obj, key, *, meta=None):
    """Serialise ``obj`` with joblib and sign it with ``key`` (bytes)."""
    if not key or not isinstance(key, bytes):
        raise ValueError("A non-empty bytes key is required to sign a model.")
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    payload = buffer.getvalue()
    header = json.dumps({"versions": library_versions(), "meta": meta or {}}, sort_keys=True).encode()
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


def loads_signed(blob, key):
    """Verify, then unpickle.  Raises :class:`ArtifactError` before loading anything
    that this key did not sign or that another library version wrote.

    >>> blob = dumps_signed({"a": 1}, b"k")
    >>> loads_signed(blob, b"k")
    {'a': 1}
    >>> try:
    ...     loads_signed(blob, b"other")
    ... except ArtifactError as error:
    ...     print(error)
    signature mismatch: the model was not written by this database
    """
    header, signature, payload = _split(blob)
    if not hmac.compare_digest(signature, _sign(key, header, payload)):
        raise ArtifactError("signature mismatch: the model was not written by this database")
    versions = json.loads(header).get("versions", {})
    if versions != library_versions():
        raise ArtifactError(f"model written with {versions}, this server runs {library_versions()}: retrain it")
    return joblib.load(io.BytesIO(payload))
