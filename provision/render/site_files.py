"""Every generated file of a site: the planning artifacts plus the configs real systems load.

Renderers are pure functions of one Plan. At GW scale (half a million links) rendering takes
as long as planning, so ``render_all`` forks one worker that renders half of the families
while this process renders the other half. The fork shares the Plan copy-on-write (nothing
is pickled on the way in); the worker sends its texts back over a pipe. The result is the
same dict, byte for byte, as a sequential render, which the tests check.

``write_all`` (what ``gpuctl plan`` runs) has each process write its own half instead, and
the worker's texts never cross the pipe. The worker writes its thousands of small files
(host_vars, cloud-init) as soon as it has rendered them, while this process still
renders, and this process writes its own new files (plan.json, plan.html, the big CSVs) as
soon as it has rendered them, while the worker may still write; files that exist already
are only compared then, and overwritten once both halves have rendered. A render error on either side removes what was added, so the directory is
left as it was.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections.abc import Collection, Iterator, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from provision.errors import GpuctlError
from provision.plan.build import Plan
from provision.render.artifacts import ARTIFACTS, render_artifacts
from provision.render.files import Body, Staged, finish_tree, stage_files, write_tree
from provision.render.plan_files import PLAN_FILES, plan_json_parts, render_plan_files

PARALLEL_MIN_LINKS = 20_000
"""Below this many links a fork costs more than it saves."""

WORKER_PLAN_FILES = ("cabling.csv",)
WORKER_ARTIFACTS = ("fabric", "ansible", "slurm", "k8s", "dhcp", "netbox", "cloud-init")
"""What the worker renders: about half of the time at 131k GPUs. Families sharing views built
once per render (topology: ansible/slurm/k8s; fabric graph and GUIDs: ibsim/opensm) stay
together. NetBox (2.2 s CPU at 131k GPUs) is the worker's and DNS (0.7 s, but its 6,400 zone
files) the parent's: the other way round, the parent still rendered plan.json and the
pictures for 6-8 s (under load) after the worker had written its files. Now the halves end
together, and both create files (kernel time per file is the other half of the worker's
cost)."""


def _render(plan: Plan, guids: Mapping[str, str] | None, plan_files: Collection[str],
            artifacts: Collection[str]) -> dict[str, str]:
    return {**render_plan_files(plan, only=plan_files),
            **render_artifacts(plan, guids=guids, only=artifacts)}


def _render_to_write(plan: Plan, guids: Mapping[str, str] | None,
                     plan_files: Collection[str], artifacts: Collection[str]) -> dict[str, Body]:
    """What :func:`_render` renders, for writing: plan.json as its encoded pieces (166 MB at
    131,072 GPUs; as one text, joined then encoded to be written, it was copied twice more
    and cost as many page faults)."""
    files: dict[str, Body] = {**_render(plan, guids, [f for f in plan_files if f != "plan.json"],
                                        artifacts)}
    if "plan.json" in plan_files:
        files["plan.json"] = plan_json_parts(plan)
    return files


def _worker(conn: Connection, plan: Plan, guids: Mapping[str, str] | None,
            out: Path | None) -> None:
    """Render the worker's half and send it back; with ``out``, stage it there (the new
    files are written at once, see files.stage_files) and send only that it did, then
    write the rest or remove what it staged, as the parent says."""
    try:
        if out is None:
            conn.send(("ok", _render(plan, guids, WORKER_PLAN_FILES, WORKER_ARTIFACTS)))
            return
        files = _render_to_write(plan, guids, WORKER_PLAN_FILES, WORKER_ARTIFACTS)
        staged = stage_files(out, files)
        conn.send(("ok", None))
        if conn.recv() == "write":
            staged.commit()
            conn.send(("ok", list(files)))
        else:
            staged.abandon()
            conn.send(("ok", None))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        try:
            conn.send(("error", exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            conn.send(("error", GpuctlError(f"render worker: {type(exc).__name__}: {exc}")))
    finally:
        conn.close()


def default_jobs(plan: Plan) -> int:
    links = sum(len(f.links) for f in plan.fabrics.values())
    if links < PARALLEL_MIN_LINKS:
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def render_all(plan: Plan, guids: Mapping[str, str] | None = None,
               jobs: int | None = None) -> dict[str, str]:
    """Every file ``gpuctl plan`` writes, by relative path (GUIDs from discovery if any).

    ``jobs`` is 1 (sequential) or 2 (one forked worker); default: 2 for large plans on a
    machine with two or more cores.
    """
    if not _two_jobs(plan, jobs):
        with _quiet_gc():
            return dict(sorted(_render(plan, guids, PLAN_FILES, ARTIFACTS).items()))
    mine, theirs = _render_two(plan, guids, None)
    assert theirs is not None
    mine.update(theirs)
    return dict(sorted(mine.items()))


def write_all(plan: Plan, out: Path, guids: Mapping[str, str] | None = None,
              jobs: int | None = None) -> list[str]:
    """Render every file and write the tree under ``out`` (as ``write_tree(out,
    render_all(...))`` does); returns the relative paths, sorted."""
    if not _two_jobs(plan, jobs):
        with _quiet_gc():
            files = _render_to_write(plan, guids, PLAN_FILES, ARTIFACTS)
        write_tree(out, files)
        return sorted(files)
    mine, names = _render_two(plan, guids, out)
    assert names is not None
    names = sorted([*mine, *names])
    finish_tree(out, names)
    return names


def _two_jobs(plan: Plan, jobs: int | None) -> bool:
    jobs = default_jobs(plan) if jobs is None else jobs
    return jobs >= 2 and "fork" in multiprocessing.get_all_start_methods()


def _render_two(plan: Plan, guids: Mapping[str, str] | None,
                out: Path | None) -> tuple[dict[str, Any], Any]:
    """This process's half and the worker's (its texts; with ``out``: both halves written,
    the worker's paths)."""
    with _quiet_gc():
        return _fork_render(plan, guids, out)


@contextlib.contextmanager
def _quiet_gc() -> Iterator[None]:
    """No cyclic garbage collection while rendering: renderers make millions of small
    tuples and strings and no cycles worth collecting, and each collection the allocations
    trigger would walk them (and, before the freeze, the whole Plan; in a forked worker
    that copies every page of it). At 131,072 GPUs that is about a fifth of the render."""
    enabled = gc.isenabled()
    gc.freeze()  # the Plan goes to the permanent generation, as the worker inherits it
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def _fork_render(plan: Plan, guids: Mapping[str, str] | None,
                 out: Path | None) -> tuple[dict[str, Any], Any]:
    ctx = multiprocessing.get_context("fork")
    conn, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_worker, args=(child, plan, guids, out), name="gpuctl-render",
                       daemon=True)
    proc.start()
    child.close()
    own: Staged | None = None
    """This half's staged files while they may still have to be removed."""
    try:
        render = _render if out is None else _render_to_write
        mine: dict[str, Any] = render(plan, guids,
                                      [f for f in PLAN_FILES if f not in WORKER_PLAN_FILES],
                                      [a for a in ARTIFACTS if a not in WORKER_ARTIFACTS])
        if out is not None:
            # This half's new files (plan.json, plan.html, the CSVs: most of the bytes) are
            # written while the worker still renders or writes its own; they are removed
            # again if the worker fails.
            own = stage_files(out, mine)
        status, payload = _receive(conn, proc)
        if status == "ok" and own is not None:
            conn.send("write")
            staged, own = own, None
            staged.commit()
            status, payload = _receive(conn, proc)
    except BaseException:
        if out is not None:
            # The worker removes what it staged (once it has, if it still renders); a worker
            # already told to write, or gone, does not read this.
            with contextlib.suppress(OSError):
                conn.send("stop")
        elif proc.is_alive():  # this side failed: the worker's half is moot
            proc.kill()
        raise
    finally:
        conn.close()
        proc.join()
        if own is not None:  # the worker failed (it has removed its files by now): ours go
            own.abandon()
    if status != "ok":
        raise payload
    return mine, payload


def _receive(conn: Connection, proc: multiprocessing.process.BaseProcess) -> tuple[str, Any]:
    try:
        got: tuple[str, Any] = conn.recv()
    except EOFError:
        proc.join()
        raise GpuctlError(f"render worker died without a result (exit code "
                          f"{proc.exitcode})") from None
    return got
