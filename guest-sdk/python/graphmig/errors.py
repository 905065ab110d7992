"""Exceptions a migration step sees.

Every failed host call raises one of these; a step may catch them (for example to
try a fallback), but after a failed statement the step's transaction is doomed, so
the usual thing is to let them propagate: the step then fails with the exception's
type name and message, and the host rolls back everything it did.
"""

from __future__ import annotations

from typing import Literal, Optional

__all__ = [
    "GraphmigError",
    "GraphError",
    "SchemaError",
    "DatasetError",
    "ValueConversionError",
    "RowCountError",
    "GraphErrorKind",
    "SchemaErrorKind",
    "DatasetErrorKind",
]

GraphErrorKind = Literal["syntax", "constraint-violation", "transient", "forbidden", "other"]
"""Why a statement failed, as the host classified it."""

SchemaErrorKind = Literal["unsupported", "invalid", "graph"]
"""Why a schema operation failed."""

DatasetErrorKind = Literal["not-found", "forbidden", "io", "decode"]
"""Why a dataset could not be read (``decode``: not text, JSON or CSV as asked)."""


class GraphmigError(Exception):
    """Base class of every exception the SDK raises."""


class GraphError(GraphmigError):
    """A statement (or a refactoring or batch call) failed.

    Attributes:
        kind: the class of failure: ``"syntax"``, ``"constraint-violation"``,
            ``"transient"`` (running the migration again may succeed),
            ``"forbidden"`` or ``"other"``.
        code: the server's status code, such as
            ``Neo.ClientError.Statement.SyntaxError``, or a ``graphmig.*`` code when
            the host refused the call itself.
        message: the server's (or host's) message.
        query: the statement that failed, when the call was ``run``.
    """

    kind: GraphErrorKind
    code: str
    message: str
    query: Optional[str]

    def __init__(
        self, kind: GraphErrorKind, code: str, message: str, query: Optional[str] = None
    ) -> None:
        super().__init__(kind, code, message)
        self.kind = kind
        self.code = code
        self.message = message
        self.query = query

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class SchemaError(GraphmigError):
    """A schema operation (constraint, index, schema listing) failed.

    Attributes:
        kind: ``"unsupported"`` (the target database cannot do it),
            ``"invalid"`` (the operation is malformed) or ``"graph"`` (the database
            or the host's policy refused it; see ``graph``).
        message: what went wrong.
        graph: the underlying :class:`GraphError` when ``kind`` is ``"graph"``.
    """

    kind: SchemaErrorKind
    message: str
    graph: Optional[GraphError]

    def __init__(
        self, kind: SchemaErrorKind, message: str, graph: Optional[GraphError] = None
    ) -> None:
        super().__init__(kind, message)
        self.kind = kind
        self.message = message
        self.graph = graph

    @property
    def code(self) -> str:
        """The server's status code when ``kind`` is ``"graph"``, else ``graphmig.schema.<kind>``."""
        if self.graph is not None:
            return self.graph.code
        return f"graphmig.schema.{self.kind}"

    def __str__(self) -> str:
        if self.kind == "unsupported":
            return f"unsupported: {self.message}"
        if self.kind == "invalid":
            return f"invalid schema operation: {self.message}"
        return str(self.graph) if self.graph is not None else self.message


class DatasetError(GraphmigError):
    """A dataset could not be read (or decoded as asked).

    Attributes:
        kind: ``"not-found"``, ``"forbidden"`` (the path leaves the data folder, or
            the project has none), ``"io"`` or ``"decode"`` (not UTF-8 text, not
            JSON, not CSV).
        path: the path asked for.
        message: what went wrong.
    """

    kind: DatasetErrorKind
    path: str
    message: str

    def __init__(self, kind: DatasetErrorKind, path: str, message: str) -> None:
        super().__init__(kind, path, message)
        self.kind = kind
        self.path = path
        self.message = message

    @property
    def code(self) -> str:
        """``graphmig.dataset.<kind>``, for symmetry with :class:`GraphError`."""
        return f"graphmig.dataset.{self.kind}"

    def __str__(self) -> str:
        if self.kind in ("io", "decode"):
            return f"{self.path}: {self.message}"
        return f"{self.path}: {self.kind.replace('-', ' ')}: {self.message}"


class ValueConversionError(GraphmigError, ValueError):
    """A Python value has no Cypher form (an unsupported type, an integer outside
    64 bits, a non-string map key, a graph node sent as a parameter, ...).

    The message names where the value sat, such as ``params['ids'][3]``.
    """


class RowCountError(GraphmigError, LookupError):
    """A query expected to return exactly one row returned another number.

    Attributes:
        found: how many rows came back.
    """

    found: int

    def __init__(self, found: int, query: Optional[str] = None) -> None:
        self.found = found
        self.query = query
        super().__init__(f"expected exactly one row, got {found}")
