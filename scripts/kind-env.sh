#!/usr/bin/env bash
# Shared settings for the kind scripts (sourced, not run). Every value can be overridden from the
# environment. Pinned versions: change them here, in one place.
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${KIND_CLUSTER:-kfops}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.30.4}"
KFP_VERSION="${KFP_VERSION:-2.17.3}"
NAMESPACE="${KFOPS_NAMESPACE:-kfops}"
KFP_NAMESPACE="${KFP_NAMESPACE:-kubeflow}"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/kfops/__init__.py")"
IMAGE="${KFOPS_IMAGE:-ghcr.io/kfops/kfops:$VERSION}"
MODEL_NAME="${MODEL_NAME:-churn}"
STORE_URI="${STORE_URI:-s3://kfops/store}"
MINIO_ENV="$ROOT/manifests/overlays/kind/minio/minio.env"
KFP_PORT="${KFP_PORT:-8080}"
MINIO_PORT="${MINIO_PORT:-9000}"
SERVER_URL="${SERVER_URL:-http://localhost:30080}"
BIN="$ROOT/.venv/bin"
PATH="$BIN:$PATH"
export PATH

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { log "missing: $tool (see docs/CLUSTER.md)"; exit 1; }
  done
}

# Port-forward in the background until the calling script exits.
port_forward() {  # namespace target local:remote
  kubectl -n "$1" port-forward "$2" "$3" >/dev/null 2>&1 &
  local pid=$!
  trap 'kill '"$pid"' 2>/dev/null || true' EXIT
  for _ in $(seq 60); do
    if (echo >"/dev/tcp/127.0.0.1/${3%%:*}") 2>/dev/null; then return 0; fi
    sleep 1
  done
  log "port-forward to $2 did not come up"
  return 1
}

# Reads the MinIO keys into the environment for kfops' store client on this machine.
minio_env() {
  set -a
  # shellcheck source=/dev/null
  . "$MINIO_ENV"
  set +a
  export MINIO_ENDPOINT="127.0.0.1:$MINIO_PORT" MINIO_SECURE=false
}
