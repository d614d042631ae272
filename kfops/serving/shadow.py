"""The shadow challenger in its own process, so it never holds the server's GIL.

A Python thread predicting beside the event loop cost the champion its tail: each time the loop
released the GIL (a socket send, a syscall) the thread took it and the loop waited for the
switch interval to get it back (bench/RESULTS.md, "Shadow overhead"). Here the server hands each
shadowed request (its parsed JSON columns and the champion's answer) to a child process
(`python -m kfops.serving.shadow`) over a non-blocking pipe, in batches as the inference log
does: one pickled frame per `BATCH` requests, `BATCH_CELLS` values or `BATCH_SECONDS`, whichever
comes first, so the loop makes one write and the child wakes once per batch, not per request.
The child loads the challenger from the registry, validates and predicts the whole batch in one
call each (a fitted pipeline costs about the same for 1 row as for 32), logs both
answers as rollout events, and acks each request with one byte on a second pipe. Once loaded,
every thread of it (the predicting one and the event log's writer) runs at SCHED_IDLE
(`kfops.cpus.background`), only on CPU the server and its load leave idle (see `_background`).

Overload: the pipe is the queue (`pipe_bytes`). When it is full the batch is not shadowed and
each of its requests is counted `dropped`; nothing waits. A request the child answered, or
failed, but whose events its full event-log buffer refused (the writer had no idle CPU for long)
is counted `dropped` too: what is not in the evidence was not shadowed. A child that exits
(killed, crashed) turns shadow off: every later request is counted `off` and the server answers
as before, until the lane starts a new child (kfops.serving.challenger: after a backoff that
doubles from 1 s to 60 s). On shutdown the server sends what it holds and closes the pipe; the
child finishes, flushes its event log and exits. It ignores SIGINT and SIGTERM (a terminal's
Ctrl-C reaches the whole process group), so it drains on the pipe's end, also when the server is
killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from kfops import cpus

log = logging.getLogger("kfops.serving")
_HEAD = struct.Struct("<I")
# Acks: one per request (answered, failed, or dropped: its events were refused by the full
# event-log buffer), one after start-up (loaded, or the load failed).
ANSWERED, FAILED, DROPPED, READY, UNLOADABLE = b"a", b"f", b"d", b"r", b"x"
# One frame per this many requests, values (rows x columns) or seconds, whichever comes first: the
# inference log's figures (kfops.serving.inference_log), far below the pipe's capacity.
BATCH, BATCH_CELLS, BATCH_SECONDS = 32, 4096, 0.02
# How long the server waits for the child to drain before killing it, and the child's own deadline
# for its event writer, shorter: a cut-off drain is said by the child (rows not written), then it
# exits by itself, rather than being killed mid-write.
DRAIN_SECONDS = 10.0
_CHILD_DRAIN_SECONDS = DRAIN_SECONDS - 2.0


class ShadowProcess:
    """The server's handle on the shadow child: submit requests, count its acks.

    Args:
        spec: what the child needs to rebuild the challenger and the event log (picklable):
            store (URI; S3 credentials come from the environment, as for `--workers`), name,
            version (the challenger, loaded before the child says it is ready), policy,
            fast_path, events (EventLog keyword arguments, or None: log nothing).
        on_outcome: callback(outcome, n): n requests answered, failed, dropped or off (one
            call per batch of acks or shed jobs, not per request).
        pipe_bytes: the pipe's capacity, i.e. how much the child may fall behind.
        on_shed: callback(jobs) with the jobs the child will never see (dropped or off), after
            they were counted; the lane logs their champion answers itself.
    """

    def __init__(
        self,
        spec: dict,
        on_outcome: Callable[[str, int], None],
        pipe_bytes: int = 1 << 20,
        on_shed: Callable[[list[tuple]], None] | None = None,
    ):
        self.spec, self.on_outcome, self.pipe_bytes = spec, on_outcome, pipe_bytes
        self.on_shed = on_shed or (lambda jobs: None)
        self.proc: subprocess.Popen | None = None
        self.off = self.ready = self.loaded = False  # ready: started up; loaded: the challenger
        self.started_at = self.lost_at = 0.0  # time.monotonic() of the start and of the exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs = self._acks = -1
        self._backlog = b""  # the tail of a frame the pipe took only part of
        self._closing = self._ended = False  # ended: the child's input is closed
        self._pending: list[tuple] = []  # jobs of the next frame (see `submit`)
        self._pending_cells = 0
        self._timer: asyncio.TimerHandle | None = None
        self._due = False  # a full batch's flush is scheduled (call_soon)
        self.frames = 0  # frames written to the child (one per batch)

    @property
    def pid(self) -> int | None:
        """The child's process id (None before start)."""
        return None if self.proc is None else self.proc.pid

    @property
    def usable(self) -> bool:
        """Whether the child takes work (started, not exited, not closing)."""
        return self.proc is not None and not (self.off or self._closing)

    def start(self) -> None:
        """Starts the child; call it on the event loop's thread."""
        self._loop = asyncio.get_running_loop()
        ack_r, ack_w = os.pipe()
        env = dict(os.environ)
        # Like multiprocessing's spawn: the child imports what the server could (test models).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kfops.serving.shadow", str(ack_w)],
                stdin=subprocess.PIPE,
                pass_fds=(ack_w,),
                env=env,
            )
        finally:
            os.close(ack_w)
        self.started_at = time.monotonic()
        self._acks, self._jobs = ack_r, self.proc.stdin.fileno()
        with contextlib.suppress(OSError):  # the default 64 KiB stays if the kernel refuses
            fcntl.fcntl(self._jobs, fcntl.F_SETPIPE_SZ, self.pipe_bytes)
        self.proc.stdin.write(_frame(pickle.dumps(self.spec)))  # before going non-blocking
        self.proc.stdin.flush()
        os.set_blocking(self._jobs, False)
        self._loop.add_reader(self._acks, self._read_acks)
        log.info("shadow worker started", extra={"pid": self.proc.pid})

    def submit(self, job: tuple) -> None:
        """Queues one request for the child without waiting; the frame goes out with its batch.

        Runs on the event loop's thread, on the request path: it only appends. The batch is
        written when it holds `BATCH` requests or `BATCH_CELLS` values (from a `call_soon`
        callback, so after the answer this request is part of), else `BATCH_SECONDS` after its
        first request. A request the child will not see is counted (dropped or off) and handed
        to `on_shed`.
        """
        if not self.usable:
            self._shed([job], "off")
            return
        pending = self._pending
        pending.append(job)
        self._pending_cells += job[6] * max(1, len(job[5]))  # rows x columns
        if len(pending) >= BATCH or self._pending_cells >= BATCH_CELLS:
            if not self._due:  # one callback per batch; requests until it runs join the frame
                self._due = True
                self._loop.call_soon(self.flush_pending)
        elif self._timer is None:
            self._timer = self._loop.call_later(BATCH_SECONDS, self.flush_pending)

    def flush_pending(self) -> None:
        """Writes the queued jobs as one frame now (on the loop's thread, or with no loop)."""
        jobs = self._take_pending()
        if not jobs:
            return
        if self.off or self._ended:
            self._shed(jobs, "off")
            return
        if self._backlog:  # the pipe is full: shed, never queue in the server
            self._shed(jobs, "dropped")
            return
        frame = _frame(pickle.dumps(jobs, protocol=pickle.HIGHEST_PROTOCOL))
        try:
            written = os.write(self._jobs, frame)
        except BlockingIOError:
            self._shed(jobs, "dropped")
            return
        except OSError as e:  # EPIPE: the child is gone
            self._lost(e)
            self._shed(jobs, "off")
            return
        self.frames += 1
        if written < len(frame):
            self._backlog = frame[written:]
            self._loop.add_writer(self._jobs, self._flush)

    def _take_pending(self) -> list[tuple]:
        """The queued jobs, now the caller's; the batch's timer is cancelled."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        jobs, self._pending, self._pending_cells, self._due = self._pending, [], 0, False
        return jobs

    def _shed(self, jobs: list[tuple], outcome: str) -> None:
        self.on_outcome(outcome, len(jobs))
        self.on_shed(jobs)

    def _flush(self) -> None:
        try:
            written = os.write(self._jobs, self._backlog)
        except BlockingIOError:
            return
        except OSError as e:
            self._backlog = b""
            self._loop.remove_writer(self._jobs)
            self._lost(e)
        else:
            self._backlog = self._backlog[written:]
            if self._backlog:
                return
            self._loop.remove_writer(self._jobs)
        if self._closing:  # close() left the pipe open for this frame's tail
            self._end_input(blocking=False)

    def _read_acks(self) -> None:
        try:
            data = os.read(self._acks, 1 << 16)
        except BlockingIOError:
            return
        if not data:  # every write end closed: the child exited
            self._loop.remove_reader(self._acks)
            os.close(self._acks)
            self._lost(None)
            return
        if READY in data:
            self.ready = self.loaded = True
            log.info("shadow worker ready", extra={"pid": self.pid})
        elif UNLOADABLE in data:
            self.ready = True
            log.error(
                "shadow worker cannot load the challenger; every shadowed request fails",
                extra={"pid": self.pid, "version": self.spec.get("version")},
            )
        for outcome, byte in (("answered", ANSWERED), ("failed", FAILED), ("dropped", DROPPED)):
            n = data.count(byte)
            if n:
                self.on_outcome(outcome, n)

    def _lost(self, error: OSError | None) -> None:
        if self.off:
            return
        self.off, self.lost_at = True, time.monotonic()
        if not self._closing:
            code = None if self.proc is None else self.proc.poll()
            log.error(
                "shadow worker exited; shadow is off until it is restarted",
                extra={"pid": self.pid, "returncode": code, "error": repr(error)},
            )

    def close(self, timeout: float = DRAIN_SECONDS) -> None:
        """Ends the child's input and waits for it to drain (flush its events) and exit.

        Safe from any thread. Only the event loop writes the pipe while it runs: from another
        thread the end of input is handed to the loop, which closes the pipe once a frame the
        pipe took only part of is complete. Two writers would interleave the tail of a frame
        with a second copy of it, and the child would read garbage.
        """
        self._closing = True
        if self.proc is None:
            return
        loop = self._loop
        if loop is None or not loop.is_running():
            self._end_input(blocking=True)  # no loop: nothing else writes
        elif _running_on(loop):
            self._end_input(blocking=False)
        else:
            handed = threading.Event()

            def end() -> None:
                try:
                    self._end_input(blocking=False)
                finally:
                    handed.set()

            try:
                loop.call_soon_threadsafe(end)
            except RuntimeError:  # the loop closed since: nothing else writes
                self._end_input(blocking=True)
            else:
                if not handed.wait(timeout):  # a loop that runs no callback writes nothing
                    self._end_input(blocking=True)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("shadow worker did not drain in time; killed", extra={"pid": self.pid})
            self.proc.kill()
            self.proc.wait()

    def _end_input(self, blocking: bool) -> None:
        """Sends the queued jobs, then closes the child's input after the last frame is whole.

        On the loop (`blocking` False) or with no loop running (True).
        """
        if self._backlog and not blocking:
            return  # _flush finishes the frame and calls back
        if not blocking:
            self.flush_pending()
            if self._backlog:
                return
        elif self._pending:  # no loop: nothing else writes; the frame goes out whole, below
            jobs = self._take_pending()
            self._backlog += _frame(pickle.dumps(jobs, protocol=pickle.HIGHEST_PROTOCOL))
        if self._backlog:  # finish the partial frame so the child can parse what it has
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._jobs)
            with contextlib.suppress(OSError):
                os.set_blocking(self._jobs, True)
                while self._backlog:
                    self._backlog = self._backlog[os.write(self._jobs, self._backlog) :]
            self._backlog = b""
        self._ended = True
        with contextlib.suppress(OSError):
            self.proc.stdin.close()


def _signature(job: tuple, index: int) -> tuple:
    """What requests are batched by: the challenger, column names, each column's value types.

    The validator's dtype for a column follows its JSON value types (an int column with a null
    becomes float64, a bool column with a null object), so only requests alike in those are
    validated together: each sees the frame it would have seen alone. A request the codec found
    problems in, or whose columns are not plain lists (binary V2 tensors), goes alone.
    """
    _, pair, _, _, _, columns, _, problems = job
    if problems or not all(type(v) is list for v in columns.values()):
        return (index,)
    return (pair[1], *((name, frozenset(map(type, values))) for name, values in columns.items()))


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _frame(payload: bytes) -> bytes:
    return _HEAD.pack(len(payload)) + payload


def _frames(buffer: bytearray):
    """Pops every complete frame's payload off the front of `buffer`."""
    while len(buffer) >= _HEAD.size:
        (size,) = _HEAD.unpack_from(buffer)
        if len(buffer) < _HEAD.size + size:
            return
        yield bytes(buffer[_HEAD.size : _HEAD.size + size])
        del buffer[: _HEAD.size + size]


