"""What a worker process tells the sweep's parent, one small typed class per message.

Every message names its task (`key`). Tracking calls are forwarded because only the parent
writes to MLflow; a task ends with exactly one of Done, Pruned or Failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    key: str  # the task, e.g. "grid:17"


@dataclass(frozen=True)
class Begin(Message):
    pid: int


# -- tracking calls (QueueTracker -> parent's Tracker) -------------------------------------------


@dataclass(frozen=True)
class StartRun(Message):
    experiment: str
    run_name: str
    params: dict[str, Any]
    tags: dict[str, str]
    parent_run_id: str | None


@dataclass(frozen=True)
class LogMetrics(Message):
    metrics: dict[str, float]
    step: int | None


@dataclass(frozen=True)
class SetTags(Message):
    tags: dict[str, str]


@dataclass(frozen=True)
class LogDataset(Message):
    info: dict[str, Any]


@dataclass(frozen=True)
class LogArtifact(Message):
    path: str  # a copy in a temporary folder the parent deletes once logged
    artifact_path: str | None


@dataclass(frozen=True)
class EndRun(Message):
    status: str


# -- how the task ended --------------------------------------------------------------------------


@dataclass(frozen=True)
class Done(Message):
    metrics: dict[str, float]
    epochs: int
    data_variant: str


@dataclass(frozen=True)
class Pruned(Message):
    reason: str
    epochs: int


@dataclass(frozen=True)
class Failed(Message):
    reason: str
    epochs: int
    failure: str  # "diverged" (the method: never re-run) or "error" (re-run up to 3 times)


ENDINGS = (Done, Pruned, Failed)
