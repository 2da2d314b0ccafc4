"""Writing a file so that a crash leaves the old one or the new one, never a part of either."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def write_atomically(path: Path, data: bytes | bytearray | memoryview, sync: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``; with
    ``sync``, fsync the file before the rename and its folder after (durable across a power
    cut). OSError as the OS raised it; the temporary file is removed."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
