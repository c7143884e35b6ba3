"""Long work in the engine is a generator: it yields progress and returns its result.

:func:`drain` is the one loop that runs such a generator to its end, handing every item to a
callback; training, inference, the pipeline, studies and the front ends all use it.
:func:`relay` is the one loop that passes a generator's items on, transformed, from inside
another generator (``result = yield from relay(inner, transform)``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
OutT = TypeVar("OutT")


def drain(
    generator: Generator[ItemT, Any, ResultT],
    on_item: Callable[[ItemT], object] | None = None,
) -> ResultT:
    """Run ``generator`` to its end; call ``on_item(item)`` for every item it yields.

    Returns
    -------
    The generator's return value (``StopIteration.value``).
    """
    while True:
        try:
            item = next(generator)
        except StopIteration as stop:
            result: ResultT = stop.value
            return result
        if on_item is not None:
            on_item(item)


def relay(
    generator: Generator[ItemT, Any, ResultT],
    transform: Callable[[ItemT], Iterable[OutT]],
) -> Generator[OutT, None, ResultT]:
    """Yield every item of ``transform(item)`` for each item of ``generator``; return its value.

    ``transform`` may return several items (e.g. an event and an image) or none.
    """
    while True:
        try:
            item = next(generator)
        except StopIteration as stop:
            result: ResultT = stop.value
            return result
        yield from transform(item)
