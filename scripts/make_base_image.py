#!/usr/bin/env python3
"""Import a busybox base image, built offline from Debian's busybox-static, into the
built-in engine (under $PYCOMPOSE_ROOT): `scripts/make_base_image.py [REF]`.

The rootfs tarball comes from tests/conftest.py's builder, the one the tests use.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_REF = "pycompose-busybox:latest"


def main(argv: list[str]) -> int:
    from engine.api import connect
    from tests.conftest import make_busybox_rootfs_tar

    ref = argv[0] if argv else DEFAULT_REF
    engine = connect()
    with tempfile.TemporaryDirectory() as tmp:
        tar = make_busybox_rootfs_tar(Path(tmp) / "busybox.tar")
        image = engine.image_import(str(tar), ref, changes=('CMD ["sh"]',))
    print(f"{ref} {image.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
