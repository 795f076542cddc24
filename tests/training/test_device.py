"""The GPU data path, tested on the CPU: the placement policy for every case, batches gathered from
placed tensors equal the host path's (torch.device("cpu") stands in for the GPU and runs the same code;
"meta" shows every batch is gathered where the data was put), and the float32 matmul precision."""

from __future__ import annotations

import pytest
import torch

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.data.base import PairedData, PairTable
from siamese_bench.training.batches import build_batches
from siamese_bench.training.build import build_loss
from siamese_bench.training.device import (
    DEVICE_SHARE,
    dataset_bytes,
    matmul_precision,
    place,
    place_batches,
    place_data,
)
from siamese_bench.training.objective import build_objective
from siamese_bench.training.run import run_training

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU: the data path on a real device")
cpu_only = pytest.mark.skipif(CUDA, reason="checks what a CPU-only machine does; this one has a CUDA GPU")

MIB = 2**20


# -- the policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "accelerator", "data", "free", "expected"),
    [
        ("host", "cpu", MIB, 0, "host"),
        ("host", "cuda", MIB, 100 * MIB, "host"),  # fits, but host was asked for
        ("auto", "cpu", MIB, 0, "host"),
        ("auto", "mps", MIB, 100 * MIB, "host"),  # device placement is for CUDA only
        ("auto", "cuda", 25 * MIB, 100 * MIB, "device"),  # exactly a quarter of the free memory fits
        ("auto", "cuda", 25 * MIB + 1, 100 * MIB, "host"),  # a byte more does not
        ("auto", "cuda", 60 * MIB, 100 * MIB, "host"),
        ("device", "cuda", 60 * MIB, 100 * MIB, "device"),  # asked for: more than auto's quarter is allowed
        ("device", "cuda", 100 * MIB, 100 * MIB, "device"),
    ],
)
def test_place_data(setting, accelerator, data, free, expected):
    assert place_data(setting, accelerator, data, free) == expected


def test_auto_uses_a_quarter_of_the_free_memory():
    assert DEVICE_SHARE == 0.25


@pytest.mark.parametrize(
    ("accelerator", "data", "free", "match"),
    [
        ("cpu", MIB, 0, "needs a CUDA GPU"),
        ("mps", MIB, 100 * MIB, "needs a CUDA GPU"),
        ("cuda", 101 * MIB, 100 * MIB, "101 MiB, the GPU has 100 MiB free"),
    ],
)
def test_device_placement_that_cannot_be_is_a_config_error_naming_the_flag(accelerator, data, free, match):
    with pytest.raises(ConfigError, match=match) as err:
        place_data("device", accelerator, data, free)
    assert "--data-placement" in str(err.value)


def test_unknown_placement_is_a_config_error():
    with pytest.raises(ConfigError, match="--data-placement 'gpu'; valid: auto, host, device"):
        place_data("gpu", "cuda", MIB, 100 * MIB)


@cpu_only
def test_this_cpu_machine_keeps_the_data_on_the_host(digits):
    batches = make_batches(digits)
    images = {k: b.images for k, b in batches.items()}
    for setting in ("auto", "host"):
        assert place(setting, batches) == "host"
    assert all(b.images is images[k] and b.device is None for k, b in batches.items())  # untouched
    with pytest.raises(ConfigError, match="--data-placement device needs a CUDA GPU"):
        place("device", batches)


@cpu_only
def test_a_run_asking_for_device_placement_on_a_cpu_machine_fails_before_training(digits):
    with pytest.raises(ConfigError, match="--data-placement"):
        run_training(TrainConfig(dataset="digits", epochs=1, data_placement="device"), data=digits, progress=False)


# -- placed batches are the host path's -------------------------------------------------------------


def make_batches(data, **changes):
    cfg = TrainConfig(dataset="digits", seed=3, batch_size=64, **changes)
    return build_batches(cfg, data, build_objective(build_loss(cfg), cfg.triplet_mining))


def every_batch(batches, epochs: int = 3) -> list[dict[str, torch.Tensor]]:
    """Each stage's peek, then every batch of `epochs` epochs of each stage, on the CPU."""
    out = []
    for b in batches.values():
        out.append(b.peek())
        for _ in range(epochs):
            out.extend(b)
    return [{k: v.cpu() for k, v in batch.items()} for batch in out]


def assert_same_batches(host, placed):
    assert len(host) == len(placed)
    for a, b in zip(host, placed, strict=True):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


SETTINGS = {
    "pairs": {},
    "triplets": {"loss": "triplet", "triplet_mining": "semi-hard"},
    "pair draws": {"pair_draws": 3},
    "pair draws, resampled": {"pair_draws": 2, "resample_negatives": True},
    "triplet draws, resampled": {
        "loss": "triplet",
        "pair_draws": 2,
        "resample_negatives": True,
        "triplet_negatives": "any",
    },
}


