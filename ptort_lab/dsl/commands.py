"""The commands a process body yields to its driver (the simulator's engine, or ``steps.enumerate_tasks``).

A body is a generator of command tuples ``(Cmd.X, operands...)``; the driver carries each one out and sends back
its reply (the next token for a pull, else None). Only a driver knows what a command costs or whether it blocks.
One vocabulary for both sides: ``dsl.steps`` writes these commands, ``sim.engine`` and ``sim.issue`` read them.

The module-level names (``TASK``, ``SEND``, ...) are the members themselves, bound once: drivers compare ``op is
SEND`` in their inner loop, where a global is several times cheaper to read than ``Cmd.SEND``.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Final


class Cmd(IntEnum):
    """A command's code: the first item of every tuple a process body yields."""

    TASK = 0  # (TASK, task): run the task on the process's core
    SEND = 1  # (SEND, channel, task, token): take a free slot of channel, run the task into it, pass the token on
    ACQUIRE = 2  # (ACQUIRE, channel): take a free slot (a non-task send: the body between ACQUIRE and PUSH fills it)
    PUSH = 3  # (PUSH, channel, token): pass the token of the slot taken by the matching ACQUIRE on
    PULL = 4  # (PULL, channel, release): free the previous token's slot when release, then reply the next token
    RECORD = 5  # (RECORD, event): signal the event (visible after the event's latency); never blocks
    WAIT = 6  # (WAIT, event): wait for (and take) a signal of the event
    TASK_PULL = 7  # (TASK_PULL, task, pull): a TASK then the PULL command ``pull``, in one step (a consume loop)
    SEND_PULL = 8  # (SEND_PULL, channel, task, token, pull): a SEND then the PULL command ``pull``, in one step
    # Only the simulator's data-parallel issue plan (sim/issue.py) yields these two:
    AFTER = 9  # (AFTER, task_ids[, reason]): wait until those tasks finished (data-parallel dependencies)
    NOT_BEFORE = 10  # (NOT_BEFORE, cycle, reason): do not go on before that cycle (TimingPolicy.rate_limit)
    RELEASE = 11  # (RELEASE, channel): free the previous token's slot without pulling (a join frees all, then pulls)


TASK: Final = Cmd.TASK
SEND: Final = Cmd.SEND
ACQUIRE: Final = Cmd.ACQUIRE
PUSH: Final = Cmd.PUSH
PULL: Final = Cmd.PULL
RECORD: Final = Cmd.RECORD
WAIT: Final = Cmd.WAIT
TASK_PULL: Final = Cmd.TASK_PULL
SEND_PULL: Final = Cmd.SEND_PULL
AFTER: Final = Cmd.AFTER
NOT_BEFORE: Final = Cmd.NOT_BEFORE
RELEASE: Final = Cmd.RELEASE


class _Closed:
    """The reply to a PULL on a channel whose producers have all finished and whose tokens are all taken."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CLOSED"


CLOSED: Final = _Closed()

__all__ = ["Cmd", "CLOSED", "TASK", "SEND", "ACQUIRE", "PUSH", "PULL", "RECORD", "WAIT", "TASK_PULL", "SEND_PULL",
           "AFTER", "NOT_BEFORE", "RELEASE"]
