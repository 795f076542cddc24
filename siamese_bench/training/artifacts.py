"""What a finished run leaves in MLflow besides metrics: the model (config, input shape,
weights: enough for load_model to rebuild it), the final distances per split and a sample of
test embeddings, so reports draw ROC curves, histograms and projections without retraining."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.store import MODEL_ARTIFACT
from siamese_bench.data import LabelledData, PairedData
from siamese_bench.infra.run_tracker import RunTracker
from siamese_bench.training.build import build_module
from siamese_bench.training.module import SiameseModule


def log_model(
    tracker: RunTracker, run_id: str, cfg: TrainConfig, input_shape: tuple[int, ...], module: SiameseModule
) -> None:
    """Config, input shape and weights, enough for load_model() to rebuild the trained model
    (siamese-bench oneshot scores runs from it)."""
    state = {
        "config": cfg.model_dump(),
        "input_shape": list(input_shape),
        "state_dict": {k: v.cpu() for k, v in module.state_dict().items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(MODEL_ARTIFACT).name
        torch.save(state, path)
        tracker.log_artifact(run_id, path, str(Path(MODEL_ARTIFACT).parent))


def load_model(path: Path | str) -> tuple[TrainConfig, tuple[int, ...], SiameseModule]:
    """The config, input shape and trained module saved by _log_model."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    cfg = TrainConfig.from_dict(state["config"])
    input_shape = tuple(state["input_shape"])
    module = build_module(cfg, input_shape)
    module.load_state_dict(state["state_dict"])
    return cfg, input_shape, module.eval()


EMBEDDING_SAMPLE = 1000  # test images whose embeddings are kept for the report's 2-D plots


@torch.no_grad()
def test_embeddings(module: SiameseModule, data: LabelledData | PairedData) -> dict[str, np.ndarray]:
    """Class-labelled test images; for ready-made pairs, the left vectors labelled by pair."""
    module.eval()
    if isinstance(data, PairedData):
        x, label = data.test.left, data.test.y
    else:
        x, label = data.x_test, data.y_test
    emb = module.encoder(x[:EMBEDDING_SAMPLE].to(module.device))
    return {"embedding": emb.cpu().half().numpy(), "label": label[:EMBEDDING_SAMPLE].numpy()}


def log_outputs(
    tracker: RunTracker,
    run_id: str,
    outputs: dict[str, tuple[torch.Tensor, torch.Tensor]],
    embeddings: dict[str, np.ndarray],
) -> None:
    """Final dissimilarities and labels per split (distances.npz) and a sample of test
    embeddings (embeddings.npz), so reports can draw ROC curves, histograms and projections
    without retraining."""
    arrays: dict[str, np.ndarray] = {}
    for stage, (d, y) in outputs.items():
        arrays[f"{stage}_d"], arrays[f"{stage}_y"] = d.numpy(), y.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in (("distances.npz", arrays), ("embeddings.npz", embeddings)):
            path = Path(tmp) / name
            np.savez_compressed(path, allow_pickle=True, **content)  # the default, named: no array may take its place
            tracker.log_artifact(run_id, path, "outputs")
