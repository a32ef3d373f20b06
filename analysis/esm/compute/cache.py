"""Keeping loaded engines between jobs, within a memory budget.

Loading an ESM-2 checkpoint takes seconds to minutes and its weights take
up to ~11 GB (3B in float32), so a worker keeps recently used engines and
drops the least recently used ones when their weights together exceed the
budget. The one just loaded is always kept, even when it alone is over.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable

from .engine import Engine


class ModelCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._engines: OrderedDict[Hashable, Engine] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Event] = {}

    def get(self, key: Hashable, loader: Callable[[], Engine]) -> Engine:
        """The engine cached under key, or ``loader()``'s, cached.

        A key is typically (checkpoint identity, device, dtype). Concurrent
        calls for one key load it once; other keys are not held up by a load.
        If the loader raises, nothing is cached and the error propagates.
        """
        while True:
            with self._lock:
                if key in self._engines:
                    self._engines.move_to_end(key)
                    return self._engines[key]
                loading = self._loading.get(key)
                if loading is None:
                    loading = self._loading[key] = threading.Event()
                    break
            loading.wait()  # another thread is loading this key; then look again

        try:
            engine = loader()
        except BaseException:
            with self._lock:
                del self._loading[key]
            loading.set()
            raise
        with self._lock:
            self._engines[key] = engine
            self._evict()
            del self._loading[key]
        loading.set()
        return engine

    def _evict(self) -> None:
        # Callers keep the engines they already hold; evicting only stops
        # this cache from handing them out, and the memory is freed once
        # those callers are done with them.
        while len(self._engines) > 1 and self.total_bytes > self.max_bytes:
            self._engines.popitem(last=False)

    @property
    def total_bytes(self) -> int:
        return sum(e.param_bytes for e in self._engines.values())

    def keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._engines)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._engines

    def __len__(self) -> int:
        with self._lock:
            return len(self._engines)

    def clear(self) -> None:
        with self._lock:
            self._engines.clear()
