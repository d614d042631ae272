"""What the kubelet does with a rendered container before it starts it: env and $(VAR) expansion.

Used to start the server exactly as a pod of the rendered Deployment would (locally, or in a
`podman kube play` pod), so a wrong key or an unset variable shows up as it would on a cluster.
"""

from __future__ import annotations

import base64
import re

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(word: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, `$$` is a literal `$`, and
    an undefined `$(VAR)` is left as it is (k8s.io/kubernetes third_party/forked/golang/expansion).
    """

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REF.sub(one, word)


def _find(objects: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def _values(obj: dict) -> dict[str, str]:
    if obj["kind"] == "Secret":
        decoded = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
        return {**decoded, **obj.get("stringData", {})}
    return dict(obj.get("data", {}))


class MissingKey(Exception):
    """What the kubelet reports as CreateContainerConfigError."""


def container_env(container: dict, objects: list[dict]) -> dict[str, str]:
    """The environment the kubelet gives the container (envFrom first, then env, in order).

    Raises:
        MissingKey: a non-optional Secret/ConfigMap or key does not exist.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            if field in source:
                obj = _find(objects, kind, source[field]["name"])
                if obj is None and not source[field].get("optional"):
                    raise MissingKey(f"{kind} {source[field]['name']} not found")
                env.update(_values(obj) if obj else {})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(item["value"], env)
            continue
        ref = item.get("valueFrom", {})
        for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            if field in ref:
                obj = _find(objects, kind, ref[field]["name"])
                values = _values(obj) if obj else {}
                if ref[field]["key"] in values:
                    env[item["name"]] = values[ref[field]["key"]]
                elif not ref[field].get("optional"):
                    raise MissingKey(f"{kind} {ref[field]['name']} has no key {ref[field]['key']}")
    return env


def argv(container: dict, env: dict[str, str]) -> list[str]:
    """command + args, expanded as the kubelet expands them."""
    return [expand(word, env) for word in [*container["command"], *container.get("args", [])]]


def set_arg(words: list[str], flag: str, value: str) -> list[str]:
    """The words with the value after `flag` replaced (e.g. another --port for a local run)."""
    i = words.index(flag)
    return [*words[: i + 1], value, *words[i + 2 :]]
