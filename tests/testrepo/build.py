"""Build the test apt repository (see the package docstring)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DRIVER_VERSION = "580.95.05"  # the lab site's software.driver_version
DRIVER_NEW = "580.105.08"  # a newer R580 release, for the upgrade path
DRIVER_OLD_FM = "580.82.07"  # a fabric manager with no matching driver in the repo
CUDA_TOOLKIT = ("13-0", "13.0.2-1")
NCCL = "2.28.3-1+cuda13.0"
DCGM = "1:4.4.1-1"
DOCA = "3.1.0-091000-1"
CTK = "1.18.0-1"
PERFTEST = "25.07.0-1"
KUBE = "1.33.5-1.1"
CONTAINERD = "1.7.28-1"
OPENMPI = "4.1.4-3"


@dataclass(frozen=True)
class Pkg:
    name: str
    version: str
    depends: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # path -> text (mode 0755 if under bin)
    arch: str = "all"


def _script(text: str) -> str:
    return "#!/bin/sh\n" + text + "\n"


def _unit(description: str, exec_start: str, after: str = "") -> str:
    after_line = f"After={after}\n" if after else ""
    return (f"[Unit]\nDescription={description}\n{after_line}\n[Service]\nType=simple\n"
            f"ExecStart={exec_start}\n\n[Install]\nWantedBy=multi-user.target\n")


def driver_packages(version: str, branch: int | None = None, *, suffix: bool = True
                    ) -> list[Pkg]:
    """Canonical-style (``-<branch>-server``) or unsuffixed driver packages of one version."""
    branch = branch or int(version.split(".")[0])
    rev = f"{version}-0ubuntu1" if suffix else f"{version}-1ubuntu1"
    s = f"-{branch}-server" if suffix else ""
    compute = f"libnvidia-compute{s}"
    smi = _script(f'case "$*" in *--query-gpu*) echo {version} ;;\n'
                  f'*) echo "NVIDIA-SMI {version}   Driver Version: {version}   (gpuctl test '
                  f'repo)" ;;\nesac')
    pkgs = [
        Pkg(compute, rev),
        Pkg(f"nvidia-utils{s}", rev, (f"{compute} (= {rev})",),
            {"/usr/bin/nvidia-smi": smi}),
        Pkg(f"nvidia-compute-utils{s}", rev, (f"{compute} (= {rev})",),
            {"/lib/systemd/system/nvidia-persistenced.service":
             _unit("NVIDIA Persistence Daemon", "/usr/bin/nvidia-persistenced --verbose")}),
    ]
    modules = ([f"nvidia-headless{s}", f"nvidia-headless{s}-open"] if suffix
               else ["nvidia-driver-cuda", "nvidia-open"])
    pkgs += [Pkg(m, rev, (f"{compute} (= {rev})",),
                 {f"/usr/share/gpuctl-testrepo/{m}.ko.txt": f"kernel module {version}\n"})
             for m in modules]
    return pkgs


def fabricmanager_packages(version: str, branch: int | None = None, *, suffix: bool = True
                           ) -> list[Pkg]:
    branch = branch or int(version.split(".")[0])
    name = f"nvidia-fabricmanager-{branch}" if suffix else "nvidia-fabricmanager"
    fm = _script(f'echo "Fabric Manager version is : {version}"')
    return [Pkg(name, f"{version}-1", (), {
        "/usr/bin/nv-fabricmanager": fm,
        "/lib/systemd/system/nvidia-fabricmanager.service":
            _unit("NVIDIA fabric manager service", "/usr/bin/nv-fabricmanager -c "
                  "/usr/share/nvidia/nvswitch/fabricmanager.cfg"),
        "/usr/share/nvidia/nvswitch/fabricmanager.cfg": "LOG_FILE_NAME=/var/log/fabricmanager.log\n",
    })]


def stack_packages() -> list[Pkg]:
    """Everything the roles install for the lab site (R580, CUDA 13.0), the newer R580
    release for the upgrade path and a fabric manager without a matching driver."""
    pkgs: list[Pkg] = []
    for v in (DRIVER_VERSION, DRIVER_NEW):
        pkgs += driver_packages(v) + fabricmanager_packages(v)
    pkgs += fabricmanager_packages(DRIVER_OLD_FM)
    pkgs += driver_packages("595.45.04", suffix=False) + fabricmanager_packages(
        "595.45.04", suffix=False)
    major_minor, toolkit = CUDA_TOOLKIT
    pkgs += [
        Pkg("cuda-keyring", "1.1-1", (), {"/usr/share/keyrings/cuda-archive-keyring.gpg":
                                          "test keyring\n"}),
        Pkg(f"cuda-toolkit-{major_minor}", toolkit, (),
            {f"/usr/local/cuda-{major_minor.replace('-', '.')}/version.json":
             '{"cuda": {"version": "13.0.2"}}\n'}),
        Pkg("libnccl2", NCCL),
        Pkg("libnccl-dev", NCCL, (f"libnccl2 (= {NCCL})",)),
        Pkg("datacenter-gpu-manager-4-cuda13", DCGM, (), {
            "/lib/systemd/system/nvidia-dcgm.service":
                _unit("NVIDIA DCGM service", "/usr/bin/nv-hostengine -n")}),
        Pkg("doca-ofed", DOCA),
        Pkg("doca-roce", DOCA),
        Pkg("nvidia-container-toolkit-base", CTK),
        Pkg("nvidia-container-toolkit", CTK, (f"nvidia-container-toolkit-base (= {CTK})",),
            {"/usr/bin/nvidia-ctk": _script(
                'for a in "$@"; do case "$a" in --config=*) f="${a#--config=}"; '
                'mkdir -p "$(dirname "$f")"; printf \'[plugins."io.containerd.cri.v1.runtime"'
                '.containerd.runtimes.nvidia]\\n\' > "$f" ;; esac; done\n'
                'echo "NVIDIA Container Toolkit CLI version 1.18.0"')}),
        Pkg("perftest", PERFTEST, (), {"/usr/bin/ib_write_bw": _script("echo ib_write_bw"),
                                       "/usr/bin/ib_write_lat": _script("echo ib_write_lat")}),
        Pkg("openmpi-bin", OPENMPI, (), {"/usr/bin/mpirun": _script("echo mpirun")}),
        Pkg("libopenmpi-dev", OPENMPI),
        Pkg("containerd", CONTAINERD, (), {
            "/lib/systemd/system/containerd.service":
                _unit("containerd container runtime", "/usr/bin/containerd")}),
        Pkg("kubelet", KUBE, (), {"/lib/systemd/system/kubelet.service":
                                  _unit("kubelet", "/usr/bin/kubelet")}),
        Pkg("kubeadm", KUBE, ("kubelet",)),
        Pkg("kubectl", KUBE),
    ]
    return pkgs


def _build_deb(pkg: Pkg, work: Path, out: Path) -> None:
    root = work / f"{pkg.name}_{pkg.version}"
    (root / "DEBIAN").mkdir(parents=True)
    control = [f"Package: {pkg.name}", f"Version: {pkg.version}", f"Architecture: {pkg.arch}",
               "Maintainer: gpuctl tests <tests@gpuctl.invalid>", "Section: misc",
               "Priority: optional"]
    if pkg.depends:
        control.append(f"Depends: {', '.join(pkg.depends)}")
    control.append(f"Description: {pkg.name} (gpuctl test repository, trivial contents)")
    (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
    files = {f"/usr/share/gpuctl-testrepo/{pkg.name}.version": pkg.version + "\n", **pkg.files}
    for path, text in files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        dest.chmod(0o755 if "/bin/" in path else 0o644)
    fname = f"{pkg.name}_{pkg.version.split(':')[-1]}_{pkg.arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(root),
                    str(out / fname)], check=True, capture_output=True, timeout=60)


def build_repo(dest: Path, packages: list[Pkg], *, origin: str = "NVIDIA",
               label: str = "NVIDIA CUDA") -> Path:
    """A flat repository in ``dest`` (replaced); returns ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="gpuctl-testrepo-") as tmp:
        for pkg in packages:
            _build_deb(pkg, Path(tmp), dest)
    scan = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=dest,
                          capture_output=True, text=True, check=True, timeout=120)
    index = scan.stdout.encode()
    (dest / "Packages").write_bytes(index)
    (dest / "Packages.gz").write_bytes(gzip.compress(index, mtime=0))
    lines = [f"Origin: {origin}", f"Label: {label}", "Suite: ./", "Codename: ./",
             "Architectures: all amd64", "Date: Sat, 01 Nov 2025 00:00:00 UTC"]
    for algo, title in (("md5", "MD5Sum"), ("sha256", "SHA256")):
        lines.append(f"{title}:")
        for name in ("Packages", "Packages.gz"):
            data = (dest / name).read_bytes()
            lines.append(f" {hashlib.new(algo, data).hexdigest()} {len(data)} {name}")
    (dest / "Release").write_text("\n".join(lines) + "\n")
    return dest


def apt_source(repo: Path, name: str = "gpuctl-testrepo") -> dict[str, object]:
    """The repository as a role's apt source (deb822 fields, docs/roles.md): a flat
    repository, trusted because its Release is not signed."""
    return {"name": name, "uris": f"file://{repo.resolve()}", "suites": "./", "trusted": True}


def nccl_tests_source(dest: Path) -> Path:
    """A tiny nccl-tests-like source tarball: ``make`` writes ``build/all_reduce_perf``
    that prints the NCCL/CUDA/MPI homes it was built against."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpuctl-nccltests-") as tmp:
        src = Path(tmp) / "nccl-tests"
        src.mkdir()
        (src / "Makefile").write_text(
            "all:\n\tmkdir -p build\n"
            "\tprintf '#!/bin/sh\\necho \"all_reduce_perf NCCL_HOME=$(NCCL_HOME) "
            "CUDA_HOME=$(CUDA_HOME) MPI_HOME=$(MPI_HOME)\"\\n' > build/all_reduce_perf\n"
            "\tchmod 0755 build/all_reduce_perf\n")
        with tarfile.open(dest, "w:gz") as tar:
            tar.add(src, arcname="nccl-tests")
    return dest
