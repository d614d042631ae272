"""The README's S3 quick start as written: s3-up returns with the server in the background,
`source .kfops/s3/credentials.env` is all a shell needs, and s3-down stops it fast."""

import os
import subprocess
import time
from pathlib import Path

from tests.fixtures import s3 as s3_fixtures

ROOT = Path(__file__).resolve().parents[1]


def test_s3_up_in_background_credentials_file_is_enough_and_stop_is_fast(tmp_path):
    names = ("S3", "S3_GRPC", "MASTER", "MASTER_GRPC", "VOLUME", "VOLUME_GRPC", "FILER",
             "FILER_GRPC")  # fmt: skip
    ports = s3_fixtures.free_ports(len(names))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
    env.update({f"KFOPS_S3_{n}_PORT": str(p) for n, p in zip(names, ports, strict=True)})
    env.update(KFOPS_S3_DIR=str(tmp_path / "s3"), WEED=str(s3_fixtures.weed_binary()))
    script = str(ROOT / "scripts" / "s3-up.sh")
    up = subprocess.run(["bash", script, "--background"], env=env, cwd=tmp_path,
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    pid = int((tmp_path / "s3" / "weed.pid").read_text())
    try:
        assert up.returncode == 0, up.stderr
        assert "source " in up.stdout and "make s3-down" in up.stdout
        kfops = ROOT / ".venv" / "bin" / "kfops"
        shell = (
            f"source {tmp_path}/s3/credentials.env && {kfops} models list --store s3://kfops/store"
        )
        used = subprocess.run(["bash", "-c", shell], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert used.returncode == 0, used.stderr
        assert used.stdout.startswith("no models registered in s3://kfops/store")
    finally:
        started = time.monotonic()
        down = subprocess.run(["bash", script, "--stop"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        took = time.monotonic() - started
    assert down.returncode == 0, down.stderr
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    # The script gives weed 3 s after SIGTERM, then SIGKILLs it (weed can ignore SIGTERM for
    # 20 s and more; without the SIGKILL it is still alive above). Its sleeps and `kill -0`
    # polls took 5.15 s on a loaded 2-core machine: the bound is for "not 20 s", not for 3 s.
    assert took < 15, took
