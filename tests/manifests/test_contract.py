"""Every Secret and ConfigMap key a pipeline step, the server or the deployer names is provided.

On a cluster a missing key is CreateContainerConfigError (secretKeyRef / KFP's secretAsEnv with
optional: false) or a server that starts without its store credentials ($(VAR) left unexpanded,
envFrom silently missing a key). kfp.local ignores the platform spec and kustomize does not look
inside a Secret, so nothing else notices. Providers: the objects every overlay renders (with the
env files `make cluster-env` writes), the Secret `scripts/kind-up.sh` makes for pipeline pods, and,
for the production overlay, the Secret your secret manager must create (its keys are documented).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from kfops import cluster, deploy
from tests.manifests import conftest

# Every compiled pipeline (a new one is checked without editing a list); training first.
COMPILED = ("pipelines/compiled/training.yaml", *sorted(
    f"pipelines/compiled/{p.name}" for p in (conftest.ROOT / "pipelines/compiled").glob("*.yaml")
    if p.name != "training.yaml"))  # fmt: skip
# What the store client needs to reach S3 (kfops.config.StoreSettings.from_env; MINIO_SECURE
# defaults to false). Every pod whose store is s3:// must get these.
STORE_NEEDS = ("MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def provided(objects: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(kind, name) -> keys, for every Secret and ConfigMap among the objects."""
    out = {}
    for obj in objects:
        if obj["kind"] in ("Secret", "ConfigMap"):
            keys = {*obj.get("data", {}), *obj.get("stringData", {})}
            out[(obj["kind"], obj["metadata"]["name"])] = keys
    return out


def pipeline_violations(docs: list[dict], providers: dict) -> list[str]:
    """Keys a compiled pipeline's kubernetes platform spec maps that the Secrets do not hold."""
    problems = []
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    inputs = {
        c["executorLabel"]: set(c.get("inputDefinitions", {}).get("parameters", {}))
        for c in docs[0]["components"].values()
        if "executorLabel" in c
    }
    # every executor, not only those with a platform entry: a step left without one has no env
    for executor in sorted(set(platform) | set(inputs)):
        spec = platform.get(executor, {})
        envs = set()
        for source in spec.get("secretAsEnv", []):
            have = providers.get(("Secret", source["secretName"]))
            for pair in source["keyToEnv"]:
                envs.add(pair["envVar"])
                if source.get("optional"):
                    continue
                if have is None:
                    problems.append(f"{executor}: Secret {source['secretName']} does not exist")
                elif pair["secretKey"] not in have:
                    problems.append(
                        f"{executor}: Secret {source['secretName']} has no key {pair['secretKey']}"
                    )
        missing = sorted(set(STORE_NEEDS) - envs)
        if "store_uri" in inputs.get(executor, ()) and missing:
            problems.append(f"{executor}: no {', '.join(missing)} for the store client")
    return problems


def _containers(workload: dict) -> list[dict]:
    if workload["kind"] == "InferenceService":
        return workload["spec"]["predictor"]["containers"]
    return workload["spec"]["template"]["spec"]["containers"]


def workload_violations(objects: list[dict], providers: dict) -> list[str]:
    """Keys the rendered workloads read that the rendered (or documented) objects do not hold."""
    problems = []
    for workload in objects:
        if workload["kind"] not in ("Deployment", "InferenceService"):
            continue
        for container in _containers(workload):
            where = f"{workload['kind']}/{workload['metadata']['name']}[{container['name']}]"
            env: dict[str, str] = {}
            for item in container.get("env", []):
                ref = item.get("valueFrom", {})
                for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    if field in ref and not ref[field].get("optional"):
                        name, key = ref[field]["name"], ref[field]["key"]
                        if key not in providers.get((kind, name), set()):
                            problems.append(f"{where}: {kind} {name} has no key {key}")
                env[item["name"]] = item.get("value", "<from a reference>")
            for source in container.get("envFrom", []):
                for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                    if field not in source:
                        continue
                    keys = providers.get((kind, source[field]["name"]))
                    if keys is None and not source[field].get("optional"):
                        problems.append(f"{where}: {kind} {source[field]['name']} does not exist")
                    env.update({key: "<from envFrom>" for key in keys or ()})
            configmaps = [
                s["configMapRef"]["name"]
                for s in container.get("envFrom", [])
                if "configMapRef" in s
            ]
            values = {
                k: v
                for name in configmaps
                for k, v in _configmap(objects, name).get("data", {}).items()
            }
            words = [*container.get("command", []), *container.get("args", [])]
            for var in sorted({v for word in words for v in _VAR.findall(word)}):
                if var not in env:
                    problems.append(f"{where}: $({var}) is not set (the kubelet leaves it as is)")
            store = _expand(_arg_after(words, "--store"), values)
            if store and cluster.is_object_store(store):
                for key in STORE_NEEDS:
                    if key not in env:
                        problems.append(f"{where}: store {store} but no {key} in its env")
            if workload["metadata"]["name"] == deploy.SERVER:
                # The deployer reads and rewrites the version in the server's ConfigMap.
                if not any(
                    cluster.MODEL_VERSION_KEY in _configmap(objects, n).get("data", {})
                    for n in configmaps
                ):
                    problems.append(f"{where}: no ConfigMap with {cluster.MODEL_VERSION_KEY}")
    return problems


