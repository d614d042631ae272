"""rollout.read_events downloads only the event files written on or after the rollout's start day
(#19 review): a recurring `decide` read every rollout's files ever written for the model."""

import datetime as dt
import io

import pandas as pd

from kfops import labels, rollout
from kfops.store import local

START = "2026-12-02T10:00:00.000000+00:00"
DOC = {"champion": "1", "challenger": "2", "started_at": START}


class Counting(local.LocalStore):
    def __init__(self, root):
        super().__init__(root)
        self.read = []

    def get_bytes(self, key):
        self.read.append(key)
        return super().get_bytes(key)


def _events(when: dt.datetime) -> bytes:
    row = {labels.REQUEST_ID: "r", labels.ROW: 0, rollout.CHAMPION: "1", rollout.CHALLENGER: "2",
           rollout.VERSION: "2", rollout.ROLE: "shadow", rollout.SECONDS: 0.001,
           rollout.ERROR: "", rollout.PREDICTION: "1", rollout.VALUE: 1.0,
           rollout.TIMESTAMP: pd.Timestamp(when)}  # fmt: skip
    sink = io.BytesIO()
    pd.DataFrame([row]).to_parquet(sink, index=False)
    return sink.getvalue()


def test_event_files_of_days_before_the_start_are_not_read(tmp_path):
    store = Counting(tmp_path / "store")
    before = dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.UTC)
    after = dt.datetime(2026, 12, 2, 10, 0, 1, tzinfo=dt.UTC)
    old = rollout.events_key("churn", before, "old")
    store.put_bytes(old, b"not parquet: an older rollout's file")  # read, it would raise
    same_day = rollout.events_key("churn", dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC), "early")
    store.put_bytes(same_day, _events(dt.datetime(2026, 12, 2, 8, tzinfo=dt.UTC)))
    new = rollout.events_key("churn", after, "new")
    store.put_bytes(new, _events(after))
    events = rollout.read_events(store, "churn", DOC)
    assert store.read == sorted([same_day, new])  # the start day's files are all read
    assert len(events) == 1 and events[rollout.TIMESTAMP].iloc[0] >= pd.Timestamp(START)
