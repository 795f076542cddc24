"""Names in the tracking store that one layer writes and another reads: artifact paths and tags.
The sweep and training write them; the report, which imports neither, reads them."""

from __future__ import annotations

STUDY_CELLS = "study/cells.json"  # parent run: {"cells": [ids in spec order], "seeds": [...], "fingerprint"}
MODEL_ARTIFACT = "outputs/model.pt"  # a run's config, input shape and weights (training/artifacts.py)
# Tags a run carries about its loss, so the report knows it without importing it (training/build.py)
LOSS_USES_MARGIN, LOSS_NEEDS_LOGIT, OBJECTIVE = "loss_uses_margin", "loss_needs_logit", "objective"
