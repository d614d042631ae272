#!/usr/bin/env bash
# make kind-up: a kind cluster with Kubeflow Pipelines (standalone, pinned) and the kfops MinIO.
# Needs docker (or podman with KIND_EXPERIMENTAL_PROVIDER=podman), kind, and network access.
set -euo pipefail
# shellcheck source=scripts/kind-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/kind-env.sh"
need kind kubectl python3

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "kind cluster $CLUSTER exists"
else
  log "creating kind cluster $CLUSTER ($KIND_NODE_IMAGE)"
  # NodePort 30080 (the server in the kind overlay) is published on localhost:30080.
  kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --wait 120s --config - <<'KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: 30080
        hostPort: 30080
        protocol: TCP
KIND
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

log "installing Kubeflow Pipelines $KFP_VERSION (standalone)"
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$KFP_VERSION"
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$KFP_VERSION"

# The storage Secret's env files (names and keys: kfops.cluster), kept if they exist.
python3 -m kfops.cluster env-files --manifests "$ROOT/manifests"

log "starting MinIO in namespace $NAMESPACE"
kubectl apply -k "$ROOT/manifests/overlays/kind/minio"
# Pipeline steps read the same Secret, same keys, through kfp-kubernetes use_secret_as_env.
kubectl create namespace "$KFP_NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
python3 -m kfops.cluster pipeline-secret --env-file "$MINIO_ENV" --namespace "$KFP_NAMESPACE" \
  | kubectl apply -f -
# The in-cluster deploy step's least-privilege identity.
kubectl apply -k "$ROOT/manifests/deployer"

kubectl -n "$NAMESPACE" rollout status deployment/minio --timeout=300s
port_forward "$NAMESPACE" svc/minio "$MINIO_PORT:9000"
minio_env
python3 - "$STORE_URI" <<'PY'
import os, sys
from minio import Minio
bucket = sys.argv[1].removeprefix("s3://").split("/", 1)[0]
client = Minio(os.environ["MINIO_ENDPOINT"], os.environ["MINIO_ACCESS_KEY"],
               os.environ["MINIO_SECRET_KEY"], secure=False)
if not client.bucket_exists(bucket):
    client.make_bucket(bucket)
print(f"bucket {bucket} ready")
PY

log "waiting for Kubeflow Pipelines (first start pulls images: several minutes)"
kubectl -n "$KFP_NAMESPACE" wait --for=condition=Available deployment --all --timeout=1200s
log "ready: kubectl -n $KFP_NAMESPACE port-forward svc/ml-pipeline-ui $KFP_PORT:80, then http://localhost:$KFP_PORT"
