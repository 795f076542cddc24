"""Omniglot from the shared zips, alphabet-disjoint splits, negative policies, C6's encoder and
head, and 20-way one-shot scoring (a hand-made 3-way run with a known answer, then the real
runs end to end through MLflow and `siamese-bench oneshot`)."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from siamese_bench.cli import main
from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.data import LabelledData, load_dataset, omniglot
from siamese_bench.data.omniglot_runs import OneShotFormatError, load_runs
from siamese_bench.evaluation.oneshot import pixel_distance, score
from siamese_bench.models.encoders import ENCODERS
from siamese_bench.models.heads import HEADS
from siamese_bench.models.losses import LOSSES
from siamese_bench.training.batches import build_batches
from siamese_bench.training.build import check_config
from siamese_bench.training.objective import PairObjective
from siamese_bench.training.run import run_training
from siamese_bench.training.samplers import triplets

SHARED = Path(
    os.environ.get("SIAMESE_BENCH_OMNIGLOT_DIR")
    or Path(__file__).resolve().parents[3] / "shared" / "datasets" / "omniglot"
)
pytestmark = pytest.mark.skipif(
    not (SHARED / "images_background.zip").exists(), reason=f"the offline Omniglot copy is not at {SHARED}"
)


@pytest.fixture
def omniglot_dir(monkeypatch):
    """Point the loader at a folder and forget what earlier tests loaded."""

    def use(folder: Path) -> None:
        monkeypatch.setenv("SIAMESE_BENCH_OMNIGLOT_DIR", str(folder))
        monkeypatch.setattr(omniglot, "DOWNLOAD_URL", "http://127.0.0.1:9/")  # offline: fail fast
        omniglot._load_archives.cache_clear()

    yield use
    omniglot._load_archives.cache_clear()


@pytest.fixture(scope="module")
def full():
    """The full set at 28 x 28 from the shared copy (decoded once, then cached in datasets/)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIAMESE_BENCH_OMNIGLOT_DIR", str(SHARED))
        omniglot._load_archives.cache_clear()
        data = load_dataset("omniglot:28")
        chars = load_dataset("omniglot-chars:28")
        omniglot._load_archives.cache_clear()
    return data, chars


# ---------------------------------------------------------------- loading
@pytest.mark.slow  # separate processes or the full archives: several seconds
def test_full_archives_load_with_alphabet_and_character_labels(full):
    data, chars = full
    assert data.variant == "omniglot-full-28" and "images_background.zip" in data.source
    assert data.x_train.shape == (19280, 1, 28, 28) and data.x_test.shape == (13180, 1, 28, 28)
    assert len(data.y_train.unique()) == 30 and len(data.y_test.unique()) == 20  # alphabets
    assert len(chars.y_train.unique()) == 964 and len(chars.y_test.unique()) == 659  # characters
    assert 0 <= float(data.x_train.min()) and float(data.x_train.max()) <= 1
    assert float(data.x_train.mean()) < 0.2  # inverted: strokes bright on a dark page
    assert data.holdout == "classes" and chars.evaluations == ("oneshot",)


def test_native_size_and_archive_layout(omniglot_dir):
    omniglot_dir(SHARED)
    glyphs = omniglot.read_archive(str(SHARED / "images_background_small1.zip"))
    assert glyphs.images.shape[1:] == (105, 105) and glyphs.images.dtype == torch.uint8
    assert len(glyphs.alphabets) == 5
    # every character has Lake's 20 drawings
    assert torch.bincount(glyphs.character).tolist() == [20] * int(glyphs.character.max() + 1)


def test_falls_back_loudly_to_the_small_sets(omniglot_dir, tmp_path, caplog):
    for name in omniglot.SMALL:
        shutil.copy(SHARED / name, tmp_path / name)
    omniglot_dir(tmp_path)
    data = load_dataset("omniglot:28")
    assert data.variant == "omniglot-small-28"
    assert "fallback" in data.source
    assert "FALLING BACK" in caplog.text
    assert len(data.y_train.unique()) == 5 and len(data.y_test.unique()) == 5


