"""No malformed input gets a traceback out of `gpuctl lint`.

Every bad input is one line per finding, `file:line:col: CODE message (fix: ...)`; exit 2 when
the file cannot be read as YAML, 1 for findings. Checked on a table of garbled documents and
on hypothesis-generated damage to the lab site: text edits (deleted spans, inserted YAML
punctuation) and value swaps (any leaf replaced by a number, infinity, text, list, ...).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.cli.main import cli
from provision.loader import MAX_VALUES
from tests.conftest import ROOT, SITES

LAB = (SITES / "lab" / "site.yaml").read_text()
LAB_DATA = yaml.safe_load(LAB)
LINE = re.compile(r"^\S+:\d+:\d+: GPU\d{3} .+ \(fix: .+\)$")

GARBLED: dict[str, str | bytes] = {
    "empty": "",
    "only-comment": "# nothing here\n",
    "whitespace": "   \n\n",
    "nul-byte": "site:\x00\n",
    "not-utf8": b"site:\n  name: \xff\xfe\n",
    "open-bracket": "[",
    "open-brace": "{site: 1",
    "scalar-document": "just text",
    "list-document": "- a\n- b\n",
    "two-documents": LAB + "---\n" + LAB,
    "tab-indent": "site:\n\tname: x\n",
    "undefined-alias": "site: *nowhere\n",
    "self-alias": "site: &a [*a]\n",
    "deep-nesting": "site: " + "[" * 3000 + "]" * 3000 + "\n",
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                  + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                            for p, c in zip("abcdefg", "bcdefgh", strict=True)),
    "complex-key": "? [a, b]\n: 1\n",
    "python-object": "site: !!python/object/apply:os.system [echo]\n",
    "bad-binary": "site: !!binary '@@@'\n",
    "bad-timestamp": "site: !!timestamp 2024-99-99\n",
    "bad-int": "site: !!int twelve\n",
    "unknown-tag": "site: !vault |\n  abc\n",
    "merge-key": "base: &b {x: 1}\nsite:\n  <<: *b\n",
    "yaml-directive": "%YAML 9.9\n---\nsite: 1\n",
    "long-line": "site: " + "x" * 200_000 + "\n",
    "halls-scalar": LAB.replace("halls:\n", "halls: 5\nhalls_old:\n"),
    "halls-empty-map": LAB.replace("halls:\n", "halls: {}\nhalls_old:\n"),
    "null-everything": "site:\nhalls:\nnode_groups:\nfabrics:\naddressing:\nsoftware:\nburnin:\n",
    "int-keys": "1: a\n2: b\n",
    "null-key": "~: a\n",
    "bool-key-in-site": LAB.replace("  currency: USD\n", "  yes: USD\n"),
    "huge-int": LAB.replace("        racks: 1\n", "        racks: " + "9" * 400 + "\n"),
    "huge-count": LAB.replace("    count: 4\n", "    count: 99999999999999\n"),
    "inf-everywhere": LAB.replace("36", ".inf").replace("60", "-.inf"),
    "nan-u-position": LAB.replace("[2, 8, 14, 20]", "[.nan, 8, 14, 20]"),
    "date-as-version": LAB.replace('  cuda: "13.0"\n', "  cuda: 2024-01-01\n"),
    "include-self": LAB.replace("halls:\n", "includes: [site.yaml]\nhalls:\n", 1),
    "include-escape": LAB.replace("halls:\n", "includes: [../../../etc/passwd]\nhalls:\n", 1),
    "catalog-is-dir": LAB.replace("halls:\n", "catalogs: [.]\nhalls:\n", 1),
    "catalog-escape": LAB.replace("halls:\n", "catalogs: [/dev/null]\nhalls:\n", 1),
}


def _lint(tmp: Path, text: str | bytes) -> tuple[int, str]:
    site = tmp / "site.yaml"
    if isinstance(text, bytes):
        site.write_bytes(text)
    else:
        site.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(cli, ["lint", str(site)])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"lint raised {res.exception!r}") from res.exception
    return res.exit_code, res.stdout


def _assert_one_line_each(code: int, out: str) -> None:
    lines = [ln for ln in out.splitlines() if ln]
    assert code in (0, 1, 2), out
    assert "Traceback" not in out
    bad = [ln for ln in lines if not LINE.match(ln)]
    assert not bad, bad
    if code == 2:
        assert len(lines) == 1, out
    if code == 1:
        assert lines, "exit 1 without a finding"


@pytest.mark.parametrize("name", sorted(GARBLED))
def test_garbled_yaml_is_one_line_not_a_traceback(tmp_path: Path, name: str) -> None:
    code, out = _lint(tmp_path, GARBLED[name])
    _assert_one_line_each(code, out)
    assert code != 0, out
    assert all(ln.startswith(str(tmp_path)) or ln.startswith("/dev/null")
               for ln in out.splitlines() if ln), out


def test_byte_order_mark_is_fine(tmp_path: Path) -> None:
    assert _lint(tmp_path, "\ufeff" + LAB) == (0, "")


def test_garbled_cases_say_what_is_wrong(tmp_path: Path) -> None:
    expect = {
        "not-utf8": (2, "GPU001 cannot read"),
        "nul-byte": (2, "unacceptable character"),
        "self-alias": (2, "a YAML alias contains itself"),
        "deep-nesting": (2, "nest"),  # libyaml: "maximum nesting depth"
        "alias-bomb": (2, f"more than {MAX_VALUES:,} values"),
        "python-object": (2, "unsupported YAML tag"),
        "bad-int": (2, "cannot read 'twelve' as int"),
        "merge-key": (2, "GPU003 YAML merge keys"),
        "complex-key": (2, "a key must be a plain name"),
        "inf-everywhere": (1, "GPU004"),
        "date-as-version": (1, 'GPU005 software.cuda: YAML read 2024-01-01 as the date'),
        "huge-int": (1, "less than or equal to 1000"),
        "include-escape": (2, "outside the site directory"),
    }
    for name, (status, text) in expect.items():
        code, out = _lint(tmp_path, GARBLED[name])
        assert code == status and text in out, (name, out)


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _leaves(v, (*path, i))] or [path]
    return [path]


LEAVES = _leaves(LAB_DATA)
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.sampled_from([0, 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.inf, -math.inf]),
    st.text(max_size=12), st.sampled_from(["{index}", "{x}", "a.b", "A01", "10.0.0.0/8", "1.3"]),
    st.lists(st.integers(-5, 60), max_size=5), st.dictionaries(st.text(max_size=5),
                                                               st.integers(), max_size=3),
)


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    copy[head] = _set(copy[head], tuple(rest), value)
    return copy


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(LEAVES), VALUES), min_size=1, max_size=3))
def test_any_value_anywhere_is_a_finding_not_a_traceback(
        tmp_path: Path, edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    data = LAB_DATA
    for path, value in edits:
        data = _set(data, path, value)
    code, out = _lint(tmp_path, yaml.safe_dump(data, sort_keys=False))
    _assert_one_line_each(code, out)


PUNCT = st.sampled_from(list(":-[]{},&*!|>'\"#%@`\t\n ") + ["  ", "- ", ": ", "{{", "}}"])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(start=st.integers(0, len(LAB)), length=st.integers(0, 40),
       insert=st.lists(st.one_of(PUNCT, st.text(max_size=3)), max_size=4))
def test_damaged_text_is_a_finding_not_a_traceback(
        tmp_path: Path, start: int, length: int, insert: list[str]) -> None:
    text = LAB[:start] + "".join(insert) + LAB[start + length:]
    code, out = _lint(tmp_path, text)
    _assert_one_line_each(code, out)


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


SWAPS = {site: yaml.safe_load((SITES / site / "site.yaml").read_text())
         for site in ("lab", "superpod-h100-4su")}
PLAUSIBLE = st.one_of(st.integers(0, 200), st.floats(0.001, 1e5),
                      st.sampled_from([1, 2, 3, 16, 32, 47, 48, 64]))
NAMES = st.sampled_from(["a", "n01", "h1", "{index}", "qm8700", "sn2201", "mgmt-1g-48",
                         "dgx-a100", "gb200-nvl72", "pcie-a100-1hca", "multi-plane",
                         "fat-tree", "rail-optimized", "liquid", "10.0.0.0/30", "10.0.0.0/8"])


@st.composite
def _well_typed_edits(draw: st.DrawFn, site: str) -> Any:
    """Replace 1-3 leaves with a value of the same type (numbers, or names the site uses)."""
    data = SWAPS[site]
    leaves = _leaves(data)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(leaves))
        old = _at(data, path)
        if type(old) in (int, float):
            data = _set(data, path, draw(PLAUSIBLE))
        elif isinstance(old, str):
            data = _set(data, path, draw(NAMES))
    return data


@pytest.mark.parametrize("site", sorted(SWAPS))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_odd_but_well_typed_values_reach_the_planner_safely(
        tmp_path: Path, site: str, data: st.DataObject) -> None:
    """Values of the right type get past the schema into the planners: racks, counts, U,
    kW, switch and node models, topologies. (This found a fabric-builder ValueError.)"""
    doc = data.draw(_well_typed_edits(site))
    code, out = _lint(tmp_path, yaml.safe_dump(doc, sort_keys=False))
    _assert_one_line_each(code, out)


def test_too_many_rails_for_a_pod_is_a_finding(tmp_path: Path) -> None:
    text = (SITES / "superpod-h100-4su" / "site.yaml").read_text()
    code, out = _lint(tmp_path, text.replace("type: dgx-h100", "type: gb200-nvl72"))
    assert code == 1
    assert "GPU141 fabric compute: a pod of 72 leaves does not fit the 32 down ports" in out


CATALOG = {kind: [next(iter(yaml.safe_load(p.read_text())[kind]))]
           for kind, p in (("nodes", ROOT / "provision/catalog/nodes.yaml"),
                           ("switches", ROOT / "provision/catalog/switches.yaml"),
                           ("cables", ROOT / "provision/catalog/cables.yaml"))}
CATALOG["nodes"][0] = {**CATALOG["nodes"][0], "name": "dgx-a100"}  # the lab's node type
CATALOG["switches"][0] = {**CATALOG["switches"][0], "name": "qm8700"}  # the lab's IB switch


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(_leaves(CATALOG)),
                                st.one_of(PLAUSIBLE, VALUES)), min_size=1, max_size=3))
def test_a_sites_catalog_file_with_odd_values_is_a_finding(
        tmp_path: Path, edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    """A site's own catalog file replacing the SKUs it uses, with damaged values: findings
    name the catalog file (a 1-port switch used to end in a ZeroDivisionError)."""
    cat: Any = CATALOG
    for path, value in edits:
        cat = _set(cat, path, value)
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(cat, sort_keys=False))
    code, out = _lint(tmp_path, LAB.replace("halls:\n", "catalogs: [mine.yaml]\nhalls:\n", 1))
    _assert_one_line_each(code, out)


def test_a_sku_name_with_a_line_break_keeps_each_finding_on_one_line(tmp_path: Path) -> None:
    """Found by the test above: a SKU named "a\\nb" printed its findings' locations over two
    lines; the name is quoted in the location now."""
    cat = {**CATALOG, "nodes": [{**CATALOG["nodes"][0], "name": "a\nb", "vendor": 0}]}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(cat, sort_keys=False))
    code, out = _lint(tmp_path, LAB.replace("halls:\n", "catalogs: [mine.yaml]\nhalls:\n", 1))
    _assert_one_line_each(code, out)
    assert code == 1 and "GPU005 nodes['a\\nb'].vendor: YAML read 0 as the number 0" in out
