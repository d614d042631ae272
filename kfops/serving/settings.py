"""Server settings: one frozen, validated dataclass built by the CLI (or a test) and passed down."""

from __future__ import annotations

import dataclasses
import math

from kfops import errors, logschema
from kfops.serving import validation


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """How one server instance behaves.

    Attributes:
        name: the model name served (and expected in every URL).
        version: pin this version; None serves the champion and follows it when it changes.
        host: interface to bind; 127.0.0.1 unless the server must be reachable from outside.
        port: TCP port (0 picks a free one; used by tests and infra-validate).
        grpc_port: serve the Open Inference Protocol's gRPC service on this port too (None,
            the default: no gRPC; KServe's convention is 8081; 0 picks a free one).
        workers: uvicorn worker processes.
        log_sample_rate: fraction of requests whose rows go to the inference log (0 disables).
        poll_seconds: how often to check the champion pointer (0 disables polling).
        max_body_bytes: larger request bodies get 413 before they are read whole.
        max_batch_rows: larger batches get 413.
        batch_window_ms: micro-batching: concurrent requests are predicted together in one
            scikit-learn call; a queued request waits at most this long for others, and only
            while other requests are known to be under way (0 disables batching). Prediction
            always runs on one worker thread, so probes and parsing go on meanwhile.
        batch_max_rows: a micro-batch never exceeds this many rows (bigger requests run alone).
        check_range: reject numbers outside the schema's training [min, max] (off by default:
            they are counted in kfops_out_of_range_values_total instead, and reach the
            inference log, so drift monitoring sees them).
        check_domain: reject strings outside the schema's categorical domain.
        fast_path: serve the pipeline compiled to numpy (see `compiled`) when it is verified to
            answer as scikit-learn does; False always calls the sklearn pipeline.
        admin: expose POST /v2/repository/models/{name}/load (reload the champion or a version).
        drain_seconds: on SIGTERM, how long in-flight requests may take to finish.
        log_flush_rows: the inference log writes a Parquet file once this many rows are queued...
        log_flush_seconds: ...or this many seconds have passed since the last write.
        log_queue_rows: bound on queued log rows; beyond it rows are dropped and counted.
        access_log: one JSON log line per request (off by default: it costs throughput).
        challenger: run this version beside the champion (kfops.serving.challenger); None
            follows the registry's rollout pointer instead, when the champion is followed.
        rollout_mode: "shadow" or "canary", for `challenger`.
        canary_share: canary: the share of request keys the challenger answers.
        rollout_key_header: canary: the header whose value keeps a caller on one version
            (absent: the request id).
        passthrough: request fields accepted beside the model's inputs (a record id): not fed
            to the model, logged with the request, echoed in V1 answers (validation.py).
    """

    name: str
    version: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int | None = None
    workers: int = 1
    log_sample_rate: float = 1.0
    poll_seconds: float = 30.0
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_rows: int = 10_000
    batch_window_ms: float = 2.0
    batch_max_rows: int = 256
    check_range: bool = False
    check_domain: bool = True
    fast_path: bool = True
    admin: bool = True
    drain_seconds: float = 20.0
    log_flush_rows: int = 10_000
    log_flush_seconds: float = 5.0
    log_queue_rows: int = 200_000
    access_log: bool = False
    challenger: str | None = None
    rollout_mode: str = "shadow"
    canary_share: float = 0.1
    rollout_key_header: str = "x-rollout-key"
    passthrough: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise errors.ConfigError(f"model name must be non-empty without '/', got {self.name!r}")
        if not 0.0 <= self.log_sample_rate <= 1.0 or math.isnan(self.log_sample_rate):
            raise errors.ConfigError(
                f"log_sample_rate must be in [0, 1], got {self.log_sample_rate}"
            )
        for field in ("port", "grpc_port"):
            value = getattr(self, field)
            if value is not None and not 0 <= value <= 65535:
                raise errors.ConfigError(f"{field} must be in [0, 65535], got {value}")
        if self.grpc_port == 0 and self.workers > 1:
            raise errors.ConfigError("grpc_port 0 (any free port) needs workers=1: they share it")
        for field in (
            "workers",
            "max_body_bytes",
            "max_batch_rows",
            "batch_max_rows",
            "log_flush_rows",
        ):
            if getattr(self, field) < 1:
                raise errors.ConfigError(f"{field} must be >= 1, got {getattr(self, field)}")
        if isinstance(self.passthrough, str) or not all(self.passthrough):
            raise errors.ConfigError(f"passthrough must name fields, got {self.passthrough!r}")
        object.__setattr__(self, "passthrough", tuple(self.passthrough))
        taken = sorted(set(self.passthrough) & set(logschema.META_COLUMNS))
        if taken:  # the inference log would write the client's text over its own column
            raise errors.ConfigError(f"passthrough {taken} are inference-log columns; rename them")
        if self.challenger is not None and self.challenger == self.version:
            raise errors.ConfigError(f"the challenger {self.challenger} is the pinned version")
        self.plan  # noqa: B018 (checks mode and share)
        if self.log_queue_rows < self.log_flush_rows:
            raise errors.ConfigError("log_queue_rows must be >= log_flush_rows")
        if not self.log_flush_seconds > 0:
            raise errors.ConfigError(f"log_flush_seconds must be > 0, got {self.log_flush_seconds}")
        for field in ("poll_seconds", "drain_seconds", "batch_window_ms"):
            if not getattr(self, field) >= 0:
                raise errors.ConfigError(f"{field} must be >= 0, got {getattr(self, field)}")

    @property
    def plan(self):
        """The rollout the flags ask for, or None (checked: mode and share)."""
        from kfops import rollout  # noqa: PLC0415 (settings stay importable without pandas)

        if self.challenger is None:
            return None
        return rollout.Plan(self.challenger, self.rollout_mode, self.canary_share)

    @property
    def policy(self) -> validation.ValidationPolicy:
        """The schema rules requests are checked against."""
        return validation.ValidationPolicy(self.check_range, self.check_domain, self.passthrough)
