"""RayExecutor: a concurrent.futures executor whose tasks are Ray tasks, for ``sweep(executor=RayExecutor())``.

Ray has no concurrent.futures executor of its own; this is the smallest one: ``submit`` makes the function a Ray
remote function (once) and returns the ObjectRef's ``future()``. Ray is an optional extra
(``pip install 'ptort_lab[ray]'``); it is imported when a RayExecutor is made.
"""
from __future__ import annotations

from concurrent.futures import Executor, Future
from typing import Any, Callable

from ..errors import SweepError


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SweepError("RayExecutor needs Ray, which is not installed.",
                         hint="pip install 'ptort_lab[ray]' (or pip install ray), or use a Dask cluster: "
                              "sweep(..., executor=client.get_executor()).", locate=False) from None
    return ray


class RayExecutor(Executor):
    """Tasks on a Ray cluster: ``RayExecutor()`` joins the Ray runtime this process started (or starts a local
    one), ``RayExecutor("ray://host:10001")`` or ``address="auto"`` joins a running cluster. ``shutdown`` leaves
    Ray running (it is yours: ``ray.shutdown()``)."""

    def __init__(self, address: str | None = None, *, num_cpus_per_task: float = 1, **init_options: Any) -> None:
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=address, **init_options)
        self._num_cpus = num_cpus_per_task
        self._remote: dict[Callable[..., Any], Any] = {}
        self._shutdown = False

    @property
    def _max_workers(self) -> int:
        """How many tasks run at once: the cluster's CPUs over each task's share."""
        cpus = float(_ray().cluster_resources().get("CPU", 1))
        return max(1, int(cpus // self._num_cpus))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` as a Ray task; a Future of its result."""
        if self._shutdown:
            raise SweepError("this RayExecutor was shut down: it cannot run new sweep points.",
                             hint="Make a new RayExecutor() (or pass executor='ray') for the next sweep.", locate=False)
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = _ray().remote(num_cpus=self._num_cpus)(fn)
        future: Future[Any] = remote.remote(*args, **kwargs).future()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


__all__ = ["RayExecutor"]
