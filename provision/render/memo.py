"""Per-Plan memoization: renderers share derived views (fabric graph, topology, GUIDs) of one
Plan object instead of recomputing them. Pure: nothing leaves the process, and an entry dies
with its Plan. Cached values are shared, so callers must not modify them."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from provision.plan.build import Plan

_T = TypeVar("_T")
_CACHE: dict[tuple[str, int, Hashable], tuple[weakref.ref[Plan], Any]] = {}


def memo(kind: str, plan: Plan, key: Hashable, make: Callable[[], _T]) -> _T:
    """``make()`` once per (kind, live Plan object, key)."""
    k = (kind, id(plan), key)
    hit = _CACHE.get(k)
    if hit is not None and hit[0]() is plan:
        return cast(_T, hit[1])
    value = make()
    _CACHE[k] = (weakref.ref(plan, lambda _: _CACHE.pop(k, None)), value)
    return value
