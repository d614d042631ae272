#!/usr/bin/env bash
# make kind-deploy: serve a model version on kind with the kind overlay (kfops deploy: render,
# server-side apply, wait for the rollout, roll back when not ready).
#   MODEL_VERSION=3 make kind-deploy     (default: the champion in the MinIO registry)
set -euo pipefail
# shellcheck source=scripts/kind-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/kind-env.sh"
need kubectl kfops python3
kubectl config use-context "kind-$CLUSTER" >/dev/null

version="${MODEL_VERSION:-}"
if [[ -z "$version" ]]; then
  port_forward "$NAMESPACE" svc/minio "$MINIO_PORT:9000"
  minio_env
  version="$(python3 - "$STORE_URI" "$MODEL_NAME" <<'PY'
import sys
from kfops import config, registry, store
reg = registry.Registry(store.open_store(sys.argv[1], config.StoreSettings.from_env()))
champion = reg.champion(sys.argv[2])
if champion is None:
    sys.exit(f"no champion for model {sys.argv[2]!r} in {sys.argv[1]}: train one first")
print(champion)
PY
)"
fi
log "deploying $MODEL_NAME version $version with $IMAGE"
kfops deploy --overlay kind --version "$version" --name "$MODEL_NAME" --image "$IMAGE" \
  --manifests "$ROOT/manifests" --timeout "${DEPLOY_TIMEOUT:-300}"
