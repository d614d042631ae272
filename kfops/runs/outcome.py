"""A run's outcome, derived from its step records: one place decides what a run ended as.

The pipeline's last step (under `dsl.ExitHandler`, so it runs whether the body succeeded or not)
reads the step records and writes the outcome with `RunRecorder.finish`; no other step writes
it. The rules:

- a failed step fails the run: its step, error, error class and exit code are the run's;
- the runner's own final state counts too: a run KFP calls failed with no failed step record (a
  pod that never started, a step killed before it could record) fails with KFP's message;
- blessed and reasons come from the gate's record; an infra-validation failure adds its reasons;
- the model is the one the push step registered; the deploy step's result is kept beside it,
  so a deploy that failed after a push shows a registered model and a failed run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kfops import errors

SUCCEEDED, FAILED = "succeeded", "failed"


def derive(
    steps: Iterable[Mapping[str, Any]], final_state: str = "", final_error: str = ""
) -> dict[str, Any]:
    """The keyword arguments of `RunRecorder.finish` for these step records.

    Args:
        steps: the run's step records (`runs/<id>/steps/*.json`), in any order.
        final_state: the runner's state of the pipeline body (KFP's PipelineTaskFinalStatus
            state: "SUCCEEDED", "FAILED", "CANCELED"...); "" when unknown.
        final_error: the runner's error message for a failed body.
    """
    by_name = {str(s.get("step")): s for s in steps}
    out: dict[str, Any] = {"status": SUCCEEDED, **_decision(by_name)}
    out.update(_failure(by_name, final_state, final_error) or {"exit_code": 0})
    return out


def _decision(by_name: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What the run decided and did: blessing, reasons and notes, the model, the deploy."""
    out: dict[str, Any] = {"blessed": None, "reasons": [], "notes": []}
    gate = _output(by_name.get("gate"), "blessing")
    if gate is not None:
        out["blessed"] = bool(gate.get("blessed"))
        out["reasons"] = list(gate.get("reasons") or [])
        out["notes"] = list(gate.get("notes") or [])
    split = by_name.get("split") or {}
    repeated = (split.get("metrics") or {}).get("cross_duplicates")
    if repeated:  # exact train/test duplicates, handled as cross_duplicates says (kfops.split)
        policy = (split.get("parameters") or {}).get("cross_duplicates", "drop")
        out["notes"].append(
            f"split: {int(repeated)} test rows equal a training row (cross_duplicates={policy})"
        )
    infra = _output(by_name.get("infra-validate"), "report")
    if infra is not None and not infra.get("passed"):
        out["reasons"] += [f"infra-validate: {r}" for r in infra.get("reasons") or []]
    pushed = _output(by_name.get("push"), "registered")
    if pushed is not None:
        out["model"] = {"name": pushed.get("model_name"), "version": pushed.get("version")}
        out["model_uri"] = pushed.get("uri")
    deploy = by_name.get("deploy")
    if deploy is not None:
        served = _output(deploy, "served") or {}
        out["deploy"] = {"status": deploy.get("status"), "version": served.get("version")}
        if deploy.get("error"):
            out["deploy"]["error"] = deploy["error"]
    return out


def _failure(
    by_name: Mapping[str, Mapping[str, Any]], final_state: str, final_error: str
) -> dict[str, Any] | None:
    """Why the run failed (first failed step, else the runner's own state), or None."""
    failed = sorted(
        (s for s in by_name.values() if s.get("status") == FAILED),
        key=lambda s: str(s.get("ended_at") or ""),
    )
    if failed:
        first = failed[0]
        return {
            "status": FAILED,
            "failed_step": str(first.get("step")),
            "error": str(first.get("error") or "failed"),
            "error_class": first.get("error_class"),
            "exit_code": int(first.get("exit_code") or errors.PipelineFailed.exit_code),
        }
    if not final_state or final_state.upper() in ("SUCCEEDED", "SUCCESS"):
        return None
    running = [n for n, s in by_name.items() if s.get("status") == "running"]
    where = f"step {running[-1]} did not finish: " if running else ""
    return {
        "status": FAILED,
        "failed_step": running[-1] if running else None,
        "error": f"{where}the runner reports {final_state}: {final_error or 'no message'}",
        "error_class": errors.PipelineFailed.__name__,
        "exit_code": errors.PipelineFailed.exit_code,
    }


def _output(step: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    """The named output facts of a succeeded step's record."""
    if step is None or step.get("status") != SUCCEEDED:
        return None
    return next((o for o in step.get("outputs") or [] if o.get("name") == name), None)
