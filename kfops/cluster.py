"""What kfops names on a cluster, defined once: the storage Secret, server ConfigMap, store.

Every side reads these names from here: the pipelines (`kfp-kubernetes use_secret_as_env`), the
server manifests (`envFrom`), the scripts that create the Secret (`scripts/cluster-env.sh`
prints them), `kfops deploy` and the docs. A test renders the manifests and the compiled pipelines
and fails when one side names a key the other does not provide (tests/manifests/test_contract.py).

No kfp import: the pipelines import this module, not the other way round.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import sys
from collections.abc import Mapping

from kfops import errors

# The Secret holding the S3/MinIO settings. Its keys ARE the environment variable names the store
# client reads (kfops.config.StoreSettings.from_env), so `envFrom: secretRef`, `kubectl create
# secret --from-env-file` and kfp-kubernetes' key-to-env mapping all use the same names.
STORE_SECRET = "kfops-minio"
STORE_SECRET_KEYS = ("MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_SECURE")
# Secret key -> environment variable, as kfp-kubernetes `use_secret_as_env` wants it.
STORE_SECRET_ENV = {key: key for key in STORE_SECRET_KEYS}

# The Secret holding a SQL source's password (kfops.ingest.sql reads KFOPS_SQL_PASSWORD). Mapped
# into the ingest step as optional, so runs over files need no such Secret: kfp-kubernetes 2.17
# `use_secret_as_env(..., optional=True)` writes `SecretAsEnv.optional` into the platform spec
# (kfp/kubernetes/secret.py); the backend's driver copies it into the container's
# `secretKeyRef.optional` (kubeflow/pipelines backend/src/v2/driver/k8s.go, extendPodSpecPatch,
# "Get secret env information": `secretKeySelector.Optional = secretAsEnv.Optional`); Kubernetes
# then starts the pod without the variable when the Secret or key is absent instead of failing
# with CreateContainerConfigError. Create it with
# `kubectl create secret generic kfops-sql --from-literal=KFOPS_SQL_PASSWORD=...`.
SQL_SECRET = "kfops-sql"
SQL_SECRET_KEYS = ("KFOPS_SQL_PASSWORD",)
SQL_SECRET_ENV = {key: key for key in SQL_SECRET_KEYS}

# The server's ConfigMap (kustomize adds a content hash to the name). MODEL_VERSION empty means
# "serve the champion and follow it"; a version pins it. POLL_SECONDS: how often the champion
# pointer is checked. PASSTHROUGH: request fields the server accepts beside the model's inputs
# (comma-separated, empty: none; kfops serve --passthrough).
SERVER_CONFIGMAP = "kfops-model"
SERVER_CONFIG_KEYS = ("MODEL_NAME", "MODEL_VERSION", "STORE_URI", "POLL_SECONDS", "PASSTHROUGH")
MODEL_VERSION_KEY = "MODEL_VERSION"

# Where a compiled pipeline keeps the registry unless told otherwise: the bucket `make kind-up`
# creates in the in-cluster MinIO. A pod's local disk vanishes with the pod.
CLUSTER_STORE_URI = "s3://kfops/store"
OBJECT_STORE_SCHEMES = ("s3://",)

# Set in every KFP v2 step container by the backend's Argo compiler through the downward API
# (kubeflow/pipelines backend/src/v2/compiler/argocompiler/common.go, `commonEnvs`:
# KFP_POD_NAME <- metadata.name, KFP_POD_UID <- metadata.uid). kfp.local sets neither.
KFP_POD_ENV = ("KFP_POD_NAME", "KFP_POD_UID")


def is_object_store(uri: str) -> bool:
    """Whether a store URI names object storage that outlives any one pod."""
    return uri.startswith(OBJECT_STORE_SCHEMES)


def in_kfp_pod(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs as a step of a KFP run on a cluster."""
    env = os.environ if environ is None else environ
    return all(env.get(name) for name in KFP_POD_ENV)


def require_shared_store(store_uri: str, environ: Mapping[str, str] | None = None) -> None:
    """Refuses a pod-local store inside a KFP pod: what a step writes there dies with the pod.

    Raises:
        ConfigError: running in a KFP pod with a store that is not object storage.
    """
    if in_kfp_pod(environ) and not is_object_store(store_uri):
        raise errors.ConfigError(
            f"store_uri {store_uri!r} is a path inside this pod and would vanish with it; "
            f"run the pipeline with store_uri=s3://BUCKET/PREFIX (default {CLUSTER_STORE_URI})"
        )