def test_both_views_are_the_archives_resized_once_in_view_order(omniglot_dir, tmp_path):
    """The character view reuses the alphabet view's resizing: the same values as resizing the
    reordered images (area resizing treats each image alone), and no second resizing."""
    for name in omniglot.SMALL:
        shutil.copy(SHARED / name, tmp_path / name)
    omniglot_dir(tmp_path)
    omniglot._resized.cache_clear()
    alphabets, characters = load_dataset("omniglot:20"), load_dataset("omniglot-chars:20")
    train, test, _ = omniglot.load_archives()
    order = omniglot._shuffled_within_class(train.alphabet)
    assert not torch.equal(order, torch.arange(len(order)))  # the views really differ in order
    assert torch.equal(alphabets.x_train, omniglot.to_float(train.images[order], 20))
    assert torch.equal(characters.x_train, omniglot.to_float(train.images, 20))
    assert torch.equal(characters.x_test, omniglot.to_float(test.images, 20))
    assert omniglot._resized.cache_info().misses == 2  # each archive resized once for two views
    native = omniglot._at_size(train, omniglot.NATIVE_SIZE, order[:50])  # converted, not kept
    assert torch.equal(native, omniglot.to_float(train.images[order[:50]], omniglot.NATIVE_SIZE))
    assert omniglot._resized.cache_info().currsize == 2


def test_corrupt_archive_is_rejected_by_checksum(omniglot_dir, tmp_path, caplog):
    for name in (*omniglot.FULL, *omniglot.SMALL):
        shutil.copy(SHARED / name, tmp_path / name)
    with open(tmp_path / "images_background.zip", "r+b") as f:
        f.seek(1000)
        f.write(b"\0" * 16)
    omniglot_dir(tmp_path)
    data = load_dataset("omniglot:28")
    assert data.variant == "omniglot-small-28"
    assert "checksum mismatch" in caplog.text


