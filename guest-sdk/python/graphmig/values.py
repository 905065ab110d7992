"""Native Python forms of Cypher values and their conversion to and from the WIT
value trees the host speaks.

Python to Cypher:

=================================  ==========================
Python                             Cypher
=================================  ==========================
``None``                           ``null``
``bool``                           boolean
``int`` (64-bit signed range)      integer
``float``                          float
``str``                            string
``bytes``, ``bytearray``,          byte array
``memoryview``
``list``, ``tuple`` (any           list
non-text sequence)
``dict`` (any mapping with         map
``str`` keys)
=================================  ==========================

Cypher to Python is the same table read backwards (lists come back as ``list``,
maps as ``dict``, byte arrays as ``bytes``), plus :class:`Node` and
:class:`Relationship` for graph entities, and ``str`` for values that have no WIT
form (temporal values, durations, points: the host renders them as text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from wit_world.imports import types as wit

from .errors import ValueConversionError

__all__ = ["Node", "Relationship", "CypherValue", "Params", "Row", "MAX_DEPTH"]

CypherValue = Any
"""Any value with a Cypher form (see the module's table)."""

Params = Mapping[str, Any]
"""Named query parameters: ``$name`` in Cypher is ``params["name"]``."""

Row = Dict[str, Any]
"""One result row: column name to native value."""

MAX_DEPTH = 256
"""Deepest nesting sent to the host (the host refuses deeper trees)."""

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


class _Properties:
    """Dictionary-style reading of an entity's ``properties``."""

    properties: Dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.properties[name]

    def __contains__(self, name: object) -> bool:
        return name in self.properties

    def get(self, name: str, default: Any = None) -> Any:
        """The property ``name``, or ``default`` when there is none."""
        return self.properties.get(name, default)


@dataclass
class Node(_Properties):
    """A node returned by a query.

    ``node["name"]`` and ``node.get("name")`` read its properties.
    """

    id: int
    """The database's id of the node."""
    labels: List[str] = field(default_factory=list)
    """Its labels."""
    properties: Dict[str, Any] = field(default_factory=dict)
    """Its properties, as native values."""


@dataclass
class Relationship(_Properties):
    """A relationship returned by a query.

    ``rel["since"]`` and ``rel.get("since")`` read its properties.
    """

    id: int
    """The database's id of the relationship."""
    start: int
    """The id of its start node (-1 when the server did not send it)."""
    end: int
    """The id of its end node (-1 when the server did not send it)."""
    type: str
    """Its type."""
    properties: Dict[str, Any] = field(default_factory=dict)
    """Its properties, as native values."""


# ---------------------------------------------------------------------------
# Python -> WIT


class _Invalid(Exception):
    """A value deep inside a tree has no Cypher form; ``path`` collects the keys
    from the inside out as the exception climbs, so that paths are only built
    when something is wrong."""

    def __init__(self, problem: str, keep_path: bool = True) -> None:
        super().__init__(problem)
        self.problem = problem
        self.keep_path = keep_path
        self.path: List[Any] = []

    def at(self, where: str) -> ValueConversionError:
        if not self.keep_path:
            return ValueConversionError(f"{where} {self.problem}")
        inner = "".join(f"[{key!r}]" for key in reversed(self.path))
        return ValueConversionError(f"{where}{inner} {self.problem}")


def to_wit(value: Any, where: str = "value") -> wit.Value:
    """Flattens a native value into a WIT value tree (root at node 0).

    ``where`` names the value in error messages (``params['x']``).

    Raises:
        ValueConversionError: the value (or something inside it) has no Cypher form.
    """
    nodes: List[wit.ValueNode] = []
    try:
        _push(value, nodes, 0)
    except _Invalid as e:
        raise e.at(where) from None
    return wit.Value(nodes)


def to_wit_params(params: Optional[Mapping[str, Any]], where: str = "params") -> List[Tuple[str, wit.Value]]:
    """Converts a parameter (or row) mapping into the WIT list of named values."""
    if params is None:
        return []
    try:
        return _params(params)
    except _Invalid as e:
        raise e.at(where) from None


def iter_wit_rows(rows: Iterable[Mapping[str, Any]], where: str = "rows") -> Iterator[List[Tuple[str, wit.Value]]]:
    """Converts batch rows (mappings of field name to value) into WIT rows, one
    at a time, as the batch writer takes them."""
    if isinstance(rows, (Mapping, str, bytes)):
        raise ValueConversionError(
            f"{where} must be an iterable of mappings (one per row), not a single {type(rows).__name__}"
        )
    index = 0
    try:
        for index, row in enumerate(rows):
            yield _params(row)
    except _Invalid as e:
        e.path.append(index)
        raise e.at(where) from None


def _params(params: Mapping[str, Any]) -> List[Tuple[str, wit.Value]]:
    if type(params) is not dict and not isinstance(params, Mapping):
        raise _Invalid(f"must be a mapping of names to values, not {type(params).__name__}")
    out: List[Tuple[str, wit.Value]] = []
    for name, value in params.items():
        if type(name) is not str:
            raise _Invalid(f"has the name {name!r} of type {type(name).__name__}; names must be str")
        # The common cases, inlined: rows are mostly plain scalars.
        kind = type(value)
        make = _SCALARS.get(kind)
        if make is not None:
            out.append((name, _WitValue([make(value)])))
            continue
        if kind is int and _I64_MIN <= value <= _I64_MAX:
            out.append((name, _WitValue([_Integer(value)])))
            continue
        nodes: List[wit.ValueNode] = []
        try:
            _push(value, nodes, 0)
        except _Invalid as e:
            e.path.append(name)
            raise
        out.append((name, wit.Value(nodes)))
    return out


_NULL = wit.ValueNode_Null()
_WitValue = wit.Value
_Integer = wit.ValueNode_Integer
# Exact types converted without further checks (subclasses take the slow path).
_SCALARS: Dict[type, Any] = {
    str: wit.ValueNode_Text,
    float: wit.ValueNode_Float,
    bool: wit.ValueNode_Boolean,
    bytes: wit.ValueNode_Bytes,
}


def _push(value: Any, nodes: List[wit.ValueNode], depth: int) -> int:
    """Appends ``value`` (and, after it, its children) to ``nodes``; returns its index."""
    index = len(nodes)
    kind = type(value)
    make = _SCALARS.get(kind)
    if make is not None:
        nodes.append(make(value))
        return index
    if kind is int:
        if not _I64_MIN <= value <= _I64_MAX:
            raise _Invalid(_out_of_range(value))
        nodes.append(wit.ValueNode_Integer(value))
        return index
    if value is None:
        nodes.append(_NULL)
        return index
    if depth >= MAX_DEPTH:
        raise _Invalid(f"nests deeper than {MAX_DEPTH} levels (or contains itself)", keep_path=False)
    if kind is dict:
        return _push_map(value, nodes, depth)
    if kind is list or kind is tuple:
        return _push_list(value, nodes, depth)
    return _push_other(value, nodes, depth)


def _push_map(value: Mapping[Any, Any], nodes: List[wit.ValueNode], depth: int) -> int:
    index = len(nodes)
    nodes.append(_NULL)  # replaced once the children are in
    entries: List[Tuple[str, int]] = []
    for key, item in value.items():
        if type(key) is not str and not isinstance(key, str):
            raise _Invalid(f"has the key {key!r} of type {type(key).__name__}; Cypher map keys must be str")
        try:
            entries.append((str(key), _push(item, nodes, depth + 1)))
        except _Invalid as e:
            if e.keep_path:
                e.path.append(key)
            raise
    nodes[index] = wit.ValueNode_Map(entries)
    return index


def _push_list(value: Iterable[Any], nodes: List[wit.ValueNode], depth: int) -> int:
    index = len(nodes)
    nodes.append(_NULL)  # replaced once the children are in
    items: List[int] = []
    for position, item in enumerate(value):
        try:
            items.append(_push(item, nodes, depth + 1))
        except _Invalid as e:
            if e.keep_path:
                e.path.append(position)
            raise
    nodes[index] = wit.ValueNode_List(items)
    return index


def _push_other(value: Any, nodes: List[wit.ValueNode], depth: int) -> int:
    """Subclasses of the plain types, other mappings and sequences, and refusals."""
    index = len(nodes)
    # bool before int: True is an int in Python.
    if isinstance(value, bool):
        nodes.append(wit.ValueNode_Boolean(bool(value)))
    elif isinstance(value, int):
        if not _I64_MIN <= value <= _I64_MAX:
            raise _Invalid(_out_of_range(value))
        nodes.append(wit.ValueNode_Integer(int(value)))
    elif isinstance(value, float):
        nodes.append(wit.ValueNode_Float(float(value)))
    elif isinstance(value, str):
        nodes.append(wit.ValueNode_Text(str(value)))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        nodes.append(wit.ValueNode_Bytes(bytes(value)))
    elif isinstance(value, (Node, Relationship)):
        kind = "node" if isinstance(value, Node) else "relationship"
        raise _Invalid(
            f"is a graph {kind}; nodes and relationships cannot be sent as "
            f"parameters: send its id or properties"
        )
    elif isinstance(value, Mapping):
        return _push_map(value, nodes, depth)
    elif isinstance(value, Sequence):
        return _push_list(value, nodes, depth)
    else:
        hint = ""
        if isinstance(value, (set, frozenset)):
            hint = " (Cypher has no sets: pass a list, e.g. sorted(...))"
        elif hasattr(value, "isoformat"):
            hint = " (pass value.isoformat() and convert in Cypher, e.g. datetime($x))"
        raise _Invalid(f"is of type {type(value).__name__}, which has no Cypher form{hint}")
    return index


def _out_of_range(value: int) -> str:
    return (
        f"is the integer {value}, outside the 64-bit signed range "
        f"[{_I64_MIN}, {_I64_MAX}] of Cypher integers (send it as a str or float)"
    )


# ---------------------------------------------------------------------------
# WIT -> Python


def from_wit(value: wit.Value) -> Any:
    """Rebuilds a native value from a WIT value tree the host sent."""
    return _read(value.nodes, 0, 0)


def from_wit_row(row: Iterable[Tuple[str, wit.Value]]) -> Row:
    """Rebuilds a result row (column name to native value), keeping the host's order."""
    return {name: from_wit(value) for name, value in row}


_PLAIN = frozenset(
    {
        wit.ValueNode_Boolean,
        wit.ValueNode_Integer,
        wit.ValueNode_Float,
        wit.ValueNode_Text,
        wit.ValueNode_Other,
    }
)


def _read(nodes: List[wit.ValueNode], index: int, depth: int) -> Any:
    # The host builds trees without cycles; the bound keeps a malformed one from
    # recursing forever.
    if depth > 4 * MAX_DEPTH or not 0 <= index < len(nodes):
        return None
    node = nodes[index]
    kind = type(node)
    if kind in _PLAIN:
        return node.value  # type: ignore[union-attr]
    if kind is wit.ValueNode_Null:
        return None
    if isinstance(node, wit.ValueNode_Bytes):
        return bytes(node.value)
    if isinstance(node, wit.ValueNode_List):
        return [_read(nodes, i, depth + 1) for i in node.value]
    if isinstance(node, wit.ValueNode_Map):
        return _entries(nodes, node.value, depth)
    if isinstance(node, wit.ValueNode_GraphNode):
        n = node.value
        return Node(id=n.id, labels=list(n.labels), properties=_entries(nodes, n.properties, depth))
    if isinstance(node, wit.ValueNode_GraphRelationship):
        r = node.value
        return Relationship(
            id=r.id,
            start=r.start,
            end=r.end,
            type=r.rel_type,
            properties=_entries(nodes, r.properties, depth),
        )
    return None


def _entries(nodes: List[wit.ValueNode], entries: List[Tuple[str, int]], depth: int) -> Dict[str, Any]:
    return {key: _read(nodes, i, depth + 1) for key, i in entries}

