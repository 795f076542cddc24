"""Where a run's data lives and how exact its float32 matrix products are.

On a CUDA device a dataset that fits is moved there once, so TensorBatches gathers pairs and
triplets on the device and no batch is copied from the host; sampling and shuffling still draw
on the CPU's seeded generators, so every batch, and every per-seed result, is the host path's.
The decision is a pure function of its inputs (`place_data`), testable without a GPU; the few
functions around it read the real machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

import torch

from siamese_bench.core.config import DATA_PLACEMENTS, MATMUL_PRECISIONS
from siamese_bench.core.errors import ConfigError
from siamese_bench.training.samplers import TensorBatches

Placement = Literal["host", "device"]
DEVICE_SHARE = 0.25  # auto moves data that takes at most this share of the device's free memory:
# the rest is left for the model, its activations and the optimizer state


def place_data(setting: str, accelerator: str, dataset_bytes: int, free_bytes: int) -> Placement:
    """Where the dataset's tensors live for `setting` (TrainConfig.data_placement) on a machine
    training on `accelerator` ("cuda", "cpu", ...) with `free_bytes` free on that device."""
    if setting not in DATA_PLACEMENTS:
        raise ConfigError(f"--data-placement {setting!r}; valid: {', '.join(DATA_PLACEMENTS)}")
    if setting == "host":
        return "host"
    on_cuda = accelerator == "cuda"
    if setting == "device":
        if not on_cuda:
            raise ConfigError(
                f"--data-placement device needs a CUDA GPU, and training here runs on {accelerator} "
                "(use --data-placement auto or host)"
            )
        if dataset_bytes > free_bytes:
            raise ConfigError(
                f"--data-placement device: the dataset takes {dataset_bytes / 2**20:,.0f} MiB, the "
                f"GPU has {free_bytes / 2**20:,.0f} MiB free (use --data-placement auto or host)"
            )
        return "device"
    return "device" if on_cuda and dataset_bytes <= DEVICE_SHARE * free_bytes else "host"


NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def training_device() -> torch.device:
    """The device Lightning's Trainer(accelerator="auto", devices=1) trains on, where data placement matters.

    Without a GPU, also stop torch asking NVML for one at every optimizer step: Lightning sets
    PYTORCH_NVML_BASED_CUDA_CHECK=1 (a fork-safe check), torch 2.14's optimizer.step asks
    torch.cuda.is_available() each step, and before CUDA is initialised that check opens
    libnvidia-ml anew each time (6 % of a C1 step on this CPU; benchmarks/throughput.py). With no
    GPU there is no CUDA state that a fork could inherit, so the plain check is as safe."""
    if torch.cuda.is_available():
        return torch.device("cuda", 0)
    os.environ[NVML_CHECK] = "0"
    return torch.device("cpu")


def free_bytes(device: torch.device) -> int:
    """Free memory of a CUDA device; 0 for any other (data is never moved there)."""
    return torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else 0


def _tensors(batches: Mapping[str, TensorBatches]) -> dict[int, torch.Tensor]:
    """Every tensor the batches gather from, once each (train and train_eval share their images)."""
    found: dict[int, torch.Tensor] = {}
    for b in batches.values():
        for t in (b.images, *b.index.fields().values()):
            found[id(t)] = t
    return found


def dataset_bytes(batches: Mapping[str, TensorBatches]) -> int:
    return sum(t.nbytes for t in _tensors(batches).values())


def place_batches(batches: Mapping[str, TensorBatches], device: torch.device) -> None:
    """Move every batch set's tensors to `device`, each shared tensor once."""
    moved: dict[int, torch.Tensor] = {}
    for b in batches.values():
        b.to(device, moved)


def place(setting: str, batches: Mapping[str, TensorBatches], device: torch.device | None = None) -> Placement:
    """Decide for this machine (or `device`) and move the batches' tensors when the answer is "device"."""
    device = training_device() if device is None else device
    where = place_data(setting, device.type, dataset_bytes(batches), free_bytes(device))
    if where == "device":
        place_batches(batches, device)
    return where


@contextmanager
def matmul_precision(setting: str) -> Iterator[None]:
    """torch's float32 matmul precision for the duration (high: TF32 on GPUs that have it); the
    previous value is restored after. "highest" is torch's default and changes nothing."""
    if setting not in MATMUL_PRECISIONS:
        raise ConfigError(f"--matmul-precision {setting!r}; valid: {', '.join(MATMUL_PRECISIONS)}")
    if setting == "highest":
        yield
        return
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(setting)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)
