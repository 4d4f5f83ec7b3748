"""Write a modhost module in Python.

A module is a subclass of :class:`Module`. Its lifecycle methods do nothing unless
overridden; its hook handlers are methods marked with :func:`handler`, named as
module.xml's ``<methods>`` and ``<hooks>`` name them. Any exception a method raises
becomes the call's error, carrying the Python traceback, so a handler fails cleanly
instead of trapping the sandbox::

    from modhost_sdk import Module, handler, kv, log

    class Hello(Module):
        def install(self) -> None:
            kv.set("greeting", "hello")

        @handler("hello_greet")
        def greet(self, hook: str, payload: str) -> str:
            log.info("greeting", who=payload)
            return f"{kv.get('greeting')}, {payload}"

    Lifecycle, Hooks = Hello.exports()

The last line is what componentize-py looks for: the classes implementing the
``lifecycle`` and ``hooks`` interfaces of ``modhost:module``. Build the component with
``componentize-py -d wit -w module componentize app -p . -p sdk -o module.wasm``.
"""

from __future__ import annotations

import json
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, TypeVar, Union

from componentize_py_types import Err
from wit_world.imports import db as _db
from wit_world.imports import dispatch as _dispatch
from wit_world.imports import kv as _kv
from wit_world.imports import log as _log
from wit_world.imports import types as _types

__all__ = ["Module", "handler", "kv", "log", "db", "fire", "Outcome", "ModuleError"]

#: The longest traceback kept in an error, in characters: the host bounds messages too.
_TRACEBACK_LIMIT = 4000


class ModuleError(Exception):
    """Raise it to fail a call with ``message`` alone, without a traceback."""


def _failure(error: BaseException) -> Err:
    """The error result for ``error``: its type and message, then the Python traceback."""
    if isinstance(error, Err):
        return error
    if isinstance(error, ModuleError):
        return Err(str(error))
    trace = "".join(traceback.format_exception(error))
    if len(trace) > _TRACEBACK_LIMIT:
        trace = "…" + trace[-_TRACEBACK_LIMIT:]
    return Err(f"{type(error).__name__}: {error}\n{trace}")


HandlerFn = Callable[[Any, str, str], Any]
M = TypeVar("M", bound="Module")


def handler(name: str) -> Callable[[HandlerFn], HandlerFn]:
    """Marks a method as the handler ``name`` (as module.xml names it).

    The method is called with ``(hook, payload)`` and returns the output: a ``str`` as
    it is, anything else (a dict, a list) as JSON.
    """

    def mark(function: HandlerFn) -> HandlerFn:
        setattr(function, "_modhost_handler", name)
        return function

    return mark


class Module:
    """A modhost module. Override the lifecycle methods you need; mark handlers with
    :func:`handler`; export with :meth:`exports`."""

    def install(self) -> None:
        """First-time setup, called once when the module is installed."""

    def upgrade(self, from_version: str) -> None:
        """Called instead of ``install`` when this version replaces ``from_version``."""

    def uninstall(self) -> None:
        """Called before the module's files, data and store are removed."""

    def enable(self) -> None:
        """Called when the module is enabled."""

    def disable(self) -> None:
        """Called when the module is disabled."""

    @classmethod
    def handlers(cls) -> Dict[str, str]:
        """The handlers of this class, as ``{handler name: method name}``."""
        found: Dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attribute, value in vars(klass).items():
                name = getattr(value, "_modhost_handler", None)
                if name is not None:
                    found[name] = attribute
        return found

    @classmethod
    def exports(cls: Type[M]) -> Tuple[type, type]:
        """The ``Lifecycle`` and ``Hooks`` classes componentize-py exports, running one
        instance of this module."""
        module = cls()
        handlers = cls.handlers()

        def guarded(call: Callable[[], Any]) -> Any:
            try:
                return call()
            except BaseException as error:  # noqa: BLE001 - every failure is the call's error
                raise _failure(error) from None

        class Lifecycle:
            def install(self) -> None:
                guarded(module.install)

            def upgrade(self, from_version: str) -> None:
                guarded(lambda: module.upgrade(from_version))

            def uninstall(self) -> None:
                guarded(module.uninstall)

            def enable(self) -> None:
                guarded(module.enable)

            def disable(self) -> None:
                guarded(module.disable)

        class Hooks:
            def handle(self, handler: str, hook: str, payload: str) -> str:
                method = handlers.get(handler)
                if method is None:
                    known = ", ".join(sorted(handlers)) or "none"
                    raise Err(f"no handler `{handler}` for hook `{hook}` (handlers: {known})")
                output = guarded(lambda: getattr(module, method)(hook, payload))
                return output if isinstance(output, str) else json.dumps(output)

        return Lifecycle, Hooks


