"""A corpus of bad requests, each answered 4xx naming the problem; and a fuzz run with zero 5xx."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kfops.serving import factories

V1 = "/v1/models/churn:predict"
V2 = "/v2/models/churn/infer"
GOOD = {"tenure": 5, "charges": 70.5, "plan": "plus", "promo": False}
JSON_HEADERS = {"content-type": "application/json"}


def _v1(**changes):
    return {"instances": [{**GOOD, **changes}]}


def _v2(mutate):
    inputs = factories.v2_inputs([GOOD, GOOD])
    mutate({t["name"]: t for t in inputs}, inputs)
    return {"inputs": inputs}


def _drop(name):
    def mutate(by_name, inputs):
        inputs.remove(by_name[name])

    return mutate


def _set(name, **fields):
    def mutate(by_name, inputs):
        by_name[name].update(fields)

    return mutate


# (id, path, raw body or JSON object, headers, expected status, substrings the error must contain)
CORPUS = [
    ("malformed-json", V1, b'{"instances": [', JSON_HEADERS, 400, ["not valid JSON"]),
    ("nan-literal", V1, b'{"instances": [{"tenure": NaN}]}', JSON_HEADERS, 400, ["NaN", "null"]),
    (
        "infinity-literal",
        V2,
        b'{"inputs": [{"data": [Infinity]}]}',
        JSON_HEADERS,
        400,
        ["Infinity"],
    ),
    (
        "wrong-content-type",
        V1,
        b"tenure=5",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        ["application/x-www-form-urlencoded", "application/json"],
    ),
    ("empty-body", V1, b"", JSON_HEADERS, 400, ["empty body"]),
    ("body-not-object", V1, [1, 2], None, 400, ["JSON object"]),
    ("missing-instances", V1, {"rows": []}, None, 400, ["'rows'", "instances"]),
    ("empty-instances", V1, {"instances": []}, None, 400, ["instances", "non-empty"]),
    (
        "missing-input",
        V1,
        {"instances": [{"tenure": 5, "charges": 1.0, "promo": True}]},
        None,
        400,
        ["'plan'", "missing"],
    ),
    ("extra-input", V1, _v1(coupon="X"), None, 400, ["'coupon'", "unexpected", "rows [0]"]),
    ("wrong-type-string", V1, _v1(tenure="five"), None, 400, ["'tenure'", "type", "'five'"]),
    ("wrong-type-bool", V1, _v1(charges=True), None, 400, ["'charges'", "boolean"]),
    ("wrong-type-object", V1, _v1(promo={"a": 1}), None, 400, ["'promo'", "object"]),
    ("null-not-allowed", V1, _v1(tenure=None), None, 400, ["'tenure'", "null"]),
    ("huge-integer", V1, _v1(tenure=10**30), None, 400, ["'tenure'", "range"]),
    ("fractional-int", V1, _v1(tenure=2.5), None, 400, ["'tenure'", "fraction"]),
    ("unknown-category", V1, _v1(plan="gold"), None, 400, ["'plan'", "domain", "'gold'"]),
    ("unicode-junk-value", V1, _v1(plan="\u202e\U0001f4a9\x00zz"), None, 400, ["'plan'", "domain"]),
    (
        "unicode-junk-key",
        V1,
        _v1(**{"t\u00e9nure\U0001f600": 1}),
        None,
        400,
        ["unexpected", "t\u00e9nure"],
    ),
    (
        "invalid-utf8",
        V1,
        b'{"instances": [{"plan": "\xff\xfe"}]}',
        JSON_HEADERS,
        400,
        ["not valid JSON"],
    ),
    (
        "lone-surrogate",
        V1,
        b'{"instances": [{"plan": "\\ud800"}]}',
        JSON_HEADERS,
        400,
        ["not valid JSON"],
    ),
    ("list-wrong-length", V1, {"instances": [[5, 70.5, "plus"]]}, None, 400, ["shape", "4 values"]),
    (
        "mixed-instances",
        V1,
        {"instances": [GOOD, [1, 2, 3, 4]]},
        None,
        400,
        ["instances", "rows [1]"],
    ),
    (
        "bad-parameters",
        V1,
        {**_v1(), "parameters": {"probabilities": "yes"}},
        None,
        400,
        ["parameters"],
    ),
    ("huge-batch", V1, {"instances": [GOOD] * 501}, None, 413, ["501", "limit of 500"]),
    (
        "huge-body",
        V1,
        {"instances": [GOOD], "pad": "x" * 250_000},
        None,
        413,
        ["limit of 200000 bytes"],
    ),
    (
        "v2-wrong-datatype",
        V2,
        _v2(_set("tenure", datatype="BYTES")),
        None,
        400,
        ["'tenure'", "BYTES"],
    ),
    ("v2-shape-mismatch", V2, _v2(_set("charges", shape=[3])), None, 400, ["'charges'", "shape"]),
    (
        "v2-row-count-disagree",
        V2,
        _v2(_set("plan", shape=[1], data=["pro"])),
        None,
        400,
        ["row count"],
    ),
    ("v2-missing-input", V2, _v2(_drop("promo")), None, 400, ["'promo'", "missing"]),
    ("v2-bad-shape", V2, _v2(_set("promo", shape=[2, 2])), None, 400, ["'promo'", "[n, 1]"]),
    (
        "v2-unknown-output",
        V2,
        {**_v2(lambda b, i: None), "outputs": [{"name": "logits"}]},
        None,
        400,
        ["logits"],
    ),
    ("v2-no-inputs", V2, {"inputs": []}, None, 400, ["inputs"]),
    ("unknown-model", "/v1/models/other:predict", _v1(), None, 404, ["'other'", "'churn'"]),
    (
        "unknown-version",
        "/v2/models/churn/versions/7/infer",
        _v2(lambda b, i: None),
        None,
        404,
        ["'7'", "version"],
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "needles"),
    [c[1:] for c in CORPUS],
    ids=[c[0] for c in CORPUS],
)
def test_bad_request_answers_4xx_naming_problem(clf_server, path, body, headers, status, needles):
    if isinstance(body, bytes):
        r = clf_server.client.post(path, content=body, headers=headers)
    else:
        r = clf_server.client.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    message = r.json()["error"]
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_bad_request_problems_name_every_field_and_row(clf_server):
    body = {"instances": [GOOD, {**GOOD, "tenure": -1, "plan": "gold"}, {**GOOD, "tenure": "x"}]}
    problems = clf_server.client.post(V1, json=body).json()["problems"]
    assert {(p["field"], p["rule"], tuple(p["rows"])) for p in problems} == {
        ("tenure", "type", (2,)),
        ("plan", "domain", (1,)),
    }


def test_out_of_range_value_is_served_and_counted_by_default(clf_server):
    def counted(text):
        needle = 'kfops_out_of_range_values_total{feature="tenure",model="churn",side="above"}'
        lines = [x for x in text.splitlines() if x.startswith(needle)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    before = counted(clf_server.client.get("/metrics").text)
    body = {"instances": [{**GOOD, "tenure": 500}, GOOD, {**GOOD, "tenure": 73}]}
    r = clf_server.client.post(V1, json=body)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 3
    assert counted(clf_server.client.get("/metrics").text) - before == 2


def test_out_of_range_value_answers_400_when_range_check_on(serve, clf):
    srv = serve(*clf[:2], check_range=True, log_sample_rate=0)
    body = {"instances": [GOOD, {**GOOD, "tenure": 500}]}
    r = srv.client.post(V1, json=body)
    assert r.status_code == 400, r.text
    assert [(p["field"], p["rule"], p["rows"]) for p in r.json()["problems"]] == [
        ("tenure", "range", [1])
    ]
    assert "500" in r.json()["error"]


def test_chunked_body_over_limit_answers_413(clf_server):
    def chunks():
        yield b'{"instances": ['
        for _ in range(5000):
            yield json.dumps(GOOD).encode() + b","
        yield b"]}"

    r = clf_server.client.post(V1, content=chunks(), headers=JSON_HEADERS)
    assert r.status_code == 413 and "200000" in r.json()["error"]


def test_wrong_method_answers_405_json(clf_server):
    r = clf_server.client.get(V2)
    assert r.status_code == 405 and "GET" in r.json()["error"]


def test_server_still_answers_after_bad_requests(clf_server):
    clf_server.client.post(V1, content=b"\x00\xff" * 100, headers=JSON_HEADERS)
    assert clf_server.client.post(V1, json=_v1()).status_code == 200


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_feature_value = _scalars | st.lists(_scalars, max_size=2)
_instance = st.dictionaries(st.sampled_from([*GOOD, "extra"]), _feature_value, max_size=6)
_tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from([*GOOD, "extra"]),
        "shape": st.lists(st.integers(-1, 3), max_size=3),
        "datatype": st.sampled_from(["INT64", "FP32", "BYTES", "BOOL", "FP64", "junk"]),
        "data": st.lists(_feature_value, max_size=4),
    }
)
_bodies = st.one_of(
    _json.map(lambda b: ("/v1/models/churn:predict", b)),
    _json.map(lambda b: ("/v2/models/churn/infer", b)),
    st.lists(_instance | st.lists(_feature_value, max_size=5), max_size=4).map(
        lambda xs: ("/v1/models/churn:predict", {"instances": xs})
    ),
    st.lists(_tensor, max_size=5).map(lambda ts: ("/v2/models/churn/infer", {"inputs": ts})),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=_bodies)
def test_fuzzed_bodies_never_answer_5xx(clf_server, case):
    path, body = case
    r = clf_server.client.post(path, json=body)
    assert r.status_code < 500, (body, r.text)
    assert "error" in r.json() or r.status_code == 200
