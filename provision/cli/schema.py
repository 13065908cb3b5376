"""``gpuctl schema``: the site-file reference, generated from the model's descriptions."""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import BaseModel

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


@click.command("schema")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: one line per key; json: JSON Schema.")
def schema(fmt: str) -> None:
    """Print the reference of every key a site.yaml may contain."""
    if fmt == "json":
        click.echo(json.dumps(Site.model_json_schema(), indent=2, sort_keys=True))
        return
    lines: list[str] = []
    _walk(Site, "", lines)
    click.echo("\n".join(lines))
