"""`kfops serve`: serve a registered model over KServe V1 and Open Inference Protocol V2."""

from __future__ import annotations

import argparse
import errno
import socket

from kfops import config, errors, registry
from kfops import store as kstore
from kfops.commands import models


def register(subparsers) -> None:
    """Adds the `serve` command."""
    p = subparsers.add_parser(
        "serve",
        help="serve a model (champion or pinned version) over HTTP",
        description="Loads the champion (or --version) from the registry, verifies sha256, and "
        "serves V1 /v1/models/NAME:predict, V2 /v2/models/NAME/infer, health and /metrics "
        "(and V2 over gRPC with --grpc-port).",
    )
    p.add_argument(
        "--store", help="store URI holding the registry and inference logs (dir or s3://)"
    )
    p.add_argument("--model-dir", help="serve model.joblib + schema.json from a directory instead")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument(
        "--version", help="pin a version (default: the champion, followed as it changes)"
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="also serve the Open Inference Protocol over gRPC on this port (default: off; "
        "KServe uses 8081)",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument(
        "--log-sample-rate",
        type=float,
        default=1.0,
        help="fraction of requests written to the inference log (0 disables)",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=30.0,
        help="seconds between champion checks (0 disables)",
    )
    p.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024)
    p.add_argument("--max-batch", type=int, default=10_000, help="max rows per request")
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=2.0,
        help="micro-batching: longest a request waits to share one predict call with "
        "concurrent requests, only while others are under way (0 disables; default 2)",
    )
    p.add_argument(
        "--batch-max-rows", type=int, default=256, help="max rows per micro-batch (default 256)"
    )
    p.add_argument(
        "--range-check",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="reject numbers outside the training [min, max] recorded in the schema (default: "
        "off; they are served and counted in kfops_out_of_range_values_total, so drift shows)",
    )
    p.add_argument(
        "--no-domain-check",
        action="store_true",
        help="accept categories not seen in training (the model must handle them)",
    )
    p.add_argument(
        "--fast-path",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve the pipeline compiled to numpy when it is verified at load to answer as "
        "scikit-learn does (default: on; --no-fast-path always calls the sklearn pipeline)",
    )
    p.add_argument(
        "--no-admin", action="store_true", help="disable POST /v2/repository/models/NAME/load"
    )
    p.add_argument("--drain-seconds", type=float, default=20.0, help="SIGTERM grace period")
    p.add_argument("--log-flush-seconds", type=float, default=5.0)
    p.add_argument("--access-log", action="store_true", help="one JSON line per request")
    p.add_argument(
        "--challenger",
        help="run this version beside the champion (default: follow `kfops rollout start`)",
    )
    p.add_argument(
        "--rollout-mode",
        choices=("shadow", "canary"),
        default="shadow",
        help="shadow: the challenger answers every request after the response, logged only; "
        "canary: it answers --canary-share of request keys",
    )
    p.add_argument("--canary-share", type=float, default=0.1, help="canary: share of keys")
    p.add_argument(
        "--rollout-key-header",
        default="x-rollout-key",
        help="canary: header whose value keeps a caller on one version (absent: request id)",
    )
    p.add_argument(
        "--passthrough",
        action="append",
        metavar="FIELD",
        help="accept this request field beside the model's inputs (e.g. a record id): not fed "
        "to the model, logged with the request, echoed in V1 answers; repeatable or a,b",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Builds the config at the edge (S3 settings from the environment) and serves until SIGTERM."""
    # Imported here: the server stack (uvicorn, starlette, scikit-learn) should not slow down
    # every other kfops command, which all build this parser.
    from kfops.serving import server  # noqa: PLC0415

    cfg = serve_config(args)
    store = None
    if args.store:
        store = kstore.open_existing(args.store, config.StoreSettings.from_env())
        models.require_model(registry.Registry(store), args.name)
    for flag, port in (("--port", cfg.port), ("--grpc-port", cfg.grpc_port)):
        if port:
            check_port_free(cfg.host, port, flag)
    server.run(cfg, store=store, store_uri=args.store, model_dir=args.model_dir)
    return 0


def serve_config(args: argparse.Namespace):
    """The `ServeConfig` the parsed flags describe.

    Raises:
        ConfigError: a flag value is out of its range.
    """
    from kfops.serving import settings  # noqa: PLC0415

    return settings.ServeConfig(
        name=args.name,
        version=args.version or None,  # empty (MODEL_VERSION="" on a cluster): the champion
        host=args.host,
        port=args.port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        log_sample_rate=args.log_sample_rate,
        poll_seconds=args.poll_interval,
        max_body_bytes=args.max_body_bytes,
        max_batch_rows=args.max_batch,
        batch_window_ms=args.batch_window_ms,
        batch_max_rows=args.batch_max_rows,
        check_range=args.range_check,
        check_domain=not args.no_domain_check,
        fast_path=args.fast_path,
        admin=not args.no_admin,
        drain_seconds=args.drain_seconds,
        log_flush_seconds=args.log_flush_seconds,
        access_log=args.access_log,
        challenger=args.challenger or None,
        rollout_mode=args.rollout_mode,
        canary_share=args.canary_share,
        rollout_key_header=args.rollout_key_header,
        # repeatable and comma-separated; empty (PASSTHROUGH="" on a cluster): none
        passthrough=tuple(n for v in args.passthrough or () for n in v.split(",") if n),
    )


def check_port_free(host: str, port: int, flag: str) -> None:
    """Binds and releases host:port, so a port in use is one line before the model loads.

    SO_REUSEADDR as uvicorn sets it, so a port in TIME_WAIT is not taken for one in use.

    Raises:
        ConfigError: the port is in use or cannot be bound here.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise errors.ConfigError(
                    f"port {port} on {host} is already in use; pick another with {flag}"
                ) from None
            raise errors.ConfigError(
                f"cannot listen on {host}:{port} ({flag}): {e.strerror}"
            ) from None
