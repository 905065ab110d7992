"""Write graphmig migrations in Python: plain functions, native Python values.

A Python migration is a folder ``migrations/V<n>__<description>/`` holding
``migration.py`` (which may import other modules of its folder)::

    from graphmig import unique

    DESCRIPTION = "Create the first people"   # optional
    IRREVERSIBLE = False                       # optional

    def up(ctx):
        ctx.create_constraint(unique("Person", "name"))
        ctx.run("CREATE (:Person {name: $name, born: $born})", name="Ada", born=1815)

    def down(ctx):                             # optional
        ctx.run("MATCH (p:Person {name: $name}) DETACH DELETE p", name="Ada")

``graphmig build`` turns it into a WebAssembly component with componentize-py.
Every statement of one step runs in one transaction that the host commits when
the step returns and rolls back when it raises; the step then fails with the
exception's type name and message (``ValueError: no people found``).

Values cross as native Python values (see :mod:`graphmig.values`); ``print``
goes to the migration's log. Import what you need at the top of your modules:
the component holds only the modules imported while it was built, and it has no
files, network or environment at run time.
"""

from .context import BackfillReport, Batch, Context, Endpoint
from .errors import (
    DatasetError,
    GraphError,
    GraphmigError,
    RowCountError,
    SchemaError,
    ValueConversionError,
)
from .schema import (
    Constraint,
    Index,
    SchemaElement,
    exists,
    fulltext_index,
    key,
    point_index,
    property_type,
    range_index,
    relationship_exists,
    relationship_key,
    relationship_property_type,
    relationship_unique,
    text_index,
    unique,
    vector_index,
)
from .values import Node, Params, Relationship, Row

__version__ = "0.1.0"

__all__ = [
    "BackfillReport",
    "Batch",
    "Constraint",
    "Context",
    "DatasetError",
    "Endpoint",
    "GraphError",
    "GraphmigError",
    "Index",
    "Node",
    "Params",
    "Relationship",
    "Row",
    "RowCountError",
    "SchemaElement",
    "SchemaError",
    "ValueConversionError",
    "exists",
    "fulltext_index",
    "key",
    "point_index",
    "property_type",
    "range_index",
    "relationship_exists",
    "relationship_key",
    "relationship_property_type",
    "relationship_unique",
    "text_index",
    "unique",
    "vector_index",
]
