"""Entry module of every graphmig Python migration component (fixed text).

componentize-py runs this module while it builds the component: it imports the
migration's own module, ``migration.py``, checks it, and exports the ``lifecycle``
interface by delegating to the graphmig SDK.
"""

import sys

# Keep the build from writing __pycache__ folders into the migration's folder.
sys.dont_write_bytecode = True

import wit_world  # noqa: E402
from wit_world.exports import lifecycle  # noqa: E402

import migration  # noqa: E402
from graphmig import _entry  # noqa: E402

_entry.check(migration)


class Lifecycle(wit_world.exports.Lifecycle):
    """The exported ``graphmig:migration/lifecycle`` interface."""

    def describe(self) -> lifecycle.Metadata:
        return _entry.describe(migration)

    def up(self) -> None:
        _entry.step(migration, "up")

    def down(self) -> None:
        _entry.step(migration, "down")
