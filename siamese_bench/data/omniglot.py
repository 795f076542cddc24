"""Omniglot (Lake et al. 2015) read straight from its zip archives into tensors.

Two registered views of the same images:
- `omniglot`: label = alphabet (C6's "same alphabet?"). Train = the 30 background alphabets,
  test = the 20 evaluation alphabets, validation = whole training alphabets held out, so the
  three sets of alphabets are disjoint.
- `omniglot-chars`: label = character (K1's one-shot training). Train = the 964 background
  characters, test = the 659 evaluation characters, validation = whole held-out characters.
Both take an optional size, `omniglot:52`, to shrink the 105 x 105 images for CPU budgets.

Pixels are inverted (stroke = 1, paper = 0) and area-resized. Sources, in order: the full
archives in $SIAMESE_BENCH_OMNIGLOT_DIR, then `datasets/omniglot/`, then a download of the
official archives; failing all, Lake's two 5-alphabet background sets (train = small1,
test = small2), said loudly in the log and in the dataset_variant/dataset_source tags.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from siamese_bench.data.base import DATASETS, DataUnavailable, LabelledData, data_home

log = logging.getLogger(__name__)

NATIVE_SIZE = 105
DECODE_VERSION = 1  # part of the decoded cache's name: bump when decoding or labelling changes
ORDER_SEED = 0  # fixed shuffle of the images within each class: see _shuffled_within_class
# sha256 of the copies described in ../shared/datasets/omniglot/README.md (re-zipped, so they
# differ from the official archives), and the official archives' md5 (torchvision's).
SHA256 = {
    "images_background.zip": "6e50072ab217991ebf5de612b9e1902c56c15e4ae14e3939d914f102a7d585fc",
    "images_evaluation.zip": "24cfb8a0dfa284278a4e8a466ba6ce0c65a79e320a1a5c123bd96c54f0e9067e",
    "images_background_small1.zip": "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
    "images_background_small2.zip": "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
    "all_runs.zip": "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325",
}
OFFICIAL_MD5 = {
    "images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811",
}
DOWNLOAD_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
RUNS_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/one-shot-classification/"
DOWNLOAD_TIMEOUT = 20  # seconds; an offline machine should fall back quickly
FULL = ("images_background.zip", "images_evaluation.zip")
SMALL = ("images_background_small1.zip", "images_background_small2.zip")


class OmniglotUnavailable(DataUnavailable):
    """An archive is missing, unreadable or fails its checksum."""


@dataclass(frozen=True)
class Glyphs:
    """Every image of one archive: uint8 (N, 105, 105) strokes = 255, and per image the
    alphabet and character (dense ids, sorted by name)."""

    images: torch.Tensor
    alphabet: torch.Tensor
    character: torch.Tensor
    alphabets: tuple[str, ...]
    path: str


def candidate_dirs() -> list[Path]:
    env = os.environ.get("SIAMESE_BENCH_OMNIGLOT_DIR")
    return ([Path(env)] if env else []) + [data_home() / "omniglot"]


def verified(path: Path) -> Path:
    """`path` if it exists and matches its sha256 (or the official md5), else OmniglotUnavailable."""
    if not path.is_file():
        raise OmniglotUnavailable(f"{path}: not found")
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != SHA256.get(path.name) and hashlib.md5(raw).hexdigest() != OFFICIAL_MD5.get(
        path.name
    ):
        raise OmniglotUnavailable(f"{path}: checksum mismatch (expected sha256 {SHA256.get(path.name)})")
    return path


def find_archive(name: str, folders: tuple[Path, ...] | None = None) -> Path:
    """The first verified copy of archive `name` among `folders` (default: the candidate folders)."""
    problems = []
    for folder in folders if folders is not None else candidate_dirs():
        try:
            return verified(folder / name)
        except OmniglotUnavailable as err:
            problems.append(str(err))
    raise OmniglotUnavailable("; ".join(problems))


def download_archive(name: str) -> Path:
    """Lake's copy of archive `name` into datasets/omniglot/, verified."""
    target = data_home() / "omniglot" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    base = RUNS_URL if name == "all_runs.zip" else DOWNLOAD_URL
    with urllib.request.urlopen(base + name, timeout=DOWNLOAD_TIMEOUT) as response, open(partial, "wb") as out:
        shutil.copyfileobj(response, out)
    partial.replace(target)
    return verified(target)


