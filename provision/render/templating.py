"""The Jinja2 environment of the renderers: the package's templates (templates/ in the
checkout, found by :mod:`provision.resources`), StrictUndefined.

Templates give generated files their structure; bulk lines (one per host, port or record)
are built in Python and passed in as ready text, which keeps a 16k-GPU site fast.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from provision.resources import templates_dir


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - config files, not HTML
    )


def render(name: str, **context: Any) -> str:
    """Render ``templates/<name>``; an undefined variable raises instead of printing ''."""
    return environment().get_template(name).render(**context)