class _Kv:
    """The module's own key-value store."""

    def get(self, key: str) -> Optional[str]:
        """The value of ``key``, or ``None``."""
        return _kv.get(key)

    def set(self, key: str, value: str) -> None:
        """Sets ``key``; raises when the host refuses (a limit, the module's quota)."""
        _kv.set(key, value)

    def delete(self, key: str) -> bool:
        """Deletes ``key``; whether it existed."""
        return _kv.delete(key)

    def keys(self, prefix: str = "") -> List[str]:
        """The keys starting with ``prefix``, sorted."""
        return _kv.keys(prefix)


class _Log:
    """Structured log records, which the host writes with the module's name."""

    def _log(self, level: _types.Level, message: str, fields: Dict[str, Any]) -> None:
        _log.log(level, message, [_types.Field(k, str(v)) for k, v in fields.items()])

    def trace(self, message: str, **fields: Any) -> None:
        """Logs at trace level: ``log.trace("seen", caller="100")``."""
        self._log(_types.Level.TRACE, message, fields)

    def debug(self, message: str, **fields: Any) -> None:
        """Logs at debug level."""
        self._log(_types.Level.DEBUG, message, fields)

    def info(self, message: str, **fields: Any) -> None:
        """Logs at info level."""
        self._log(_types.Level.INFO, message, fields)

    def warn(self, message: str, **fields: Any) -> None:
        """Logs at warning level."""
        self._log(_types.Level.WARN, message, fields)

    def error(self, message: str, **fields: Any) -> None:
        """Logs at error level."""
        self._log(_types.Level.ERROR, message, fields)


SqlValue = Union[None, bool, int, float, str, bytes]


def _to_value(value: SqlValue) -> _db.Value:
    if value is None:
        return _db.Value_Null()
    if isinstance(value, bool):
        return _db.Value_Integer(int(value))
    if isinstance(value, int):
        return _db.Value_Integer(value)
    if isinstance(value, float):
        return _db.Value_Real(value)
    if isinstance(value, str):
        return _db.Value_Text(value)
    if isinstance(value, (bytes, bytearray)):
        return _db.Value_Blob(bytes(value))
    raise TypeError(f"cannot bind a {type(value).__name__} to an SQL parameter")


def _from_value(value: _db.Value) -> SqlValue:
    if isinstance(value, _db.Value_Null):
        return None
    return value.value


class _Db:
    """The tables the module's module.xml ``<database>`` declares."""

    def execute(self, sql: str, *params: SqlValue) -> int:
        """Runs one statement that changes data; the number of rows changed."""
        return _db.execute(sql, [_to_value(p) for p in params])

    def query(self, sql: str, *params: SqlValue) -> List[Dict[str, SqlValue]]:
        """Runs one query; each row as ``{column: value}``."""
        rows = _db.query(sql, [_to_value(p) for p in params])
        return [
            {column: _from_value(v) for column, v in zip(rows.columns, row)} for row in rows.rows
        ]


Outcome = _dispatch.Outcome

#: The module's key-value store.
kv = _Kv()
#: The module's log.
log = _Log()
#: The module's tables.
db = _Db()


def fire(hook: str, payload: str) -> List[Outcome]:
    """Fires hook point ``hook``; each handler's outcome, in the order they ran."""
    return _dispatch.fire(hook, payload)