def _configmap(objects: list[dict], name: str) -> dict:
    return next(
        (o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name), {}
    )


def _arg_after(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words[:-1] else None


def _expand(word: str | None, values: dict) -> str | None:
    return None if word is None else _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), word)


def _compiled(rel: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((conftest.ROOT / rel).read_text()) if d]


@pytest.fixture(scope="module")
def pipeline_secret(manifests_copy) -> dict:
    """The Secret scripts/kind-up.sh applies in the pipelines' namespace, made by its command."""
    script = (conftest.ROOT / "scripts/kind-up.sh").read_text()
    assert "python3 -m kfops.cluster pipeline-secret" in script
    assert "python3 -m kfops.cluster env-files" in script
    env_file = manifests_copy / cluster.ENV_FILES[0]
    out = subprocess.run(
        [sys.executable, "-m", "kfops.cluster", "pipeline-secret", "--env-file", str(env_file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return yaml.safe_load(out)


@pytest.mark.parametrize("rel", COMPILED)
def test_contract_pipeline_secret_keys_are_provided(rel, pipeline_secret):
    providers = provided([pipeline_secret])
    assert pipeline_violations(_compiled(rel), providers) == []


@pytest.mark.parametrize("target", ["base", "kind", "kserve", "production", "kind-minio"])
def test_contract_workload_keys_are_provided(objects, target):
    providers = provided(objects[target])
    if target in ("base", "production"):
        # No Secret is generated: the secret manager (production) or you (base) create it with
        # the documented keys; test_contract_docs_name_the_secret_keys holds the docs to them.
        providers[("Secret", cluster.STORE_SECRET)] = set(cluster.STORE_SECRET_KEYS)
    assert workload_violations(objects[target], providers) == []


def test_contract_pipeline_check_catches_issue_12_mapping(pipeline_secret):
    """The mapping main had before: Secret keys endpoint/accesskey/... that no Secret holds."""
    old = {"endpoint": "MINIO_ENDPOINT", "accesskey": "MINIO_ACCESS_KEY"}
    old |= {"secretkey": "MINIO_SECRET_KEY", "secure": "MINIO_SECURE"}
    docs = _compiled(COMPILED[0])
    for spec in docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        for source in spec.get("secretAsEnv", []):
            source["keyToEnv"] = [{"secretKey": k, "envVar": v} for k, v in old.items()]
    problems = pipeline_violations(docs, provided([pipeline_secret]))
    assert "exec-ingest: Secret kfops-minio has no key accesskey" in problems


def test_contract_workload_check_catches_wrong_key_and_missing_variable(objects):
    objs = yaml.safe_load(yaml.safe_dump(objects["kind"]))  # a deep copy
    server = next(
        o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "kfops-server"
    )
    container = server["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [*container["args"], "--x", "$(NOT_SET)"]
    container["envFrom"] = container["envFrom"][:1]  # the store Secret dropped
    minio = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "minio")
    minio_env = minio["spec"]["template"]["spec"]["containers"][0]["env"]
    minio_env[1]["valueFrom"]["secretKeyRef"]["key"] = "accesskey"
    problems = "\n".join(workload_violations(objs, provided(objs)))
    assert "$(NOT_SET) is not set" in problems
    assert "store s3://kfops/store but no MINIO_ACCESS_KEY" in problems
    assert "has no key accesskey" in problems


def test_contract_docs_name_the_secret_keys():
    docs = (conftest.ROOT / "docs/CLUSTER.md").read_text()
    assert f"`{cluster.STORE_SECRET}`" in docs
    for key in cluster.STORE_SECRET_KEYS:
        assert f"`{key}`" in docs, f"docs/CLUSTER.md does not name the Secret key {key}"
