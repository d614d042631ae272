"""Which requests the data plane predicts inline and which go through the micro-batcher."""

import asyncio
import dataclasses

from kfops.serving import batching, dataplane, manager, metrics, model, validation
from tests.kfops.serving import factories

# The make-run model's compiled costs as `model._cost` measured them on this machine: one row
# 46 us; a batch 81 us plus 2.4 us a row.
MAKE_RUN_COST = (46e-6, 81e-6, 2.4e-6)


def _predict_calls(served, df, sizes: list[int]) -> list[tuple[int, int]]:
    """The batcher's (requests, rows) calls while answering one request of each size in turn."""
    calls = []
    batcher = batching.MicroBatcher(0.002, 256, lambda r, n: calls.append((r, n)))
    plane = dataplane.DataPlane(None, metrics.Metrics(), None, batcher)
    active = manager.Active(served, validation.Validator(served.schema), 0.0)

    async def main():
        for n in sizes:
            rows = factories.instances(df, n)
            columns = {c: [r[c] for r in rows] for c in active.validator.names}
            request = dataplane.InferRequest(columns, n)
            result = await plane.answer_async(active, request, "v1")
            assert len(result.prediction.predict) == n
        batcher.close()

    asyncio.run(main())
    return calls


def test_a_tree_models_single_rows_go_inline_and_its_batches_to_the_batcher():
    pipeline, spec, df = factories.trees("hist_gradient_boosting")
    served = model.with_fast_path(model.ServedModel("churn", "1", pipeline, spec))
    assert served.fast is not None, served.fast_note
    served = dataclasses.replace(served, fast_cost=MAKE_RUN_COST)
    assert _predict_calls(served, df, [1, 1, 100, 1, 10]) == [(1, 100), (1, 10)]


def test_a_model_without_a_fast_path_always_goes_to_the_batcher():
    pipeline, spec, df = factories.trees("hist_gradient_boosting")
    served = model.ServedModel("churn", "1", pipeline, spec)
    assert _predict_calls(served, df, [1, 3]) == [(1, 1), (1, 3)]
