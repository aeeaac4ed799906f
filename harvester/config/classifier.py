"""The learned classifier's artefact: found, checked against its pinned hash, loaded once.

A config folder may carry its own `classifier.json.gz` (a model retrained on more data); without
one, the artefact shipped inside the package is used, and its SHA-256 must be the one pinned here,
so a corrupted or hand-edited file is refused rather than silently scoring differently. Every
classification records the model's version and hash, and the cache key includes them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from harvester.errors import ConfigError
from scoring import CRITERIA
from scoring.learned import ModelError, TextModel, model_from_dict

FILE = "classifier.json.gz"
SHIPPED_SHA256 = "eb830ac044a0833bae473b987476caa5546d2f565389922e64761488dc514bdc"


def packaged_classifier_path() -> Path:
    return Path(str(resources.files("harvester.config").joinpath(FILE)))


def classifier_path(config_dir: Path) -> Path:
    own = config_dir / FILE
    return own if own.exists() else packaged_classifier_path()


def load_classifier(path: Path) -> TextModel:
    """The model in `path`, read again once the file changes (`ccqm train --decisions` replaces a
    config folder's own); a mistake is a ConfigError naming the file and the field."""
    try:
        found = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read the classifier ({exc.strerror})", file=str(path)) from None
    return _read(path, found.st_mtime_ns, found.st_size)


@lru_cache(maxsize=4)
def _read(path: Path, mtime_ns: int, size: int) -> TextModel:
    try:
        packed = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the classifier ({exc.strerror})", file=str(path)) from None
    digest = hashlib.sha256(packed).hexdigest()
    if path == packaged_classifier_path() and digest != SHIPPED_SHA256:
        raise ConfigError(f"the packaged classifier's SHA-256 is {digest}, not the pinned {SHIPPED_SHA256}; "
                          "reinstall ccqm", file=str(path), field="sha256")
    try:
        data = json.loads(gzip.decompress(packed))
    except (OSError, EOFError, ValueError) as exc:
        raise ConfigError(f"not a gzipped JSON classifier ({exc})", file=str(path)) from None
    try:
        return model_from_dict(data, digest=digest, criteria=CRITERIA)
    except ModelError as exc:
        raise ConfigError(exc.message, file=str(path), field=exc.field) from None
