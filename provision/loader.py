"""The only place that reads YAML: site files, included files and catalog files.

Every value keeps the file, line and column it came from, so any error, from a YAML typo to
a semantic lint finding, can point at the exact spot: ``site.yaml:42:7: halls[0]...``.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from provision.errors import SiteLoadError, SiteSchemaError
from provision.models.catalog import Catalog
from provision.models.catalog_checks import catalog_problems
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
    text: dict[Loc, str] = field(default_factory=dict)
    """Source text of plain scalars YAML read as something other than a string (``1.30``)."""

    def find(self, loc: Loc) -> Position | None:
        """Position of ``loc``, or of its nearest ancestor that was written."""
        for end in range(len(loc), -1, -1):
            pos = self.by_path.get(tuple(loc[:end]))
            if pos is not None:
                return pos
        return None


def format_loc(loc: Loc) -> str:
    """``('halls', 0, 'rows')`` -> ``halls[0].rows``; a key that is empty or holds a line
    break or another unprintable character is quoted (``nodes['\\n'].vendor``), so a finding
    stays one line."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part) or not str(part).isprintable():
            out += f"[{str(part)!r}]"
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


_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML was built with it (13x faster); same nodes and marks."""


def _compose(path: Path, text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SiteLoadError(f"invalid YAML: {problem}", file=str(path), line=line, col=col) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise SiteLoadError(f"invalid YAML: unacceptable character {exc.character!r}",
                            file=str(path), line=line, col=col) from exc
    except yaml.YAMLError as exc:
        raise SiteLoadError(f"invalid YAML: {exc}", file=str(path)) from exc
    except RecursionError as exc:
        raise SiteLoadError("invalid YAML: nested too deeply", file=str(path)) from exc


MAX_VALUES = 100_000
"""Most values one file may expand to, aliases included: a bound for garbled input."""


_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class _Reader:
    """Turns a composed YAML node tree into plain values, recording every value's position."""

    def __init__(self, path: Path, positions: Positions) -> None:
        self.file = str(path)
        self.positions = positions
        self.count = 0
        self.open: set[int] = set()
        self.scalars = yaml.SafeLoader("")

    def error(self, node: yaml.Node, message: str, code: str = "GPU001") -> SiteLoadError:
        return SiteLoadError(message, file=self.file, line=node.start_mark.line + 1,
                             col=node.start_mark.column + 1, code=code)

    def value(self, node: yaml.Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self.error(node, f"more than {MAX_VALUES:,} values (do YAML aliases expand "
                             "without end?)")
        self.positions.by_path[loc] = Position(self.file, node.start_mark.line + 1,
                                               node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, loc)
        if node.tag not in _COLLECTION_TAGS:
            raise self.error(node, f"{format_loc(loc) or 'document'}: unsupported YAML tag "
                             f"{node.tag!r}; site files hold plain values")
        if id(node) in self.open:
            raise self.error(node, f"{format_loc(loc) or 'document'}: a YAML alias contains "
                             "itself")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, loc)
            return [self.value(item, (*loc, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, loc: Loc) -> Any:
        if node.tag not in self.scalars.yaml_constructors:
            raise self.error(node, f"{format_loc(loc) or 'document'}: unsupported YAML tag "
                             f"{node.tag!r}; site files hold plain values")
        try:
            value = self.scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            raise self.error(node, f"{format_loc(loc) or 'document'}: cannot read "
                             f"{node.value!r} as {node.tag.rsplit(':', 1)[-1]}") from exc
        finally:
            self.scalars.constructed_objects.clear()
        if not isinstance(value, str) and not node.style:  # plain (libyaml: "")
            self.positions.text[loc] = str(node.value)
        return value

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.error(key_node, "YAML merge keys (<<) are not supported; repeat "
                                 "the keys", code="GPU003")
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, f"{format_loc(loc) or 'document'}: a key must be "
                                 "a plain name, not a list or mapping")
            key = self.scalar(key_node, (*loc, "<key>"))
            self.positions.text.pop((*loc, "<key>"), None)
            if not isinstance(key, str):
                key = str(key_node.value)
            if key in out:
                raise self.error(key_node, f"{format_loc((*loc, key))}: duplicate key {key!r}",
                                 code="GPU003")
            out[key] = self.value(value_node, (*loc, key))
            # Point errors about a key at the key itself, not its value.
            self.positions.by_path[(*loc, key)] = Position(
                self.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return out


def _read(path: Path, text: str, positions: Positions, base: Loc = ()) -> Any:
    node = _compose(path, text)
    if node is None:
        raise SiteLoadError("file is empty", file=str(path), line=1, col=1)
    try:
        return _Reader(path, positions).value(node, base)
    except RecursionError as exc:
        raise SiteLoadError("invalid YAML: nested too deeply", file=str(path)) from exc


def load_yaml(path: Path, positions: Positions, base: Loc = ()) -> Any:
    """Read one YAML file into plain Python values, recording positions under ``base``."""
    return _read(path, _read_text(path), positions, base)


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
                                line=pos.line if pos else None, col=pos.col if pos else None,
                                hint="fix the path or add the file")
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
            for src, dst in ((inc_pos.by_path, positions.by_path), (inc_pos.text, positions.text)):
                for loc, val in src.items():
                    if loc and loc[0] == key:
                        if offset and len(loc) > 1 and isinstance(loc[1], int):
                            loc = (key, loc[1] + offset, *loc[2:])
                        elif offset and len(loc) == 1:
                            continue
                        dst[loc] = val  # type: ignore[assignment]


CATALOG_KINDS: tuple[str, ...] = tuple(Catalog.model_fields)
"""Sections of a catalog file (``nodes:``, ``switches:``, ...), in the catalog model's order."""


@functools.cache
def _builtin_catalog() -> tuple[tuple[Path, Any, Positions], ...]:
    pkg = catalog_files()
    out = []
    for entry in sorted(pkg.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and entry.name != "versions.yaml":
            path = Path("provision/catalog") / entry.name
            positions = Positions()
            out.append((path, _read(path, entry.read_text(encoding="utf-8"), positions),
                        positions))
    return tuple(out)


def _catalog_error(path: Path, positions: Positions, loc: Loc, message: str,
                   code: str = "GPU002") -> SiteSchemaError:
    pos = positions.find(loc)
    return SiteSchemaError([SiteLoadError(
        message, file=str(path), line=pos.line if pos else 1, col=pos.col if pos else 1,
        code=code, hint="see `gpuctl schema catalog` for the catalog file format")])


class _CatalogBuilder:
    """Merges catalog files by SKU name; keeps where each SKU's values were written."""

    def __init__(self) -> None:
        self.merged: dict[str, dict[str, Any]] = {k: {} for k in CATALOG_KINDS}
        self.positions = Positions()
        self.locs: dict[tuple[str, str], list[Loc]] = {}

    def add(self, path: Path, data: Any, file_pos: Positions) -> None:
        if not isinstance(data, dict):
            raise _catalog_error(path, file_pos, (), "a catalog file must be a mapping of "
                                 f"sections ({', '.join(CATALOG_KINDS)}), each a list of SKUs")
        names: dict[tuple[str, int], str] = {}
        for kind, entries in data.items():
            if kind not in CATALOG_KINDS:
                raise _catalog_error(path, file_pos, (kind,), f"unknown catalog section "
                                     f"{kind!r}; allowed: {', '.join(CATALOG_KINDS)}")
            if entries is None:
                continue
            if not isinstance(entries, list):
                raise _catalog_error(path, file_pos, (kind,), f"{kind}: must be a list of SKU "
                                     "entries (- {name: ..., ...})")
            seen: dict[str, int] = {}
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise _catalog_error(path, file_pos, (kind, i), f"{kind}[{i}]: each SKU "
                                         "is a mapping with a text name: key")
                name = entry["name"]
                if name in seen:
                    first = file_pos.find((kind, seen[name]))
                    raise _catalog_error(path, file_pos, (kind, i), f"{kind}[{i}]: duplicate "
                                         f"SKU name {name!r} (first at line "
                                         f"{first.line if first else '?'})", code="GPU131")
                seen[name] = i
                names[(kind, i)] = name
                for old in self.locs.pop((kind, name), []):  # a later file overrides the SKU
                    self.positions.by_path.pop(old, None)
                    self.positions.text.pop(old, None)
                self.merged[kind][name] = entry
        for src, dst in ((file_pos.by_path, self.positions.by_path),
                         (file_pos.text, self.positions.text)):
            for loc, val in src.items():
                if len(loc) >= 2 and (key := names.get((loc[0], loc[1]))) is not None:  # type: ignore[arg-type]
                    new = (loc[0], key, *loc[2:])
                    dst[new] = val  # type: ignore[assignment]
                    self.locs.setdefault((str(loc[0]), key), []).append(new)
        for kind in data:
            if (kind,) in file_pos.by_path:
                self.positions.by_path.setdefault((kind,), file_pos.by_path[(kind,)])

    def build(self, default_file: str) -> Catalog:
        try:
            catalog = Catalog.model_validate(self.merged)
        except ValidationError as exc:
            errors = schema_errors(exc, self.positions, default_file, Catalog)
            for e in errors:
                e.hint = "see `gpuctl schema catalog` for the catalog file format"
            raise SiteSchemaError(errors) from exc
        problems = []
        for loc, code, message, hint in catalog_problems(catalog):
            pos = self.positions.find(loc)
            problems.append(SiteLoadError(
                f"{format_loc(loc)}: {message}", file=pos.file if pos else default_file,
                line=pos.line if pos else None, col=pos.col if pos else None, code=code,
                hint=hint, subject=format_loc(loc)))
        if problems:
            raise SiteSchemaError(problems)
        return catalog


def load_catalog(extra: list[Path] | None = None) -> Catalog:
    """Built-in catalog plus extra catalog files (later entries override by name)."""
    builder = _CatalogBuilder()
    for path, data, positions in _builtin_catalog():
        builder.add(path, data, positions)
    for path in extra or []:
        positions = Positions()
        builder.add(path, load_yaml(path, positions), positions)
    return builder.build(str(extra[-1]) if extra else "provision/catalog")


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Keys allowed at the mapping that holds ``loc[-1]`` (for did-you-mean hints)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None:
            if get_origin(current) is dict:
                current = get_args(current)[1]
                continue
            return []
        info = fields.get(part)
        if info is None:
            return []
        current = _unwrap(info.annotation)
    return list(getattr(current, "model_fields", {}))


def _unwrap(ann: Any) -> Any:
    """The model or dict inside ``X | None``, ``list[X]``, ``dict[str, X]``."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    origin = get_origin(ann)
    if origin is dict:
        return ann
    for arg in get_args(ann):
        inner = _unwrap(arg)
        if inner is not None:
            return inner
    return None


_SCALAR_KIND = {bool: "true/false value", int: "number", float: "number",
                datetime.date: "date", datetime.datetime: "date"}


def _describe(err: Any, positions: Positions, model: type[BaseModel]) -> tuple[str, str, str]:
    """(code, message, hint) for one pydantic error."""
    loc = tuple(err["loc"])
    where = format_loc(loc)
    typ, msg, inp = err["type"], err["msg"], err.get("input")
    if typ == "extra_forbidden":
        allowed = _fields_at(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else \
            f"allowed here: {', '.join(allowed)}" if allowed else "see `gpuctl schema`"
        return "GPU002", f"{where}: unknown key {loc[-1]!r}", hint
    if typ == "missing":
        return "GPU002", f"{where}: required key {loc[-1]!r} is missing", \
            "add it (see `gpuctl schema`)"
    src = positions.text.get(loc)
    if typ == "finite_number" or (isinstance(inp, float) and not math.isfinite(inp)):
        shown = src or (inp if isinstance(inp, str) else repr(inp))
        return "GPU004", f"{where}: {shown} is not a finite number", \
            "write a finite value (YAML reads .inf, .nan and 1.0e+400 as infinite or not a number)"
    if typ in ("string_type", "string_pattern_mismatch") and type(inp) in _SCALAR_KIND:
        shown = src if src is not None else str(inp)
        return "GPU005", f"{where}: YAML read {shown} as the {_SCALAR_KIND[type(inp)]} " \
            f"{inp!r}, not text", f'quote it: "{shown}"'
    if re.fullmatch(r"GPU\d{3}", typ):
        return typ, f"{where}: {msg}", str((err.get("ctx") or {}).get("hint", "")) or \
            "see `gpuctl schema`"
    if typ == "value_error":
        return "GPU002", f"{where}: {(err.get('ctx') or {}).get('error', msg)}", \
            "see `gpuctl schema` for the allowed keys and values"
    if "input" in err and not isinstance(inp, dict | list):
        msg = f"{msg}, got {src if src is not None else repr(inp)}"
    return "GPU002", f"{where}: {msg}", "see `gpuctl schema` for the allowed keys and values"


def schema_errors(exc: ValidationError, positions: Positions, default_file: str,
                  model: type[BaseModel] = Site) -> list[SiteLoadError]:
    """Turn pydantic errors into positioned one-line errors, each with a code and a hint."""
    out = []
    for err in exc.errors():
        pos = positions.find(tuple(err["loc"]))
        code, msg, hint = _describe(err, positions, model)
        out.append(SiteLoadError(msg, file=pos.file if pos else default_file,
                                 line=pos.line if pos else None, col=pos.col if pos else None,
                                 code=code, hint=hint, subject=format_loc(tuple(err["loc"]))))
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
    """Validate plain values into a Site and load its catalog files.

    Raises SiteSchemaError carrying every schema error (of site.yaml or of a catalog file,
    each naming its own file and line), or SiteLoadError when a catalog file cannot be read.
    """
    try:
        site = Site.model_validate(raw)
    except ValidationError as exc:
        raise SiteSchemaError(schema_errors(exc, positions, str(path))) from exc
    extra = []
    for i, name in enumerate(site.catalogs):
        cat_path = path.parent / name
        if not cat_path.is_file():
            pos = positions.find(("catalogs", i))
            raise SiteLoadError(f"catalogs[{i}]: catalog file {name!r} not found (paths are "
                                f"relative to {path.parent})", file=pos.file if pos else str(path),
                                line=pos.line if pos else None, col=pos.col if pos else None,
                                hint="fix the path or add the file")
        extra.append(cat_path)
    catalog = load_catalog(extra)
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
