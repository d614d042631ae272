"""The inference server: a protocol-agnostic data plane with KServe V1 and Open Inference V2 on top.

Modules by role: `model` (what is served and where it comes from), `validation` (requests against
the schema), `v1`/`v2` (protocol codecs), `dataplane` (validate -> predict -> outputs),
`batching` (concurrent requests share one predict call, on a worker thread), `manager` (loading
and atomic hot swap), `inference_log` (sampled Parquet logs off the request path), `metrics`
(Prometheus), `app` (routes, and errors -> HTTP in one place), `grpc_server` (the same over the
Open Inference Protocol's gRPC service, from `open_inference.proto`), `server` (uvicorn, signals,
JSON logs).
"""
