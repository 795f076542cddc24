"""Run by benchmarks/load.py inside one more "machine" (a network namespace) with that machine's joined env file
sourced: MLflow tracking calls as the app account over HTTPS, each timed, until a stop file appears.

Each call is one MlflowClient request (what a sweep's parent makes for its workers: create run, log_batch of
metrics, tags, an artifact upload, end run), timed on the client; one JSON line per call in --out:
{"t": start (epoch s), "call": kind, "ms": duration} or, for a failed call, {"t", "call", "error"}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stop", type=Path, required=True, help="stop (ending the current run) once this file exists")
    p.add_argument("--interval", type=float, default=0.2, help="pause between calls (default %(default)s s)")
    p.add_argument("--experiment", default="load-probe")
    p.add_argument("--per-run", type=int, default=20, help="metric batches per run (default %(default)s)")
    args = p.parse_args()

    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient()  # MLFLOW_TRACKING_URI, the app account and the CA from the sourced env file
    exp = client.get_experiment_by_name(args.experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(args.experiment)
    folder = Path(tempfile.mkdtemp(prefix="siamese-load-probe-"))
    artifact = folder / "probe.txt"
    artifact.write_text("x" * 4096)
    out = args.out.open("a", buffering=1)

    def timed(call: str, fn):
        started, t0 = time.time(), time.perf_counter()
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001  (recorded, counted by load.py)
            out.write(json.dumps({"t": started, "call": call, "error": f"{type(err).__name__}: {err}"[:300]}) + "\n")
            return None
        out.write(json.dumps({"t": started, "call": call, "ms": round((time.perf_counter() - t0) * 1000, 3)}) + "\n")
        return result

    run_number = 0
    try:
        while not args.stop.exists():
            run = timed(
                "create run", partial(client.create_run, exp_id, run_name=f"probe {run_number}", tags={"role": "probe"})
            )
            if run is None:
                time.sleep(args.interval)
                continue
            run_id = run.info.run_id
            for step in range(args.per_run):
                if args.stop.exists():
                    break
                now = int(time.time() * 1000)
                metrics = [Metric(k, float(step), now, step) for k in ("train/loss", "val/loss", "val/auc")]
                timed("log metrics", partial(client.log_batch, run_id, metrics=metrics))
                if step % 5 == 4:
                    timed("set tags", partial(client.log_batch, run_id, tags=[RunTag("epoch", str(step))]))
                if step % 10 == 9:
                    timed("log artifact", partial(client.log_artifact, run_id, str(artifact), "outputs"))
                time.sleep(args.interval)
            timed("end run", partial(client.set_terminated, run_id, "FINISHED"))
            run_number += 1
    finally:
        artifact.unlink(missing_ok=True)
        folder.rmdir()
        out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
