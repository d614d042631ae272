"""Score-merge component: every planned row written exactly once, then the manifest."""

from typing import Dict, List

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def score_merge(
    plan: List[Dict],
    written: List[Dict],
    out: str,
    store_uri: str,
    run_id: str,
) -> Dict:
    """Returns the manifest (rows, parts, version). Rules: kfops.batchscore.score.merge."""
    from kfops import batchscore, config, recording, store

    with recording.recorded("score-merge", store_uri, run_id, {"out": out}) as step:
        target = store.open_store(out, config.StoreSettings.from_env())
        manifest = batchscore.merge(target, plan, written)
        step.output("manifest", rows=manifest["rows"], parts=len(manifest["parts"]))
    return manifest
