"""Warm step processes for kfp.local's subprocess runner: fork each step from a ready interpreter.

kfp.local starts every lightweight step as `sh -ec '<write the source to a temp dir>; python3 -m
kfp.dsl.executor_main ...' <source> <args>` (kfp/dsl/component_factory.py
`_get_command_and_args_for_lightweight_component`, run by kfp/local/subprocess_task_handler.py
`run_local_subprocess`), so each step pays interpreter start-up and the imports of kfp, pandas,
pyarrow and scikit-learn before any work. Here one helper process, the zygote, does those imports
once, with the environment a step would get, and then forks a child per step that does what the
`sh -ec` wrapper and `python -m` would do: the child is the step process.

A step runs warm only when nothing read at import time can differ from a cold start: the command
is kfp's wrapper around this very interpreter, the environment equals the zygote's start
environment exactly, and kfops' own import-time choice (OMP_WAIT_POLICY, from the load average,
kfops/__init__.py) comes out as it did in the zygote, whose libgomp read it. Otherwise, or when the
zygote is gone, the step runs cold through kfp's own function, and the log says why.

The zygote stays single-threaded in Python: it never runs OpenMP/BLAS work or starts threads (the
idle threads some libraries start at load, OpenBLAS's pool and pyarrow's jemalloc background
thread, have their own fork handlers). It dies with its orchestrator: EOF on its control socket,
and PR_SET_PDEATHSIG; each child dies with the zygote the same way.

This module never imports kfp (tests/test_architecture.py): the zygote names kfp's executor
module as a string, as `python -m` would.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import importlib
import importlib.util
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NoReturn

EXECUTOR_MODULE = "kfp.dsl.executor_main"
COLD_STEPS_ENV = "KFOPS_COLD_STEPS"  # "1": every step in a fresh interpreter (README, bench/)


def cold_steps() -> bool:
    """Whether warm steps are turned off (KFOPS_COLD_STEPS=1)."""
    return os.environ.get(COLD_STEPS_ENV) == "1"


# What the steps share, imported once by the zygote (kfops first: its __init__ sets the OpenMP wait
# policy before scikit-learn loads libgomp, as in a step). Not numba, evidently or uvicorn: only the
# steps that use them pay for them, and every child's RSS would count them.
ZYGOTE_IMPORTS = (
    "kfops",
    EXECUTOR_MODULE,
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "sklearn",
    "sklearn.ensemble",
    "sklearn.model_selection",
    "sklearn.metrics",
    "sklearn.impute",
    "sklearn.frozen",
    "kfops.dataio",
    "kfops.parameters",
    "kfops.recording",
    "kfops.split",
    "kfops.train",
    "kfops.evaluate",
    # kfops.train and kfops.evaluate import these inside the functions that use them, so that
    # `kfops run`'s flags load no scikit-learn (tests/kfops/test_run_startup.py).
    "kfops.decision",
    "kfops.train.setup",
    "kfops.evaluate.measures",
    "kfops.evaluate.curves",
    "kfops.evaluate.groups",
)
HEAVY = ("numba", "evidently", "uvicorn")  # never in the zygote (tests/kfops/test_warm_steps.py)

# kfp's wrapper script, as kfp/dsl/component_factory.py writes it and subprocess_task_handler
# `replace_python_executable` rewrites it ("python3" -> this interpreter). Any other command
# (another kfp version, pip installs, another interpreter) runs cold.
_WRAPPER = (
    "program_path=$(mktemp -d)\n"
    "\n"
    'printf "%s" "$0" > "$program_path/ephemeral_component.py"\n'
    "_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main "
    "                        --component_module_path "
    '                        "$program_path/ephemeral_component.py" '
    '                        "$@"\n'
)
READY_WITHIN_S = 30.0  # the zygote's imports take ~1 CPU s; past this, steps run cold
_LEN = struct.Struct("!Q")
_CODE = struct.Struct("!i")
_PR_SET_PDEATHSIG = 1


def wrapper_script(python: str) -> str:
    """The `sh -ec` script kfp.local runs for a lightweight step with interpreter `python`."""
    return _WRAPPER.replace("python3", python)


def step_arguments(full_command: Sequence[str]) -> tuple[str, list[str]] | None:
    """(source, executor arguments) when `full_command` is kfp's wrapper around this interpreter."""
    cmd = list(full_command)
    if len(cmd) < 4 or cmd[:2] != ["sh", "-ec"] or cmd[2] != wrapper_script(sys.executable):
        return None
    return cmd[3], cmd[4:]


