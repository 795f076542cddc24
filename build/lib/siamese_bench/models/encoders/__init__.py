"""Shared encoders (the "base network" both branches of a siamese pair use), by family:
mlp (the Keras recipe's), conv (cnn-small, Koch's net, conv4), sequence (LSTM)."""

from siamese_bench.models.registry import ENCODERS

__all__ = ["ENCODERS"]