def test_no_archives_at_all_is_one_clear_error(omniglot_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_BENCH_DATA_DIR", str(tmp_path / "data"))
    omniglot_dir(tmp_path)
    with pytest.raises(omniglot.OmniglotUnavailable, match="no Omniglot archives found"):
        load_dataset("omniglot:28")


@pytest.mark.parametrize("dataset", ["omniglot:7", "omniglot:200", "omniglot:big", "omniglot-chars:0"])
def test_bad_size_is_a_config_error(dataset):
    with pytest.raises(ConfigError, match="size"):
        check_config(TrainConfig(dataset=dataset))


# ---------------------------------------------------------------- splits and sampling


def test_train_validation_and_test_alphabets_are_disjoint(full, omniglot_dir):
    from siamese_bench.data.base import split_validation

    omniglot_dir(SHARED)
    data, _ = full
    _, y_tr, x_val, y_val = split_validation(data.x_train, data.y_train, 0.2, 3, data.holdout)
    assert set(y_tr.unique().tolist()).isdisjoint(y_val.unique().tolist())
    assert len(y_val.unique()) == 6  # a fifth of the 30 background alphabets, held out whole
    batches = build_batches(
        TrainConfig(dataset="omniglot:28", val_fraction=0.2, seed=3),
        data,
        PairObjective(LOSSES.get("contrastive")(margin=1.0)),
    )
    assert torch.equal(batches["val"].images, x_val)  # training uses that split
    # test alphabets are the evaluation archive's 20, none of them a background alphabet
    train_archive, test_archive, _ = omniglot.load_archives()
    assert set(train_archive.alphabets).isdisjoint(test_archive.alphabets)
    assert len(test_archive.alphabets) == 20


def test_class_holdout_is_seeded_and_whole():
    from siamese_bench.data.base import split_validation

    y = torch.arange(10).repeat_interleave(7)
    x = torch.arange(70).float()[:, None]
    _, y_tr, _, y_val = split_validation(x, y, 0.2, seed=1, holdout="classes")
    assert set(y_tr.tolist()).isdisjoint(y_val.tolist()) and len(y_val.unique()) == 2
    assert torch.equal(split_validation(x, y, 0.2, seed=1, holdout="classes")[3], y_val)
    assert not torch.equal(split_validation(x, y, 0.2, seed=2, holdout="classes")[3], y_val)


def test_pairs_of_one_alphabet_are_not_mostly_one_character(full):
    """Archive order would pair two drawings of one character; the loader shuffles within alphabets."""
    data, chars = full
    from siamese_bench.training.samplers import keras_pairs

    # the alphabet view holds the character view's images in another order: match by content
    key = {tuple(x.flatten()[::7].tolist()): int(c) for x, c in zip(chars.x_train, chars.y_train, strict=True)}
    pairs = keras_pairs(data.y_train, torch.Generator().manual_seed(0))
    pos = pairs.y == 1
    left, right = pairs.left[pos][:500], pairs.right[pos][:500]

    def char(i: int) -> int:
        return key[tuple(data.x_train[i].flatten()[::7].tolist())]

    same_char = [char(i) == char(j) for i, j in zip(left, right, strict=True)]
    assert np.mean(same_char) < 0.2


@pytest.mark.parametrize("policy", ["other", "any"])
def test_negative_policies_at_alphabet_level(full, policy):
    data, _ = full
    t = triplets(data.y_train, torch.Generator().manual_seed(0), policy)
    shared = (data.y_train[t.negative] == data.y_train[t.anchor]).float().mean()
    assert (data.y_train[t.positive] == data.y_train[t.anchor]).all()
    if policy == "other":
        assert shared == 0
    else:  # drawn from the pooled anchors and positives: about 1 in 30 shares the alphabet
        assert 0.01 < shared < 0.1


# ---------------------------------------------------------------- encoders and head


def test_cnn_small_is_about_c6s_size_at_every_input_size():
    for size in (28, 52, 105):
        enc = ENCODERS.get("cnn-small")((1, size, size))
        n = sum(p.numel() for p in enc.parameters())
        assert abs(n - 120_438) / 120_438 < 0.01
        assert enc(torch.rand(2, 1, size, size)).shape == (2, 10)


def test_koch_width_scales_and_size_is_checked():
    full_net = ENCODERS.get("koch")((1, 105, 105))
    small = ENCODERS.get("koch")((1, 105, 105), width=0.25)
    assert sum(p.numel() for p in full_net.parameters()) > 35e6
    assert sum(p.numel() for p in small.parameters()) < 3e6
    assert small(torch.rand(2, 1, 105, 105)).shape == (2, 1024)
    with pytest.raises(ValueError, match="at least 80 x 80"):
        ENCODERS.get("koch")((1, 52, 52))
    with pytest.raises(ConfigError, match="width"):
        check_config(TrainConfig(encoder="koch", encoder_options={"width": -1}))


def test_distance_bn_dense_sees_only_the_distance():
    """C6's head rescales the Euclidean distance: pairs at the same distance get the same score,
    wherever they lie and in whichever direction they differ."""
    torch.manual_seed(0)
    head = HEADS.get("distance-bn-dense")(4)
    head.train()
    head(torch.randn(32, 4), torch.randn(32, 4))  # batch statistics
    head.eval()
    a = torch.randn(5, 4)
    step = torch.nn.functional.normalize(torch.randn(5, 4), dim=1) * 1.5  # every pair 1.5 apart
    d = head(a, a + step).dissimilarity
    assert torch.allclose(d, d[0].expand(5), atol=1e-6)
    far = head(a, a + 3 * step).dissimilarity
    assert not torch.allclose(far, d)


# ---------------------------------------------------------------- one-shot scoring


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _shape(kind: int, shift: int = 0) -> np.ndarray:
    """White page, black strokes (Lake's polarity): a bar, a cross or a box, slightly shifted."""
    img = np.full((105, 105), 255, np.uint8)
    lo, hi = 30 + shift, 75 + shift
    if kind == 0:
        img[50:55, lo:hi] = 0
    elif kind == 1:
        img[50:55, lo:hi] = 0
        img[lo:hi, 50:55] = 0
    else:
        img[lo:hi, lo : lo + 4] = img[lo:hi, hi - 4 : hi] = img[lo : lo + 4, lo:hi] = img[hi - 4 : hi, lo:hi] = 0
    return img


def _three_way_zip(path: Path, answer_key: dict[int, int]) -> Path:
    """One run: training classes 01..03 are shapes 0..2; test item k is shape `answer_key[k]`
    shifted by 2 pixels; class_labels.txt says item k -> class answer_key[k] + 1."""
    with zipfile.ZipFile(path, "w") as z:
        lines = []
        for c in range(3):
            z.writestr(f"run01/training/class{c + 1:02d}.png", _png(_shape(c)))
        for k, c in answer_key.items():
            z.writestr(f"run01/test/item{k + 1:02d}.png", _png(_shape(c, shift=2)))
            lines.append(f"run01/test/item{k + 1:02d}.png run01/training/class{c + 1:02d}.png")
        z.writestr("run01/class_labels.txt", "\n".join(lines) + "\n")
    return path


def test_three_way_run_with_a_known_answer(tmp_path):
    runs = load_runs(_three_way_zip(tmp_path / "runs.zip", {0: 2, 1: 0, 2: 1}), size=35)
    assert len(runs) == 1 and runs[0].train.shape == (3, 1, 35, 35)
    assert runs[0].answer.tolist() == [2, 0, 1]
    result = score(runs, pixel_distance)
    assert result.accuracy == 1.0 and result.trials == 3

    # a dissimilarity that prefers training image 0 for everything gets exactly item 2 right
    def always_first(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.tensor(0.0 if torch.equal(b, runs[0].train[0]) else 1.0) for b in x2])

    assert score(runs, always_first).correct == 1


