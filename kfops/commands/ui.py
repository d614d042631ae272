"""`kfops ui`: a local, read-only web UI over a store, served on 127.0.0.1."""

from __future__ import annotations

import argparse
import errno
import socket
import sys

from kfops import config, errors, store

DEFAULT_PORT = 8088  # beside `kfops serve`'s 8080


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops ui`."""
    p = subparsers.add_parser(
        "ui",
        help="browse runs, reports, comparisons, models and monitoring in a local web UI",
        description="Serves a read-only web UI over a store on 127.0.0.1: the runs table, each "
        "run's steps, parameters and reports, runs side by side, models with their versions, "
        "champion, lineage and monitoring results. No build step, no external assets.",
    )
    p.add_argument(
        "--store", default=config.LOCAL_STORE, help="store: directory or s3://bucket/prefix"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Opens the store, binds 127.0.0.1:PORT, serves until interrupted."""
    try:
        import uvicorn  # noqa: PLC0415 (the [serve] extra)

        from kfops import ui  # noqa: PLC0415 (starlette comes with the [serve] extra)
    except ImportError as e:
        raise errors.ConfigError(
            f"kfops ui needs the serve extra ({e.name} is missing): pip install 'kfops[serve]'"
        ) from e
    st = open_existing(args.store)
    sock = bind(args.port)
    print(
        f"kfops ui: http://127.0.0.1:{sock.getsockname()[1]}/ (store {st.uri}); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(ui.create_app(st), log_level="warning", access_log=False, lifespan="off")
    )
    server.run(sockets=[sock])
    return 0


def open_existing(uri: str) -> store.Store:
    """The store at `uri`; a local path that is not a directory is an error, not an empty UI.

    Raises:
        NotFound: no directory at a local path.
    """
    return store.open_existing(uri, config.StoreSettings.from_env())


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port (0: any free port), bound before anything starts.

    Raises:
        ConfigError: the port is out of range or already in use.
    """
    if not 0 <= port <= 65535:
        raise errors.ConfigError(f"--port must be 0-65535, got {port}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise errors.ConfigError(
                f"port {port} on 127.0.0.1 is already in use; pick another with --port"
            ) from None
        raise errors.ConfigError(f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from None
    sock.listen(128)
    return sock
