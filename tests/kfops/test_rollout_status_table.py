"""`kfops rollout status` says what a shadow challenger's milliseconds are: its compute per request
in batches (kfops.serving.shadow), not a response latency like the champion's (#19 review)."""

from kfops import rollout
from kfops.commands import rollout as command


def _comparison(mode):
    side = {"version": "1", "requests": 300, "errors": 0, "p50_ms": 0.4, "p99_ms": 1.2,
            "labelled": 0, "quality": None}  # fmt: skip
    return {"mode": mode, "champion": side, "challenger": {**side, "version": "2"},
            "agreement": None, "distance": None}  # fmt: skip


def test_shadow_table_says_the_challenger_ms_are_compute_not_latency():
    doc = {"started_at": "2026-12-02T00:00:00+00:00", "started_by": "ana"}
    wait = rollout.Verdict("wait", ("0 of 100 labelled rows",))
    shadow = command._table({**doc, "mode": "shadow"}, _comparison("shadow"), wait)
    canary = command._table({**doc, "mode": "canary"}, _comparison("canary"), wait)
    note = "(shadow: the challenger's ms are its batched compute per request, not a response"
    assert note in shadow and "not a response" not in canary
