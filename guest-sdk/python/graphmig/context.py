"""The handle a migration step receives: Cypher, schema, refactorings, batches,
datasets and logging.
"""

from __future__ import annotations

import csv
import encodings.ascii
import encodings.cp1252
import encodings.latin_1
import encodings.utf_16
import encodings.utf_8
import encodings.utf_8_sig
import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Sized, Union

from componentize_py_types import Err
from wit_world.imports import context as host
from wit_world.imports import types as wit

from . import _wire
from .errors import DatasetError, GraphmigError, RowCountError
from .schema import Constraint, Index, SchemaElement, element_from_wit
from .values import Row, from_wit_row, iter_wit_rows, to_wit, to_wit_params

__all__ = ["Context", "Batch", "BackfillReport", "Endpoint"]


class BackfillReport(NamedTuple):
    """What a backfill did, this attempt and the earlier ones together."""

    rows: int
    """Nodes the write ran on."""
    chunks: int
    """Chunks committed."""
    resumed_after: int
    """Chunks an earlier attempt had committed (0: it began afresh)."""
    total: int
    """Nodes counted when it began."""


@dataclass(frozen=True)
class Endpoint:
    """How a batch relationship finds one of its ends: the node labelled ``label``
    whose property ``key`` equals the row's field ``field`` (``key`` when omitted).
    """

    label: str
    """The node's label."""
    key: str
    """The node's key property."""
    field: Optional[str] = None
    """The row field holding the key's value; defaults to ``key``."""

    def _to_wit(self) -> wit.Endpoint:
        return wit.Endpoint(self.label, self.key, self.field if self.field is not None else self.key)


def _entity(relationship: bool) -> wit.Entity:
    return wit.Entity.RELATIONSHIP if relationship else wit.Entity.NODE


def _merge_params(params: Optional[Mapping[str, Any]], kw: Dict[str, Any]) -> Optional[Mapping[str, Any]]:
    if not kw:
        return params
    merged: Dict[str, Any] = dict(params) if params is not None else {}
    merged.update(kw)
    return merged


#: Rows handed to the host per write: the guest holds no more than this many
#: converted rows at a time, and the host writes one chunk while the next is built.
_ROWS_PER_WRITE = 1000


def _stream(open_writer: Callable[[], host.BatchWriter], rows: Iterable[Mapping[str, Any]]) -> int:
    """Streams ``rows`` through the writer ``open_writer`` opens; returns what they created."""
    try:
        with open_writer() as writer:
            if isinstance(rows, Sized):
                writer.expect_rows(len(rows))
            piece: List[Any] = []
            for row in iter_wit_rows(rows):
                piece.append(row)
                if len(piece) == _ROWS_PER_WRITE:
                    writer.write(piece)
                    piece = []
            if piece:
                writer.write(piece)
            return writer.finish()
    except Err as e:
        raise _wire.graph_error(e.value) from None


