"""The only place that reads YAML: site files, included files and catalog files.

Every value keeps the file, line and column it came from, so any error, from a YAML typo to
a semantic lint finding, can point at the exact spot: ``site.yaml:42:7: halls[0]...``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from provision.errors import SiteLoadError
from provision.models.catalog import Catalog
from provision.models.site import Site
from provision.resources import catalog_files

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """Where a value was written: file, 1-based line and column."""

    file: str
    line: int
    col: int


@dataclass
class Positions:
    """Map from a value's path in the document to where it was written."""

    by_path: dict[Loc, Position] = field(default_factory=dict)

    def find(self, loc: Loc) -> Position | None:
        """Position of ``loc``, or of its nearest ancestor that was written."""
        for end in range(len(loc), -1, -1):
            pos = self.by_path.get(tuple(loc[:end]))
            if pos is not None:
                return pos
        return None


def format_loc(loc: Loc) -> str:
    """``('halls', 0, 'rows')`` -> ``halls[0].rows``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SiteLoadError("file not found", file=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteLoadError(f"cannot read: {exc}", file=str(path)) from exc


def _compose(path: Path, text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SiteLoadError(f"invalid YAML: {problem}", file=str(path), line=line, col=col) from exc
    except yaml.YAMLError as exc:
        raise SiteLoadError(f"invalid YAML: {exc}", file=str(path)) from exc


_SCALAR = yaml.SafeLoader("")


def _to_python(node: yaml.Node, path: Path, loc: Loc, positions: Positions) -> Any:
    positions.by_path[loc] = Position(str(path), node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SiteLoadError("YAML merge keys (<<) are not supported; repeat the keys",
                                    file=str(path), line=key_node.start_mark.line + 1,
                                    col=key_node.start_mark.column + 1, code="GPU003")
            key = _SCALAR.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise SiteLoadError(
                    f"{format_loc((*loc, key))}: duplicate key {key!r}", file=str(path),
                    line=key_node.start_mark.line + 1, col=key_node.start_mark.column + 1,
                    code="GPU003")
            out[key] = _to_python(value_node, path, (*loc, key), positions)
            # Point errors about a key at the key itself, not its value.
            positions.by_path[(*loc, key)] = Position(
                str(path), key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path, (*loc, i), positions) for i, item in enumerate(node.value)]
    return _SCALAR.construct_object(node, deep=True)


def load_yaml(path: Path, positions: Positions, base: Loc = ()) -> Any:
    """Read one YAML file into plain Python values, recording positions under ``base``."""
    node = _compose(path, _read_text(path))
    if node is None:
        raise SiteLoadError("file is empty", file=str(path), line=1, col=1)
    return _to_python(node, path, base, positions)


def site_file(site: str | Path) -> Path:
    """Resolve SITE (a directory or its site.yaml) to the site.yaml path."""
    p = Path(site)
    if p.is_dir():
        p = p / "site.yaml"
    if not p.exists():
        raise SiteLoadError("no such site file (SITE is a site directory or its site.yaml)",
                            file=str(p))
    return p


@dataclass(frozen=True)
class LoadedSite:
    """A validated site, its catalog and where every value came from."""

    site: Site
    catalog: Catalog
    path: Path
    positions: Positions

    def where(self, loc: Loc) -> Position:
        """Best known position for a field path (falls back to the top of site.yaml)."""
        return self.positions.find(loc) or Position(str(self.path), 1, 1)


def _merge_includes(raw: dict[str, Any], path: Path, positions: Positions) -> None:
    includes = raw.get("includes", [])
    if not isinstance(includes, list):
        return  # schema validation reports it
    for i, name in enumerate(includes):
        if not isinstance(name, str):
            continue
        inc_path = (path.parent / name).resolve()
        if path.parent.resolve() not in inc_path.parents:
            pos = positions.find(("includes", i))
            raise SiteLoadError(f"includes[{i}]: {name!r} is outside the site directory",
                                file=pos.file if pos else str(path),
                                line=pos.line if pos else None, col=pos.col if pos else None)
        if not inc_path.is_file():
            pos = positions.find(("includes", i))
            raise SiteLoadError(f"includes[{i}]: included file {name!r} not found next to "
                                f"{path.name}", file=pos.file if pos else str(path),
                                line=pos.line if pos else None, col=pos.col if pos else None)
        inc_pos = Positions()
        data = load_yaml(inc_path, inc_pos)
        if not isinstance(data, dict):
            raise SiteLoadError("an included file must be a mapping of top-level keys",
                                file=str(inc_path), line=1, col=1)
        for key, value in data.items():
            offset = 0
            if key in raw and isinstance(raw[key], list) and isinstance(value, list):
                offset = len(raw[key])
                raw[key] = raw[key] + value
            elif key in raw:
                p = inc_pos.find((key,))
                raise SiteLoadError(
                    f"{key}: already set in {path.name}; only list keys can be extended by includes",
                    file=str(inc_path), line=p.line if p else None, col=p.col if p else None)
            else:
                raw[key] = value
            for loc, pos in inc_pos.by_path.items():
                if loc and loc[0] == key:
                    if offset and len(loc) > 1 and isinstance(loc[1], int):
                        loc = (key, loc[1] + offset, *loc[2:])
                    elif offset and len(loc) == 1:
                        continue
                    positions.by_path[loc] = pos


def _catalog_files() -> Iterator[tuple[str, str]]:
    pkg = catalog_files()
    for entry in sorted(pkg.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and entry.name != "versions.yaml":
            yield entry.name, entry.read_text(encoding="utf-8")


_KINDS = ("nodes", "switches", "cables", "transceivers")


def _add_catalog(into: dict[str, dict[str, Any]], data: Any, path: Path) -> None:
    if not isinstance(data, dict):
        raise SiteLoadError("a catalog file must be a mapping with nodes/switches/cables/"
                            "transceivers lists", file=str(path), line=1, col=1)
    for kind, entries in data.items():
        if kind not in _KINDS:
            raise SiteLoadError(f"unknown catalog section {kind!r}; allowed: {', '.join(_KINDS)}",
                                file=str(path))
        for entry in entries or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                into[kind][entry["name"]] = entry  # later files override earlier ones


def load_catalog(extra: list[Path] | None = None) -> Catalog:
    """Built-in catalog plus extra catalog files (later entries override by name)."""
    merged: dict[str, dict[str, Any]] = {k: {} for k in _KINDS}
    for name, text in _catalog_files():
        _add_catalog(merged, yaml.safe_load(text), Path(name))
    for path in extra or []:
        positions = Positions()
        _add_catalog(merged, load_yaml(path, positions), path)
    try:
        return Catalog.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SiteLoadError(f"catalog {format_loc(tuple(err['loc']))}: {err['msg']}",
                            file=str(extra[-1]) if extra else "built-in catalog") from exc


def schema_errors(exc: ValidationError, positions: Positions,
                  default_file: str) -> list[SiteLoadError]:
    """Turn pydantic errors into positioned one-line errors."""
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        pos = positions.find(loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            msg = f"required key {loc[-1]!r} is missing"
        elif "input" in err and not isinstance(err["input"], dict | list):
            msg = f"{msg}, got {err['input']!r}"
        out.append(SiteLoadError(f"{format_loc(loc)}: {msg}",
                                 file=pos.file if pos else default_file,
                                 line=pos.line if pos else None, col=pos.col if pos else None,
                                 code="GPU002"))
    return out


def load_site_raw(site: str | Path) -> tuple[Path, dict[str, Any], Positions]:
    """Read site.yaml and its includes into plain values with positions (no validation)."""
    path = site_file(site)
    positions = Positions()
    raw = load_yaml(path, positions)
    if not isinstance(raw, dict):
        raise SiteLoadError("site.yaml must be a mapping (site:, halls:, node_groups:, ...)",
                            file=str(path), line=1, col=1)
    _merge_includes(raw, path, positions)
    return path, raw, positions


def validate_site(path: Path, raw: dict[str, Any], positions: Positions) -> LoadedSite:
    """Validate plain values into a Site; raise the first schema error (all via schema_errors)."""
    try:
        site = Site.model_validate(raw)
    except ValidationError as exc:
        raise schema_errors(exc, positions, str(path))[0] from exc
    catalog = load_catalog([path.parent / c for c in site.catalogs])
    return LoadedSite(site=site, catalog=catalog, path=path, positions=positions)


GUIDS_FILE = "discovered_guids.json"
"""GUIDs learned by ``gpuctl fabric verify --write-guids``, next to site.yaml."""


def load_discovered_guids(site_dir: Path) -> dict[str, str] | None:
    """Device name -> GUID from the site's discovery file, or None when there is none."""
    path = site_dir / GUIDS_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SiteLoadError(f"cannot read discovered GUIDs: {exc}", file=str(path)) from exc
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise SiteLoadError("expected a JSON object of device name -> GUID strings",
                            file=str(path))
    return data


def load_site(site: str | Path) -> LoadedSite:
    """Load and schema-validate a site (semantic rules are in provision.plan.lint)."""
    path, raw, positions = load_site_raw(site)
    return validate_site(path, raw, positions)
