"""SQL read benchmark: kfops.ingest.sql.read against pandas.read_sql on the same PostgreSQL table.

Starts a throwaway PostgreSQL cluster (tests/fixtures/postgres.py: Debian's server, initdb into a
temp dir, 127.0.0.1), loads ROWS rows of mixed types (int8, numeric, float8, text, bool,
timestamptz, ~5% NULLs), then reads the table in fresh child processes, each way REPEAT times,
interleaved (kfops, pandas, kfops, ...) so both see the same machine load; best time of each.
Time is wall-clock of the read; memory is the child's peak RSS (ru_maxrss) minus that of a child
that imported the same modules and read nothing. Usage:

    nice .venv/bin/python bench/sql.py [ROWS]     # default 1_000_000
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.postgres import PostgresServer, _own_dir  # noqa: E402

REPEAT = 3
LOAD = """
CREATE TABLE bench AS SELECT
  g::int8 AS id,
  CASE WHEN g % 20 = 0 THEN NULL ELSE (g % 1000)::numeric(10, 2) / 7 END AS amount,
  random() AS score,
  CASE WHEN g % 20 = 1 THEN NULL ELSE 'cat_' || (g % 50) END AS category,
  (g % 3 = 0) AS flag,
  timestamptz '2026-01-01' + g * interval '1 minute' AS at
FROM generate_series(1, {rows}) g;
"""

CHILD = r"""
import json, resource, sys, time, os
import pandas, pyarrow, sqlalchemy, psycopg
from kfops.ingest import sql
mode, url = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if mode == "kfops":
    n = sql.read(url + "?table=bench").rows
elif mode == "pandas":
    password = os.environ["KFOPS_SQL_PASSWORD"]
    engine = sqlalchemy.create_engine(url.replace("kfops@", f"kfops:{password}@"))
    n = len(pandas.read_sql("SELECT * FROM bench", engine))
else:
    n = 0
print(json.dumps({"rows": n, "seconds": time.perf_counter() - t,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def child(mode: str, url: str, password: str) -> dict:
    env = {**os.environ, "KFOPS_SQL_PASSWORD": password}
    out = subprocess.run([sys.executable, "-c", CHILD, mode, url], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    root = _own_dir()
    server = PostgresServer(root / "cluster").start()
    try:
        server.sql(LOAD.format(rows=rows))
        base = child("none", server.url, server.password)["maxrss_kb"]
        runs = {"kfops": [], "pandas": []}
        for _ in range(REPEAT):  # interleaved, so both sides see the same machine load
            for mode in runs:
                runs[mode].append(child(mode, server.url, server.password))
        assert all(r["rows"] == rows for side in runs.values() for r in side)
        results = {
            mode: {
                "seconds": min(r["seconds"] for r in side),
                "peak_mb": (min(r["maxrss_kb"] for r in side) - base) / 1024,
            }
            for mode, side in runs.items()
        }
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
    k, p = results["kfops"], results["pandas"]
    print(f"rows {rows}, best of {REPEAT}, load average {os.getloadavg()[0]:.2f}")
    print(f"kfops sql.read     {k['seconds']:7.2f} s  peak +{k['peak_mb']:7.1f} MB")
    print(f"pandas.read_sql    {p['seconds']:7.2f} s  peak +{p['peak_mb']:7.1f} MB")
    print(
        f"ratio time {k['seconds'] / p['seconds']:.2f}x  memory {k['peak_mb'] / p['peak_mb']:.2f}x"
    )


if __name__ == "__main__":
    main()
