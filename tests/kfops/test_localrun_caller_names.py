"""kfp's task setters name their caller without `inspect.getmodule` inside cheap_caller_names.

`kfops run` builds the training pipeline in that block (kfops.localrun.cheap_caller_names says
why: ~0.5 CPU s of start-up). The pipeline must come out the same, the setters' own error must
still name the setter, and kfp's module must get its `inspect` back. That `kfops run` builds
it in the block: tests/kfops/test_run_startup.py.
"""

import inspect

import pytest
from kfp import compiler, dsl
from kfp.dsl import pipeline_task

from kfops import localrun


@dsl.component(base_image="python:3.11")
def double(x: int) -> int:
    return 2 * x


def _sized_pipeline():
    @dsl.pipeline(name="sized")
    def sized(x: int = 1):
        task = double(x=x).set_cpu_request("1").set_cpu_limit("2").set_memory_limit("1G")
        double(x=task.output).set_display_name("second").set_memory_request("500M")

    return sized


def _compiled(pipeline, tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return path.read_text()


def test_the_pipeline_is_the_same_and_no_module_lookup_happens(tmp_path, monkeypatch):
    lookups = []
    upstream = inspect.getmodule
    monkeypatch.setattr(
        inspect, "getmodule", lambda *a, **k: lookups.append(1) or upstream(*a, **k)
    )
    plain = _compiled(_sized_pipeline(), tmp_path, "plain")
    assert lookups  # the setters look modules up without the swap: the count measures them
    lookups.clear()
    with localrun.cheap_caller_names():
        cheap = _compiled(_sized_pipeline(), tmp_path, "cheap")
    assert lookups == []
    assert cheap == plain


def test_a_setter_on_a_pipeline_task_still_names_itself():
    inner = _sized_pipeline()
    with localrun.cheap_caller_names(), pytest.raises(ValueError) as caught:

        @dsl.pipeline(name="outer")
        def outer():
            inner(x=3).set_cpu_limit("1")

    assert str(caught.value).startswith("set_cpu_limit can only be used on single-step")


def test_kfp_gets_its_inspect_back_even_after_an_error():
    with pytest.raises(RuntimeError), localrun.cheap_caller_names():
        assert pipeline_task.inspect is not inspect
        raise RuntimeError("boom")
    assert pipeline_task.inspect is inspect