def step_environment(env_vars: Mapping[str, str] | None, cwd: str) -> dict[str, str]:
    """The environment a cold step's Python starts with.

    kfp's {**os.environ, **env_vars} (without env_vars, Popen's child inherits the C environment),
    plus what the wrapper adds: dash's PWD (the inherited one when it names `cwd`) and _KFP_RUNTIME.
    """
    env = {**os.environ, **env_vars} if env_vars else inherited_environment()
    pwd = env.get("PWD", "")
    with contextlib.suppress(OSError):
        if os.path.isabs(pwd) and os.path.samefile(pwd, cwd):
            cwd = pwd
    return {**env, "PWD": cwd, "_KFP_RUNTIME": "true"}


def inherited_environment() -> dict[str, str]:
    """The C environment a child process inherits.

    That is os.environ plus what C code put there with setenv (GNU readline sets LINES and
    COLUMNS), which os.environ never sees.
    """
    environ = ctypes.POINTER(ctypes.c_char_p).in_dll(ctypes.CDLL(None), "environ")
    env, i = {}, 0
    while environ[i] is not None:
        key, sep, value = environ[i].partition(b"=")
        if sep:
            env.setdefault(os.fsdecode(key), os.fsdecode(value))
        i += 1
    return env


class Zygote:
    """The orchestrator's handle on one zygote process (start, run steps, stop)."""

    def __init__(self, preset: Mapping[str, str] | None = None) -> None:
        """Starts the zygote; `preset` are variables set in its environment unless already set."""
        self.cwd = os.getcwd()
        self.env = {**(preset or {}), **step_environment(None, self.cwd)}
        self._lock = threading.Lock()
        self._ready: bool | None = None  # None until the zygote said so or failed to
        self._errors = tempfile.TemporaryFile()  # the zygote's own stderr, shown if it fails
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control = ours
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _ZYGOTE_MAIN, str(theirs.fileno()), str(os.getpid())],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._errors,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self._started = time.monotonic()

    def why_cold(self, full_command: Sequence[str], env: Mapping[str, str], cwd: str) -> str:
        """Why this step cannot run warm ("" when it can)."""
        if step_arguments(full_command) is None:
            return "not kfp's lightweight-step command for this interpreter"
        if env != self.env:
            changed = sorted(k for k in {*env, *self.env} if env.get(k) != self.env.get(k))
            return "environment differs from the warm process's: " + ", ".join(changed)
        if not self.ready():
            return self.failure()
        return ""

    def ready(self) -> bool:
        """Waits (bounded) for the zygote's imports; False if it died or took too long."""
        with self._lock:
            if self._ready is None:
                left = READY_WITHIN_S - (time.monotonic() - self._started)
                self._control.settimeout(max(left, 0.01))
                try:
                    self._ready = self._control.recv(64) == b"ready"
                except OSError:
                    self._ready = False
                self._control.settimeout(None)
            return self._ready and self.process.poll() is None

    def failure(self) -> str:
        """Why the zygote can't take steps: its exit code and last stderr lines, or a timeout."""
        code = self.process.poll()
        if code is None and not self._ready:
            return f"the warm process was not ready within {READY_WITHIN_S:.0f} s"
        self._errors.seek(0)
        tail = self._errors.read().decode(errors="replace").strip().splitlines()[-3:]
        return f"the warm process exited with code {code}" + (
            ": " + " | ".join(tail) if tail else ""
        )

    def run(self, full_command: Sequence[str], env: Mapping[str, str], cwd: str) -> int | str:
        """Runs one step in a child forked from the zygote.

        Its output is printed line by line as kfp's run_local_subprocess does. Returns its exit
        code, or why the step must run cold.
        """
        source, args = step_arguments(full_command) or ("", [])
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        read_end, write_end = os.pipe()
        try:
            with self._lock:
                socket.send_fds(self._control, [b"s"], [theirs.fileno(), write_end])
        except OSError:
            for fd in (read_end, write_end):
                os.close(fd)
            ours.close()
            return "the warm process is gone"
        finally:
            theirs.close()
        os.close(write_end)  # the child holds the only write end: EOF when it exits
        with ours, open(read_end, encoding=None, errors="strict") as output:
            payload = json.dumps({"source": source, "args": args, "env": dict(env), "cwd": cwd})
            data = payload.encode("utf-8", "surrogateescape")
            try:
                ours.sendall(_LEN.pack(len(data)) + data)
                started = ours.recv(1)
            except OSError:
                started = b""
            if started == b"C":
                return "OpenMP's wait policy (kfops/__init__.py: load) differs from the zygote's"
            if started != b"R":
                return "the warm process did not take the step"
            for line in iter(output.readline, ""):
                print(line, end="")
            print("\n")  # as kfp does, to close the step's output
            code = _recv_exactly(ours, _CODE.size)
        return _CODE.unpack(code)[0] if code else 1

    def close(self) -> None:
        """Stops the zygote (EOF on its control socket; killed if it lingers).

        One that never said ready has no step child and reads no EOF until its imports end: it
        is killed at once.
        """
        self._control.close()
        if not self._ready:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._errors.close()


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def run_step(
    zygote: Zygote | None,
    full_command: list[str],
    env_vars: dict[str, str] | None = None,
    *,
    cold: Callable[..., int],
) -> int:
    """Runs a step as kfp's run_local_subprocess(full_command, env_vars) would; its exit code.

    Forked from `zygote` when it can be; else `cold` (kfp's own function) runs it, and the step's
    log says why.
    """
    if zygote is None:
        return cold(full_command=full_command, env_vars=env_vars)
    cwd = os.getcwd()
    env = step_environment(env_vars, cwd)
    why = zygote.why_cold(full_command, env, cwd)
    code = why or zygote.run(full_command, env, cwd)
    if isinstance(code, str):
        print(f"kfops: running this step in a fresh process ({code})")
        return cold(full_command=full_command, env_vars=env_vars)
    return code


