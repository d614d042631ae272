"""`kfops rollout start|status|decide|promote|abort NAME`: shadow and canary with a verdict.

`start` points the servers that follow the champion at a challenger (models/<name>/rollout.json);
`status` compares the two on the logged traffic and states the rule's verdict; `decide` applies
it (promote, abort, or leave it running); `promote` and `abort` end the rollout by hand, with who
and why. Rules and measures: kfops.rollout.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kfops import config, errors, parameters, registry, rollout, store

DEFAULT_STORE = config.LOCAL_STORE
HELP = "shadow/canary a challenger beside the champion; promote or abort on the evidence"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops rollout` with its subcommands."""
    p = subparsers.add_parser("rollout", help=HELP, description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="rollout_command", required=True, metavar="SUBCOMMAND")
    start = _common(sub.add_parser("start", help="run a challenger beside the champion"))
    start.add_argument("--challenger", required=True, help="the registered version to try")
    start.add_argument("--mode", choices=rollout.MODES, default=rollout.SHADOW)
    start.add_argument(
        "--share", type=float, default=0.1, help="canary: share of request keys it answers"
    )
    start.add_argument("--by", required=True, help="who starts it")
    start.add_argument("--reason", default="", help="why (kept in the rollout pointer)")
    start.set_defaults(func=start_main)
    for name, func, text in (
        ("status", status_main, "compare champion and challenger; the rule's verdict"),
        ("decide", decide_main, "apply the verdict: promote, abort, or keep it running"),
        ("promote", promote_main, "end it by making the challenger champion"),
        ("abort", abort_main, "end it and keep the champion"),
    ):
        cmd = _common(sub.add_parser(name, help=text))
        if name != "status":
            cmd.add_argument("--by", required=True, help="who (recorded with the outcome)")
            cmd.add_argument("--reason", default="", help="why (recorded with the outcome)")
        if name == "promote":
            cmd.add_argument(
                "--force", action="store_true", help="promote although the verdict is not promote"
            )
        if name != "abort":
            for param in parameters.surface(rollout.RolloutRule).values():
                parameters.add_flag(
                    cmd, "--" + param.name.replace("_", "-"), param, default=None,
                    help=f"{param.help} (default: the rule the rollout's first decide recorded; "
                    f"before that {param.default})",
                )  # fmt: skip
        cmd.set_defaults(func=func)


def _common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("name", help="model name")
    p.add_argument("--store", default=DEFAULT_STORE, help="store: directory or s3://bucket/prefix")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _open(args) -> store.Store:
    return store.open_existing(args.store, config.StoreSettings.from_env())


def _rule(args) -> tuple[rollout.RolloutRule, set[str]]:
    """The rule from the flags (defaults for those not passed) and the names of those passed.

    A rollout is judged by one rule (kfops.rollout.judged_by): a flag not passed takes the
    recorded value, a flag passed with another value is refused.
    """
    fields = parameters.surface(rollout.RolloutRule)
    given = {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    return parameters.build(rollout.RolloutRule, **given), set(given)


def start_main(args) -> int:
    """`kfops rollout start`: writes the rollout pointer the servers follow."""
    plan = rollout.Plan(args.challenger, args.mode, args.share)
    doc = rollout.start(registry.Registry(_open(args)), args.name, plan, args.by, args.reason)
    _print(args, doc, f"{args.name}: v{doc['challenger']} in {doc['mode']} beside champion "
           f"v{doc['champion']}" + (f" ({doc['share']:.0%} canary)" if plan.mode == rollout.CANARY
                                    else ""))  # fmt: skip
    return 0


def status_main(args) -> int:
    """`kfops rollout status`: the comparison and the verdict, changing nothing.

    It judges with the rule the rollout's first decide recorded (the flags until then).
    """
    doc, comparison, verdict = rollout.evaluate(_open(args), args.name, *_rule(args))
    _print(args, {"rollout": _brief(doc), "comparison": comparison, **verdict.to_dict()},
           _table(doc, comparison, verdict))  # fmt: skip
    return 0


def decide_main(args) -> int:
    """`kfops rollout decide`: promote or abort when the rule says so; otherwise leave it."""
    rule, given = _rule(args)
    doc, comparison, verdict, entry = rollout.decide(
        _open(args), args.name, rule, args.by, args.reason, given
    )
    _print(args, {"rollout": _brief(doc), **verdict.to_dict(), "ended": entry},
           _table(doc, comparison, verdict))  # fmt: skip
    return 0


def promote_main(args) -> int:
    """`kfops rollout promote`: the challenger becomes champion (refused against the verdict).

    Raises:
        ConfigError: the verdict is not promote and --force was not given.
    """
    st = _open(args)
    doc, comparison, verdict = rollout.evaluate(st, args.name, *_rule(args))
    if verdict.decision != rollout.PROMOTE and not args.force:
        raise errors.ConfigError(
            f"the verdict is {verdict.decision} ({'; '.join(verdict.reasons)}); "
            "--force promotes anyway"
        )
    evidence = {"comparison": comparison, **verdict.to_dict(), "forced": bool(args.force)}
    entry = rollout.finish(
        registry.Registry(st), args.name, rollout.PROMOTED, args.by, args.reason, evidence
    )
    _print(args, entry, f"{args.name}: v{entry['challenger']} is the champion")
    return 0


def abort_main(args) -> int:
    """`kfops rollout abort`: ends the rollout; the champion stays."""
    entry = rollout.finish(
        registry.Registry(_open(args)), args.name, rollout.ABORTED, args.by, args.reason, {}
    )
    _print(args, entry, f"{args.name}: rollout of v{entry['challenger']} aborted")
    return 0


def _brief(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "history"}


def _print(args, obj: Any, text: str) -> None:
    print(json.dumps(obj, sort_keys=True, default=str) if args.json else text)


def _fmt(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _table(doc: dict, c: dict, verdict: rollout.Verdict) -> str:
    lines = [f"{doc['mode']} rollout since {doc['started_at']} (by {doc['started_by']})"]
    lines.append(f"{'':11}{'version':>8}{'requests':>10}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}"
                 f"{'labelled':>10}{'quality':>9}")  # fmt: skip
    for side in ("champion", "challenger"):
        s = c[side]
        lines.append(
            f"{side:11}{s['version']:>8}{s['requests']:>10}{s['errors']:>8}"
            f"{_fmt(s['p50_ms'], '.2f'):>9}{_fmt(s['p99_ms'], '.2f'):>9}{s['labelled']:>10}"
            f"{_fmt(s['quality']):>9}"
        )
    if doc["mode"] == rollout.SHADOW:
        lines.append("(shadow: the challenger's ms are its batched compute per request, not a "
                     "response latency; a canary measures that)")  # fmt: skip
    if c["agreement"] is not None:
        lines.append(f"agreement {_fmt(c['agreement']['rate'])} on {c['agreement']['rows']} rows")
    if c["distance"] is not None:
        lines.append(f"prediction distance ({c['distance']['kind']}) {c['distance']['value']:.4f}")
    lines.append(f"verdict: {verdict.decision}: {'; '.join(verdict.reasons)}")
    return "\n".join(lines)
