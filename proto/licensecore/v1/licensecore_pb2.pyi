import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TableChunk(_message.Message):
    __slots__ = ("table", "data", "last", "row_count", "stream_bytes")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    STREAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    table: str
    data: bytes
    last: bool
    row_count: int
    stream_bytes: int
    def __init__(self, table: _Optional[str] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ..., row_count: _Optional[int] = ..., stream_bytes: _Optional[int] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: TableChunk
    def __init__(self, chunk: _Optional[_Union[TableChunk, _Mapping]] = ...) -> None: ...

class UploadResponse(_message.Message):
    __slots__ = ("dataset_id", "row_counts")
    class RowCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNTS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    row_counts: _containers.ScalarMap[str, int]
    def __init__(self, dataset_id: _Optional[str] = ..., row_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ComputeConsumptionRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class BundleOptions(_message.Message):
    __slots__ = ("max_remove_fraction", "guard_min_members")
    MAX_REMOVE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    GUARD_MIN_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    max_remove_fraction: float
    guard_min_members: int
    def __init__(self, max_remove_fraction: _Optional[float] = ..., guard_min_members: _Optional[int] = ...) -> None: ...

class ResolveBundlesRequest(_message.Message):
    __slots__ = ("dataset_id", "options")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    options: BundleOptions
    def __init__(self, dataset_id: _Optional[str] = ..., options: _Optional[_Union[BundleOptions, _Mapping]] = ...) -> None: ...

class ResolveBundlesInlineRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: BundleOptions
    chunk: TableChunk
    def __init__(self, options: _Optional[_Union[BundleOptions, _Mapping]] = ..., chunk: _Optional[_Union[TableChunk, _Mapping]] = ...) -> None: ...

class ReconcileOptions(_message.Message):
    __slots__ = ("inactive_days", "as_of")
    INACTIVE_DAYS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    inactive_days: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, inactive_days: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ("dataset_id", "options")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    options: ReconcileOptions
    def __init__(self, dataset_id: _Optional[str] = ..., options: _Optional[_Union[ReconcileOptions, _Mapping]] = ...) -> None: ...

class ReconcileInlineRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: ReconcileOptions
    chunk: TableChunk
    def __init__(self, options: _Optional[_Union[ReconcileOptions, _Mapping]] = ..., chunk: _Optional[_Union[TableChunk, _Mapping]] = ...) -> None: ...

class ScenarioChunk(_message.Message):
    __slots__ = ("scenario", "chunk")
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    scenario: str
    chunk: TableChunk
    def __init__(self, scenario: _Optional[str] = ..., chunk: _Optional[_Union[TableChunk, _Mapping]] = ...) -> None: ...

class WhatIfRequest(_message.Message):
    __slots__ = ("dataset_id", "scenarios")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    scenarios: _containers.RepeatedCompositeFieldContainer[ScenarioChunk]
    def __init__(self, dataset_id: _Optional[str] = ..., scenarios: _Optional[_Iterable[_Union[ScenarioChunk, _Mapping]]] = ...) -> None: ...

class WhatIfInlineRequest(_message.Message):
    __slots__ = ("chunk", "scenario")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    chunk: TableChunk
    scenario: ScenarioChunk
    def __init__(self, chunk: _Optional[_Union[TableChunk, _Mapping]] = ..., scenario: _Optional[_Union[ScenarioChunk, _Mapping]] = ...) -> None: ...

class ScenarioResult(_message.Message):
    __slots__ = ("scenario", "chunk")
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    scenario: str
    chunk: TableChunk
    def __init__(self, scenario: _Optional[str] = ..., chunk: _Optional[_Union[TableChunk, _Mapping]] = ...) -> None: ...