class _Worker:
    """The child's side: one loaded challenger version, answering what the server sends."""

    def __init__(self, spec: dict):
        # Imported here: the server's side of this module needs none of them.
        from kfops import config as kconfig  # noqa: PLC0415
        from kfops import registry  # noqa: PLC0415
        from kfops.serving import challenger, model  # noqa: PLC0415
        from kfops.serving import manager as mgr  # noqa: PLC0415
        from kfops.store import base  # noqa: PLC0415

        store = base.open_store(spec["store"], kconfig.StoreSettings.from_env())
        self.source = model.RegistrySource(registry.Registry(store))
        self.spec, self.mgr, self.challenger = spec, mgr, challenger
        self.events = None
        if spec["events"] is not None:
            self.events = challenger.EventLog(store, spec["name"], **spec["events"])
            self.events.start()
        self.active = None
        self._unpaired: set[int] = set()  # see `answer`
        try:  # the server does not load a shadow challenger: this is where it must load
            self._challenger(spec["version"])
        except Exception as e:  # noqa: BLE001 (reported; each job then fails as evidence)
            extra = {"version": spec["version"], "error": str(e)}
            log.error("challenger failed to load", extra=extra)

    def _challenger(self, version: str):
        if self.active is None or self.active.model.version != version:
            self.active = None  # a failed load must not leave the previous version answering
            manager = self.mgr.ModelManager(
                self.source, self.spec["name"], version, self.spec["policy"], None,
                self.spec["fast_path"],
            )  # fmt: skip
            self.active = manager.load(version)
        return self.active

    def answer(self, jobs: list[tuple]) -> list[bytes]:
        """Logs the champion's answer and the challenger's for each job; their ack bytes.

        Requests alike in `_signature` are validated in one call and predicted in one call, then
        split (a fitted pipeline and the validator cost about as much for 32 rows as for 1);
        when the batched call fails (one request's bad values, a model that refuses a row),
        each is retried alone, so every request gets the outcome it would have got alone, as in
        the server's micro-batcher (kfops.serving.batching). A request's `seconds` is its rows'
        share of its batch's validation and predict: the challenger's compute per request, not a
        response latency. Never raises.
        """
        events, refused = self.events, set()
        self._unpaired = refused  # jobs whose champion event was refused: no challenger event
        if events is not None:
            for i, (request_id, pair, seconds, predict, stamp, *_) in enumerate(jobs):
                if not events.record(
                    request_id, pair, pair[0], self.challenger.CHAMPION_ROLE, seconds,
                    np.asarray(predict), timestamp_ns=stamp,
                ):  # fmt: skip
                    refused.add(i)
        acks, groups = [FAILED] * len(jobs), {}
        for i, job in enumerate(jobs):
            groups.setdefault(_signature(job, i), []).append(i)
        for members in groups.values():
            self._score(jobs, members, acks)
        for i in refused:  # the pair is not in the evidence: not shadowed, whatever it answered
            acks[i] = DROPPED
        return acks

    def _score(self, jobs: list[tuple], members: list[int], acks: list[bytes]) -> None:
        """Validates and predicts `members` (indices into `jobs`) together; acks and logs each."""
        first = jobs[members[0]]
        rows = sum(jobs[i][6] for i in members)
        start = time.perf_counter()
        try:
            active = self._challenger(first[1][1])
            if len(members) == 1:
                validated = active.validator.validate(first[5], first[6], first[7])
            else:
                columns = {n: [v for i in members for v in jobs[i][5][n]] for n in first[5]}
                validated = active.validator.validate(columns, rows)
            whole = active.model.predict(validated.arrays, False).predict
        except Exception as e:  # noqa: BLE001 (a failing challenger is evidence, not an outage)
            if len(members) > 1:
                for i in members:
                    self._score(jobs, [i], acks)
                return
            if members[0] not in self._unpaired and not self._failed(first[0], first[1], start, e):
                acks[members[0]] = DROPPED  # the failure is not in the evidence either
            return
        share, offset = (time.perf_counter() - start) / max(rows, 1), 0
        for i in members:
            request_id, pair, n = jobs[i][0], jobs[i][1], jobs[i][6]
            acks[i] = ANSWERED
            if self.events is not None and i not in self._unpaired:  # no row without the champion's
                predict, role = whole[offset : offset + n], self.challenger.rollout.SHADOW
                if not self.events.record(request_id, pair, pair[1], role, share * n, predict):
                    acks[i] = DROPPED
            offset += n

    def _failed(self, request_id, pair, start: float, error: Exception) -> bool:
        """Logs the challenger's failure; False: the full event-log buffer refused it."""
        if self.events is None:
            return True
        seconds = time.perf_counter() - start
        role, name = self.challenger.rollout.SHADOW, type(error).__name__
        return self.events.record(request_id, pair, pair[1], role, seconds, error=name)

    def close(self) -> None:
        """Writes the buffered events (a drain cut off at its deadline is said in the log)."""
        if self.events is not None:
            self.events.close(_CHILD_DRAIN_SECONDS)


