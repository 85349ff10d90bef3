"""The next batch gathered in a worker thread while the current one trains.

Why a thread and not a DataLoader: gathering a batch is numpy fancy indexing into memory maps
(``SampleStore.batch``), which releases the GIL for its copies, as the torch step does for its
operators; a thread overlaps them without pickling batches between processes or forking a
process that holds the model. One batch ahead is enough: gathering takes a few ms, a step far more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Gathered = TypeVar("Gathered")


def prefetched(items: Iterable[Item], gather: Callable[[Item], Gathered]) -> Iterator[Gathered]:
    """``gather(item)`` for each item, in order, the next one computed while the caller works.

    Closing the iterator early (a ``break`` in the caller's loop) waits for the batch in flight
    and stops; an exception in ``gather`` is raised where its result is consumed.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dipn-prefetch") as pool:
        pending: Future[Gathered] | None = None
        for item in items:
            upcoming = pool.submit(gather, item)
            if pending is not None:
                yield pending.result()
            pending = upcoming
        if pending is not None:
            yield pending.result()
