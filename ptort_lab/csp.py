"""CSP primitives, importable as ``ptort_lab.csp`` (the reference's ``pto_wsp.csp``)."""
from __future__ import annotations

from .dsl.csp import (
                      Channel,
                      Event,
                      Process,
                      consume,
                      process,
                      query,
                      record,
                      replicate,
                      send,
                      send_nowait,
                      synchronize,
                      try_send,
)
from .dsl.wiring import Pipeline, connect, per_core

__all__ = ["Channel", "Event", "Pipeline", "Process", "connect", "consume", "per_core", "process", "query", "record",
           "replicate", "send", "send_nowait", "synchronize", "try_send"]
