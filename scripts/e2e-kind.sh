#!/usr/bin/env bash
# make e2e-kind: the whole path on kind. Build the image, load it into the cluster, submit the
# training pipeline to KFP and wait, deploy the champion, send a prediction and print it.
set -euo pipefail
# shellcheck source=scripts/kind-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/kind-env.sh"
need kind kubectl kfops python3 curl

bash "$ROOT/scripts/kind-up.sh"

log "building $IMAGE"
make -C "$ROOT" image IMAGE="$IMAGE"
log "loading $IMAGE into kind"
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "compiling the pipelines for $IMAGE"
KFOPS_IMAGE="$IMAGE" kfops compile --out-dir "$ROOT/pipelines/compiled" \
  --components-dir "$ROOT/components/compiled"

port_forward "$KFP_NAMESPACE" svc/ml-pipeline-ui "$KFP_PORT:80"
log "submitting the training pipeline and waiting for it"
kfops submit --host "http://localhost:$KFP_PORT" --package "$ROOT/pipelines/compiled/training.yaml" \
  --experiment e2e-kind --service-account kfops-deployer \
  --param "store_uri=$STORE_URI" --param "model_name=$MODEL_NAME" \
  --wait "${RUN_TIMEOUT:-2400}"

bash "$ROOT/scripts/kind-deploy.sh"

log "asking $SERVER_URL for a prediction"
curl -fsS "$SERVER_URL/v2/health/ready" >/dev/null
port_forward "$NAMESPACE" svc/minio "$MINIO_PORT:9000"
minio_env
python3 - "$STORE_URI" "$MODEL_NAME" "$SERVER_URL" <<'PY'
import json, sys, tempfile
import httpx
from kfops import config, dataio, registry, store
uri, name, url = sys.argv[1:]
reg = registry.Registry(store.open_store(uri, config.StoreSettings.from_env()))
model = reg.load(name)
with tempfile.TemporaryDirectory() as tmp:
    folder = reg.fetch(name, model.version, tmp, [registry.REFERENCE_FILE])
    rows = dataio.read_frame(folder / registry.REFERENCE_FILE)[list(model.schema.feature_names)].head(3)
instances = json.loads(rows.to_json(orient="records"))
reply = httpx.post(f"{url}/v1/models/{name}:predict", json={"instances": instances}, timeout=30)
reply.raise_for_status()
print(json.dumps({"model": name, "version": model.version, "instances": instances,
                  "predictions": reply.json()}, indent=2))
PY
log "e2e-kind passed"
