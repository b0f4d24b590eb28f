"""CPU-bound steps (feed parsing, extraction, fingerprints) off the event loop.

A pass with little work runs them in a thread of their own (one: CPU-bound jobs
in several threads of one process only contend), which costs nothing to start; once
a pass has enough of them to pay for it, a pool of processes sized to the cores
is started in the background (jobs keep running on that thread meanwhile) and takes
over when it is ready, so that parsing and extraction use every core and the
event loop only waits. Workers are started with ``forkserver`` and import the heavy
modules once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import util as mp_util
from typing import Any

from monitor.logs import LogSettings, current_settings, setup_worker_logging

log = logging.getLogger("monitor.workers")

# How long a stop waits for the fork server to exit by itself before killing it.
FORK_SERVER_GRACE = 2.0
# What the workers run, imported once by the fork server: the parsers, the
# extractor, and the fingerprints and rules of ``process`` (never the orchestrator).
PRELOAD = ["monitor.pipeline.parse", "monitor.text.extract", "monitor.pipeline.process"]


class Workers:
    def __init__(self, processes: int | None = None, *, start_after: int = 8):
        """``processes``: 0 or None for one per core, 1 for no pool at all.
        ``start_after``: the pool starts once this many jobs were asked for."""
        self.processes = processes or os.cpu_count() or 1
        self.start_after = start_after
        self._jobs = 0
        self._pool: ProcessPoolExecutor | None = None
        # Without the pool (none asked for, or not ready yet), jobs run on one thread
        # of their own: CPU-bound jobs in several threads of one process contend for
        # the interpreter's lock and the caches (six threads cost a third more CPU per
        # extraction than one, bench/RESULTS.md).
        self._thread: ThreadPoolExecutor | None = None
        self._starter: threading.Thread | None = None
        self._started = False

    def _start_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self._started = True
        pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=context,
                                   initializer=_init_worker,
                                   initargs=(os.getpid(), current_settings()))
        # The first job starts a worker, which waits for the fork server's imports of
        # the heavy modules (about a second): jobs go to threads until it answers.
        pool.submit(_call, int, (), {}).result()
        return pool

    def _start_in_background(self) -> None:
        try:
            self._pool = self._start_pool()
        except Exception as exc:  # noqa: BLE001 - any failure to start means no pool
            self._without_pool(exc)

    def _without_pool(self, exc: Exception) -> None:
        # No pool (a frozen or embedded interpreter, no /dev/shm...): the work still
        # gets done, on the work thread.
        log.warning("cannot start worker processes (%s); working in threads",
                    exc.__class__.__name__)
        self.processes = 1

    def _ensure_pool(self) -> ProcessPoolExecutor | None:
        """The pool, once it is ready; None before (the job runs in a thread). The
        pool is started in the background once enough jobs were asked for, so that
        no job waits for its start."""
        if self.processes <= 1 or self._jobs < self.start_after:
            return self._pool
        if self._pool is None and (self._starter is None or not self._starter.is_alive()):
            try:
                _start_fork_server()
            except Exception as exc:  # noqa: BLE001 - any failure to start means no pool
                self._without_pool(exc)
                return None
            self._starter = threading.Thread(target=self._start_in_background,
                                             name="worker-pool-start", daemon=True)
            self._starter.start()
        return self._pool

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker; ``fn`` must be a module-level function."""
        self._jobs += 1
        pool = self._ensure_pool()
        loop = asyncio.get_running_loop()
        if pool is None:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="work")
            return await loop.run_in_executor(self._thread, _call, fn, args, kwargs)
        try:
            return await loop.run_in_executor(pool, _call, fn, args, kwargs)
        except BrokenProcessPool:
            # A worker died (out of memory on a hostile page, say): that job is
            # lost, the pool is replaced, the pass goes on.
            log.warning("a worker process died; restarting the pool")
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self, *, now: bool = False) -> None:
        """Shut the pool down: after the jobs running finish, or, ``now`` (a stop, an
        interrupt: nobody waits for their results), at once. Then the fork server
        and the resource tracker are stopped and reaped too (``_stop_helpers``). A
        pool still starting is waited for first (about a second), then closed."""
        starter, self._starter = self._starter, None
        if starter is not None:
            starter.join()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=not now, cancel_futures=now)
        if self._pool is None:
            if self._started:
                # A pool closed at once earlier may still hold semaphores: collected
                # first, they unregister before the resource tracker is stopped.
                gc.collect()
                _stop_helpers()
            return
        pool, self._pool = self._pool, None
        processes: list = []
        if now:
            terminate = getattr(pool, "terminate_workers", None)     # Python 3.14+
            if terminate is not None:
                terminate()
            else:
                # Before 3.14 the executor offers no way to stop a running job; its
                # process table is the seam (a job's worker dies, the pool with it).
                processes = list((getattr(pool, "_processes", None) or {}).values())
                wakeup = getattr(pool, "_executor_manager_thread_wakeup", None)
                calls = getattr(pool, "_call_queue", None)
                _quiet_broken_pool_race()
                pool.shutdown(wait=False, cancel_futures=True)
                for process in processes:
                    process.terminate()
                # Jobs queued for workers that are gone would hold the process at
                # exit: the queue's feeder thread blocks on a pipe nobody reads, and
                # multiprocessing joins it (seen as a daemon hanging after Ctrl-C).
                if calls is not None:
                    calls.cancel_join_thread()
                pool.shutdown(wait=True, cancel_futures=True)
                _forget_wakeup(wakeup)
                return
        pool.shutdown(wait=True, cancel_futures=True)
        # The pool's queues hold semaphores registered with the resource tracker;
        # collected first, they unregister themselves, and the tracker stops without
        # a "leaked semaphore" warning.
        del pool, processes
        gc.collect()
        _stop_helpers()


