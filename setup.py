"""Build configuration beyond pyproject.toml: the checkout's top-level data directories.

templates/, playbooks/ and stacks/ stay at the repository top (docs/architecture.md) and are
installed as the packages ``provision.templates``, ``provision.playbooks`` and
``provision.stacks``: a wheel carries them inside ``provision/``, an editable install maps
them to the checkout, and ``provision.resources`` finds them the same way in both.
"""

from setuptools import find_namespace_packages, setup

DATA = {
    "templates": ["**/*.j2"],
    "playbooks": ["*.yml", "README.md", "roles/*/*/*.yml", "roles/*/templates/**/*.j2",
                  "roles/*/templates/.keep", "roles/*/files/**/*"],
    "stacks": ["*/*.py", "*/Pulumi.yaml", "*/README.md"],
}
"""Top-level directory -> the files of it that ship (git-tracked files only; the wheel
test compares the two)."""

setup(
    packages=[*find_namespace_packages(include=["provision", "provision.*"],
                                       exclude=["*.__pycache__"]),
              *(f"provision.{d}" for d in DATA)],
    package_dir={f"provision.{d}": d for d in DATA},
    include_package_data=False,
    package_data={
        "provision": ["py.typed"],
        "provision.catalog": ["*.yaml"],
        "provision.burnin": ["*.yaml"],
        **{f"provision.{d}": globs for d, globs in DATA.items()},
    },
)
