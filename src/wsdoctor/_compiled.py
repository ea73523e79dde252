"""Whether a module's compiled twin may stand in for it.

The protocol core and the connection's per-message path are each one Python source that
Cython compiles into an optional extension (see setup.py). The extension carries the
SHA-256 of the source it was built from; an editable install whose source changed since
the build must not run the old code, so a stale extension is refused, with a warning.
"""

from __future__ import annotations

import hashlib
import importlib
import warnings
from types import ModuleType


def current_build(extension: str, source: str, what: str, path: str) -> ModuleType | None:
    """The module ``extension`` if it exists and was built from ``source`` as it is now.

    ``what`` and ``path`` name it in the warning given when it exists but is stale.
    """
    try:
        built = importlib.import_module(extension)
    except ImportError:
        return None
    with open(source, "rb") as file:
        digest = hashlib.sha256(file.read()).hexdigest()
    if getattr(built, "SOURCE_DIGEST", None) == digest:
        return built
    warnings.warn(
        f"wsdoctor's {what} was built from an older {path} and is not used; rebuild it with `pip install -e .`",
        RuntimeWarning,
        stacklevel=3,
    )
    return None