def refuse_pod_local_store(store_uri: str, environ: Mapping[str, str] | None = None) -> None:
    """In a KFP pod, ends the step with one line and exit code 2 when its store is pod-local.

    A step body runs under KFP's executor, which would print a traceback for an exception; the
    pod's log should say what is wrong and how to fix it, in one line.
    """
    try:
        require_shared_store(store_uri, environ)
    except errors.ConfigError as e:
        print(f"kfops: error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None


# The git-ignored env files the overlays' secretGenerators read, and the one command that writes
# them (fresh random keys, the same in every file). `kfops deploy` names it when one is missing.
ENV_FILES = ("overlays/kind/minio/minio.env", "overlays/kserve/minio.env")
ENV_COMMAND = "make cluster-env"
IN_CLUSTER_ENDPOINT = "minio.kfops.svc.cluster.local:9000"


def read_env_file(path: pathlib.Path) -> dict[str, str]:
    """KEY=VALUE lines as kustomize and `kubectl create secret --from-env-file` read them."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def store_env(access_key: str, secret_key: str, endpoint: str = IN_CLUSTER_ENDPOINT) -> dict:
    """The storage Secret's data, key by key, in STORE_SECRET_KEYS order."""
    values = {
        "MINIO_ENDPOINT": endpoint,
        "MINIO_ACCESS_KEY": access_key,
        "MINIO_SECRET_KEY": secret_key,
        "MINIO_SECURE": "false",
    }
    return {key: values[key] for key in STORE_SECRET_KEYS}


def write_env_files(manifests: pathlib.Path) -> list[pathlib.Path]:
    """Writes the missing env files (mode 600) with one set of keys; returns the files written.

    An existing file's keys are reused, so every overlay and the in-cluster MinIO agree.
    """
    paths = [pathlib.Path(manifests) / rel for rel in ENV_FILES]
    existing = [p for p in paths if p.is_file()]
    if existing:
        values = read_env_file(existing[0])
    else:
        values = store_env(f"kfops-{secrets.token_hex(6)}", secrets.token_urlsafe(24))
    text = "".join(f"{key}={values[key]}\n" for key in STORE_SECRET_KEYS if key in values)
    written = []
    for path in paths:
        if not path.is_file():
            path.touch(mode=0o600)
            path.write_text(text)
            written.append(path)
    return written


def missing_env_file(manifests: pathlib.Path, overlay_dir: str) -> str | None:
    """A one-line hint when an overlay's env file is missing, naming the command that writes it."""
    for rel in ENV_FILES:
        if rel.startswith(overlay_dir + "/") and not (pathlib.Path(manifests) / rel).is_file():
            return f"{manifests}/{rel} is missing: run `{ENV_COMMAND}` (writes it, random keys)"
    return None


def pipeline_secret(env_file: pathlib.Path, namespace: str) -> dict:
    """The storage Secret for pipeline pods in `namespace`, from an overlay's env file."""
    values = read_env_file(pathlib.Path(env_file))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": STORE_SECRET, "namespace": namespace},
        "type": "Opaque",
        "stringData": values,
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m kfops.cluster env-files|pipeline-secret`: what the scripts call (one source)."""
    import argparse  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m kfops.cluster")
    sub = parser.add_subparsers(dest="command", required=True)
    env_files = sub.add_parser("env-files", help="write the overlays' missing env files")
    env_files.add_argument("--manifests", type=pathlib.Path, default=pathlib.Path("manifests"))
    secret = sub.add_parser("pipeline-secret", help="print the pipeline pods' storage Secret")
    secret.add_argument("--env-file", type=pathlib.Path, required=True)
    secret.add_argument("--namespace", default="kubeflow")
    args = parser.parse_args(argv)
    if args.command == "env-files":
        for path in write_env_files(args.manifests):
            print(f"wrote {path} (git-ignored; fresh random keys)")
    elif not args.env_file.is_file():
        print(f"kfops: error: {args.env_file} is missing: run `{ENV_COMMAND}`", file=sys.stderr)
        return errors.ConfigError.exit_code
    else:
        print(yaml.safe_dump(pipeline_secret(args.env_file, args.namespace), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
