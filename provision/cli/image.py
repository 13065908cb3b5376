"""``gpuctl image build|list SITE``: the OS images the site's node groups boot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provision.cli.common import SITE_ARG
from provision.plan.load import load_and_plan

if TYPE_CHECKING:
    from provision.image.store import ImageRecord
    from provision.plan.build import Plan

IMAGES_HELP = "Image directory [default: SITE/.gpuctl/images]."


def _images_dir(site: Path, images: Path | None) -> Path:
    if images is not None:
        return images.absolute()
    base = site.parent if site.suffix in (".yaml", ".yml") else site
    return (base / ".gpuctl" / "images").absolute()


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


@click.group("image")
def image() -> None:
    """OS images for node groups: built with mmdebstrap from the site's mirror, kept with
    their sha256 digest and package manifest."""


@image.command("build")
@SITE_ARG
@click.option("--group", default=None, help="Only this node group's image.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=IMAGES_HELP)
@click.option("--rebuild", is_flag=True, help="Build even when this recipe is already built.")
@click.option("--dry-run", is_flag=True, help="Print the mmdebstrap commands only.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def build_cmd(site: Path, group: str | None, images: Path | None, rebuild: bool,
              dry_run: bool, fmt: str) -> None:
    """Build the image of every node group (or of --group): one build per distinct recipe;
    a recipe already built is reused (its key is a hash of the recipe: mirror, suite,
    components, variant, packages, keyring).

    \b
    Exit 0 built (or already built); 1 a build failed (names the image, the mirror and
    mmdebstrap's first error; the log is kept) or the site has lint errors; 2 bad usage
    or an unreadable site file.
    Examples:
      gpuctl image build inventory/sites/lab --dry-run     the mmdebstrap commands
      gpuctl image build inventory/sites/lab --group gpu
    """
    from provision.image import build, recipe, store

    loaded, _plan = load_and_plan(site)
    folder = _images_dir(site, images)
    todo = recipe.recipes(loaded, group)
    if dry_run:
        for r, groups in todo:
            target = store.image_dir(folder, r.name, r.key()) / store.ROOTFS
            click.echo(f"# {r.name} for {', '.join(groups)}")
            click.echo(recipe.describe(r, target))
        return
    done = []
    for r, groups in todo:
        if fmt == "text":
            click.echo(f"image {r.name} ({r.distribution} {r.suite}, {r.variant} + "
                       f"{len(r.packages)} packages) for {', '.join(groups)} ...")
        rec, built = build.build(r, folder, groups, rebuild=rebuild)
        done.append({**rec.as_dict(), "built": built})
        if fmt == "text":
            how = "built" if built else "already built"
            click.echo(f"  {how}: {rec.rootfs} {_size(rec.size)}, {rec.packages} packages, "
                       f"{rec.digest}")
    if fmt == "json":
        click.echo(json.dumps(done, indent=2))


@image.command("list")
@SITE_ARG
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=IMAGES_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--verify", is_flag=True, help="Re-hash every rootfs.tar against its recorded "
              "digest; exit 1 on a mismatch.")
def list_cmd(site: Path, images: Path | None, fmt: str, verify: bool) -> None:
    """The images built for SITE, with digest, size, package count and node groups.

    \b
    Exit 0, or 1 with --verify when a rootfs.tar no longer matches its digest.
    Example: gpuctl image list inventory/sites/lab --verify
    """
    from provision.errors import ExecutionError
    from provision.image import build, store

    recs = store.list_images(_images_dir(site, images))
    if verify:
        bad = [why for r in recs if (why := build.verify(r)) is not None]
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise ExecutionError(bad[0] + more)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in recs], indent=2))
        return
    if not recs:
        click.echo(f"no images built for {site} yet (gpuctl image build {site})")
        return
    rows = [("NAME", "KEY", "SUITE", "VARIANT", "PACKAGES", "SIZE", "BUILT", "GROUPS",
             "DIGEST")]
    for r in recs:
        rows.append((r.name, r.key, f"{r.recipe['distribution']} {r.recipe['suite']}",
                     str(r.recipe["variant"]), str(r.packages), _size(r.size), r.built_at,
                     ",".join(r.groups), r.digest))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                   + "  " + row[-1])


@image.command("seed")
@SITE_ARG
@click.option("--group", default=None, help="Only this node group's nodes.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=IMAGES_HELP)
@click.option("--rotate-keys", is_flag=True, help="Make new host keys (default: keep them).")
def seed_cmd(site: Path, group: str | None, images: Path | None, rotate_keys: bool) -> None:
    """Per-node first-boot secrets and NoCloud seeds: an SSH host key per node (kept under
    SITE/.gpuctl/secrets, 0600), its seed under SITE/.gpuctl/seeds/<host>/ (hostname,
    planned addresses, admin keys from SITE/admin_keys/*.pub, the host key, phone-home) and
    its public key in SITE/.gpuctl/known_hosts, so the first SSH connection is verified;
    iPXE scripts (boot.ipxe and one per node) under SITE/.gpuctl/ipxe/; the image phase's
    boot plan (SITE/.gpuctl/boot/nodes.json) and the boot_services role's inputs
    (SITE/.gpuctl/boot_services.yml).

    \b
    Example: gpuctl image build inventory/sites/lab && gpuctl image seed inventory/sites/lab
    """
    from provision.image import hostkeys, ipxe, recipe, seeds, store
    from provision.image.bootplan import BootEntry, write_nodes
    from provision.image.macs import load_macs
    from provision.render.topo import services_address
    from provision.sshkeys import KnownHost

    loaded, plan = load_and_plan(site)
    base = loaded.path.parent
    state = base / ".gpuctl"
    admin = sorted(p.read_text().strip() for p in (base / "admin_keys").glob("*.pub"))
    built = {r.key: r for r in store.list_images(_images_dir(site, images))}
    digests: dict[str, str] = {}
    image_of: dict[str, str] = {}
    disk_of: dict[str, dict[str, object]] = {}
    for r, groups in recipe.recipes(loaded, group):
        rec = built.get(r.key())
        for g in groups:
            digests[g] = rec.digest if rec else ""
            image_of[g] = r.name
            disk_of[g] = dict(rec.disk) if rec else {}
    svc = services_address(plan)
    ipxe_dir = state / "ipxe"
    (ipxe_dir / "nodes").mkdir(parents=True, exist_ok=True)
    (ipxe_dir / "boot.ipxe").write_text(ipxe.boot_script(svc))
    known = []
    macs = load_macs(base, plan)
    entries: dict[str, BootEntry] = {}
    for node in plan.nodes:
        if node.group not in digests:
            continue
        key = hostkeys.host_key(state, node.name, rotate=rotate_keys)
        hostkeys.write_seed(state, node.name, seeds.node_seed(plan, node.name, key, admin,
                                                              digests[node.group], macs))
        (ipxe_dir / "nodes" / f"{node.name}.ipxe").write_text(ipxe.node_script(
            svc, node.name, image_of[node.group], digests[node.group], disk_of[node.group]))
        inband = [a.address for a in plan.addresses_of(node.name) if a.pool == "inband"]
        known.append(KnownHost(node.name, inband[0] if inband else node.name, key.public))
        inband_if = [a.interface for a in plan.addresses_of(node.name) if a.pool == "inband"]
        entries[node.name] = BootEntry(
            node.name, inband[0] if inband else "",
            macs.get(f"{node.name}/{inband_if[0]}", "") if inband_if else "",
            image_of[node.group], digests[node.group])
    write_nodes(state, entries)
    path = hostkeys.write_known_hosts(state, known)
    boot_vars = _write_boot_services_vars(state, plan, svc, ipxe_dir,
                                          [built[r.key()] for r, _ in recipe.recipes(loaded)
                                           if r.key() in built])
    missing = sorted(g for g, d in digests.items() if not d)
    click.echo(f"seeded {len(known)} nodes: seeds in {state / hostkeys.SEEDS}, iPXE scripts "
               f"in {ipxe_dir}, host keys in "
               f"{state / hostkeys.SECRETS} (0600), public keys in {path}")
    click.echo(f"  boot services: ansible-playbook playbooks/boot_services.yml -e @{boot_vars}")
    if not admin:
        click.echo(f"  note: no admin keys in {base / 'admin_keys'}/*.pub; nobody can log in")
    if missing:
        click.echo(f"  note: no image built yet for {', '.join(missing)}; seeds record no "
                   "image digest (gpuctl image build first)")


def _write_boot_services_vars(state: Path, plan: Plan, svc: str, ipxe_dir: Path,
                              images: list[ImageRecord]) -> Path:
    """``SITE/.gpuctl/boot_services.yml``: the boot_services role's inputs (the Kea config
    rendered from the plan next to it, reserving by MAC where SITE/macs.json knows it; the
    iPXE scripts, seeds and built images)."""
    import yaml

    from provision.image.hostkeys import SEEDS
    from provision.image.macs import load_macs
    from provision.render.dhcp import dhcp_tree

    kea = state / "boot" / "kea-dhcp4.conf"
    kea.parent.mkdir(parents=True, exist_ok=True)
    kea.write_text(dhcp_tree(plan, load_macs(state.parent, plan))["dhcp/kea-dhcp4.conf"])
    data = {"boot_services_address": svc, "boot_services_kea_config_src": str(kea),
            "boot_services_ipxe_src": str(ipxe_dir),
            "boot_services_seeds_src": str(state / SEEDS),
            "boot_services_images": [{"name": r.name, "src": str(r.path)} for r in images]}
    out = state / "boot_services.yml"
    out.write_text("# gpuctl image seed: inputs of playbooks/boot_services.yml (-e @this)\n"
                   + yaml.safe_dump(data, sort_keys=False))
    return out
