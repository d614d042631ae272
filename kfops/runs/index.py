"""Reading run records back: list, show and resolve runs, deriving each run's status.

Status is derived, never trusted from one object alone: a run with a failed step is "failed"
(naming the step and its error); otherwise its end record decides; a run with neither is
"incomplete" (crashed, killed, or still running). Unreadable objects are reported as problems of
their run instead of breaking the listing.

Listing reads two objects per finished run, not one per step: `RunRecorder.finish` stores a digest
of the step records (statuses, metrics, first failure) in end.json. The digest is used only while
the step keys listed match the steps it names; otherwise the steps are read.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any

from kfops import errors
from kfops.runs import compare as compare_mod
from kfops.runs import records
from kfops.store import base

_READERS = 16  # parallel GETs: S3 latency dominates listing, local reads do not care


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One line of `kfops runs list`."""

    run_id: str
    pipeline: str
    experiment: str
    status: str  # "succeeded" | "failed" | "incomplete"
    started_at: str
    ended_at: str | None
    duration_s: float | None
    metrics: dict[str, float | None]
    model: dict[str, str] | None
    blessed: bool | None
    failed_step: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`--json`)."""
        return dataclasses.asdict(self)


class RunIndex:
    """Runs recorded in a store; listing the `runs/` prefix is the index.

    Args:
        store: the store the runs were recorded in (the registry's store).
    """

    def __init__(self, store: base.Store):
        self.store = store

    def list(self, experiment: str | None = None) -> list[RunInfo]:
        """Every run, newest first, optionally only those of one experiment."""
        groups = self._groups(records.PREFIX)
        infos = [_info(run) for run in self._load_all(groups, summary_only=True)]
        if experiment is not None:
            infos = [i for i in infos if i.experiment == experiment]
        return sorted(infos, key=lambda i: (i.started_at, i.run_id), reverse=True)

    def details(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """Like `list`, but each run in full (`show`'s form, with its steps)."""
        out = [_detail(run) for run in self._load_all(self._groups(records.PREFIX))]
        if experiment is not None:
            out = [d for d in out if d["experiment"] == experiment]
        return sorted(out, key=lambda d: (d["started_at"], d["run_id"]), reverse=True)

    def show(self, run_id: str) -> dict[str, Any]:
        """Everything recorded about one run (a unique prefix of its id is enough).

        Raises:
            NotFound: no run has that id or prefix.
            ConfigError: the prefix matches several runs.
        """
        run_id, rests = self._resolve(run_id)
        return _detail(self._load(run_id, rests))

    def compare(self, run_ids: Iterable[str]) -> compare_mod.Comparison:
        """Parameters, data hashes and metrics of runs side by side, differences marked.

        Raises:
            ConfigError: fewer than two runs, or the same run twice.
            NotFound: a run does not exist.
        """
        details = [self.show(r) for r in run_ids]
        ids = [d["run_id"] for d in details]
        if len(ids) < 2 or len(set(ids)) != len(ids):
            raise errors.ConfigError(f"compare needs two or more distinct runs, got {ids}")
        return compare_mod.compare(details)

    def digest(self, run_id: str) -> dict[str, Any]:
        """A digest of a run's step records, for its end record (see the module docstring)."""
        run = self._load(run_id, self._groups(records.run_prefix(run_id)).get(run_id, []))
        return {"steps": run.step_statuses(), "metrics": run.metrics(), "failed": run.failed()}

    def report(self, run_id: str, name: str) -> bytes:
        """One stored HTML report of a run (names are listed in `show(run_id)["reports"]`).

        Raises:
            NotFound: no such run or report.
        """
        run_id = self.resolve(run_id)
        records.check_name("report name", name)
        try:
            return self.store.get_bytes(records.report_key(run_id, name))
        except errors.NotFound:
            raise errors.NotFound(f"run {run_id} has no report {name!r}") from None

    def resolve(self, run_id: str) -> str:
        """The full id of the run that `run_id` names exactly or as a unique prefix."""
        return self._resolve(run_id)[0]

    def _resolve(self, run_id: str) -> tuple[str, list[str]]:
        if not run_id or "/" in run_id:
            raise errors.NotFound(f"no run {run_id!r} in {self.store.uri}")
        groups = self._groups(f"{records.PREFIX}{run_id}")
        if run_id in groups:
            return run_id, groups[run_id]
        if len(groups) == 1:
            return next(iter(groups.items()))
        if not groups:
            raise errors.NotFound(
                f"no run {run_id!r} in {self.store.uri}; `kfops runs list` shows the recorded runs"
            )
        raise errors.ConfigError(
            f"run id prefix {run_id!r} is ambiguous: {', '.join(sorted(groups)[:5])}; give more"
        )

    def _groups(self, prefix: str) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for key in self.store.list(prefix):
            parts = records.split_key(key)
            if parts:
                groups.setdefault(parts[0], []).append(parts[1])
        return groups

    def _load_all(self, groups: dict[str, list[str]], summary_only: bool = False) -> list[_Run]:
        items = list(groups.items())
        if len(items) <= 1:
            return [self._load(run_id, rests, summary_only) for run_id, rests in items]
        with concurrent.futures.ThreadPoolExecutor(_READERS) as pool:
            return list(pool.map(lambda item: self._load(*item, summary_only), items))

    def _load(self, run_id: str, rests: Iterable[str], summary_only: bool = False) -> _Run:
        run = _Run(run_id)
        steps = [r for r in rests if r.startswith(records.STEPS) and r.endswith(".json")]
        if records.HEADER in rests:
            run.header = self._read(run_id, records.HEADER, run)
        if records.END in rests:
            run.end = self._read(run_id, records.END, run)
        run.reports = sorted(
            r[len(records.REPORTS) : -len(".html")]
            for r in rests
            if r.startswith(records.REPORTS) and r.endswith(".html")
        )
        names = {r[len(records.STEPS) : -len(".json")] for r in steps}
        digest = (run.end or {}).get("digest")
        if summary_only and isinstance(digest, dict) and set(digest.get("steps") or {}) == names:
            run.digest = digest
            return run
        for rest in steps:
            step = self._read(run_id, rest, run)
            if step is not None:
                run.steps.append(step)
        run.steps.sort(key=lambda s: (str(s.get("started_at") or ""), str(s.get("step"))))
        return run

    def _read(self, run_id: str, rest: str, run: _Run) -> dict[str, Any] | None:
        key = f"{records.run_prefix(run_id)}{rest}"
        try:
            record = records.decode(self.store.get_bytes(key))
        except errors.NotFound:
            return None
        if record is None:
            run.problems.append(f"{key}: not a JSON object")
        return record


@dataclasses.dataclass
class _Run:
    run_id: str
    header: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    digest: dict[str, Any] | None = None  # stands in for `steps` when listing
    reports: list[str] = dataclasses.field(default_factory=list)

    def status(self) -> tuple[str, str | None, str | None]:
        """(status, failed step, error) by the rules in the module docstring."""
        failed = self.failed()
        if failed:
            return "failed", failed["step"], failed["error"]
        if self.end and self.end.get("status") in records.END_STATUSES:
            return self.end["status"], None, self.end.get("error")
        return "incomplete", self.running_step(), None

    def failed(self) -> dict[str, Any] | None:
        """The first failed step {"step", "error"}, or None."""
        if self.digest is not None:
            return self.digest.get("failed")
        failed = [s for s in self.steps if s.get("status") == "failed"]
        return (
            {"step": str(failed[0].get("step")), "error": failed[0].get("error")}
            if failed
            else None
        )

    def step_statuses(self) -> dict[str, str]:
        """Step name -> status, in the order the steps started."""
        if self.digest is not None:
            return dict(self.digest.get("steps") or {})
        return {str(s.get("step")): str(s.get("status")) for s in self.steps}

    def running_step(self) -> str | None:
        """The last step still marked running (where a crashed run stopped)."""
        running = [n for n, status in self.step_statuses().items() if status == "running"]
        return running[-1] if running else None

    def started_at(self) -> str:
        starts = [str(s.get("started_at") or "") for s in self.steps]
        return str((self.header or {}).get("started_at") or min(starts, default=""))

    def ended_at(self) -> str | None:
        if self.end:
            return self.end.get("ended_at")
        ends = [s.get("ended_at") for s in self.steps if s.get("ended_at")]
        return max(ends) if ends else None

    def metrics(self) -> dict[str, float | None]:
        """All step metrics by bare name; a later step's value wins on a name clash."""
        if self.digest is not None:
            return dict(self.digest.get("metrics") or {})
        out: dict[str, float | None] = {}
        for step in self.steps:
            out.update(step.get("metrics") or {})
        return out


def _info(run: _Run) -> RunInfo:
    header, end = run.header or {}, run.end or {}
    status, failed_step, error = run.status()
    started, ended = run.started_at(), run.ended_at()
    return RunInfo(
        run_id=run.run_id,
        pipeline=str(header.get("pipeline") or "?"),
        experiment=str(header.get("experiment") or header.get("pipeline") or "?"),
        status=status,
        started_at=started,
        ended_at=ended,
        duration_s=_seconds(started, ended),
        metrics=run.metrics(),
        model=end.get("model"),
        blessed=end.get("blessed"),
        failed_step=failed_step if status == "failed" else None,
        error=error,
    )


def _detail(run: _Run) -> dict[str, Any]:
    header, end = run.header or {}, run.end or {}
    info = _info(run)
    out = info.to_dict()
    out.update(
        {
            "parameters": header.get("parameters") or {},
            "package_version": header.get("package_version"),
            "code_version": header.get("code_version"),
            "image": header.get("image"),
            "reasons": list(end.get("reasons") or []),
            # the exit step's whole outcome: notes, deploy, exit code, outputs (kfops.runs.outcome)
            "outcome": {k: v for k, v in end.items() if k != "digest"},
            "steps": run.steps,
            "running_step": run.running_step() if info.status == "incomplete" else None,
            "problems": run.problems,
            "reports": run.reports,
        }
    )
    return out


def _seconds(start: str, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        delta = datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)
    except ValueError:
        return None
    return round(delta.total_seconds(), 3)