def decode_png(raw: bytes) -> np.ndarray:
    """A 105 x 105 Omniglot PNG as uint8 with strokes 255 and paper 0."""
    return 255 - np.asarray(Image.open(io.BytesIO(raw)).convert("L"), dtype=np.uint8)


def _cache_file(path: str) -> Path:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return data_home() / "omniglot" / "decoded" / f"{Path(path).stem}-{digest}-v{DECODE_VERSION}.npz"


@lru_cache(maxsize=8)
def read_archive(path: str) -> Glyphs:
    """All images of a Lake-layout archive, decoded once and kept in datasets/omniglot/decoded/
    (decoding 32,460 PNGs takes ~10 s; the cache loads in well under 1 s)."""
    cache = _cache_file(path)
    if cache.is_file():
        with np.load(cache) as z:
            return Glyphs(
                torch.from_numpy(z["images"]),
                torch.from_numpy(z["alphabet"]),
                torch.from_numpy(z["character"]),
                tuple(z["alphabets"].tolist()),
                path,
            )
    glyphs = _decode_archive(path)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.stem + f".{os.getpid()}.part.npz")
        np.savez(
            partial,
            images=glyphs.images.numpy(),
            alphabet=glyphs.alphabet.numpy(),
            character=glyphs.character.numpy(),
            alphabets=np.array(glyphs.alphabets),
        )
        partial.replace(cache)
    except OSError as err:  # a read-only data folder: work without the cache
        log.info("Omniglot: not caching decoded images (%s)", err)
    return glyphs


def _decode_archive(path: str) -> Glyphs:
    """All images of a Lake-layout archive (<root>/<Alphabet>/characterNN/*.png), in name order."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".png"))
            if not names:
                raise OmniglotUnavailable(f"{path}: no PNG images inside")
            images = np.stack([decode_png(archive.read(n)) for n in names])
    except (zipfile.BadZipFile, OSError) as err:
        raise OmniglotUnavailable(f"{path}: unreadable ({err})") from None
    parts = [n.split("/") for n in names]
    if any(len(p) < 4 for p in parts):
        raise OmniglotUnavailable(f"{path}: expected <root>/<alphabet>/<character>/<image>.png")
    alphabet_names = [p[-3] for p in parts]
    character_names = [f"{p[-3]}/{p[-2]}" for p in parts]
    alphabets = tuple(sorted(set(alphabet_names)))
    characters = sorted(set(character_names))
    a_id, c_id = {a: i for i, a in enumerate(alphabets)}, {c: i for i, c in enumerate(characters)}
    return Glyphs(
        torch.from_numpy(images),
        torch.tensor([a_id[a] for a in alphabet_names]),
        torch.tensor([c_id[c] for c in character_names]),
        alphabets,
        path,
    )


def to_float(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, size, size) in [0, 1], area-resized when smaller."""
    x = images.float().div_(255).unsqueeze(1)
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x


@lru_cache(maxsize=4)
def _resized(path: str, size: int) -> torch.Tensor:
    """An archive's images at `size`, kept for the next view of the same archive (the alphabet
    and character views hold the same images in other orders). Native size is not kept: 1.4 GB
    of float32 for the full set, and there is no resizing to save."""
    return to_float(read_archive(path).images, size)


def _at_size(glyphs: Glyphs, size: int, order: torch.Tensor) -> torch.Tensor:
    """to_float(glyphs.images[order], size), resizing each archive once per size: area resizing
    treats every image alone, so resizing then reordering gives the same values."""
    if size == NATIVE_SIZE:
        return to_float(glyphs.images[order], size)
    return _resized(glyphs.path, size)[order]


