"""The bridge between the exported ``lifecycle`` interface and a migration module
(internal; used by the fixed ``app.py``).

A migration module defines ``up(ctx)``, optionally ``down(ctx)``, and optionally
the constants ``DESCRIPTION`` (str) and ``IRREVERSIBLE`` (bool). Nothing here lets
a Python exception escape into the host as a trap: a failing step becomes an
``err`` carrying the exception's type name, message and a short traceback tail.

While a step runs, ``print`` and anything else written to ``sys.stdout`` go to
the migration's log as ``info`` lines, and ``sys.stderr`` as ``warn`` lines.
Importing a module that was not imported while the component was built raises
``ModuleNotFoundError`` (a component has no files to load it from).

This module avoids every WASI call at run time (no file reads for tracebacks, no
clocks), so that components built with ``componentize-py --stub-wasi`` work.
"""

from __future__ import annotations

import io
import sys
from importlib.machinery import BuiltinImporter, FrozenImporter, ModuleSpec
from types import ModuleType, TracebackType
from typing import List, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.exports import lifecycle
from wit_world.imports import context as host
from wit_world.imports import types as wit

from .context import Context

__all__ = ["check", "describe", "step", "format_exception"]

_NO_DOWN = "this migration has no down step"
_MAX_FRAMES = 6
_MAX_CAUSES = 3
_MAX_LINE_BUFFER = 16 * 1024
_SDK_DIR = __file__.rsplit("/", 1)[0] + "/"


class _LogStream(io.TextIOBase):
    """A text stream whose lines become log lines of one level."""

    def __init__(self, level: wit.LogLevel) -> None:
        super().__init__()
        self._level = level
        self._pending = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> Optional[str]:  # type: ignore[override]
        return "strict"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self._pending += s
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            host.log(self._level, line)
        if len(self._pending) > _MAX_LINE_BUFFER:
            self.flush()
        return len(s)

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, ""
            host.log(self._level, pending)


class _NoNewModules:
    """A meta path finder, first in line at run time: only built-in and frozen
    modules can still be imported; anything else was either imported while the
    component was built (and is in ``sys.modules``) or is not in the component.
    Without it the path finders would touch the (absent) file system."""

    @classmethod
    def find_spec(
        cls, name: str, path: Optional[Sequence[str]] = None, target: Optional[ModuleType] = None
    ) -> Optional[ModuleSpec]:
        spec = BuiltinImporter.find_spec(name) or FrozenImporter.find_spec(name)
        if spec is not None:
            return spec
        raise ModuleNotFoundError(
            f"No module named {name!r} in this component: a migration can only use modules "
            f"imported while it was built; import {name.split('.')[0]} at the top of your module",
            name=name,
        )

    @classmethod
    def invalidate_caches(cls) -> None:
        """Nothing is cached."""


def _prepare_runtime() -> None:
    if _NoNewModules not in sys.meta_path:
        sys.meta_path.insert(0, _NoNewModules)
    if not isinstance(sys.stdout, _LogStream):
        sys.stdout = _LogStream(wit.LogLevel.INFO)
    if not isinstance(sys.stderr, _LogStream):
        sys.stderr = _LogStream(wit.LogLevel.WARN)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def check(module: ModuleType) -> None:
    """Checks, at build time, that ``module`` is a migration: it must define a
    callable ``up``; ``down``, when present, must be callable too.

    Raises:
        TypeError: it is not (componentize-py then fails the build with this message).
    """
    name = _display_path(getattr(module, "__file__", None) or module.__name__)
    up = getattr(module, "up", None)
    if not callable(up):
        raise TypeError(f"graphmig: {name} defines no function up(ctx)")
    down = getattr(module, "down", None)
    if down is not None and not callable(down):
        raise TypeError(f"graphmig: {name}: down must be a function down(ctx), not {type(down).__name__}")


def describe(module: ModuleType) -> lifecycle.Metadata:
    """The migration's metadata from its ``DESCRIPTION``, ``IRREVERSIBLE`` and ``down``."""
    try:
        _prepare_runtime()
        description = getattr(module, "DESCRIPTION", None)
        description = "" if description is None else str(description)
        irreversible = bool(getattr(module, "IRREVERSIBLE", False))
        has_down = callable(getattr(module, "down", None))
    except BaseException:
        description, irreversible, has_down = "", False, False
    return lifecycle.Metadata(
        description=description,
        rollback=lifecycle.RollbackPolicy.IRREVERSIBLE if irreversible else lifecycle.RollbackPolicy.REVERSIBLE,
        has_down=has_down,
    )


def step(module: ModuleType, name: str) -> None:
    """Runs the step ``name`` (``"up"`` or ``"down"``) of ``module`` with a fresh
    :class:`Context`.

    Raises:
        Err: with the failure message (componentize-py turns it into the WIT ``err``).
    """
    message = _run(module, name)
    if message is not None:
        raise Err(message)


def _run(module: ModuleType, name: str) -> Optional[str]:
    try:
        _prepare_runtime()
        function = getattr(module, name, None)
        if not callable(function):
            return _NO_DOWN if name == "down" else f"this migration has no {name} step"
        function(Context())
    except BaseException as exc:
        _flush_streams()
        return format_exception(exc)
    _flush_streams()
    return None


def format_exception(exc: BaseException) -> str:
    """``TypeName: message``, then its causes and the innermost frames of the
    migration's own code (never raises; reads no source files)."""
    try:
        lines = [_headline(exc)]
        frames = _user_frames(exc.__traceback__)
        if frames:
            lines.append("Traceback (most recent call last):")
            lines.extend(f'  File "{path}", line {lineno}, in {func}' for path, lineno, func in frames)
        seen = {id(exc)}
        cause = _cause(exc)
        depth = 0
        while cause is not None and id(cause) not in seen and depth < _MAX_CAUSES:
            seen.add(id(cause))
            lines.append(f"caused by: {_headline(cause)}")
            cause = _cause(cause)
            depth += 1
        return "\n".join(lines)
    except BaseException:
        try:
            return type(exc).__name__
        except BaseException:
            return "the migration raised an exception"


def _headline(exc: BaseException) -> str:
    name = type(exc).__name__
    try:
        text = str(exc)
    except BaseException:
        text = ""
    return f"{name}: {text}" if text else name


def _cause(exc: BaseException) -> Optional[BaseException]:
    if exc.__cause__ is not None:
        return exc.__cause__
    if exc.__context__ is not None and not exc.__suppress_context__:
        return exc.__context__
    return None


def _display_path(path: str) -> str:
    # componentize-py mounts each `-p` folder as /0, /1, ... while it builds.
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "" and parts[1].isdigit():
        return "/".join(parts[2:])
    return path


def _user_frames(tb: Optional[TracebackType]) -> List[Tuple[str, int, str]]:
    frames: List[Tuple[str, int, str]] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        path = code.co_filename
        if not path.startswith(_SDK_DIR) and not path.endswith("/app.py"):
            frames.append((_display_path(path), tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return frames[-_MAX_FRAMES:]