class Batch:
    """A tracked batch begun with :meth:`Context.batch`.

    Everything written through it is tagged with its id (property
    ``_graphmig_batch``), written in chunks that commit on their own, recorded in
    the ledger, and deleted again if the migration fails. Rows are mappings of
    field name to native value; any iterable of them (a list, a generator, the
    result of ``ctx.read_csv``) will do. They are taken as they are written, a
    thousand at a time, so a generator's rows never all sit in memory, and the
    host writes one chunk while the next is built. A chunk that fails fails the
    migration.
    """

    __slots__ = ("_id", "_name")

    def __init__(self, batch_id: str, name: str) -> None:
        self._id = batch_id
        self._name = name

    @property
    def id(self) -> str:
        """The batch id, as recorded in the ledger and on everything it wrote."""
        return self._id

    @property
    def name(self) -> str:
        """The name the batch was begun with."""
        return self._name

    def __repr__(self) -> str:
        return f"Batch(id={self._id!r}, name={self._name!r})"

    def create_nodes(self, label: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Creates one ``label`` node per row, with the row as its properties;
        returns how many were created."""
        return _stream(lambda: host.open_create_nodes(self._id, label), rows)

    def merge_nodes(self, label: str, key: Union[str, Sequence[str]], rows: Iterable[Mapping[str, Any]]) -> int:
        """Merges one ``label`` node per row on the ``key`` properties (one name or
        several); nodes it creates are tagged, nodes that existed only get the
        row's properties. Returns how many were created."""
        keys = [key] if isinstance(key, str) else list(key)
        return _stream(lambda: host.open_merge_nodes(self._id, label, keys), rows)

    def create_relationships(
        self,
        type: str,
        from_: Endpoint,
        to: Endpoint,
        rows: Iterable[Mapping[str, Any]],
    ) -> int:
        """Creates one relationship of ``type`` per row, from the node ``from_``
        finds to the node ``to`` finds; the row's other fields become its
        properties. Returns how many were created."""
        return _stream(
            lambda: host.open_create_relationships(self._id, type, from_._to_wit(), to._to_wit()),
            rows,
        )

    def delete(self) -> int:
        """Deletes exactly what this batch created; returns how many nodes and
        relationships went."""
        return Context().delete_batch(self._id)


class Context:
    """The host's services for one step.

    Every statement of one ``up`` or ``down`` call runs in one transaction that the
    host commits when the step returns and rolls back when it raises. After a
    statement fails the transaction is doomed: let the :class:`GraphError`
    propagate.
    """

    __slots__ = ()

    # -- Cypher ------------------------------------------------------------

    def run(self, query: str, params: Optional[Mapping[str, Any]] = None, **kw: Any) -> List[Row]:
        """Runs one Cypher statement in the step's transaction and returns its rows,
        each a ``dict`` of column name to native value.

        Parameters come from ``params`` and from keyword arguments (which win)::

            ctx.run("MATCH (p:Person {id: $id}) RETURN p.name AS name", id=42)
            ctx.run("CREATE (:Tag {name: $name})", {"name": "x"})

        Raises:
            GraphError: the statement failed (the transaction is now doomed).
            ValueConversionError: a parameter has no Cypher form.
        """
        wit_params = to_wit_params(_merge_params(params, kw))
        try:
            result = host.run_cypher(query, wit_params)
        except Err as e:
            raise _wire.graph_error(e.value, query) from None
        return [from_wit_row(row) for row in result.rows]

    def single(self, query: str, params: Optional[Mapping[str, Any]] = None, **kw: Any) -> Row:
        """Runs a statement that returns exactly one row and returns that row.

        Raises:
            RowCountError: no row, or several, came back.
        """
        rows = self.run(query, params, **kw)
        if len(rows) != 1:
            raise RowCountError(len(rows), query)
        return rows[0]

    def scalar(self, query: str, params: Optional[Mapping[str, Any]] = None, **kw: Any) -> Any:
        """Runs a statement that returns exactly one row and returns its first
        column (return a single column to be unambiguous)::

            n = ctx.scalar("MATCH (p:Person) RETURN count(p)")

        Raises:
            RowCountError: no row, or several, came back.
            GraphmigError: the row has no column.
        """
        row = self.single(query, params, **kw)
        for value in row.values():
            return value
        raise GraphmigError("the result row has no column")

    # -- Schema ------------------------------------------------------------

    def create_constraint(self, constraint: Constraint) -> str:
        """Creates a constraint unless one of that name exists; returns its name.

        Runs outside the data transaction; the host undoes it if the migration
        fails.

        Raises:
            SchemaError: unsupported by the target, malformed, or refused.
        """
        try:
            return host.create_constraint(constraint._to_wit())
        except Err as e:
            raise _wire.schema_error(e.value) from None

    def drop_constraint(self, name: str) -> None:
        """Drops a constraint by name; absence is fine."""
        try:
            host.drop_constraint(name)
        except Err as e:
            raise _wire.schema_error(e.value) from None

    def create_index(self, index: Index) -> str:
        """Creates an index unless one of that name exists; returns its name.

        Raises:
            SchemaError: unsupported by the target, malformed, or refused.
        """
        try:
            return host.create_index(index._to_wit())
        except Err as e:
            raise _wire.schema_error(e.value) from None

    def drop_index(self, name: str) -> None:
        """Drops an index by name; absence is fine."""
        try:
            host.drop_index(name)
        except Err as e:
            raise _wire.schema_error(e.value) from None

    def schema(self) -> List[SchemaElement]:
        """The live constraints and indexes (:class:`Constraint` and :class:`Index`
        objects; indexes owned by a constraint are left out)."""
        try:
            elements = host.schema()
        except Err as e:
            raise _wire.schema_error(e.value) from None
        return [element_from_wit(el) for el in elements]

    # -- Refactorings ------------------------------------------------------

    def backfill(
        self,
        name: str,
        *,
        label: str,
        key: str,
        write: str,
        filter: str = "",
        chunk_size: int = 0,
    ) -> "BackfillReport":
        """Runs a backfill: the host pages through the ``label`` nodes by ``key``
        (bounded to those present when it begins) and runs ``write`` on each chunk
        (``$batch``: the chunk's keys, ``$cursor``: the last key of the chunk
        before), each chunk committed on its own with a checkpoint. A later
        attempt resumes at the last checkpoint by ``name``."""
        spec = host.BackfillSpec(
            name=name,
            label=label,
            key=key,
            filter=filter,
            write=write,
            chunk_size=chunk_size,
        )
        try:
            r = host.backfill(spec)
        except Err as e:
            raise _wire.graph_error(e.value) from None
        return BackfillReport(r.rows, r.chunks, r.resumed_after, r.total)

    def rename_label(self, from_: str, to: str) -> int:
        """Renames a node label on every node that has it; returns how many changed."""
        try:
            return host.rename_label(from_, to)
        except Err as e:
            raise _wire.graph_error(e.value) from None

    def rename_type(self, from_: str, to: str) -> int:
        """Renames a relationship type (each relationship is recreated with the new
        type and the same properties); returns how many changed."""
        try:
            return host.rename_type(from_, to)
        except Err as e:
            raise _wire.graph_error(e.value) from None

    def rename_property(self, label: str, from_: str, to: str, *, relationship: bool = False) -> int:
        """Renames property ``from_`` to ``to`` on every node labelled ``label`` (or,
        with ``relationship=True``, every relationship of type ``label``); returns
        how many changed."""
        try:
            return host.rename_property(_entity(relationship), label, from_, to)
        except Err as e:
            raise _wire.graph_error(e.value) from None

    def add_property(self, label: str, name: str, default: Any, *, relationship: bool = False) -> int:
        """Sets property ``name`` to ``default`` (not ``None``) wherever it is
        missing on nodes labelled ``label`` (or relationships of type ``label``);
        returns how many changed."""
        value = to_wit(default, "default")
        try:
            return host.add_property(_entity(relationship), label, name, value)
        except Err as e:
            raise _wire.graph_error(e.value) from None

    def remove_property(self, label: str, name: str, *, relationship: bool = False) -> int:
        """Removes property ``name`` from nodes labelled ``label`` (or relationships
        of type ``label``); returns how many changed."""
        try:
            return host.remove_property(_entity(relationship), label, name)
        except Err as e:
            raise _wire.graph_error(e.value) from None

    # -- Batches -----------------------------------------------------------

    def batch(self, name: str) -> Batch:
        """Begins a tracked batch named ``name`` (see :class:`Batch`)."""
        return Batch(host.begin_batch(name), name)

    def delete_batch(self, batch: Union[str, Batch]) -> int:
        """Deletes exactly what the batch (or the batch with this id) created;
        returns how many nodes and relationships went."""
        batch_id = batch.id if isinstance(batch, Batch) else batch
        try:
            return host.delete_batch(batch_id)
        except Err as e:
            raise _wire.graph_error(e.value) from None

    # -- Datasets ----------------------------------------------------------

    def read_dataset(self, path: str) -> bytes:
        """Reads a file of the project's data folder (``data/``), given by a
        relative path with ``/`` separators. The host records every read (path,
        SHA-256, size) in its ledger.

        Raises:
            DatasetError: not found, outside the data folder, or unreadable.
        """
        try:
            return bytes(host.read_dataset(path))
        except Err as e:
            raise _wire.dataset_error(e.value, path) from None

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        """Reads a dataset as text (UTF-8 unless told; a leading BOM is dropped)."""
        data = self.read_dataset(path)
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as e:
            raise DatasetError("decode", path, f"not {encoding} text: {e}") from None
        return text[1:] if text.startswith("\ufeff") else text

    def read_json(self, path: str) -> Any:
        """Reads a dataset as JSON and returns the native value (dict, list, ...)."""
        text = self.read_text(path)
        try:
            return json.loads(text)
        except ValueError as e:
            raise DatasetError("decode", path, f"not JSON: {e}") from None

    def read_csv(self, path: str, *, delimiter: str = ",", encoding: str = "utf-8", **fmtparams: Any) -> List[Dict[str, str]]:
        """Reads a CSV dataset whose first line names the columns and returns one
        ``dict`` per record (values are ``str``, as the csv module gives them;
        convert what needs converting). ``fmtparams`` go to ``csv.DictReader``."""
        text = self.read_text(path, encoding)
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, **fmtparams)
            return [dict(record) for record in reader]
        except csv.Error as e:
            raise DatasetError("decode", path, f"not CSV: {e}") from None

    # -- Logging -----------------------------------------------------------

    def debug(self, message: object) -> None:
        """Logs a debug line (shown by the host and kept in the ledger)."""
        host.log(wit.LogLevel.DEBUG, str(message))

    def info(self, message: object) -> None:
        """Logs an informational line."""
        host.log(wit.LogLevel.INFO, str(message))

    def warn(self, message: object) -> None:
        """Logs a warning."""
        host.log(wit.LogLevel.WARN, str(message))

    warning = warn

    def error(self, message: object) -> None:
        """Logs an error line (it does not fail the step: raise for that)."""
        host.log(wit.LogLevel.ERROR, str(message))

