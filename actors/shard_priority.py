"""A shard's threads give way to the gateway's when the CPU is short.

Under overload both shards score flat out while the gateway's one event loop refuses calls and
answers batches. Ray already starts its workers at nice 15, yet in `patron bench overload` the
loop lost its core again and again to whatever else woke there (the clients, gRPC's threads),
and the kernel did not move it to the other core, which was running a shard. Its refusals
waited for those turns (bench/RESULTS.md, "overload: what the gateway's loop waits for").
Under SCHED_IDLE a shard's thread is preempted at once by any thread not under SCHED_IDLE, and
(since Linux 5.4) a core running only such threads counts as free when a thread wakes, so the
kernel puts the waking gateway there. Only who runs first changes: a shard still has every
cycle nobody else wants.

SCHED_IDLE is set on every thread of the process; threads and processes started later inherit
it. A process may lower its own policy without privileges, and with the default RLIMIT_NICE it
cannot raise it again, so the setting is read once, at the shard's start."""

import logging
import os

__all__ = ["SETTING", "yield_to_the_gateway"]

SETTING = "PATRON_SHARD_PRIORITY"


def yield_to_the_gateway(log: logging.Logger) -> str:
    """Puts this process's threads under SCHED_IDLE unless the operator says
    `PATRON_SHARD_PRIORITY=ray` (Ray's nice 15 only). Returns what was done, for the start's log
    line and the shard's status: "idle", "partly idle: why", or "ray: why"."""
    setting = os.environ.get(SETTING) or "idle"
    if setting == "ray":
        return f"ray: {SETTING}=ray"
    if setting != "idle":
        log.error(f"{SETTING} is idle or ray; taken as idle", extra={"value": setting})
    if not hasattr(os, "SCHED_IDLE"):
        return "ray: this system has no SCHED_IDLE"
    try:
        threads = _threads()
    except OSError as error:
        return f"ray: this process's threads cannot be listed ({error})"
    changed, refused = 0, ""
    seen: set[int] = set()
    while new := threads - seen:  # again: a listed thread may have started one meanwhile, with its old policy
        for thread in new:
            try:
                os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
                changed += 1
            except ProcessLookupError:  # the thread ended meanwhile
                continue
            except OSError as error:  # a seccomp filter that forbids it, say
                refused = refused or f"{type(error).__name__}: {error}"
        seen |= new
        try:
            threads = _threads()
        except OSError:  # listed once already: what it listed is done
            break
    if not refused:
        return "idle"
    said = f"partly idle: refused for some threads ({refused})" if changed else f"ray: refused ({refused})"
    log.error("the system refused SCHED_IDLE for a shard's threads: under overload the gateway waits longer "
              "for a CPU (bench/RESULTS.md, \"overload: what the gateway's loop waits for\")",
              extra={"priority": said})
    return said


def _threads() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/task")}