def test_malformed_runs_archive_is_named(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("run01/class_labels.txt", "run01/test/item01.png run01/training/class01.png\n")
    with pytest.raises(OneShotFormatError, match="bad.zip.*lacks"):
        load_runs(path, 35)


def test_official_runs_pixel_baseline(omniglot_dir):
    omniglot_dir(SHARED)
    runs = load_runs(SHARED / "all_runs.zip", 35)
    assert len(runs) == 20 and all(len(r.test) == 20 and len(r.train) == 20 for r in runs)
    acc = score(runs, pixel_distance).accuracy
    assert 0.1 < acc < 0.35  # far below any trained model's, far above chance (5 %)


def _subset(data: LabelledData, classes: int, per_class: int) -> LabelledData:
    def take(x, y):
        keep = torch.cat([torch.nonzero(y == c).squeeze(1)[:per_class] for c in range(classes)])
        return x[keep], y[keep]

    return LabelledData(
        data.name,
        data.variant + "-subset",
        *take(data.x_train, data.y_train),
        *take(data.x_test, data.y_test),
        data.source,
        data.holdout,
        data.evaluations,
    )


@pytest.mark.slow
def test_trained_run_is_scored_and_rescored_by_the_cli(full, omniglot_dir, tmp_path, mlruns, capsys):
    from siamese_bench.infra.tracking import Tracker

    omniglot_dir(SHARED)
    _, chars = full
    data = _subset(chars, classes=60, per_class=20)
    uri = mlruns
    cfg = TrainConfig(
        dataset="omniglot-chars:28",
        encoder="cnn-small",
        head="abs-diff-dense",
        loss="bce",
        optimizer="adam",
        epochs=1,
        val_fraction=0.2,
    )
    result = run_training(cfg, tracker=Tracker(uri), data=data, progress=False)
    m = result.metrics
    runs = [m[k] for k in m if k.startswith("oneshot/run")]
    assert len(runs) == 20 and m["oneshot/trials"] == 400
    assert m["oneshot/acc"] == pytest.approx(sum(runs) / 20)  # 20 trials per run: the mean of the runs
    assert m["oneshot/acc"] > 1 / 20  # above guessing among 20
    assert m["oneshot_pixels/acc"] == pytest.approx(
        score(load_runs(SHARED / "all_runs.zip", 28), pixel_distance).accuracy
    )
    assert main(["oneshot", result.run_id, "--tracking-uri", uri, "--no-log"]) == 0
    out = capsys.readouterr().out
    assert f"{m['oneshot/acc']:.2%}" in out and "cnn-small + abs-diff-dense + bce" in out


@pytest.mark.slow  # separate processes or the full archives: several seconds
def test_cli_oneshot_errors_are_one_line(tmp_path, mlruns, capsys):
    assert main(["oneshot"]) == 2
    assert "run ids" in capsys.readouterr().err
    uri = mlruns
    assert main(["oneshot", "no-such-run", "--runs", str(SHARED / "all_runs.zip"), "--tracking-uri", uri]) == 2
    assert "no-such-run" in capsys.readouterr().err


def test_conv4_is_the_few_shot_backbone():
    enc = ENCODERS.get("conv4")((1, 28, 28))
    assert enc.out_features == 64 and enc(torch.rand(3, 1, 28, 28)).shape == (3, 64)
    assert ENCODERS.get("conv4")((1, 28, 28), channels=32).out_features == 32
    with pytest.raises(ValueError, match="at least 16 x 16"):
        ENCODERS.get("conv4")((1, 8, 8))


def test_the_official_one_shot_runs_are_never_training_images():
    """Leakage guard: every image of all_runs.zip is an evaluation image, none a background one."""
    import hashlib

    def digests(images) -> set[str]:
        return {hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest() for img in images}

    with zipfile.ZipFile(SHARED / "all_runs.zip") as z:
        runs = digests(omniglot.decode_png(z.read(n)) for n in z.namelist() if n.endswith(".png"))
    background = digests(omniglot.read_archive(str(SHARED / "images_background.zip")).images.numpy())
    evaluation = digests(omniglot.read_archive(str(SHARED / "images_evaluation.zip")).images.numpy())
    assert len(runs) > 700  # 800 images, a few duplicates possible
    assert runs.isdisjoint(background) and runs <= evaluation
