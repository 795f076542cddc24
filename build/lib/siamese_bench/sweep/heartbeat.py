"""The sweep's heartbeat thread: Optuna records heartbeats only inside `study.optimize`, and a
sweep claims and tells its trials itself (ask/tell), so it records them on its own."""

from __future__ import annotations

import logging
import threading

from optuna.storages import RDBStorage

log = logging.getLogger(__name__)


class HeartbeatThread:
    """Records a heartbeat for each trial this sweep runs, every `interval` seconds, on its own
    thread: a main loop blocked in a slow upload or a server outage must not look dead."""

    def __init__(self, storage: RDBStorage, interval: float) -> None:
        self.storage, self.interval = storage, interval
        self.trial_ids: set[int] = set()
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeats", daemon=True)
        self._thread.start()

    def add(self, trial_id: int) -> None:
        self.beat(trial_id)
        with self._lock:
            self.trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self.trial_ids.discard(trial_id)

    def beat(self, trial_id: int) -> None:
        try:
            self.storage.record_heartbeat(trial_id)
        except Exception as err:  # noqa: BLE001  (an outage: the next beat tries again)
            log.debug("heartbeat for trial id %d not recorded: %s", trial_id, type(err).__name__)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self.trial_ids)
            for trial_id in ids:
                self.beat(trial_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
