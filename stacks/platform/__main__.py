"""Pulumi program of the platform stack: read the generated config, build the component.

Thin on purpose (STYLE.md lesson 12): the stack config (``gpuctl-platform:platform``) is
written by ``gpuctl platform config SITE`` from the site's plan, and the resource graph lives
in ``components.GpuPlatform``, which the tests exercise under Pulumi mocks.
"""

import pulumi
from components import GpuPlatform

from provision.platform.config import CONFIG_KEY, load_config

cfg = load_config(pulumi.Config().require_object(CONFIG_KEY))
platform = GpuPlatform(cfg.site, cfg)
pulumi.export("site", cfg.site)
pulumi.export("releases", platform.releases)
pulumi.export("labelled_nodes", len(cfg.nodes))
