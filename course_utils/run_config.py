"""What the GAN and encoder training configs share: checkpoint round trips and checks."""
from __future__ import annotations

import dataclasses


class RunConfig:
    """Mixin for a ``@dataclass`` of training settings that is stored inside checkpoints."""

    def to_dict(self) -> dict:
        """Plain values only, as stored in checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """Rebuild a config from :meth:`to_dict` output (unknown keys are ignored)."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def _require_at_least_one(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be at least 1, got {getattr(self, name)}")
