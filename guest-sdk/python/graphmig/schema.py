"""Typed schema operations: constraints and indexes that the host renders for the
target's Cypher dialect.

Build them with the functions of this module and pass them to
``ctx.create_constraint`` / ``ctx.create_index``::

    from graphmig import unique, range_index

    def up(ctx):
        ctx.create_constraint(unique("Person", "id"))
        ctx.create_index(range_index("Person", ["last_name", "first_name"]).named("person_names"))

Builders return frozen dataclasses; ``.named(name)`` and ``.on_relationships()``
return modified copies. Without a name the host derives a stable one from the
rest (``person_id_unique``); ``create_*`` returns the name used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Literal, Optional, Tuple, Union

from wit_world.imports import types as wit


__all__ = [
    "Constraint",
    "Index",
    "SchemaElement",
    "Entity",
    "ConstraintKind",
    "IndexKind",
    "unique",
    "key",
    "exists",
    "property_type",
    "relationship_unique",
    "relationship_key",
    "relationship_exists",
    "relationship_property_type",
    "range_index",
    "text_index",
    "point_index",
    "fulltext_index",
    "vector_index",
]

Entity = Literal["node", "relationship"]
"""Whether a schema element applies to nodes (by label) or relationships (by type)."""

ConstraintKind = Literal["unique", "key", "exists", "property-type"]
"""What a constraint requires."""

IndexKind = Literal["range", "text", "point", "fulltext", "vector"]
"""The kind of an index."""

Names = Union[str, Iterable[str]]
"""One name, or several: a lone ``str`` is one name, never a sequence of letters."""


def _names(names: Names, what: str) -> Tuple[str, ...]:
    if isinstance(names, str):
        return (names,)
    out = tuple(names)
    for n in out:
        if not isinstance(n, str):
            raise TypeError(f"{what} must be str, not {type(n).__name__}")
    return out


@dataclass(frozen=True)
class Constraint:
    """A constraint, as built for ``ctx.create_constraint`` and as listed by ``ctx.schema()``."""

    label: str
    """The label, or the relationship type."""
    properties: Tuple[str, ...]
    """The properties, in order."""
    kind: ConstraintKind
    """What it requires."""
    property_type: Optional[str] = None
    """The Cypher type (``STRING``, ``INTEGER``, ...) of a ``property-type`` constraint."""
    entity: Entity = "node"
    """Nodes or relationships."""
    name: Optional[str] = None
    """Its name; ``None`` lets the host derive one."""

    def named(self, name: str) -> "Constraint":
        """A copy with this name instead of the derived one."""
        return replace(self, name=name)

    def on_relationships(self) -> "Constraint":
        """A copy that applies to relationships of type ``label`` instead of nodes."""
        return replace(self, entity="relationship")

    def _to_wit(self) -> wit.Constraint:
        kind: wit.ConstraintKind
        if self.kind == "unique":
            kind = wit.ConstraintKind_Unique()
        elif self.kind == "key":
            kind = wit.ConstraintKind_Key()
        elif self.kind == "exists":
            kind = wit.ConstraintKind_Exists()
        elif self.kind == "property-type":
            kind = wit.ConstraintKind_PropertyType(self.property_type or "")
        else:
            raise ValueError(f"unknown constraint kind {self.kind!r}")
        return wit.Constraint(
            name=self.name,
            entity=_entity_to_wit(self.entity),
            label=self.label,
            properties=list(self.properties),
            kind=kind,
        )


@dataclass(frozen=True)
class Index:
    """An index, as built for ``ctx.create_index`` and as listed by ``ctx.schema()``."""

    labels: Tuple[str, ...]
    """The labels or relationship types; several only for full-text indexes."""
    properties: Tuple[str, ...]
    """The properties, in order."""
    kind: IndexKind = "range"
    """Its kind."""
    entity: Entity = "node"
    """Nodes or relationships."""
    name: Optional[str] = None
    """Its name; ``None`` lets the host derive one."""
    vector_dimensions: Optional[int] = None
    """The dimensions of a vector index."""
    vector_similarity: Optional[str] = None
    """The similarity function of a vector index: ``cosine`` or ``euclidean``."""

    @property
    def label(self) -> str:
        """The first (usually only) label."""
        return self.labels[0] if self.labels else ""

    def named(self, name: str) -> "Index":
        """A copy with this name instead of the derived one."""
        return replace(self, name=name)

    def on_relationships(self) -> "Index":
        """A copy that applies to relationships instead of nodes."""
        return replace(self, entity="relationship")

    def _to_wit(self) -> wit.Index:
        return wit.Index(
            name=self.name,
            entity=_entity_to_wit(self.entity),
            labels=list(self.labels),
            properties=list(self.properties),
            kind=_INDEX_KINDS_TO_WIT[self.kind],
            vector_dimensions=self.vector_dimensions,
            vector_similarity=self.vector_similarity,
        )


SchemaElement = Union[Constraint, Index]
"""One element of the live schema: a constraint, or an index no constraint owns."""


# ---------------------------------------------------------------------------
# Constraint builders


def unique(label: str, properties: Names) -> Constraint:
    """Values of ``properties`` (together) are unique among nodes labelled ``label``."""
    return Constraint(label, _names(properties, "properties"), "unique")


def key(label: str, properties: Names) -> Constraint:
    """``properties`` exist and are unique together (a node key)."""
    return Constraint(label, _names(properties, "properties"), "key")


def exists(label: str, property: str) -> Constraint:
    """``property`` exists on every node labelled ``label`` (``IS NOT NULL``)."""
    return Constraint(label, (property,), "exists")


def property_type(label: str, property: str, cypher_type: str) -> Constraint:
    """``property`` has the Cypher type ``cypher_type`` (``STRING``, ``INTEGER``, ...)."""
    return Constraint(label, (property,), "property-type", property_type=cypher_type)


def relationship_unique(rel_type: str, properties: Names) -> Constraint:
    """Values of ``properties`` are unique among relationships of type ``rel_type``."""
    return unique(rel_type, properties).on_relationships()


def relationship_key(rel_type: str, properties: Names) -> Constraint:
    """``properties`` exist and are unique together on relationships of ``rel_type``."""
    return key(rel_type, properties).on_relationships()


def relationship_exists(rel_type: str, property: str) -> Constraint:
    """``property`` exists on every relationship of type ``rel_type``."""
    return exists(rel_type, property).on_relationships()


def relationship_property_type(rel_type: str, property: str, cypher_type: str) -> Constraint:
    """``property`` of relationships of ``rel_type`` has the Cypher type ``cypher_type``."""
    return property_type(rel_type, property, cypher_type).on_relationships()


# ---------------------------------------------------------------------------
# Index builders


def range_index(label: str, properties: Names) -> Index:
    """A range index (the default kind) on ``properties`` of ``label``."""
    return Index((label,), _names(properties, "properties"), "range")


def text_index(label: str, property: str) -> Index:
    """A text index on ``property`` of ``label``."""
    return Index((label,), (property,), "text")


def point_index(label: str, property: str) -> Index:
    """A point index on ``property`` of ``label``."""
    return Index((label,), (property,), "point")


def fulltext_index(labels: Names, properties: Names) -> Index:
    """A full-text index over ``properties`` of nodes with any of ``labels``."""
    return Index(_names(labels, "labels"), _names(properties, "properties"), "fulltext")


def vector_index(label: str, property: str, dimensions: int, similarity: str = "cosine") -> Index:
    """A vector index on ``property`` of ``label`` (``similarity``: ``cosine`` or ``euclidean``)."""
    return Index(
        (label,),
        (property,),
        "vector",
        vector_dimensions=dimensions,
        vector_similarity=similarity,
    )


# ---------------------------------------------------------------------------
# Conversions (used by the context)

_INDEX_KINDS_TO_WIT = {
    "range": wit.IndexKind.RANGE,
    "text": wit.IndexKind.TEXT,
    "point": wit.IndexKind.POINT,
    "fulltext": wit.IndexKind.FULLTEXT,
    "vector": wit.IndexKind.VECTOR,
}
_INDEX_KINDS_FROM_WIT = {v: k for k, v in _INDEX_KINDS_TO_WIT.items()}


def _entity_to_wit(entity: Entity) -> wit.Entity:
    return wit.Entity.RELATIONSHIP if entity == "relationship" else wit.Entity.NODE


def _entity_from_wit(entity: wit.Entity) -> Entity:
    return "relationship" if entity == wit.Entity.RELATIONSHIP else "node"


def element_from_wit(element: wit.SchemaElement) -> SchemaElement:
    """Converts one element of the host's schema listing."""
    if isinstance(element, wit.SchemaElement_Constraint):
        c = element.value
        kind: ConstraintKind
        ptype: Optional[str] = None
        if isinstance(c.kind, wit.ConstraintKind_Unique):
            kind = "unique"
        elif isinstance(c.kind, wit.ConstraintKind_Key):
            kind = "key"
        elif isinstance(c.kind, wit.ConstraintKind_Exists):
            kind = "exists"
        else:
            kind = "property-type"
            ptype = c.kind.value
        return Constraint(
            label=c.label,
            properties=tuple(c.properties),
            kind=kind,
            property_type=ptype,
            entity=_entity_from_wit(c.entity),
            name=c.name,
        )
    i = element.value
    return Index(
        labels=tuple(i.labels),
        properties=tuple(i.properties),
        kind=_INDEX_KINDS_FROM_WIT.get(i.kind, "range"),  # type: ignore[arg-type]
        entity=_entity_from_wit(i.entity),
        name=i.name,
        vector_dimensions=i.vector_dimensions,
        vector_similarity=i.vector_similarity,
    )

