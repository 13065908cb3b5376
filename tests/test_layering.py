"""DESIGN.md's rule: models/, plan/, render/ and the parsers stay pure."""

from __future__ import annotations

import ast

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
