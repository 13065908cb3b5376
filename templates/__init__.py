"""Jinja2 templates of the renderers, installed as ``provision.templates`` (see setup.py)."""
