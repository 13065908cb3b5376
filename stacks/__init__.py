"""Pulumi programs, installed as ``provision.stacks`` (see setup.py)."""
