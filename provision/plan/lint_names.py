"""Lint rules about names that end up in DNS: hostnames, rack names and the site domain.

Hosts get A/PTR records (render/dns), DHCP host names and Kubernetes node names, and rack
names are part of every switch's host name, so each must be one RFC 1123 label: lower-case
letters, digits and inner hyphens, at most 63 characters. A dot is not part of a label: it
makes the part before it a host in a sub-domain named by the part after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.layout import layout_racks
from provision.plan.lintbase import Finding, finding, placed_nodes, rule

LABEL_MAX = 63
FQDN_MAX = 253
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def label_problem(name: str) -> tuple[str, str] | None:
    """Why ``name`` is not an RFC 1123 DNS label, and how to fix it; None when it is one."""
    if _LABEL.match(name) and len(name) <= LABEL_MAX:
        return None
    if not name:
        return "is empty", "give it at least one letter or digit"
    if "." in name:
        head, _, tail = name.partition(".")
        return (f"has a dot, so DNS reads it as host {head!r} in sub-domain {tail!r}",
                "use '-' instead of '.'")
    if name != name.lower():
        return "has upper-case letters", "use lower case (DNS folds case, tools do not)"
    if len(name) > LABEL_MAX:
        return f"is {len(name)} characters long, over the {LABEL_MAX} a DNS label allows", \
            "shorten the pattern"
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
    if bad:
        return (f"has {', '.join(repr(c) for c in bad)}, which a DNS label may not contain",
                "use only a-z, 0-9 and '-'")
    return "starts or ends with '-'", "start and end with a letter or digit"


@rule
def dns_names(ls: LoadedSite) -> Iterator[Finding]:
    """GPU134 hostnames and GPU135 rack names that are not DNS labels."""
    site = ls.site
    domain = site.site.domain
    for label in domain.split("."):
        if (problem := label_problem(label)) is not None:
            yield finding("GPU134", f"site domain {domain!r}: label {label!r} {problem[0]}",
                          problem[1], "site", "domain")
            break
    racks = layout_racks(site)
    row_idx = {(h.name, r.name): (hi, ri) for hi, h in enumerate(site.halls)
               for ri, r in enumerate(h.rows)}
    for rack in racks:
        if (problem := label_problem(rack.name)) is not None:
            hi, ri = row_idx[(rack.hall, rack.row)]
            yield finding("GPU135", f"rack name {rack.name!r} {problem[0]}", problem[1],
                          "halls", hi, "rows", ri, "rack_names", subject=rack.name)
    nodes = placed_nodes(ls)
    if nodes is None:
        return
    gi = {g.name: i for i, g in enumerate(site.node_groups)}
    for n in nodes:
        problem = label_problem(n.name)
        if problem is None and len(n.name) + 1 + len(domain) > FQDN_MAX:
            problem = (f"makes a {len(n.name) + 1 + len(domain)}-character name in "
                       f"{domain}, over DNS's {FQDN_MAX}", "shorten the hostname or domain")
        if problem is not None:
            yield finding("GPU134", f"node group {n.group}: hostname {n.name!r} {problem[0]}",
                          problem[1], "node_groups", gi[n.group], "hostname", subject=n.name)