@pytest.mark.parametrize("changes", SETTINGS.values(), ids=SETTINGS.keys())
def test_batches_gathered_from_placed_tensors_are_the_host_paths(digits, changes):
    host = every_batch(make_batches(digits, **changes))
    placed = make_batches(digits, **changes)
    place_batches(placed, torch.device("cpu"))  # the device path's code, with the CPU as the device
    assert all(b.device == torch.device("cpu") for b in placed.values())
    assert_same_batches(host, every_batch(placed))


def test_ready_made_pairs_placed_are_the_host_paths():
    gen = torch.Generator().manual_seed(0)

    def table(n: int) -> PairTable:
        y = (torch.arange(n) % 2).float()  # same, different, ...
        return PairTable(torch.rand(n, 6, generator=gen), torch.rand(n, 6, generator=gen), y)

    data = PairedData("csv", "csv", table(90), table(30), "test")
    host = every_batch(make_batches(data))
    placed = make_batches(data)
    place_batches(placed, torch.device("cpu"))
    assert_same_batches(host, every_batch(placed))


@pytest.mark.parametrize("changes", [SETTINGS["pairs"], SETTINGS["triplet draws, resampled"]], ids=["pairs", "draws"])
def test_placed_batches_are_gathered_on_the_device(digits, changes):
    """On "meta" (shapes without data) every field of every batch, resampled ones included, comes out
    on the device: nothing is gathered on the host and copied per batch."""
    host = every_batch(make_batches(digits, **changes), epochs=2)
    placed = make_batches(digits, **changes)
    place_batches(placed, torch.device("meta"))
    batches = [batch for b in placed.values() for batch in [b.peek(), *b, *b]]
    assert all(v.device.type == "meta" for batch in batches for v in batch.values())
    assert [{k: v.shape for k, v in batch.items()} for batch in batches] == [
        {k: v.shape for k, v in batch.items()} for batch in host
    ]


def test_shared_images_move_once_and_count_once(digits):
    batches = make_batches(digits)
    assert batches["train"].images is batches["train_eval"].images  # the training images, shared
    images = {id(b.images): b.images for b in batches.values()}
    indices = [t for b in batches.values() for t in b.index.fields().values()]
    assert dataset_bytes(batches) == sum(t.nbytes for t in [*images.values(), *indices])
    place_batches(batches, torch.device("meta"))
    assert batches["train"].images is batches["train_eval"].images  # one copy on the device


@needs_cuda
@pytest.mark.parametrize("changes", [SETTINGS["pairs"], SETTINGS["triplet draws, resampled"]], ids=["pairs", "draws"])
def test_batches_placed_on_the_gpu_are_the_host_paths(digits, changes):
    host = every_batch(make_batches(digits, **changes))
    placed = make_batches(digits, **changes)
    assert place("device", placed) == "device"
    assert all(b.images.is_cuda for b in placed.values())
    assert_same_batches(host, every_batch(placed))


# -- float32 matmul precision ------------------------------------------------------------------------


@pytest.fixture
def restore_matmul_precision():
    before = torch.get_float32_matmul_precision()
    yield before
    torch.set_float32_matmul_precision(before)


def test_matmul_precision_high_is_set_for_the_run_and_restored(restore_matmul_precision):
    with matmul_precision("high"):
        assert torch.get_float32_matmul_precision() == "high"
    assert torch.get_float32_matmul_precision() == restore_matmul_precision


def test_matmul_precision_is_restored_when_the_run_fails(restore_matmul_precision):
    with pytest.raises(RuntimeError), matmul_precision("medium"):
        raise RuntimeError("diverged")
    assert torch.get_float32_matmul_precision() == restore_matmul_precision


def test_matmul_precision_highest_leaves_it(restore_matmul_precision):
    with matmul_precision("highest"):
        assert torch.get_float32_matmul_precision() == restore_matmul_precision == "highest"  # torch's default
    torch.set_float32_matmul_precision("medium")  # whatever the process chose, highest does not touch it
    with matmul_precision("highest"):
        assert torch.get_float32_matmul_precision() == "medium"


def test_unknown_matmul_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="--matmul-precision"), matmul_precision("low"):
        pass


def test_a_bf16_mixed_run_keeps_float32_outputs(digits):
    """bf16-mixed distances come out as bfloat16, which numpy (the saved distances.npz) cannot hold."""
    result = run_training(
        TrainConfig(dataset="digits", epochs=1, precision="bf16-mixed", matmul_precision="high"),
        data=digits,
        progress=False,
    )
    assert all(d.dtype == torch.float32 for d, _ in result.outputs.values())
    assert result.metrics["test/auc"] > 0.5


def test_without_a_gpu_torch_stops_asking_nvml_at_every_step(monkeypatch):
    """Lightning's fork-safe NVML check made every optimizer step open libnvidia-ml (6 % of a C1 step)."""
    import os

    import torch

    from siamese_bench.training import device

    monkeypatch.setenv(device.NVML_CHECK, "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.training_device() == torch.device("cpu")
    assert os.environ[device.NVML_CHECK] == "0"
