"""gpuctl: plan, build and prove owned bare-metal GPU clusters (import name ``provision``)."""

__version__ = "0.1.0"
