"""Write a C4-shaped pairs CSV from a registered image dataset, so C4 runs offline.

C4's own file is not public. This makes one of the same shape: the training file has 1,983
rows (1,060 same / 923 different), the test file 662 (354 / 308), each row two 200-d vectors
side by side and a `class` column. The fixed encoder is PCA to 200 dimensions (fitted on the
dataset's training images, scikit-learn's PCA with a fixed random_state); pairs are drawn
uniformly with the seed: same = two different images of one class, different = images of two
classes. Training rows come from the training images, test rows from the test images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from siamese_bench.core.errors import ConfigError
from siamese_bench.data.base import LabelledData, load_dataset

C4_TRAIN = (1060, 923)  # (same, different) rows of C4's training file
C4_TEST = (354, 308)  # and of its test file
C4_DIMS = 200  # each side's vector length


def _draw_pairs(y: np.ndarray, n_same: int, n_diff: int, rng: np.random.Generator) -> np.ndarray:
    """(n_same + n_diff, 3) rows of (i, j, same) drawn uniformly, then shuffled."""
    found: dict[bool, list[tuple[np.int64, np.int64]]] = {True: [], False: []}  # same? -> (i, j) image pairs
    need = {True: n_same, False: n_diff}
    while any(len(found[k]) < need[k] for k in found):
        i, j = rng.integers(0, len(y), size=(2, 4 * (n_same + n_diff)))  # oversample, then keep
        ok = i != j
        same = y[i] == y[j]
        for key, mask in ((True, ok & same), (False, ok & ~same)):
            found[key].extend(zip(i[mask], j[mask], strict=True))
    rows = np.array([(a, b, 1) for a, b in found[True][:n_same]] + [(a, b, 0) for a, b in found[False][:n_diff]])
    return rows[rng.permutation(len(rows))]


def _write(path: Path, vectors: np.ndarray, pairs: np.ndarray) -> None:
    k = vectors.shape[1]
    header = ",".join([f"v{i}" for i in range(2 * k)] + ["class"])
    table = np.concatenate([vectors[pairs[:, 0]], vectors[pairs[:, 1]], pairs[:, 2:3].astype(float)], axis=1)
    fmt = ["%.6g"] * (2 * k) + ["%.1f"]
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt=fmt)


def make_pairs_csv(dataset: str, out_prefix: str | Path, dims: int = C4_DIMS, seed: int = 0) -> tuple[Path, Path]:
    """Write OUT-train.csv and OUT-test.csv; return their paths."""
    from sklearn.decomposition import PCA

    data = load_dataset(dataset)
    if not isinstance(data, LabelledData):
        raise ConfigError(f"--from {dataset!r}: needs an image dataset with class labels")
    x_train = data.x_train.flatten(1).numpy()
    x_test = data.x_test.flatten(1).numpy()
    if not 0 < dims <= min(x_train.shape):
        raise ConfigError(f"--dims {dims}: must be between 1 and {min(x_train.shape)} for {dataset!r}")
    pca = PCA(n_components=dims, random_state=seed).fit(x_train)
    rng = np.random.default_rng(seed)
    out = Path(out_prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = (out.with_name(out.name + "-train.csv"), out.with_name(out.name + "-test.csv"))
    for path, x, y, counts in ((paths[0], x_train, data.y_train, C4_TRAIN), (paths[1], x_test, data.y_test, C4_TEST)):
        pairs = _draw_pairs(torch.as_tensor(y).numpy(), *counts, rng)
        _write(path, pca.transform(x).astype(np.float32), pairs)
    return paths
