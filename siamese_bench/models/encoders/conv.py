"""Convolutional encoders for image pairs: C6's small CNN and Koch et al.'s one-shot net.

Both compute their flattened size from the input shape (no dummy forward pass) and refuse
inputs too small for their convolutions with a message naming the minimum.
"""

from __future__ import annotations

from torch import nn

from siamese_bench.models.registry import ENCODERS


def _conv_out(size: int, kernel: int, pool: int = 1) -> int:
    """Side length after a valid convolution and an optional max-pool."""
    return (size - kernel + 1) // pool


def _check_image(name: str, input_shape: tuple[int, ...], minimum: int) -> tuple[int, int]:
    if len(input_shape) != 3:
        raise ValueError(f"{name} needs images (channels, height, width), got input shape {input_shape}")
    channels, height, width = input_shape
    if min(height, width) < minimum:
        raise ValueError(f"{name} needs images of at least {minimum} x {minimum}, got {height} x {width}")
    return channels, min(height, width)


@ENCODERS.register("cnn-small")
class SmallCNNEncoder(nn.Module):
    """C6's CNN: Conv2D(16, 3x3, relu) -> Conv2D(32, 3x3, relu) -> ... -> 10-d embedding,
    120,438 parameters. C6 gives only the first two layers and the total; the rest here
    (a third convolution of 64, a 4 x 4 adaptive average pool, Dense(94, relu), linear
    Dense(10)) is ours, sized to that total: 120,596 parameters on one channel (120,884 on
    C6's three), the same at every input size."""

    MIN_SIZE = 22

    def __init__(self, input_shape: tuple[int, ...], embedding: int = 10, hidden: int = 94) -> None:
        super().__init__()
        channels, _ = _check_image("cnn-small", input_shape, self.MIN_SIZE)
        if embedding < 1 or hidden < 1:
            raise ValueError(f"embedding and hidden must be positive, got {embedding} and {hidden}")
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, hidden),
            nn.ReLU(),
            nn.Linear(hidden, embedding),
        )
        self.out_features = embedding

    def forward(self, x):
        return self.net(x)


@ENCODERS.register("koch")
class KochEncoder(nn.Module):
    """Koch, Zemel and Salakhutdinov (2015): Conv(64, 10x10) -> pool -> Conv(128, 7x7) -> pool
    -> Conv(128, 4x4) -> pool -> Conv(256, 4x4) -> Dense(4096, sigmoid), relu between, on
    105 x 105 inputs (38.9M parameters at width 1). `width` multiplies every channel count
    and the dense width, so width=0.25 (2.4M parameters) fits a CPU budget; at least 80 x 80
    pixels are needed for the four valid convolutions."""

    MIN_SIZE = 80

    def __init__(self, input_shape: tuple[int, ...], width: float = 1.0) -> None:
        super().__init__()
        channels, size = _check_image("koch", input_shape, self.MIN_SIZE)
        if not 0 < width <= 4:
            raise ValueError(f"width must be in (0, 4], got {width}")
        c1, c2, c3, c4, dense = (max(1, round(n * width)) for n in (64, 128, 128, 256, 4096))
        for kernel, pool in ((10, 2), (7, 2), (4, 2), (4, 1)):
            size = _conv_out(size, kernel, pool)
        self.net = nn.Sequential(
            nn.Conv2d(channels, c1, 10),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 7),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c3, c4, 4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(c4 * size * size, dense),
            nn.Sigmoid(),
        )
        self.out_features = dense

    def forward(self, x):
        return self.net(x)


@ENCODERS.register("conv4")
class Conv4Encoder(nn.Module):
    """The few-shot literature's standard Omniglot backbone (Vinyals et al. 2016, Snell et al.
    2017): four blocks of Conv(3x3, padded) -> BatchNorm -> relu -> max-pool 2, flattened.
    On 28 x 28 inputs with 64 channels it gives a 64-d embedding; `channels` trades accuracy for
    CPU time."""

    MIN_SIZE = 16

    def __init__(self, input_shape: tuple[int, ...], channels: int = 64) -> None:
        super().__init__()
        in_channels, size = _check_image("conv4", input_shape, self.MIN_SIZE)
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        blocks: list[nn.Module] = []
        for i in range(4):
            blocks += [
                nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            size //= 2
        self.net = nn.Sequential(*blocks, nn.Flatten())
        self.out_features = channels * size * size

    def forward(self, x):
        return self.net(x)
