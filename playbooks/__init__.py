"""Ansible playbooks and roles, installed as ``provision.playbooks`` (see setup.py)."""