def _quiet_broken_pool_race() -> None:
    """Python 3.11's pool manager thread, finding its workers terminated, sets an
    exception on every pending job, cancelled ones too, and dies of the
    InvalidStateError that raises (fixed in later Pythons). Nobody waits for those
    jobs after a stop, so that one error is not reported as a crash."""

    previous = threading.excepthook
    if getattr(previous, "_quiets_broken_pool", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        frames = []
        t = args.exc_traceback
        while t is not None:
            frames.append(t.tb_frame.f_code.co_name)
            t = t.tb_next
        if (args.exc_type is not None and args.exc_type.__name__ == "InvalidStateError"
                and "terminate_broken" in frames):
            return
        previous(args)

    hook._quiets_broken_pool = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def _forget_wakeup(wakeup: object) -> None:
    """Python 3.11's exit hook wakes every pool's manager thread through a pipe that
    a pool broken by terminated workers has closed already, and prints "Exception
    ignored ... Bad file descriptor": the closed pool is taken off its list."""
    from concurrent.futures import process

    wakeups = getattr(process, "_threads_wakeups", None)
    if wakeup is None or wakeups is None:
        return
    for thread, known in list(wakeups.items()):
        if known is wakeup:
            wakeups.pop(thread, None)


def _start_fork_server() -> None:
    """Start the fork server with Ctrl-C ignored.

    Ctrl-C reaches every process of the terminal's process group. A process
    started with SIGINT ignored keeps it ignored, and so does every worker forked
    from it, from its first instruction: none prints a KeyboardInterrupt
    traceback or sends one back as a job's result. The process that made the pool
    decides how to stop, and shuts the pool down. Only the main thread may change
    a signal's handler; elsewhere each worker's initializer does it (a worker
    started at the moment of a Ctrl-C may then still see it)."""
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()        # spawns it; the imports happen over there
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker(owner: int, logging_settings: LogSettings) -> None:

    # Ctrl-C reaches the whole process group: the daemon stops the pool itself, and a
    # worker's KeyboardInterrupt traceback would only litter the log.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_worker_logging(logging_settings)
    _die_with_parent(owner)


def _die_with_parent(owner: int) -> None:
    """A worker exits when the process that made the pool dies, even by SIGKILL, so a
    killed daemon leaves no orphans. Workers are children of the fork server, not of
    the daemon, and hold the fork server alive themselves: so each one watches the
    daemon's pid (and, on Linux, also dies with its direct parent). It ignores
    Ctrl-C (see _start_fork_server)."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="watch-owner", daemon=True).start()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


# Set once a fork server had to be killed (see _stop_fork_server): the resource
# tracker is then left to exit with the process.
_tracker_left = False


def _stop_helpers() -> None:
    """Stop and reap the fork server and the resource tracker, which multiprocessing
    otherwise leaves to notice the end of the process on their own: they would outlive
    it as orphans, and the CPU of the fork server's reaped workers, which is charged to
    the fork server, would never be charged to the run (``time``, cgroups and process
    accounting would miss it). Private interfaces, hence the guard: without them the
    helpers still exit by themselves, only unaccounted."""
    global _tracker_left
    try:
        from multiprocessing import forkserver, resource_tracker

        # Workers killed with the fork server leave the pool's semaphores registered:
        # the tracker, stopped now, would warn of leaks; it exits with the process instead.
        _tracker_left = not _stop_fork_server(forkserver._forkserver) or _tracker_left
        if not _tracker_left:
            resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ChildProcessError) as exc:
        log.debug("worker helpers not stopped: %s", exc.__class__.__name__)


def _stop_fork_server(server: Any, grace: float = FORK_SERVER_GRACE) -> bool:
    """What ``ForkServer._stop`` does, without waiting for ever. The fork server
    exits once every process holding its "alive" pipe is gone, and each worker it
    forked holds one. A worker the pool started while it was being stopped at once
    (an interrupt) waits on its queue for ever, and the fork server with it: after
    ``grace`` seconds the fork server is killed, and its workers die with it
    (``PR_SET_PDEATHSIG`` in ``_die_with_parent``). False when it had to be killed."""
    with server._lock:
        pid = server._forkserver_pid
        if pid is None:
            return True
        clean = True
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
        deadline = time.monotonic() + grace
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                clean = False
                break
            time.sleep(0.02)
        server._forkserver_pid = None
        if not mp_util.is_abstract_socket_namespace(server._forkserver_address):
            os.unlink(server._forkserver_address)
        server._forkserver_address = None
        return clean


def _call(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    return fn(*args, **kwargs)
