"""Where the Compose conformance corpus (`../shared/conformance`) is; missing is an error."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def conformance_dir() -> Path:
    """The corpus: $PYCOMPOSE_CONFORMANCE, else `shared/conformance` beside the checkout."""
    env = os.environ.get("PYCOMPOSE_CONFORMANCE")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "conformance", Path("/work/shared/conformance")]
    for candidate in candidates:
        if (candidate / "manifest.json").is_file():
            return candidate
    raise RuntimeError("the conformance corpus is missing: expected ../shared/conformance "
                       "beside the checkout, or set PYCOMPOSE_CONFORMANCE")


CONFORMANCE = conformance_dir()
