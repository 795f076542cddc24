"""Sequence encoders: C5's shared LSTM over variable-length sequences.

Input convention (see siamese_bench/data/sequences.py): a batch is one padded tensor
x of shape (B, T, F + 1) whose LAST feature is a validity mask, 1.0 for real steps and 0.0 for
padding, real steps first. The encoder reads the lengths from the mask and packs the batch,
so padding never reaches the LSTM: the embedding of a sequence does not depend on how far
it was padded (tested).

Packing has data-dependent shapes, which `torch.func.vmap` cannot batch. Seed stacking
(training/stacked.py) sets `fixed_shapes` on its copy of the encoder, which then runs the same
LSTM step by step, the mask holding each sequence's state past its last real step: the same
function with fixed shapes (tested against the packed one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from siamese_bench.models.registry import ENCODERS


@ENCODERS.register("lstm")
class LSTMEncoder(nn.Module):
    """C5's sequence example: a shared LSTM(32); the embedding is the final hidden state of
    the last layer at each sequence's own last real step, (B, T, F + 1) -> (B, units)."""

    PROBE_SHAPE = (29, 13)  # what config validation builds it on: sequences, not images
    fixed_shapes = False  # True: the masked step-by-step form, for vmap (seed stacking)

    def __init__(
        self,
        input_shape: tuple[int, ...],
        units: int = 32,  # C5: LSTM(32)
        layers: int = 1,
        dropout: float = 0.0,  # between stacked layers only (PyTorch's LSTM dropout)
    ) -> None:
        super().__init__()
        if len(input_shape) != 2 or input_shape[-1] < 2:
            raise ValueError(
                f"input shape {tuple(input_shape)}: expected (T, F + 1) with at least one feature plus the mask feature"
            )
        for name, value in (("units", units), ("layers", layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if dropout and layers == 1:
            raise ValueError("dropout acts between stacked layers: it needs layers >= 2")
        self.in_features = int(input_shape[-1]) - 1  # the last feature is the mask
        self.lstm = nn.LSTM(self.in_features, units, num_layers=layers, dropout=dropout, batch_first=True)
        self.out_features = units

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_features + 1:
            raise ValueError(
                f"lstm encoder: expected sequences (B, T, {self.in_features + 1}) with a mask as "
                f"the last feature, got {tuple(x.shape)}; use a sequence dataset "
                "(japanese-vowels, mnist-rows, mnist-5k-rows)"
            )
        features, mask = x[..., :-1], x[..., -1]  # (B, T, F), (B, T)
        if self.fixed_shapes:
            return self._masked(features, (mask > 0.5).to(features.dtype))
        lengths = (mask > 0.5).sum(dim=1).cpu()  # (B,) on the CPU, as packing requires
        if bool((lengths == 0).any()):
            raise ValueError("lstm encoder: a sequence has no real step (its mask is all 0)")
        if bool((lengths == x.shape[1]).all()):  # nothing padded (e.g. MNIST rows): no packing needed
            _, (h, _) = self.lstm(features)
        else:
            packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)  # h: (layers, B, units), back in the batch's order
        return h[-1]  # (B, units)

    def _masked(self, features: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The LSTM's final hidden state at each sequence's last real step, step by step over all
        T steps: where `real` (B, T) is 0 a sequence keeps its state. PyTorch's gate order
        (input, forget, cell, output) and dropout between layers, as nn.LSTM computes them."""
        lstm, seq = self.lstm, features
        batch, steps, h = features.shape[0], features.shape[1], features.new_zeros(0)
        for layer in range(lstm.num_layers):
            w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")
            bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
            inputs = seq @ w_ih.T + bias  # (B, T, 4 U): every step's input part at once
            h = c = features.new_zeros(batch, lstm.hidden_size)
            outputs = []
            for t in range(steps):
                i, f, g, o = (inputs[:, t] + h @ w_hh.T).chunk(4, dim=-1)
                c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h_next = torch.sigmoid(o) * torch.tanh(c_next)
                keep = real[:, t, None]
                c, h = keep * c_next + (1 - keep) * c, keep * h_next + (1 - keep) * h
                outputs.append(h)
            seq = torch.stack(outputs, dim=1)
            if layer < lstm.num_layers - 1 and lstm.dropout:
                seq = F.dropout(seq, lstm.dropout, self.training)
        return h
