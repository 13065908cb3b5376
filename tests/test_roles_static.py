"""Static checks of the NVIDIA/fabric/Kubernetes playbooks and roles, no host needed.

- ``ansible-playbook --syntax-check`` of nvidia.yml, fabric.yml, kubernetes.yml against the
  inventory ``gpuctl plan`` renders for the lab site;
- ``ansible-lint --profile production`` on those playbooks and roles: any violation fails;
- STYLE lesson 11 by parsing the YAML: every role variable (defaults, set_fact, register,
  task/play vars, loop_var) carries the role's name as prefix (the vars of an include_role
  are the included role's parameters: its prefix), every module is FQCN;
- apt sources in one place: every role with ``<role>_apt_repositories`` writes them through
  ``apt_repos``' ``tasks/sources.yml`` with its own variables, in the one deb822 source
  format; the shared tasks render that format and reject the old one-line format (check
  mode on this machine's controller: nothing is written);
- the version-matrix play (controller-side only) on the lab site's versions and on impossible
  combinations, and the package names of both naming schemes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
BOOKS = ("nvidia.yml", "fabric.yml", "kubernetes.yml")
ROLES = ("nvidia_driver", "cuda", "nccl", "fabricmanager", "doca_ofed", "peermem", "dcgm",
         "container_toolkit", "ipoib", "perftest", "nccl_tests", "kubernetes_node",
         "boot_services")
OTHER_BOOKS = ("boot_services.yml",)  # run against the provisioning host, not gpuctl_nodes
LAYOUT = ("defaults/main.yml", "tasks/main.yml", "handlers/main.yml", "meta/main.yml",
          "templates")

# Task keywords (not modules) of ansible-core's Task/Block/Role include syntax.
KEYWORDS = {
    "name", "when", "loop", "loop_control", "register", "vars", "notify", "listen",
    "changed_when", "failed_when", "become", "become_user", "delegate_to", "run_once",
    "no_log", "tags", "block", "rescue", "always", "ignore_errors", "until", "retries",
    "delay", "environment", "check_mode", "diff", "args", "any_errors_fatal", "throttle",
    "timeout", "with_items", "with_dict", "delegate_facts", "collections", "module_defaults",
    "ignore_unreachable", "debugger", "connection", "port", "remote_user", "async", "poll",
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan")
    subprocess.run([sys.executable, "-m", "provision.cli.main", "plan",
                    str(ROOT / "inventory" / "sites" / "lab"), "-o", str(out)],
                   check=True, capture_output=True, timeout=300, cwd=ROOT)
    return out / "ansible"


def test_role_layout() -> None:
    for role in ROLES:
        for part in LAYOUT:
            assert (PLAYBOOKS / "roles" / role / part).exists(), f"{role}/{part}"
        meta = _yaml(PLAYBOOKS / "roles" / role / "meta" / "main.yml")
        assert meta["galaxy_info"]["role_name"] == role


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="needs ansible-core")
@pytest.mark.parametrize("book", BOOKS)
def test_syntax_check_against_the_rendered_lab_inventory(rendered: Path, book: str) -> None:
    from provision.execute.ansible import syntax_check

    assert syntax_check(rendered / "inventory.yml", PLAYBOOKS / book) is None


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ansible-lint") is None, reason="needs ansible-lint")
def test_ansible_lint_production_profile() -> None:
    """The whole playbooks/ tree (every playbook and role, the inventory-free parts included)
    at ansible-lint's strictest profile: the one ansible-lint run of the suite."""
    proc = subprocess.run([shutil.which("ansible-lint") or "ansible-lint", "--profile",
                           "production", "--nocolor", "."], capture_output=True,
                          text=True, timeout=900, cwd=PLAYBOOKS, stdin=subprocess.DEVNULL,
                          check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def _tasks(items: Any) -> Iterator[dict[str, Any]]:
    for t in items or []:
        if not isinstance(t, dict):
            continue
        yield t
        for key in ("block", "rescue", "always"):
            yield from _tasks(t.get(key))


def _module(task: dict[str, Any]) -> str:
    mods = [k for k in task if k not in KEYWORDS]
    assert len(mods) == 1, f"task {task.get('name')!r}: module keys {mods}"
    return mods[0]


def _role_files(role: str) -> Iterator[Path]:
    for sub in ("tasks", "handlers"):
        yield from sorted((PLAYBOOKS / "roles" / role / sub).glob("*.yml"))


INCLUDES = ("ansible.builtin.include_role", "ansible.builtin.import_role")


def _variables(task: dict[str, Any], module: str) -> list[str]:
    names = [] if module in INCLUDES else list(task.get("vars") or {})
    if task.get("register"):
        names.append(task["register"])
    if module == "ansible.builtin.set_fact":
        names += [k for k in task[module] if k != "cacheable"]
    if module == "ansible.builtin.include_vars" and isinstance(task[module], dict):
        names += [task[module]["name"]] if "name" in task[module] else []
    loop_var = (task.get("loop_control") or {}).get("loop_var")
    if loop_var:
        names.append(loop_var)
    return names


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_prefixed_and_modules_fqcn(role: str) -> None:
    defaults = _yaml(PLAYBOOKS / "roles" / role / "defaults" / "main.yml") or {}
    bad = [k for k in defaults if not k.startswith(f"{role}_")]
    assert not bad, f"{role}/defaults: variables without the {role}_ prefix: {bad}"
    for path in _role_files(role):
        for task in _tasks(_yaml(path)):
            if "block" in task:
                continue
            module = _module(task)
            assert module.startswith("ansible.") and module.count(".") == 2, \
                f"{path.relative_to(ROOT)}: {task.get('name')!r} uses {module!r}, not FQCN"
            for var in _variables(task, module):
                assert var.startswith(f"{role}_"), \
                    f"{path.relative_to(ROOT)}: {task.get('name')!r} sets {var!r}"
            if module in INCLUDES:
                callee = task[module]["name"]
                bad = [v for v in task.get("vars") or {} if not v.startswith(f"{callee}_")]
                assert not bad, f"{path.relative_to(ROOT)}: {task.get('name')!r} passes " \
                                f"{bad} to {callee} (its parameters carry its prefix)"


@pytest.mark.parametrize("book", BOOKS)
def test_playbooks_target_the_nodes_of_their_stack_with_fqcn(book: str) -> None:
    """Every play runs on the group of the nodes its phase applies to (the same definition
    the phases pick hosts by), optionally narrowed to those with GPUs too."""
    from provision.plan.stacks import GROUPS, PHASE_STACK

    phase = book.removesuffix(".yml")
    mine = GROUPS[PHASE_STACK[phase]]
    plays = _yaml(PLAYBOOKS / book)
    assert plays[0]["hosts"] == mine
    for play in plays:
        assert play["hosts"] in (mine, f"{mine}:&{GROUPS['gpu']}"), play["name"]
        assert play["gather_facts"] is False
        for task in _tasks(play.get("tasks")):
            module = _module(task)
            assert module.startswith("ansible.builtin."), module


# --- the version-matrix play, controller-side --------------------------------------------

MATRIX_BOOK = """\
- name: Matrix play of nvidia.yml (the same tasks)
  hosts: gpuctl_nodes
  gather_facts: false
  tasks:
    - name: Check the matrix
      ansible.builtin.include_role:
        name: nvidia_driver
        tasks_from: matrix.yml
    - name: Check Fabric Manager
      ansible.builtin.include_role:
        name: fabricmanager
        tasks_from: assert.yml
      when: gpuctl_nvswitch | bool
    - name: Show the chosen packages
      ansible.builtin.debug:
        msg: "PACKAGES={{ nvidia_driver_held_packages | join(',') }}"
"""


def _matrix_run(rendered: Path, tmp: Path, extra: dict[str, Any]) -> tuple[int, str]:
    from provision.execute.ansible import ansible_playbook

    gv = rendered / "group_vars"
    hostvars = {**_yaml(gv / "all.yml"), **_yaml(gv / "gpu.yml"),
                "ansible_connection": "local"}
    inv = {"all": {"children": {"gpuctl_nodes": {"hosts": {"lab-gpu-01": hostvars}}}}}
    (tmp / "inv.yml").write_text(yaml.safe_dump(inv))
    (tmp / "matrix.yml").write_text(MATRIX_BOOK)
    # The rendered group_vars carry gpuctl_version_matrix: no matrix file may be needed.
    extra = {"nvidia_driver_matrix_file": str(tmp / "no-such-versions.yaml"), **extra}
    (tmp / "extra.json").write_text(json.dumps(extra))
    proc = ansible_playbook(["-e", f"@{tmp / 'extra.json'}"], inventory=tmp / "inv.yml",
                            playbook=tmp / "matrix.yml", timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


CASES = {
    "lab site": ({}, 0, "PACKAGES=nvidia-headless-580-server,nvidia-utils-580-server,"),
    "open modules": ({"gpuctl_kernel_modules": "open"}, 0,
                     "PACKAGES=nvidia-headless-580-server-open,"),
    "unsuffixed branch 595": ({"gpuctl_driver_branch": 595, "gpuctl_driver_version": "595.45.04",
                               "gpuctl_fabric_manager_version": "595.45.04",
                               "gpuctl_kernel_modules": "open"}, 0,
                              "PACKAGES=nvidia-open,nvidia-utils,libnvidia-compute,"),
    "CUDA above the branch": ({"gpuctl_cuda": "13.2"}, 2, "max CUDA 13.0"),
    "EOL branch": ({"gpuctl_driver_branch": 535, "gpuctl_driver_version": "535.261.03",
                    "gpuctl_fabric_manager_version": "535.261.03", "gpuctl_cuda": "12.2",
                    "gpuctl_nccl": "2.21.5"}, 2, "EOL 2026-06-30"),
    "blackwell proprietary": ({"gpuctl_gpu_generation": "blackwell"}, 2,
                              "kernel modules open; asked proprietary"),
    "version off its branch": ({"gpuctl_driver_version": "575.57.08",
                                "gpuctl_fabric_manager_version": "575.57.08"}, 2,
                               "impossible software combination"),
    "fabric manager mismatch": ({"gpuctl_fabric_manager_version": "580.82.07"}, 2,
                                "Fabric Manager 580.82.07 does not match driver 580.95.05"),
}


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="needs ansible-core")
@pytest.mark.parametrize("case", sorted(CASES))
def test_matrix_play(rendered: Path, tmp_path: Path, case: str) -> None:
    extra, want_rc, text = CASES[case]
    rc, out = _matrix_run(rendered, tmp_path, extra)
    assert rc == want_rc and text in " ".join(out.split()), out[-3000:]


# --- apt sources: one mechanism, one format -----------------------------------------------

SOURCE_KEYS = {"name", "uris", "suites", "components", "architectures", "signed_by", "trusted"}


def _source_calls(role: str) -> list[dict[str, Any]]:
    calls = []
    for path in _role_files(role):
        for task in _tasks(_yaml(path)):
            inc = task.get("ansible.builtin.include_role")
            if isinstance(inc, dict) and inc.get("name") == "apt_repos" \
                    and inc.get("tasks_from") == "sources.yml":
                calls.append(task)
    return calls


def test_apt_sources_go_through_apt_repos_only() -> None:
    roles_dir = PLAYBOOKS / "roles"
    copies = sorted(str(p.relative_to(ROOT)) for p in roles_dir.glob("*/tasks/repos.yml"))
    copies += sorted(str(p.relative_to(ROOT)) for p in roles_dir.glob("*/templates/source*")
                     if p.parent.parent.name != "apt_repos")
    assert copies == []
    with_sources = sorted(r.name for r in roles_dir.iterdir()
                          if f"{r.name}_apt_repositories" in
                          (_yaml(r / "defaults" / "main.yml") or {}))
    assert len(with_sources) >= 10, with_sources
    for role in with_sources:
        calls = _source_calls(role)
        assert len(calls) == 1, f"{role}: {len(calls)} calls of apt_repos sources.yml"
        assert calls[0]["vars"] == {
            "apt_repos_for": role,
            "apt_repos_list": f"{{{{ {role}_apt_repositories }}}}",
            "apt_repos_list_keys": f"{{{{ {role}_apt_keys }}}}"}, role
        assert calls[0]["when"] == f"{role}_apt_repositories | length > 0", role
        for src in _yaml(roles_dir / role / "defaults" / "main.yml")[f"{role}_apt_repositories"]:
            assert set(src) <= SOURCE_KEYS and {"name", "uris", "suites"} <= set(src), src
            assert "signed_by" in src or src.get("trusted") is True, src


SOURCES_BOOK = """\
- name: The shared apt source tasks, in check mode on the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the sources
      ansible.builtin.include_role:
        name: apt_repos
        tasks_from: sources.yml
      vars:
        apt_repos_for: cuda
        apt_repos_list: "{{ sources }}"
        apt_repos_list_keys: []
"""


def _sources_run(tmp: Path, sources: list[dict[str, Any]]) -> tuple[int, str]:
    from provision.execute.ansible import ansible_playbook

    (tmp / "book.yml").write_text(SOURCES_BOOK)
    (tmp / "inv.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    (tmp / "extra.json").write_text(json.dumps({"sources": sources}))
    proc = ansible_playbook(["--check", "--diff", "-e", f"@{tmp / 'extra.json'}"],
                            inventory=tmp / "inv.yml", playbook=tmp / "book.yml", timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="needs ansible-core")
def test_shared_source_tasks_render_deb822(tmp_path: Path) -> None:
    rc, out = _sources_run(tmp_path, [
        {"name": "cuda", "uris": "https://mirror.site.internal/cuda/ubuntu2404/x86_64/",
         "suites": "/", "signed_by": "/usr/share/keyrings/cuda-archive-keyring.gpg"},
        {"name": "site-extra", "uris": "http://mirror.site.internal/ubuntu",
         "suites": "noble noble-updates", "components": "main restricted",
         "architectures": "amd64 arm64", "trusted": True}])
    assert rc == 0, out[-3000:]
    want = ["+Types: deb",
            "+URIs: https://mirror.site.internal/cuda/ubuntu2404/x86_64/", "+Suites: /",
            "+Architectures: amd64", "+Signed-By: /usr/share/keyrings/cuda-archive-keyring.gpg",
            "+URIs: http://mirror.site.internal/ubuntu", "+Suites: noble noble-updates",
            "+Components: main restricted", "+Architectures: amd64 arm64", "+Trusted: yes"]
    lines = [ln.strip() for ln in out.splitlines()]
    for line in want:
        assert line in lines, f"{line!r} not rendered:\n{out[-3000:]}"
    assert "TASK [apt_repos : Write the apt sources of cuda]" in out
    assert not any(ln.startswith("+Components") for ln in lines[:lines.index("+Suites: /") + 3])


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="needs ansible-core")
@pytest.mark.parametrize(("source", "why"), [
    ({"name": "cuda", "line": "deb [signed-by=/k.gpg] https://x/ /"}, "one-line 'line' format"),
    ({"name": "cuda", "uris": "https://x/", "suites": "/"}, "signed_by, or trusted: true"),
    ({"name": "cuda", "suites": "/", "signed_by": "/k.gpg"}, "give name, uris, suites"),
])
def test_shared_source_tasks_reject_bad_sources(tmp_path: Path, source: dict[str, Any],
                                                why: str) -> None:
    rc, out = _sources_run(tmp_path, [source])
    assert rc != 0, out[-3000:]
    assert why in " ".join(out.split()) and "cuda apt source" in out, out[-3000:]
