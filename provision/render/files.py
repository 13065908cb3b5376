"""Writing a rendered tree and comparing it with what is on disk (the only I/O in render/)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

Buffer: TypeAlias = bytes | memoryview
"""An encoded piece of a file."""
Body: TypeAlias = str | list[Buffer]
"""What a file holds: its text, or its encoded pieces in order (a big file written as it
was rendered, without joining it into one more copy)."""

GENERATED_MARK = ".gpuctl-generated"


def write_tree(out: Path, files: Mapping[str, Body]) -> None:
    """Write ``files`` under ``out``; remove files a previous plan wrote that are gone now.

    A file whose bytes are already on disk is left alone (its mtime too), so re-planning an
    unchanged site touches nothing.
    """
    write_files(out, files)
    finish_tree(out, files)


def write_files(out: Path, files: Mapping[str, Body]) -> None:
    """Write ``files`` under ``out`` (created), leaving a file whose bytes are already there
    alone; each directory is created once (a 16,384-node site has as many host_vars files).
    Two processes may write disjoint parts of one tree at once."""
    stage_files(out, files).commit()


@dataclass
class Staged:
    """Files staged under ``out`` by :func:`stage_files`: the new ones are written, the
    changed ones wait for :meth:`commit`; :meth:`abandon` removes what staging added."""

    out: Path
    created: list[str] = field(default_factory=list)
    """Paths (absolute) of the files and directories staging created, in creation order."""
    pending: dict[str, bytes | list[Buffer]] = field(default_factory=dict)
    """Absolute path -> bytes of the files that exist with other bytes."""

    def commit(self) -> None:
        """Overwrite the changed files: the tree is then what was staged."""
        for path, data in self.pending.items():
            _write(path, data, os.O_TRUNC)
        self.pending.clear()

    def abandon(self) -> None:
        """Remove the files and (empty) directories staging created: the tree is as it was."""
        for path in reversed(self.created):
            try:
                if os.path.isdir(path):
                    os.rmdir(path)
                else:
                    os.unlink(path)
            except OSError:
                pass
        self.created.clear()
        self.pending.clear()


def stage_files(out: Path, files: Mapping[str, Body]) -> Staged:
    """Write the files of ``files`` that do not exist under ``out`` yet and compare the rest
    with the disk, changing no existing file (so a caller that fails later can abandon it)."""
    staged = Staged(out)
    try:
        _stage(staged, files)
    except BaseException:
        staged.abandon()
        raise
    return staged


def _stage(staged: Staged, files: Mapping[str, Body]) -> None:
    base = os.fspath(staged.out)
    made: set[str] = set()
    for rel, text in sorted(files.items()):
        parent = os.path.dirname(rel)
        if parent not in made:
            _makedirs(os.path.join(base, parent) if parent else base, staged.created)
            made.add(parent)
        path = os.path.join(base, rel)
        data = text.encode("utf-8") if isinstance(text, str) else text
        try:  # a new file (all of them in a fresh tree) costs one open, no stat
            _write(path, data, os.O_EXCL)
        except FileExistsError:
            pass
        else:
            staged.created.append(path)
            continue
        if _same(path, data):
            continue
        staged.pending[path] = data


def _same(path: str, data: bytes | list[Buffer]) -> bool:
    """Whether the file at ``path`` holds ``data`` (read only when the sizes match)."""
    size = len(data) if isinstance(data, bytes) else sum(map(len, data))
    if os.stat(path).st_size != size:
        return False
    with open(path, "rb") as fh:
        return fh.read() == (data if isinstance(data, bytes) else b"".join(data))


def _makedirs(path: str, created: list[str]) -> None:
    if os.path.isdir(path):
        return
    head = os.path.dirname(path)
    if head and head != path:
        _makedirs(head, created)
    try:
        os.mkdir(path)
    except FileExistsError:  # made by the other process in the meantime
        return
    created.append(path)


_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def _write(path: str, data: bytes | list[Buffer], mode: int) -> None:
    fd = os.open(path, _OPEN_FLAGS | mode, 0o666)
    try:
        for piece in [data] if isinstance(data, bytes) else data:
            written = os.write(fd, piece)
            if written < len(piece):  # a short write (large files, signals): write the rest
                view = memoryview(piece)[written:]
                while view:
                    view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def finish_tree(out: Path, names: Collection[str]) -> None:
    """Remove the files a previous plan wrote under ``out`` that are not in ``names`` (what
    was just written), and record ``names`` for the next plan."""
    mark = out / GENERATED_MARK
    old = set(mark.read_text(encoding="utf-8").split()) if mark.exists() else set()
    for rel in sorted(old - set(names)):
        (out / rel).unlink(missing_ok=True)
    mark.write_text("\n".join(sorted(names)) + "\n", encoding="utf-8")


@dataclass
class Drift:
    """How ``out`` differs from a render: the files (relative paths) and readable lines."""

    missing: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)
    """Text on disk of the files in ``wanted`` that differ (what the review compares)."""

    @property
    def files(self) -> int:
        """Generated files that differ: missing, changed or stale (not diff lines)."""
        return len(self.missing) + len(self.differ) + len(self.stale)


def diff_tree(out: Path, files: dict[str, str], max_lines: int = 40,
              wanted: frozenset[str] = frozenset()) -> Drift:
    """Drift between ``out`` and ``files`` (``files == 0`` when identical); keeps the on-disk
    text of the ``wanted`` files that differ."""
    drift = Drift()
    for rel, text in sorted(files.items()):
        p = out / rel
        if not p.exists():
            drift.missing.append(rel)
            drift.lines.append(f"missing: {p}")
            continue
        have = p.read_text(encoding="utf-8")
        if have != text:
            diff = list(difflib.unified_diff(have.splitlines(), text.splitlines(), str(p),
                                             f"{p} (planned)", lineterm="", n=0))
            drift.differ.append(rel)
            drift.lines.append(f"differs: {p}")
            drift.lines.extend(diff[:max_lines])
            if rel in wanted:
                drift.before[rel] = have
    mark = out / GENERATED_MARK
    if mark.exists():
        for rel in sorted(set(mark.read_text(encoding="utf-8").split()) - set(files)):
            drift.stale.append(rel)
            drift.lines.append(f"stale: {out / rel}")
    return drift
