"""Common pydantic base for every user-written model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Strict, immutable model.

    ``extra="forbid"`` makes a typo in a user's YAML (``rack_kW:``) an error instead of a
    silently ignored key; ``frozen=True`` makes a loaded site a value that planners can share
    and hash without defensive copies; ``allow_inf_nan=False`` rejects ``.inf``, ``.nan`` and
    ``1e400`` in every float field (a power budget of infinity is a typo, not a design).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              allow_inf_nan=False)
