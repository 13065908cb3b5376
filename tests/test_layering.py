"""The layering rules (docs/architecture.md): models/, plan/, render/ and the parsers stay
pure; facts live in their layer (the lab does not reach into the CLI, fabric verify does not
depend on a renderer); no import cycle anywhere in provision/."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PURE = ["provision/models", "provision/plan", "provision/render", "provision/burnin/probes"]
FORBIDDEN = ("provision.execute", "provision.lab", "provision.cli", "subprocess", "socket",
             "requests", "paramiko", "ansible_runner")


def test_pure_layers_import_no_side_effect_modules() -> None:
    bad = []
    checked = 0
    for d in PURE:
        for path in sorted((ROOT / d).rglob("*.py")):
            checked += 1
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for n in names:
                    if n.startswith(FORBIDDEN):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {n}")
    assert checked > 10
    assert bad == []


def test_no_host_key_checking_disabled_anywhere() -> None:
    offenders = []
    for path in (ROOT / "provision").rglob("*.py"):
        text = path.read_text()
        for needle in ("StrictHostKeyChecking=no", "AutoAddPolicy", "shell=True"):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``provision.*`` module ``path`` imports, lazy ones inside functions included:
    ``from provision.x import y`` counts as ``provision.x.y`` when that is a module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            found = [m for m in subs if m in _MODULES]
            out += [(node.lineno, m) for m in found] if found else [(node.lineno, node.module)]
    return [(line, name) for line, name in out if name.startswith("provision")]


_MODULES = {_module_name(p): p for p in sorted((ROOT / "provision").rglob("*.py"))}


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for name, path in _MODULES.items():
        if name == package or name.startswith(package + "."):
            for line, imp in _imports(path):
                if imp.startswith(forbidden):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {imp}")
    return bad


def test_runtime_layers_never_import_the_lab_or_the_cli() -> None:
    """execute/, burnin/, fabric/ and image/ run against any place (a site, the lab): how
    hosts are reached is data (the access file), so none of them may know the lab or the CLI."""
    for package in ("provision.execute", "provision.burnin", "provision.fabric",
                    "provision.image"):
        assert _offenders(package, ("provision.lab", "provision.cli")) == []


def test_lab_does_not_import_the_cli() -> None:
    """The lab is a provider under the CLI; what it needs (load_and_plan) is a library."""
    assert _offenders("provision.lab", ("provision.cli",)) == []


def test_fabric_verify_does_not_depend_on_a_renderer() -> None:
    """Fabric names (HCA ids, the UFM) are plan facts, not the ibsim renderer's."""
    assert _offenders("provision.fabric", ("provision.render", "provision.cli")) == []
    assert _offenders("provision.plan", ("provision.render", "provision.fabric")) == []


def test_renderers_keep_no_cache_between_calls() -> None:
    """A derived view (fabric graph, topology, GUIDs) is built once by the caller that needs
    it and passed on, not kept in a module-global cache keyed on the Plan object's id."""
    bad = []
    for path in sorted((ROOT / "provision/render").rglob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text, str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                    if n == "weakref"]
        if "id(plan)" in text:
            bad.append(f"{path.relative_to(ROOT)}: keys something on id(plan)")
    assert bad == []


def test_no_import_cycle_in_provision() -> None:
    """No two modules of provision/ import each other, directly or round a loop (lazy
    imports count: a cycle hidden inside a function is still a cycle)."""
    graph = {name: {imp for _, imp in _imports(path) if imp in _MODULES and imp != name}
             for name, path in _MODULES.items()}
    assert len(graph) > 100 and graph["provision.fabric.linkinfo"]
    cycles = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
