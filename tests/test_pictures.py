"""The pictures of every example site, checked structurally against the Plan (not against the
renderer's own device view): valid, self-contained SVG; every rack on its hall's floor plan
and on its row's elevation sheet; every device of the Plan drawn in its rack at its U; labels
that fit their boxes at a readable size; bundle counts that add up to the fabric's links and
cables; plan.html holding the pictures and tables; librsvg renders every picture.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest

from provision.plan.build import Plan
from provision.plan.load import load_and_plan
from provision.render.pictures import render_pictures
from provision.render.pictures.elevation import FRAME_W, U_PX
from provision.render.pictures.svg import MIN_FONT, text_width
from tests.conftest import EXAMPLE_SITES, ROOT, SITES

NS = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"


@cache
def plan_of(site: str) -> Plan:
    return load_and_plan(SITES / site)[1]


@cache
def pictures_of(site: str) -> dict[str, str]:
    return render_pictures(plan_of(site))


def svg_of(site: str, path: str) -> ET.Element:
    return ET.fromstring(pictures_of(site)[path])


def placed_devices(plan: Plan) -> dict[str, tuple[str, int, int]]:
    """Every rack-mounted device of the Plan: name -> (rack, lowest U, height in U)."""
    out = {n.name: (n.rack, n.u, n.rack_units) for n in plan.nodes}
    out.update({s.name: (s.rack, s.u, plan.catalog.switches[s.model].rack_units)
                for s in plan.switches if s.rack})
    out.update({a.name: (a.rack, a.u, plan.catalog.appliances[a.model].rack_units)
                for a in plan.appliances})
    return out


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{NS}g") if g.get("class") == cls]


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_picture_is_self_contained_svg(site: str) -> None:
    files = pictures_of(site)
    svgs = [k for k in files if k.endswith(".svg")]
    assert "fabric.svg" in svgs and "plan.html" in files
    for path in svgs:
        root = ET.fromstring(files[path])  # well-formed XML or this raises
        assert root.tag == f"{NS}svg", path
        assert root.find(f"{NS}title") is not None and root.find(f"{NS}title").text, path
        assert float(root.get("width", "0")) > 0 and float(root.get("height", "0")) > 0
        for el in root.iter():
            assert el.tag.removeprefix(NS) not in ("script", "image", "foreignObject",
                                                   "style"), (path, el.tag)
            href = el.get(XLINK) or el.get("href")
            if href is not None:
                assert href.startswith("#") and root.find(
                    f".//*[@id='{href[1:]}']") is not None, (path, href)
        assert "url(" not in files[path] and "http://" not in files[path].replace(
            'xmlns="http://www.w3.org/2000/svg"', "").replace(
            'xmlns:xlink="http://www.w3.org/1999/xlink"', ""), path
        assert len(groups(root, "legend")) >= (0 if path == "fabric.svg" else 1), path


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_no_text_below_the_minimum_size(site: str) -> None:
    for path, text in pictures_of(site).items():
        if path.endswith(".svg"):
            sizes = [float(s) for s in re.findall(r'<text [^>]*font-size="([\d.]+)"', text)]
            assert sizes and min(sizes) >= MIN_FONT, path


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_floor_plan_shows_every_rack_of_its_hall_twice(site: str) -> None:
    plan = plan_of(site)
    for hall in {r.hall for r in plan.racks}:
        root = svg_of(site, f"floor/{hall}.svg")
        want = sorted(r.name for r in plan.racks if r.hall == hall)
        assert sorted(g.get("data-rack") for g in groups(root, "rack-kind")) == want
        assert sorted(g.get("data-rack") for g in groups(root, "rack-power")) == want
        assert len(groups(root, "legend")) == 2
        power = {p.rack: p for p in plan.power.racks}
        for g in groups(root, "rack-power"):  # the number printed is the rack's nameplate kW
            p = power[g.get("data-rack", "")]
            label = "".join(t.text or "" for t in g.iter(f"{NS}text"))
            assert label == (f"{p.nameplate_kw:.0f}" if p.nameplate_kw else "")
    assert sorted(k for k in pictures_of(site) if k.startswith("floor/")) == \
        sorted(f"floor/{h}.svg" for h in {r.hall for r in plan.racks})


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_floor_plan_run_table_counts_every_inter_rack_cable(site: str) -> None:
    plan = plan_of(site)
    halls = {r.name: r.hall for r in plan.racks}
    for hall in {r.hall for r in plan.racks}:
        root = svg_of(site, f"floor/{hall}.svg")
        [table] = groups(root, "runs")
        cells = [t.text or "" for t in table.iter(f"{NS}text")][5:]  # after the header
        counted = sum(int(cells[i + 2].replace(",", "")) for i in range(0, len(cells), 5)) \
            if len(cells) >= 5 else 0
        want = len({c.cable for c in plan.cables if c.a_rack != c.b_rack  # physical cables
                    and hall in (halls[c.a_rack], halls[c.b_rack])})
        assert counted == want


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_elevations_draw_every_device_at_its_u(site: str) -> None:
    plan = plan_of(site)
    files = pictures_of(site)
    rows = {(r.hall, r.row) for r in plan.racks}
    assert sorted(k for k in files if k.startswith("racks/")) == \
        sorted(f"racks/{h}-{r}.svg" for h, r in rows)
    drawn: dict[str, tuple[str, int, int]] = {}
    racks_seen: list[str] = []
    for hall, row in rows:
        root = svg_of(site, f"racks/{hall}-{row}.svg")
        assert len(groups(root, "legend")) == 1
        for rack in groups(root, "rack"):
            name = rack.get("data-rack", "")
            racks_seen.append(name)
            spans = []
            for dev in groups(rack, "device"):
                u, units = int(dev.get("data-u", "0")), int(dev.get("data-units", "0"))
                assert dev.get("data-device") not in drawn
                drawn[dev.get("data-device", "")] = (name, u, units)
                spans.append((u, u + units - 1))
                box = dev.find(f"{NS}rect")
                assert box is not None
                assert abs(float(box.get("height", "0")) - (units * U_PX - 1)) < 0.2
                for t in dev.iter(f"{NS}text"):  # every label inside its device's box
                    size = float(t.get("font-size", "11"))
                    assert text_width(t.text or "", size) <= FRAME_W - 8 + 0.01, t.text
                    ty = float(t.get("y", "0"))
                    top = float(box.get("y", "0"))
                    assert top < ty <= top + float(box.get("height", "0")), t.text
            spans.sort()
            assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False)), name  # no overlap
    assert sorted(racks_seen) == sorted(r.name for r in plan.racks)
    assert drawn == placed_devices(plan)


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_fabric_bundles_add_up_to_links_and_cables(site: str) -> None:
    plan = plan_of(site)
    root = svg_of(site, "fabric.svg")
    panels = {g.get("data-fabric"): g for g in groups(root, "fabric")}
    assert sorted(panels) == sorted(plan.fabrics)
    for name, fab in plan.fabrics.items():
        panel = panels[name]
        lines = list(panel.iter(f"{NS}line"))
        assert sum(int(ln.get("data-links", "0")) for ln in lines) == len(fab.links)
        assert sum(int(ln.get("data-cables", "0")) for ln in lines) == \
            len({c.cable for c in plan.cables if c.fabric == name})  # physical cables
        boxes = groups(panel, "group")
        switches = [b for b in boxes if int(b.get("data-ports", "0")) > 0]
        assert sum(int(b.get("data-members", "0")) for b in switches) == len(fab.switches)
        for b in switches:  # ports used never exceed what the group has; free is shown
            used, ports = int(b.get("data-used", "0")), int(b.get("data-ports", "0"))
            assert used <= ports
            text = " ".join(t.text or "" for t in b.iter(f"{NS}text"))
            assert f"{ports - used:,} free" in text, text
        counts = [c for c in groups(panel, "count")]
        assert len(counts) == len(lines)  # every bundle carries its count label


def _rect(g: ET.Element) -> tuple[float, float, float, float]:
    r = g.find(f"{NS}rect")
    assert r is not None
    x, y = float(r.get("x", "0")), float(r.get("y", "0"))
    return x, y, x + float(r.get("width", "0")), y + float(r.get("height", "0"))


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_fabric_count_labels_cover_no_box_and_no_other_label(site: str) -> None:
    root = svg_of(site, "fabric.svg")
    for panel in groups(root, "fabric"):
        boxes = [(b.get("data-group"), _rect(b)) for b in groups(panel, "group")]
        counts = [(" ".join(t.text or "" for t in c.iter(f"{NS}text")), _rect(c))
                  for c in groups(panel, "count")]
        for i, (words, a) in enumerate(counts):
            for what, b in boxes + counts[i + 1:]:
                overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                assert not overlap, (panel.get("data-fabric"), words, what)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []
        self.cells: list[str] = []
        self.ids: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.refs.append(v)
            if k == "id" and v is not None:
                self.ids.append(v)
        self._in_td = tag == "td"

    def handle_endtag(self, tag: str) -> None:
        self._in_td = False

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self.cells.append(data)


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_plan_html_holds_pictures_power_and_bom(site: str) -> None:
    plan = plan_of(site)
    files = pictures_of(site)
    page = _Page()
    page.feed(files["plan.html"])
    assert "script" not in page.tags and "img" not in page.tags and "link" not in page.tags
    assert all(r.startswith("#") for r in page.refs), page.refs
    assert set(r[1:] for r in page.refs) <= set(page.ids)
    assert len(page.ids) == len(set(page.ids))  # inlined sheets do not clash
    svgs = [k for k in files if k.endswith(".svg")]
    assert page.tags.count("svg") == len(svgs)
    for k in svgs:
        assert files[k] in files["plan.html"]
    cells = set(page.cells)
    assert {b.sku for b in plan.bom} <= cells
    assert {p.rack for p in plan.power.racks if p.nodes or p.switches} <= cells


def test_pictures_are_deterministic() -> None:
    a = render_pictures(load_and_plan(SITES / "superpod-h100-4su")[1])
    assert a == pictures_of("superpod-h100-4su")


@pytest.mark.parametrize("site", ["lab", "superpod-h100-4su"])
def test_librsvg_renders_every_picture(site: str, tmp_path: Path) -> None:
    tool = shutil.which("rsvg-convert")
    if tool is None:
        pytest.skip("rsvg-convert (Debian librsvg2-bin) is not installed")
    for path, text in pictures_of(site).items():
        if not path.endswith(".svg"):
            continue
        src = tmp_path / path.replace("/", "-")
        src.write_text(text)
        png = src.with_suffix(".png")
        proc = subprocess.run([tool, str(src), "-o", str(png)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0 and not proc.stderr, (path, proc.stderr)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_picture_is_current() -> None:
    """docs/superpod-h100-4su-floor.svg is what `gpuctl plan` draws today (README shows it)."""
    doc = ROOT / "docs" / "superpod-h100-4su-floor.svg"
    assert doc.read_text() == pictures_of("superpod-h100-4su")["floor/h1.svg"]