def _shuffled_within_class(y: torch.Tensor) -> torch.Tensor:
    """A fixed order that keeps classes in turn but shuffles images inside each: the Keras pair
    recipe pairs consecutive images, which in archive order would mostly be two drawings of
    one character rather than two random glyphs of one alphabet."""
    gen = torch.Generator().manual_seed(ORDER_SEED)
    perm = torch.randperm(len(y), generator=gen)
    return perm[torch.argsort(y[perm], stable=True)]


def _parse_size(argument: str) -> int:
    if not argument:
        return NATIVE_SIZE
    if not argument.isdigit() or not 8 <= int(argument) <= NATIVE_SIZE:
        raise ValueError(f"omniglot size {argument!r}: expected an integer from 8 to {NATIVE_SIZE}")
    return int(argument)


def load_archives() -> tuple[Glyphs, Glyphs, str]:
    """(train archive, test archive, variant): the full background/evaluation pair if any
    copy verifies, else the two small background sets, loudly. Cached per set of folders, so a
    changed SIAMESE_BENCH_OMNIGLOT_DIR is looked at afresh."""
    return _load_archives(tuple(candidate_dirs()))


@lru_cache(maxsize=2)
def _load_archives(folders: tuple[Path, ...]) -> tuple[Glyphs, Glyphs, str]:
    problems = []
    try:
        paths = [find_archive(name, folders) for name in FULL]
        return read_archive(str(paths[0])), read_archive(str(paths[1])), "omniglot-full"
    except OmniglotUnavailable as err:
        problems.append(str(err))
    try:
        paths = [download_archive(name) for name in FULL]
        return read_archive(str(paths[0])), read_archive(str(paths[1])), "omniglot-full"
    except Exception as err:  # noqa: BLE001  (any download failure means: fall back)
        problems.append(f"download from {DOWNLOAD_URL}: {type(err).__name__}: {err}")
    log.warning(
        "!!! FULL OMNIGLOT NOT AVAILABLE -- FALLING BACK to Lake's two 5-alphabet background "
        "sets (train = small1, test = small2). Set SIAMESE_BENCH_OMNIGLOT_DIR to a folder with "
        "images_background.zip and images_evaluation.zip. Tried: %s",
        "; ".join(problems),
    )
    try:
        paths = [find_archive(name, folders) for name in SMALL]
    except OmniglotUnavailable as err:
        raise OmniglotUnavailable(f"no Omniglot archives found: {'; '.join(problems)}; {err}") from None
    return read_archive(str(paths[0])), read_archive(str(paths[1])), "omniglot-small"


def _view(name: str, argument: str, label: str, evaluations: tuple[str, ...] = ()) -> LabelledData:
    size = _parse_size(argument)
    train, test, variant = load_archives()
    parts: list[tuple[torch.Tensor, torch.Tensor]] = []  # (x, y) of train, then of test
    for glyphs in (train, test):
        y = getattr(glyphs, label)
        order = _shuffled_within_class(y) if label == "alphabet" else torch.arange(len(y))
        parts.append((_at_size(glyphs, size, order), y[order]))
    (x_train, y_train), (x_test, y_test) = parts
    source = f"{train.path} + {test.path}"
    if variant == "omniglot-small":
        source += " (fallback: full Omniglot unavailable)"
    return LabelledData(
        name,
        f"{variant}-{size}",
        x_train,
        y_train,
        x_test,
        y_test,
        source=source,
        holdout="classes",
        evaluations=evaluations,
    )


@DATASETS.register("omniglot")
def load_omniglot(argument: str = "") -> LabelledData:
    """Label = alphabet; train/validation/test alphabets disjoint (C6), plus C6's mix split."""
    return _view("omniglot", argument, "alphabet", evaluations=("mix",))


@DATASETS.register("omniglot-chars")
def load_omniglot_chars(argument: str = "") -> LabelledData:
    """Label = character; background characters train, evaluation characters test (K1)."""
    return _view("omniglot-chars", argument, "character", evaluations=("oneshot",))


for _loader in (load_omniglot, load_omniglot_chars):
    _loader.argument = "SIZE"  # type: ignore[attr-defined]
    _loader.argument_optional = True  # type: ignore[attr-defined]
    _loader.check_argument = _parse_size  # type: ignore[attr-defined]
