"""Which files an ``anchor`` of files and folders reads, and what it skips: :func:`load_files`.

A file named on the command line is read whatever its name (the user chose it; a symbolic link
is followed). A folder is walked, and of what it holds only regular files whose name ends in
``.json`` (any case: ``X.JSON`` too) are read, in name order; the rest is skipped and said, one
line per kind:

- other files (``notes.txt``): not FHIR JSON;
- hidden files and folders (a name starting with ``.``: ``.DS_Store``, ``.git``);
- symbolic links, to files or folders: a link may lead outside the folder or round in a loop,
  so a folder's links are never followed (name the target itself to read it).

A file reached twice (named twice, or named and inside a named folder) is read once, and said.
A named folder with no JSON file in it is refused: an empty export is a mistake, not a success.
All files must be about one patient (:class:`~medledger.errors.FhirPatientMismatch`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medledger.errors import ConfigurationError, FhirPatientMismatch
from medledger.fhir._ingest import load

if TYPE_CHECKING:
    from medledger.fhir._types import Ingest, PatientRef

SHOWN = 3  # names listed per kind of skipped file


@dataclass
class Loaded:
    """The inputs read (in order, each once), and one notice line per kind of file skipped."""

    ingests: list[tuple[Path, Ingest]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


@dataclass
class _Selection:
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    seen: set[Path] = field(default_factory=set)

    def skip(self, kind: str, path: Path) -> None:
        self.skipped.setdefault(kind, []).append(str(path))

    def take(self, path: Path) -> None:
        real = path.resolve()
        if real in self.seen:
            self.skip("twice", path)
            return
        self.seen.add(real)
        self.files.append(path)


_KINDS = {  # (one, many): how each kind of skipped path is said
    "other": ("file not ending in .json", "files not ending in .json"),
    "hidden": ("hidden file or folder", "hidden files or folders"),
    "link": (
        "symbolic link (links in a folder are not followed: name the target to read it)",
        "symbolic links (links in a folder are not followed: name the target to read it)",
    ),
    "twice": ("file named more than once (read once)", "files named more than once (read once)"),
}


def select_files(inputs: list[Path] | tuple[Path, ...]) -> tuple[list[Path], list[str]]:
    """The files to read from ``inputs`` (files and folders), and the notices of what was
    skipped (see the module)."""
    chosen = _Selection()
    for item in inputs:
        if item.is_dir():
            before = len(chosen.files) + len(chosen.skipped.get("twice", []))
            _walk(item, chosen)
            if len(chosen.files) + len(chosen.skipped.get("twice", [])) == before:
                raise ConfigurationError(str(item), "holds no .json file: there is nothing to read")
        elif item.exists():
            chosen.take(item)
        else:
            raise ConfigurationError(str(item), "no such file or folder")
    notices = []
    for kind, paths in chosen.skipped.items():
        more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
        what = _KINDS[kind][0 if len(paths) == 1 else 1]
        notices.append(f"skipped {len(paths)} {what}: {', '.join(paths[:SHOWN])}{more}")
    return chosen.files, notices


def _walk(folder: Path, chosen: _Selection) -> None:
    try:
        children = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise ConfigurationError(str(folder), f"cannot be listed ({exc.strerror})") from None
    for child in children:
        path = Path(child.path)
        if child.name.startswith("."):
            chosen.skip("hidden", path)
        elif child.is_symlink():
            chosen.skip("link", path)
        elif child.is_dir(follow_symlinks=False):
            _walk(path, chosen)
        elif child.name.lower().endswith(".json") and child.is_file(follow_symlinks=False):
            chosen.take(path)
        else:
            chosen.skip("other", path)


def read_file(path: Path) -> bytes:
    """A file's bytes, or a one-line error saying why it cannot be read."""
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise ConfigurationError(str(path), "is a folder, not a file") from None
    except OSError as exc:
        raise ConfigurationError(str(path), f"cannot be read ({exc.strerror})") from None


def load_files(inputs: list[Path] | tuple[Path, ...], *, strict: bool = False) -> Loaded:
    """Select (see the module), read and :func:`~medledger.fhir.load` every input, checking
    that all are about one patient. Nothing is returned unless every file is usable."""
    files, notices = select_files(inputs)
    loaded = Loaded(notices=notices)
    first: tuple[Path, PatientRef] | None = None
    for file in files:
        ingest = load(read_file(file), str(file), strict=strict)
        if ingest.patient is not None:
            # One command anchors for one patient: files about different patients are refused.
            if first is None:
                first = (file, ingest.patient)
            elif not first[1].same_patient(ingest.patient):
                raise FhirPatientMismatch(
                    str(file), "the file", ingest.patient.label, f"{first[1].label} ({first[0]})"
                )
        loaded.ingests.append((file, ingest))
    return loaded
