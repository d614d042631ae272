#!/usr/bin/env bash
# make kind-deploy: serve the model on kind with the kind overlay (kfops deploy: render,
# server-side apply, wait for the rollout as `kubectl rollout status` does, roll back when not
# ready).
#   make kind-deploy                     serve the registry's champion and follow it as it moves
#   MODEL_VERSION=3 make kind-deploy     pin version 3 (MODEL_VERSION= unpins again)
set -euo pipefail
# shellcheck source=scripts/kind-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/kind-env.sh"
need kubectl kfops
kubectl config use-context "kind-$CLUSTER" >/dev/null

pin=()
if [[ -n "${MODEL_VERSION:-}" ]]; then
  pin=(--version "$MODEL_VERSION")
fi
log "deploying $MODEL_NAME (${MODEL_VERSION:-the champion, followed}) with $IMAGE"
kfops deploy --overlay kind "${pin[@]}" --name "$MODEL_NAME" --image "$IMAGE" \
  --manifests "$ROOT/manifests" --timeout "${DEPLOY_TIMEOUT:-300}"