_early: Zygote | None = None  # started by start_early, for the next `started` block
# What `kfops run`'s own imports add to its environment before a step runs (joblib, threadpoolctl,
# via the stage flags' kfops.push -> kfops.modelio), set with setdefault as they do: the steps
# inherit them, so a zygote started before those imports starts with them too.
RUN_IMPORTS_SET = {"KMP_INIT_AT_FORK": "FALSE", "KMP_DUPLICATE_LIB_OK": "True"}


def start_early(argv: Sequence[str]) -> None:
    """Starts the zygote for `kfops run <argv>` now, before the orchestrator's own imports.

    Its imports (~1.3 CPU s) then run on another core while the orchestrator imports kfp and
    builds the pipeline (~1.3 CPU s), instead of after it, when the first step waited ~1.5 s for
    them. Not for help, the docker runner or KFOPS_COLD_STEPS=1 (no step forks from it); one that
    no run takes is stopped at exit.
    """
    global _early  # noqa: PLW0603
    if _early is not None or cold_steps() or not forks_steps(argv):
        return
    _early = Zygote(RUN_IMPORTS_SET)
    atexit.register(_early.close)


RUNNER_FLAG = "--runner"  # `kfops run`'s (kfops/commands/run.py); its default, subprocess, forks


class _EarlyParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def forks_steps(argv: Sequence[str]) -> bool:
    """Whether `kfops run <argv>` runs its steps with the subprocess runner, as its parser reads it.

    Read by argparse itself with a parser of the options that decide it, `-h/--help` and
    RUNNER_FLAG: `kfops run`'s own needs the stage modules and kfp (the imports this start
    precedes). argparse takes an unambiguous prefix of a long option (`--runn docker`,
    `--runn=docker`) and the last value; where the whole parse succeeds, a prefix of `--runner`
    or `--help` can only be that option (no other `kfops run` option is spelled as one of its
    prefixes: tests/kfops/test_warm_steps_early.py checks every spelling against the real parser).
    A prefix the real parser finds ambiguous (`--run`: `--runs-dir`) is its own one-line error.
    """
    parser = _EarlyParser(add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument(RUNNER_FLAG, dest="runner", default="subprocess")
    try:
        known, _ = parser.parse_known_args(list(argv))
    except ValueError:  # `--runner` without a value, `--help=x`: an error for the real parser too
        return False
    return not known.help and known.runner == "subprocess"


def _take_early() -> Zygote | None:
    """The zygote start_early started, if it still fits this process (same cwd, environment)."""
    global _early  # noqa: PLW0603
    zygote, _early = _early, None
    if zygote is None:
        return None
    atexit.unregister(zygote.close)
    cwd = os.getcwd()
    if zygote.cwd != cwd or zygote.env != step_environment(None, cwd):
        zygote.close()
        return None
    return zygote


@contextlib.contextmanager
def started() -> Iterator[Zygote]:
    """A zygote for the duration of the block, stopped (with any step child) when it ends.

    The one start_early started when it fits, else a new one.
    """
    zygote = _take_early() or Zygote()
    try:
        yield zygote
    finally:
        zygote.close()


# ---------------------------------------------------------------------------------------------
# The zygote's side. It is started as `python -c _ZYGOTE_MAIN <control fd> <parent pid>` so that
# it can keep the environment Python started with before any import changes it (kfops' OpenMP
# wait policy), and names itself for peak-RSS accounting (bench/pipeline.py's hook).

_ZYGOTE_MAIN = (
    "import os, sys; env = dict(os.environ); sys.argv = ['kfops-warm-steps'] + sys.argv[1:]; "
    "from kfops import warm_steps; warm_steps.zygote_main(env)"
)


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent left before prctl took effect
        os._exit(1)


def zygote_main(start_env: dict[str, str]) -> None:
    """The zygote: imports, says ready, then forks a child per request until its control EOF."""
    control_fd, parent = int(sys.argv[1]), int(sys.argv[2])
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ctrl-C reaches the steps; the zygote goes at EOF
    control = socket.socket(fileno=control_fd)
    for name in ZYGOTE_IMPORTS:
        importlib.import_module(name)
    sys.stdout.flush()
    sys.stderr.flush()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    control.send(b"ready")
    children: dict[int, socket.socket] = {}
    try:
        while True:
            readable, _, _ = select.select([control, wake_r], [], [])
            if wake_r in readable:
                os.read(wake_r, 4096)
            _reap(children, block=False)
            if control not in readable:
                continue
            try:
                _, fds, _, _ = socket.recv_fds(control, 1, 2)
            except OSError:
                fds = []
            if len(fds) != 2:  # EOF: the orchestrator is gone or done
                for fd in fds:
                    os.close(fd)
                break
            conn, out = socket.socket(fileno=fds[0]), fds[1]
            pid = os.fork()
            if pid == 0:
                _child(conn, out, start_env, [control, wake_r, wake_w, *children.values()])
            os.close(out)
            children[pid] = conn
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(children, block=True)
    # Nothing of the zygote's own needs Python's shutdown, which with scikit-learn loaded
    # collects garbage module by module: ~0.45 s the orchestrator waited for in close().
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _reap(children: dict[int, socket.socket], *, block: bool) -> None:
    """Sends each finished child's exit code (negative: killed by that signal) to its requester."""
    while children:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sendall(_CODE.pack(os.waitstatus_to_exitcode(status)))
            conn.close()


def _child(conn: socket.socket, out: int, start_env: dict[str, str], inherited: list) -> None:
    """The step process: what `sh -ec <kfp's wrapper>` and `python -m kfp.dsl.executor_main` do."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _die_with_parent(os.getppid())
        for held in inherited:
            held.close() if isinstance(held, socket.socket) else os.close(held)
        request = _read_request(conn)
        if not _imports_as_cold(start_env):
            conn.sendall(b"C")
            os._exit(0)
        conn.sendall(b"R")
        _as_fresh_process(out, request)
    except BaseException:  # noqa: BLE001 (no step ran: the orchestrator runs it cold)
        os._exit(1)
    code = 1
    try:
        code = _run_executor()
    finally:
        os._exit(_exit(code))


def _read_request(conn: socket.socket) -> dict:
    size = _LEN.unpack(_recv_exactly(conn, _LEN.size))[0]
    return json.loads(_recv_exactly(conn, size).decode("utf-8", "surrogateescape"))


def _imports_as_cold(start_env: dict[str, str]) -> bool:
    """Whether a cold start would have imported as the zygote did.

    Puts back the environment Python started with (the orchestrator checked it is the step's) and
    makes kfops' import-time OpenMP choice again from today's load average: True when it comes out
    as it did in the zygote, whose libgomp read it at load.
    """
    zygote_policy = os.environ.get("OMP_WAIT_POLICY")
    os.environ.clear()
    os.environ.update(start_env)
    import kfops  # noqa: PLC0415

    importlib.reload(kfops)  # re-runs kfops/__init__'s import-time environment choice
    return os.environ.get("OMP_WAIT_POLICY") == zygote_policy


def _as_fresh_process(out: int, request: dict) -> None:
    """Makes this process look like `sh -ec <wrapper>` then `python -m kfp.dsl.executor_main`.

    Stdout and stderr to the orchestrator's pipe, the source in a fresh temp dir, the working
    directory, sys.argv and sys.path as the cold process has them.
    """
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    encoding, errors = sys.stdout.encoding, sys.stdout.errors
    sys.stdout = sys.__stdout__ = open(1, "w", encoding=encoding, errors=errors, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", buffering=1, encoding=encoding, errors="backslashreplace", closefd=False
    )
    sys.stdin = sys.__stdin__ = open(0, encoding=encoding, closefd=False)  # noqa: SIM115
    os.chdir(request["cwd"])
    program_path = tempfile.mkdtemp(prefix="tmp.", dir=os.environ.get("TMPDIR") or "/tmp")
    module_path = os.path.join(program_path, "ephemeral_component.py")
    with open(module_path, "wb") as f:
        f.write(os.fsencode(request["source"]))
    spec = importlib.util.find_spec(EXECUTOR_MODULE)
    sys.argv = [spec.origin, "--component_module_path", module_path, *request["args"]]
    sys.path[0] = os.getcwd()
    if "numpy" in sys.modules:  # a fresh process seeds numpy's global generator from the OS
        sys.modules["numpy"].random.seed()


def _run_executor() -> int:
    """Runs kfp's executor main as `python -m` would; its exit code."""
    import runpy  # noqa: PLC0415

    try:
        runpy.run_module(EXECUTOR_MODULE, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())
        return -signal.SIGINT
    except BaseException:  # noqa: BLE001 (as Python's top level: traceback, exit code 1)
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def _exit(code: int) -> int:
    """Python's shutdown for the step process; the status to leave with.

    Threads joined, atexit handlers run, streams flushed. A step interrupted by ctrl-C ends by
    SIGINT, as Python does.
    """
    with contextlib.suppress(BaseException):
        threading._shutdown()  # noqa: SLF001 (what Py_Finalize does first)
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()  # noqa: SLF001
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code & 0xFF
