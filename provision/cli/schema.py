"""``gpuctl schema``: the reference of site files and catalog files, from the models' docs."""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import BaseModel, Field, create_model

from provision.models.catalog import Catalog
from provision.models.site import Site


def _walk(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    for name, field in model.model_fields.items():
        ann = field.annotation
        path = f"{prefix}{name}"
        req = "required" if field.is_required() else f"default {field.get_default(call_default_factory=True)!r}"
        out.append(f"{path:<44} {field.description} ({req})")
        for sub in _models(ann):
            suffix = "[]." if "list" in str(ann) else "."
            _walk(sub, path + suffix, out)


def _models(ann: Any) -> list[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for a in getattr(ann, "__args__", ()) for m in _models(a)]


def catalog_file_model() -> type[BaseModel]:
    """The shape of a catalog file: each catalog section is a list of SKU entries.

    The merged ``Catalog`` keys SKUs by name; a file lists them, and a later file's entry
    replaces the built-in one of the same name.
    """
    fields: dict[str, Any] = {}
    for kind, field in Catalog.model_fields.items():
        entry = _models(field.annotation)[0]
        fields[kind] = (list[entry], Field(  # type: ignore[valid-type]
            default_factory=list, description=f"{field.description} A list of entries; "
            "an entry whose name matches a built-in SKU replaces it."))
    model: type[BaseModel] = create_model("CatalogFile", **fields)
    model.__doc__ = ("A catalog file (listed under `catalogs:` in site.yaml): hardware SKUs "
                     "added to or replacing the built-in catalog.")
    return model


CATALOG_INTRO = """\
# A catalog file adds or replaces hardware SKUs; list it in site.yaml under `catalogs:`
# (paths relative to the site directory). Sections are optional; each is a list of entries,
# and an entry with the name of a built-in SKU replaces it (`gpuctl catalog` lists them):
#   switches:
#     - {name: my-ib, vendor: Acme, model: X1, technology: infiniband, ports: 64, ...}"""


@click.command("schema")
@click.argument("what", type=click.Choice(["site", "catalog"]), default="site")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: one line per key; json: JSON Schema.")
def schema(what: str, fmt: str) -> None:
    """Every key of a site file or (WHAT=catalog) a catalog file, with its description.

    Each line is a key's path, what it means and its default (or "required").

    \b
    Examples:
      gpuctl schema                       every site.yaml key
      gpuctl schema catalog               every key of a catalog file (nodes, switches, ...)
      gpuctl schema catalog --format json JSON Schema, e.g. for an editor's YAML plugin
    """
    model: type[BaseModel] = Site if what == "site" else catalog_file_model()
    if fmt == "json":
        click.echo(json.dumps(model.model_json_schema(), indent=2, sort_keys=True))
        return
    lines: list[str] = [] if what == "site" else [CATALOG_INTRO]
    _walk(model, "", lines)
    click.echo("\n".join(lines))
