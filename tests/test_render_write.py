"""``write_all``: rendering and writing a tree on two processes leaves exactly the files (and
record of them) that the sequential ``write_tree(render_all(...))`` leaves, and a render
failure on either side writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import PlanError
from provision.render.files import GENERATED_MARK, write_tree
from provision.render.site_files import render_all, write_all
from tests.render_support import site_plan


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("jobs", [1, 2])
def test_write_all_leaves_what_write_tree_of_a_render_leaves(tmp_path: Path,
                                                             jobs: int) -> None:
    plan = site_plan("superpod-h100-4su")
    write_tree(tmp_path / "want", render_all(plan, jobs=1))
    got = tmp_path / "got"
    (got / "ansible").mkdir(parents=True)
    (got / "ansible" / "old.yml").write_text("left by an earlier plan\n")
    (got / GENERATED_MARK).write_text("ansible/old.yml\n")
    (got / "mine.txt").write_text("not generated\n")
    names = write_all(plan, got, jobs=jobs)
    assert names == sorted(render_all(plan, jobs=1))
    want = _tree(tmp_path / "want")
    assert _tree(got) == {**want, "mine.txt": b"not generated\n"}
    assert (got / GENERATED_MARK).read_text().split() == names


@pytest.mark.parametrize(("renderer", "side"), [("netbox_tree", "worker"),
                                               ("dns_tree", "parent")])
def test_a_render_failure_on_either_side_writes_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, renderer: str, side: str) -> None:
    def broken(*_: object) -> dict[str, str]:
        raise PlanError(f"{renderer}: broken on the {side} side")

    monkeypatch.setattr(f"provision.render.artifacts.{renderer}", broken)
    with pytest.raises(PlanError, match=f"{renderer}: broken on the {side} side"):
        write_all(site_plan("lab"), tmp_path / "out", jobs=2)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("renderer", "side"), [("netbox_tree", "worker"),
                                               ("dns_tree", "parent")])
def test_a_render_failure_leaves_an_existing_tree_as_it_was(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, renderer: str, side: str) -> None:
    plan = site_plan("lab")
    out = tmp_path / "out"
    write_tree(out, render_all(plan, jobs=1))
    (out / "ansible" / "inventory.yml").write_text("edited by hand\n")  # worker: compared
    (out / "cloud-init").rename(tmp_path / "gone")  # worker: written at once, then removed
    (out / "plan.json").unlink()  # parent
    before = _tree(out)

    def broken(*_: object) -> dict[str, str]:
        raise PlanError(f"{renderer}: broken on the {side} side")

    monkeypatch.setattr(f"provision.render.artifacts.{renderer}", broken)
    with pytest.raises(PlanError, match=f"{renderer}: broken on the {side} side"):
        write_all(plan, out, jobs=2)
    assert _tree(out) == before
    assert not (out / "cloud-init").exists()
