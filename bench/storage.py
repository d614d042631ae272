"""S3 throughput of a 200 MB object: `minio` client defaults vs kfops' tuned S3Store.

Starts a local SeaweedFS S3 server with scripts/s3-up.sh (temp dir, free ports, random keys),
then, for each configuration, uploads and downloads the same 200 MB file several times and keeps
the median. Prints a side-by-side table with the ratio to the `minio` defaults, and the peak
Python memory of one upload and one download (tracemalloc) to show that memory stays bounded by
part_size * (parallel uploads + 1), whatever the object size.

Run: nice -n 10 .venv/bin/python bench/storage.py [--mb 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import minio

from kfops import config
from kfops.store import s3

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
PORT_VARS = (
    "KFOPS_S3_PORT",
    "KFOPS_S3_GRPC_PORT",
    "KFOPS_S3_MASTER_PORT",
    "KFOPS_S3_MASTER_GRPC_PORT",
    "KFOPS_S3_VOLUME_PORT",
    "KFOPS_S3_VOLUME_GRPC_PORT",
    "KFOPS_S3_FILER_PORT",
    "KFOPS_S3_FILER_GRPC_PORT",
)
# (label, part size MiB, parallel uploads); the first kfops row is the shipped default.
TUNINGS = [
    ("kfops default", s3.S3Tuning().part_size // MIB, s3.S3Tuning().parallel_uploads),
    ("kfops 16 MiB x4", 16, 4),
    ("kfops 32 MiB x4", 32, 4),
    ("kfops 16 MiB x8", 16, 8),
    ("kfops 64 MiB x2", 64, 2),
]


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def start_server(workdir: Path) -> tuple[dict[str, str], config.StoreSettings]:
    env = dict(os.environ, KFOPS_S3_DIR=str(workdir / "s3"), KFOPS_S3_BUCKET="bench")
    env.update(zip(PORT_VARS, map(str, free_ports(len(PORT_VARS))), strict=True))
    env.update(
        MINIO_ACCESS_KEY="bench-" + secrets.token_hex(4), MINIO_SECRET_KEY=secrets.token_hex(16)
    )
    env["WEED"] = str(Path(sys.executable).parent / "weed")
    subprocess.run(
        ["bash", str(ROOT / "scripts/s3-up.sh"), "--background"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    settings = config.StoreSettings(
        endpoint=f"127.0.0.1:{env['KFOPS_S3_PORT']}",
        access_key=env["MINIO_ACCESS_KEY"],
        secret_key=env["MINIO_SECRET_KEY"],
    )
    return env, settings


def timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def peak_mib(func) -> float:
    tracemalloc.start()
    func()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / MIB


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def configurations(settings, src: Path, dest: Path) -> list[tuple[str, str, object, object]]:
    """(label, parts, upload, download) for minio defaults, then each kfops tuning."""
    client = minio.Minio(settings.endpoint, settings.access_key, settings.secret_key, secure=False)
    configs = [
        (
            "minio defaults",
            "5 MiB x3",
            lambda: client.fput_object("bench", "defaults/obj", str(src)),
            lambda: client.fget_object("bench", "defaults/obj", str(dest)),
        )
    ]
    for label, part_mib, parallel in TUNINGS:
        tuning = s3.S3Tuning(part_size=part_mib * MIB, parallel_uploads=parallel)
        store = s3.S3Store.from_uri(f"s3://bench/{part_mib}x{parallel}", settings, tuning)
        configs.append(
            (
                label,
                f"{part_mib} MiB x{parallel}",
                lambda store=store: store.put_file("obj", src),
                lambda store=store: store.get_file("obj", dest),
            )
        )
    return configs


def measure(configs, src: Path, dest: Path, repeat: int) -> list[tuple[str, str, dict]]:
    """Round-robin over configurations, so load from other processes hits them all alike."""
    times = {label: {"up": [], "down": []} for label, *_ in configs}
    for _ in range(repeat):
        for label, _, up, down in configs:
            times[label]["up"].append(timed(up))
            times[label]["down"].append(timed(down))
            if sha256(dest) != sha256(src):
                raise SystemExit(f"{label}: downloaded object differs from the upload")
    rows = []
    for label, parts, up, down in configs:
        result = {key: statistics.median(values) for key, values in times[label].items()}
        result.update(up_peak=peak_mib(up), down_peak=peak_mib(down))
        rows.append((label, parts, result))
    return rows


def report(rows: list[tuple[str, str, dict[str, float]]], size_mb: float) -> None:
    base = rows[0][2]
    print(
        f"\n{size_mb:.0f} MB object, local SeaweedFS S3 (median of runs; ratio = vs minio defaults)"
    )
    head = (
        f"{'configuration':<18} {'parts':<11} {'upload MB/s':>11} {'ratio':>6} "
        f"{'download MB/s':>13} {'ratio':>6} {'peak MiB up/down':>17}"
    )
    print(head)
    print("-" * len(head))
    for label, parts, r in rows:
        up, down = size_mb / r["up"], size_mb / r["down"]
        print(
            f"{label:<18} {parts:<11} {up:>11.0f} {base['up'] / r['up']:>5.2f}x "
            f"{down:>13.0f} {base['down'] / r['down']:>5.2f}x "
            f"{r['up_peak']:>8.0f} / {r['down_peak']:<6.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="object size in MB (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfops-bench-s3-") as tmp:
        tmp = Path(tmp)
        src, dest = tmp / "object.bin", tmp / "download.bin"
        with open(src, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1_000_000))
        env, settings = start_server(tmp)
        try:
            # Warm-up: the bucket's first write allocates a volume; keep that out of the figures.
            s3.S3Store.from_uri("s3://bench/warmup", settings).put_file("obj", src)
            rows = measure(configurations(settings, src, dest), src, dest, args.repeat)
        finally:
            subprocess.run(
                ["bash", str(ROOT / "scripts/s3-up.sh"), "--stop"],
                env=env,
                check=False,
                stdout=subprocess.DEVNULL,
            )
        report(rows, args.mb)


if __name__ == "__main__":
    main()
