"""A shard's threads give way to the gateway's when the CPU is short.

Under overload both shards score flat out while the gateway's one event loop refuses calls and
answers batches. Ray already starts its workers at nice 15, yet in `patron bench overload` the
loop lost its core again and again: whatever woke on its core (the clients, gRPC's threads) ran
first, and the kernel did not move it to the other core, which was running a shard. Its
refusals waited for those turns (bench/RESULTS.md, "overload: what the gateway's loop waits
for"). Under SCHED_IDLE a shard's thread is preempted by any other thread at once, and a core
running only such threads counts as free when a thread wakes, so the kernel puts the waking
gateway there. Only who runs first changes: a shard still has every cycle nobody else wants.

SCHED_IDLE is set on every thread of the process, and threads started later inherit it from
the thread that starts them. A process may lower its own priority without privileges, but it
cannot raise it again, so the setting is read once, at the shard's start."""

import logging
import os

__all__ = ["SETTING", "yield_to_the_gateway"]

SETTING = "PATRON_SHARD_PRIORITY"


def yield_to_the_gateway(log: logging.Logger) -> str:
    """Puts this process's threads under SCHED_IDLE unless the operator says
    `PATRON_SHARD_PRIORITY=ray` (Ray's nice 15 only). Returns what was done, for the start's log
    line and the shard's status: "idle", or "ray: why"."""
    setting = os.environ.get(SETTING) or "idle"
    if setting == "ray":
        return f"ray: {SETTING}=ray"
    if setting != "idle":
        log.error(f"{SETTING} is idle or ray; taken as idle", extra={"value": setting})
    if not hasattr(os, "SCHED_IDLE"):
        return "ray: this system has no SCHED_IDLE"
    try:
        threads = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # the calling thread: those it starts from now on inherit its policy
    refused = ""
    for thread in threads:
        try:
            os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
        except ProcessLookupError:  # the thread ended meanwhile
            continue
        except OSError as error:  # a container's seccomp policy, for one
            refused = refused or f"{type(error).__name__}: {error}"
    if refused:
        log.error("the system refused SCHED_IDLE for a shard's threads: under overload the gateway "
                  "waits longer for a CPU (refusals' tail about 20% longer on two cores)",
                  extra={"reason": refused})
        return f"ray: refused ({refused})"
    return "idle"
