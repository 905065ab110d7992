"""Conversions of the host's error records into the SDK's exceptions (internal)."""

from __future__ import annotations

from typing import Dict, Optional

from wit_world.imports import types as wit

from .errors import DatasetError, GraphError, GraphErrorKind, SchemaError

_GRAPH_ERROR_KINDS: Dict[wit.GraphErrorKind, GraphErrorKind] = {
    wit.GraphErrorKind.SYNTAX: "syntax",
    wit.GraphErrorKind.CONSTRAINT_VIOLATION: "constraint-violation",
    wit.GraphErrorKind.TRANSIENT: "transient",
    wit.GraphErrorKind.FORBIDDEN: "forbidden",
    wit.GraphErrorKind.OTHER: "other",
}


def graph_error(e: object, query: Optional[str] = None) -> GraphError:
    """Converts the host's ``graph-error`` record (anything else becomes kind ``other``)."""
    if isinstance(e, wit.GraphError):
        return GraphError(_GRAPH_ERROR_KINDS.get(e.kind, "other"), e.code, e.message, query)
    return GraphError("other", "graphmig.guest.unexpected-error", repr(e), query)


def schema_error(e: object) -> SchemaError:
    """Converts the host's ``schema-error`` variant."""
    if isinstance(e, wit.SchemaError_Unsupported):
        return SchemaError("unsupported", e.value)
    if isinstance(e, wit.SchemaError_Invalid):
        return SchemaError("invalid", e.value)
    if isinstance(e, wit.SchemaError_Graph):
        graph = graph_error(e.value)
        return SchemaError("graph", str(graph), graph)
    return SchemaError("invalid", repr(e))


def dataset_error(e: object, path: str) -> DatasetError:
    """Converts the host's ``dataset-error`` variant."""
    if isinstance(e, wit.DatasetError_NotFound):
        return DatasetError("not-found", path, e.value)
    if isinstance(e, wit.DatasetError_Forbidden):
        return DatasetError("forbidden", path, e.value)
    if isinstance(e, wit.DatasetError_Io):
        return DatasetError("io", path, e.value)
    return DatasetError("io", path, repr(e))
