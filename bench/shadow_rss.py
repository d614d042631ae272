"""RSS of `kfops serve --challenger 2` (shadow mode) and of its shadow child once both are ready.

v1 is a logistic-regression champion, v2 a 300-tree forest challenger: the server should hold
only v1, the child only v2. Usage: `.venv/bin/python bench/shadow_rss.py [DIR]` (DIR keeps the
registry between runs).
"""

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.kfops.serving.factories: the test models and rows

from kfops import registry  # noqa: E402
from kfops.store import local  # noqa: E402
from tests.kfops.serving import factories  # noqa: E402


def _rss_mib(pid: int) -> int:
    return int(subprocess.check_output(["ps", "-o", "rss=", "-p", str(pid)]).split()[0]) // 1024


def main(root: Path) -> None:
    store = local.LocalStore(root / "store")
    reg = registry.Registry(store)
    good, spec, df = factories.classifier()
    if not reg.versions("churn"):
        forest = Pipeline(
            [("pre", factories._preprocess()), ("est", RandomForestClassifier(300, random_state=0))]
        )
        forest.fit(df[spec.feature_names], df["churned"])
        factories.publish(reg, "churn", good, spec, root, promote=True)
        factories.publish(reg, "churn", forest, spec, root, promote=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["serve", "--store", str(root / "store"), "--name", "churn", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kfops.cli", *argv, "--challenger", "2", "--poll-interval", "0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    started = []
    for line in proc.stderr:  # JSON logs: the child's pid, then its readiness
        if "shadow worker started" in line:
            started.append(json.loads(line)["pid"])
        if "shadow worker ready" in line:
            break
    body = {"instances": factories.instances(df, 1)}
    for _ in range(50):
        httpx.post(f"http://127.0.0.1:{port}/v1/models/churn:predict", json=body)
    time.sleep(2)
    print(f"server RSS {_rss_mib(proc.pid)} MiB, shadow child RSS {_rss_mib(started[0])} MiB")
    proc.terminate()
    proc.wait(60)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()))