def _background() -> None:
    """Every thread of this process (the predicting one, the event log's writer) to SCHED_IDLE.

    sched_setscheduler(2) with pid 0 changes the calling thread only, so the writer, started
    before, is set by its thread id. At nice 10 it was the shadow's tail: each Parquet encode
    (~10k events every ~0.4 s at 12k req/s) took a nice-10 share of a busy core (weight 110 of
    1024) in whole scheduler slices, each one a stall of the server or of its load; the champion's
    p99 rose 0.97-1.12 ms at 4 wrk connections, 0.01-0.20 ms with the writer idle-class too
    (bench/RESULTS.md, "Shadow overhead"). Under sustained saturation an idle-class writer gets no
    CPU: its buffer fills and each later request is counted `dropped` (`_Worker.answer`), as
    shadow promises (the champion never pays for it). At a server's shutdown the drain comes
    after it stopped answering, on the CPU it left. When a rollout ends or leaves shadow while the
    server keeps answering, the child drains at idle class beside that load: its writer has
    `_CHILD_DRAIN_SECONDS` (8 s), then the child says in the log what it had not written
    (`InferenceLogger.close`) and exits; the server kills it only after `DRAIN_SECONDS` (10 s).
    What was not written is lost, though already counted `answered`.
    An unprivileged process may do all this: sched(7) lets a thread lower another thread's
    policy when its effective UID matches the target's real or effective UID, as within one
    process. Where SCHED_IDLE is not available: nice 19. Threads started later inherit the
    caller's policy.
    """
    policy = cpus.background()
    own = threading.get_native_id()
    for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ():
        if int(tid) == own:
            continue
        try:
            if policy == "idle":
                os.sched_setscheduler(int(tid), os.SCHED_IDLE, os.sched_param(0))
            else:
                os.setpriority(os.PRIO_PROCESS, int(tid), 19)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except OSError as e:  # refused (a seccomp profile?): it competes with the server, say so
            log.warning("shadow thread keeps its CPU priority", extra={"tid": tid, "error": str(e)})


def main(argv: list[str]) -> int:
    """The child: reads the spec, then jobs until the server closes the pipe."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    from kfops.serving import batching, server  # noqa: PLC0415

    server.configure_logging()
    batching.one_native_thread()  # batches of a few rows: OpenMP threads would only wait
    acks = int(argv[0])
    stdin, buffer = sys.stdin.fileno(), bytearray()
    worker = None
    while True:
        data = os.read(stdin, 1 << 20)
        if not data:
            break
        buffer += data
        out, jobs = [], []
        for payload in _frames(buffer):
            if worker is None:
                worker = _Worker(pickle.loads(payload))
                _background()  # after start-up: only the steady work yields to the server
                out.append(READY if worker.active is not None else UNLOADABLE)
                continue
            jobs += pickle.loads(payload)  # every frame this read brought: one batch
        if jobs:
            out += worker.answer(jobs)
        if out:  # one write per batch read: the server wakes once, not once per request
            with contextlib.suppress(OSError):  # the server is gone: drain anyway
                os.write(acks, b"".join(out))
    if worker is not None:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
