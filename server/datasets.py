"""In-memory store of uploaded datasets, keyed by random handles."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping

import pyarrow as pa

from licensecore.server.errors import LicenseCoreError


class UnknownDataset(LicenseCoreError):
    """No dataset has this handle (never uploaded, or evicted)."""

    def __init__(self, dataset_id: str) -> None:
        super().__init__(f"unknown dataset {dataset_id!r}")
        self.dataset_id = dataset_id


class DatasetStore:
    """Thread-safe map from uuid4 hex handles to tables; the oldest dataset beyond
    ``max_datasets`` is evicted."""

    def __init__(self, max_datasets: int = 64) -> None:
        self._max = max_datasets
        self._lock = threading.Lock()
        self._datasets: OrderedDict[str, dict[str, pa.Table]] = OrderedDict()

    def put(self, tables: Mapping[str, pa.Table]) -> str:
        """Store ``tables`` and return the new handle."""
        dataset_id = uuid.uuid4().hex
        with self._lock:
            self._datasets[dataset_id] = dict(tables)
            while len(self._datasets) > self._max:
                self._datasets.popitem(last=False)
        return dataset_id

    def get(self, dataset_id: str) -> dict[str, pa.Table]:
        """The tables of ``dataset_id``; raises ``UnknownDataset``."""
        with self._lock:
            try:
                return dict(self._datasets[dataset_id])
            except KeyError:
                raise UnknownDataset(dataset_id) from None
