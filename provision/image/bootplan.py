"""``SITE/.gpuctl/boot/nodes.json``: what the boot services serve each node (written by
``gpuctl image seed``, read by the image phase): its planned in-band address, its MAC when the
delivery manifest has one, the image name and the digest its seed and iPXE script carry. No
secrets: the host keys stay under ``secrets/``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from provision.errors import UsageError

NODES = "boot/nodes.json"


@dataclass(frozen=True)
class BootEntry:
    host: str
    address: str
    mac: str
    image: str
    digest: str  # "" when the image was not built when the node was seeded


def nodes_json(entries: Mapping[str, BootEntry]) -> str:
    return json.dumps({h: asdict(e) for h, e in sorted(entries.items())}, indent=2,
                      sort_keys=True) + "\n"


def write_nodes(state: Path, entries: Mapping[str, BootEntry]) -> Path:
    """Merge ``entries`` into the file (nodes seeded before, e.g. another group, are kept)."""
    path = state / NODES
    merged = {**read_nodes(state), **entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nodes_json(merged))
    return path


def read_nodes(state: Path) -> dict[str, BootEntry]:
    path = state / NODES
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        return {h: BootEntry(**{k: str(d[k]) for k in ("host", "address", "mac", "image",
                                                      "digest")})
                for h, d in data.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: not a gpuctl boot plan ({exc}); run gpuctl image seed "
                         "again") from exc
