"""Model parts: encoders (by family), heads, losses and triplet miners, each registered by name.

Importing this package imports every implementation, so the registries are complete.
"""

from siamese_bench.models import heads, losses, miners  # noqa: F401  (they register themselves)
from siamese_bench.models.encoders import conv, mlp, sequence  # noqa: F401
from siamese_bench.models.registry import ENCODERS, HEADS, LOSSES, MINERS

__all__ = ["ENCODERS", "HEADS", "LOSSES", "MINERS"]
