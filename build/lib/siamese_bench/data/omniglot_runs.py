"""Lake's 20 official 20-way one-shot runs of Omniglot (K1), read from all_runs.zip.

Each run holds 20 training images (one per character) and 20 test images; class_labels.txt
names the training image each test image belongs to. evaluation/oneshot.py scores them.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from siamese_bench.core.errors import UserError
from siamese_bench.data.omniglot import OmniglotUnavailable, decode_png, download_archive, find_archive, to_float

RUNS_ARCHIVE = "all_runs.zip"


@dataclass(frozen=True)
class OneShotRun:
    name: str
    train: torch.Tensor  # (K, 1, S, S) one image per class
    test: torch.Tensor  # (Q, 1, S, S)
    answer: torch.Tensor  # (Q,) index into train of each test image's class


class OneShotFormatError(UserError, ValueError):
    """A runs archive that does not follow Lake's layout."""


def load_runs(path: Path | str, size: int) -> list[OneShotRun]:
    """Every runNN/ of the archive, images inverted and resized as the omniglot datasets are."""
    try:
        return _read_runs(path, size)
    except (zipfile.BadZipFile, OSError) as err:
        raise OneShotFormatError(f"{path}: unreadable ({err})") from None


def _read_runs(path: Path | str, size: int) -> list[OneShotRun]:
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        keys = sorted(n for n in names if n.endswith("class_labels.txt"))
        if not keys:
            raise OneShotFormatError(f"{path}: no <run>/class_labels.txt inside")
        runs = []
        for key in keys:
            run = key.rsplit("/", 1)[0]
            pairs = [line.split() for line in archive.read(key).decode().splitlines() if line.strip()]
            if not pairs or any(len(p) != 2 for p in pairs):
                raise OneShotFormatError(f"{path}: {key}: expected lines '<test image> <training image>'")
            train_names = sorted({p[1] for p in pairs})
            missing = [n for p in pairs for n in p if n not in names]
            if missing:
                raise OneShotFormatError(f"{path}: {key} names {missing[0]}, which the archive lacks")

            def images(members: list[str]) -> torch.Tensor:
                return to_float(torch.from_numpy(np.stack([decode_png(archive.read(m)) for m in members])), size)

            answer = torch.tensor([train_names.index(p[1]) for p in pairs])
            runs.append(OneShotRun(run, images(train_names), images([p[0] for p in pairs]), answer))
    return runs


def official_runs(size: int) -> list[OneShotRun]:
    """The 20 official runs from the first verified all_runs.zip (see data.omniglot), else from
    a download of Lake's copy; OmniglotUnavailable naming every place tried."""
    try:
        path = find_archive(RUNS_ARCHIVE)
    except OmniglotUnavailable as err:
        try:
            path = download_archive(RUNS_ARCHIVE)
        except Exception as download_err:  # noqa: BLE001  (any download failure: report both)
            raise OmniglotUnavailable(f"{err}; download: {type(download_err).__name__}: {download_err}") from None
    return load_runs(path, size)
