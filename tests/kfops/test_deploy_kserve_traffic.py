"""A KServe canary promoted or pinned by `kfops deploy` changes only the traffic split: Knative
makes no new revision, so the rollout must not wait for one (issue #19, docs/CLUSTER.md "Canary").

KServe writes canaryTrafficPercent into the Knative Service's route only, not its revision
template (pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go,
createKnativeService), and Knative makes a revision only when the template changes. FakeKube
makes one on every new generation; KnativeKube below makes one only when the template changes.
"""

import copy

from kfops import deploy
from tests.kfops.test_deploy import FakeClock, FakeKube, _render, manifests  # noqa: F401

ISVC = ("serving.kserve.io/v1beta1", "InferenceService", "kfops", deploy.SERVER)


class KnativeKube(FakeKube):
    """FakeKube whose InferenceService makes a revision only when its template changes."""

    def _isvc_tick(self, key, obj):
        state = self.controllers.get(key)
        template = copy.deepcopy(obj["spec"]["predictor"])
        template.pop("canaryTrafficPercent", None)
        if (
            state is not None
            and state["observed"] < obj["metadata"]["generation"]
            and state["template"] == template
        ):
            state["observed"] = obj["metadata"]["generation"]  # route updated, no revision
            return self._isvc_status(obj, state)
        status = super()._isvc_tick(key, obj)
        self.controllers[key]["template"] = template
        return status


def _traffic(api):
    predictor = api.get(*ISVC)["status"]["components"]["predictor"]
    return predictor["latestReadyRevision"], {
        t["revisionName"]: t["percent"] for t in predictor["traffic"]
    }


def _canary(manifests):  # noqa: F811 (the fixture)
    api, clock = KnativeKube(), FakeClock()
    deploy.rollout(api, _render(manifests, version="1", overlay="kserve"), 30, clock, clock.sleep)
    objects = _render(manifests, version="2", overlay="kserve", canary_percent=10)
    deploy.rollout(api, objects, 30, clock, clock.sleep)
    latest, traffic = _traffic(api)
    assert traffic == {latest: 10, "kfops-server-predictor-00001": 90}
    return api, clock, latest


def test_promoting_a_kserve_canary_needs_no_new_revision(manifests):  # noqa: F811
    api, clock, canary = _canary(manifests)
    applied = len(api.applied)
    result = deploy.rollout(
        api, _render(manifests, version="2", overlay="kserve"), 30, clock, clock.sleep
    )
    assert (result.version, result.previous_version) == ("2", "2")
    assert _traffic(api) == (canary, {canary: 100})
    workloads = [a for a in api.applied[applied:] if a[1] == "InferenceService"]
    assert len(workloads) == 1, "applied once: no rollback re-apply"


def test_pinning_a_kserve_canary_to_zero_needs_no_new_revision(manifests):  # noqa: F811
    api, clock, canary = _canary(manifests)
    objects = _render(manifests, version="2", overlay="kserve", canary_percent=0)
    deploy.rollout(api, objects, 30, clock, clock.sleep)
    assert _traffic(api) == (canary, {canary: 0, "kfops-server-predictor-00001": 100})


def test_a_new_version_after_a_canary_still_waits_for_its_revision(manifests):  # noqa: F811
    api, clock, canary = _canary(manifests)
    deploy.rollout(api, _render(manifests, version="3", overlay="kserve"), 30, clock, clock.sleep)
    latest, traffic = _traffic(api)
    assert latest == "kfops-server-predictor-00003" and traffic == {latest: 100}
