"""Which links of one ``CableMaker.cables`` call take the same cable choice.

Cabling picks a medium per *cage*, never per link (a cage holds one plug; see
``provision.plan.cabling``), so links are grouped before any cable is chosen:

* a **closed pair** (two cages whose every link runs between them) can ride one twin-port
  cable, its medium chosen by the pair's longest run;
* a **star** (a twin-port cage whose links each go to their own single-port end) can take a
  splitter, one plug per end;
* every other cage is **open**: fiber only, and one fiber type for each set of cages joined
  by fiber legs (union-find over cage numbers), since a module's legs share a fiber type.

The cable of a group depends on its longest run and its plug count only, so the groups are
numbered by both; ``CableMaker`` then picks one cable per group (and speed) instead of per
link. This module only decides the grouping: it reads the per-link facts ``CableMaker._cut``
gathered (:class:`Cut`) and returns :class:`Groups`; it knows no catalog and no racks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

BIG = 1 << 32
"""Cage-pair keys are ``a * BIG + b`` (cage numbers stay far below it)."""
MIXED = -(1 << 40)
"""A cage's mate when its links reach more than one cage (or it is at both ends)."""


@dataclass(slots=True)
class Cut:
    """Per-link facts of one ``CableMaker.cables`` call, in link order, and the cages they name."""

    runs: list[float] = field(default_factory=list)
    info: list[tuple[str, str, str, str, bool]] = field(default_factory=list)
    """(a label, b label, a rack, b rack, a is a host)."""
    wa: list[int] = field(default_factory=list)
    """Width of the a end's cage (ports it holds)."""
    wb: list[int] = field(default_factory=list)
    a_ids: list[int] = field(default_factory=list)
    """Cage number of the a end."""
    b_ids: list[int] = field(default_factory=list)
    count: list[int] = field(default_factory=list)
    """Links per cage number."""
    cage_names: list[str] = field(default_factory=list)
    """Cage key per cage number (the optic's module)."""
    mates: list[int | None] = field(default_factory=list)
    """Per cage number, the one cage all its links reach: ``b`` where it is the a end of
    each, ``-1 - a`` where it is the b end of each, ``MIXED`` where they differ (a closed
    pair is two cages that name each other; counting links per pair costs more)."""


@dataclass(slots=True)
class Groups:
    """Links that take one cable choice: ``of[i]`` numbers link i's group; per group its
    longest run, first link, first link that runs that long, and plug count (``legs``)."""

    of: list[int] = field(default_factory=list)
    far: list[float] = field(default_factory=list)
    first: list[int] = field(default_factory=list)
    worst: list[int] = field(default_factory=list)
    legs: list[int] = field(default_factory=list)


def stars(cut: Cut) -> list[bool]:
    """A star: a twin-port cage whose every link goes to its own single-port end (two
    ConnectX-7 cards, a UFM port): a splitter cable can carry them, one plug per end.
    Indexed by cage number (meaningful for b ends)."""
    star = [True] * len(cut.count)
    count = cut.count
    for ia, ib, wa, wb in zip(cut.a_ids, cut.b_ids, cut.wa, cut.wb, strict=True):
        if not (wb > 1 and wa == 1 and count[ia] == 1):
            star[ib] = False
    return star


def group_links(cut: Cut) -> Groups:
    """Group the links that share a cable choice.

    A closed pair: every link of both cages runs between them (one cable can carry all), its
    medium chosen by the pair's longest run. Open cages take fiber only, one fiber type per
    set of cages joined by legs (union-find over cage numbers). A link's choice depends on
    its group's longest run and on its plug count, so groups are numbered by both."""
    count, mates, big = cut.count, cut.mates, BIG
    parent = list(range(len(count)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    star = stars(cut)
    group: list[int] = []  # the pair key (closed; b*M+b: a star) or -1 (open, set below)
    group_append = group.append
    for ia, ib in zip(cut.a_ids, cut.b_ids, strict=True):
        if mates[ia] == ib and mates[ib] == -1 - ia:
            group_append(ia * big + ib)
            continue
        if star[ib]:
            group_append(ib * big + ib)
            continue
        ra, rb = find(ia), find(ib)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
        group_append(-1)
    return _number(cut, group, find)


def _number(cut: Cut, group: list[int], find: Callable[[int], int]) -> Groups:
    """Number the groups densely in order of their first link, each with its longest run,
    first link, first link that runs that long, and plug count (``legs``).

    A fiber set takes no plugs; a star a splitter with a plug per link (its worst link is
    its first); a closed pair a straight cable between equal cages, a splitter leg from a
    twin-port cage to one single-port end, or fiber: its plugs follow its cages' widths, the
    same for all its links but where two cages share a key (then ``_split_odd``)."""
    out = Groups()
    number: dict[int, int] = {}
    of_append = out.of.append
    far, first, worst, glegs = out.far, out.first, out.worst, out.legs
    closed: list[bool] = []
    odd: list[tuple[int, int]] = []  # (link, its plugs) where they differ from its group's
    count, big, a_ids = cut.count, BIG, cut.a_ids
    for i, (g, run, wa, wb) in enumerate(zip(group, cut.runs, cut.wa, cut.wb, strict=True)):
        if g < 0:
            g = group[i] = -1 - find(a_ids[i])
        gi = number.get(g)
        if gi is None:
            gi = number[g] = len(far)
            far.append(run)
            first.append(i)
            worst.append(i)
            shut = g >= 0 and g // big != g % big
            closed.append(shut)
            glegs.append(0 if g < 0 else -count[g % big] if not shut
                         else 1 if wa == wb else -1 if wa == 1 else 0)
            of_append(gi)
            continue  # a group's first link sets its plugs: never odd
        if run > far[gi]:
            far[gi] = run
            worst[gi] = i
        if closed[gi]:
            legs = 1 if wa == wb else -1 if wa == 1 else 0
            if legs != glegs[gi]:
                odd.append((i, legs))
        of_append(gi)
    for gi in range(len(far)):
        if group[first[gi]] >= 0:
            worst[gi] = first[gi]
    _split_odd(out, odd)
    return out


def _split_odd(out: Groups, odd: list[tuple[int, int]]) -> None:
    """Give the links of a closed pair whose plug count differs from its first link's their
    own group (same longest run and first link): the choice depends on both."""
    split: dict[tuple[int, int], int] = {}
    for i, legs in odd:
        base = out.of[i]
        gi = split.get((base, legs))
        if gi is None:
            gi = split[(base, legs)] = len(out.far)
            out.far.append(out.far[base])
            out.first.append(out.first[base])
            out.worst.append(out.worst[base])
            out.legs.append(legs)
        out.of[i] = gi
