"""Write a modhost module in Python.

A module is a subclass of :class:`Module`. Its lifecycle methods do nothing unless
overridden; its hook handlers are methods marked with :func:`handler`, named as
module.xml's ``<methods>`` and ``<hooks>`` name them, each returning a ``str``. Any
exception a method raises becomes the call's error, carrying the Python traceback, so a
handler fails cleanly instead of trapping the sandbox::

    from modhost_sdk import HostError, Module, handler, kv, log

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

Mistakes fail the call, naming the function and the argument, never the sandbox:

- A handler must return a ``str``: returning ``None`` (a forgotten ``return``) or anything
  else fails the call (``json.dumps`` structured data yourself).
- ``kv``, ``log``, ``db`` and ``fire`` check their arguments' types and raise
  :class:`TypeError` (or :class:`OverflowError` for an integer outside SQLite's 64-bit
  range) at the caller's line. ``log`` field values are converted with ``str()``.
- What the host refuses (a failing SQL statement, a full store, a hook nested too deep)
  raises :class:`HostError` with the host's message; catch it with ``except HostError``.
- :mod:`tempfile` makes its files in ``/data``, the one directory a module may write.
- Python's :mod:`logging` writes to the module's log at each record's level: warnings
  and errors, as Python's root logger passes on by default, and more after
  ``logging.getLogger().setLevel(logging.INFO)``. (``logging.basicConfig`` does nothing,
  as the root logger has the SDK's handler already.)
- componentize-py bundles only the modules imported when the component is built: import
  what a handler needs (``import decimal``) at the top of app.py, not inside a function,
  or the call fails with :class:`ModuleNotFoundError`.

SQL values map between Python and SQLite as :data:`SqlValue` describes: ``None`` is
NULL; ``bool`` binds as INTEGER 1 or 0 (and reads back as ``int``); ``int`` is INTEGER,
from ``-2**63`` to ``2**63 - 1``; ``float`` is REAL; ``str`` is TEXT; ``bytes``,
``bytearray`` and ``memoryview`` are BLOB (read back as ``bytes``). Anything else is a
:class:`TypeError`.
"""

from __future__ import annotations

import logging as _logging
import os
import socket
import sys
import traceback
import types
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple, Type, TypeVar, Union

from componentize_py_types import Err
from wit_world.imports import db as _db
from wit_world.imports import dispatch as _dispatch
from wit_world.imports import kv as _kv
from wit_world.imports import log as _log
from wit_world.imports import types as _types

__all__ = [
    "Module",
    "handler",
    "kv",
    "log",
    "db",
    "fire",
    "Outcome",
    "SqlValue",
    "ModuleError",
    "HostError",
]

#: The longest traceback kept in an error, in characters: the host bounds messages too.
_TRACEBACK_LIMIT = 4000

#: The most characters of one line of a traceback (a long message's) kept in an error.
_LINE_LIMIT = 500

#: SQLite's INTEGER range, which ``db`` parameters must fit.
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1

#: What a module reaching for the network is told: the sandbox links WASI's sockets with
#: every network switched off, which would otherwise fail as `unknown encoding: idna`
#: (the codec is never bundled) or an errno that means something else.
_NO_NETWORK = (
    "modhost modules have no network: a module reaches the PBX through its hooks, kv, db "
    "and the APIs the application gives it"
)


# What ``print()`` writes reaches the host a line at a time, as it is printed, and so the
# log among the module's own records in the order written: stdout is no terminal here,
# where Python would hold it back until a block filled or the call ended.
_reconfigure = getattr(sys.stdout, "reconfigure", None)
if _reconfigure is not None:
    _reconfigure(line_buffering=True)


def _no_network(name: str) -> Callable[..., NoReturn]:
    def refused(*_args: object, **_kwargs: object) -> NoReturn:
        raise PermissionError(f"{name}: {_NO_NETWORK}")

    return refused


for _name in (
    "create_connection",
    "create_server",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
):
    setattr(socket, _name, _no_network(f"socket.{_name}"))
setattr(socket.socket, "__init__", _no_network("socket.socket"))


#: This file, whose frames around the module's own are left out of a traceback.
_SDK_FILE: str = globals().get("__file__") or ""


class ModuleError(Exception):
    """Raise it to fail a call with ``message`` alone, without a traceback."""


class HostError(Exception):
    """The host refused what the module asked: an SQL statement that failed (``no such
    table: x``), a value past the store's limits, a hook fired too deep.

    ``str(error)`` and :attr:`message` are the host's message. Uncaught, it fails the
    call with the traceback to the line that asked::

        try:
            db.execute("INSERT INTO hello_greetings (who) VALUES (?1)", who)
        except HostError as error:
            log.warn("not recorded", why=error.message)
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: The host's message.
        self.message: str = message


def _host_error(error: Err[Any]) -> HostError:
    """The :class:`HostError` for a ``result`` error componentize-py raised."""
    value = error.value
    return HostError(value if isinstance(value, str) else repr(value))


def _lazy_import_hint(error: BaseException) -> str:
    """A hint for a module that was not bundled, when ``error`` is one."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return ""
    return (
        "\ncomponentize-py bundles only the modules imported when the component is built: "
        f"import `{error.name}` at the top of app.py"
    )


def _shown_path(path: str) -> str:
    """``path`` as its author wrote it: componentize-py mounts each directory of the
    build at ``/0``, ``/1``…, so ``/0/app.py`` is ``app.py``."""
    mount, sep, rest = path[1:].partition("/")
    return rest if path.startswith("/") and sep and mount.isdigit() else path


def _said(error: BaseException) -> str:
    """``str(error)``, or what :mod:`traceback` says when that fails: a module's own
    exception class must not turn a failed call into a trap."""
    try:
        return str(error)
    except BaseException:  # noqa: BLE001 - any failure of a module's __str__
        return "<exception str() failed>"


def _reports(report: traceback.TracebackException) -> List[traceback.TracebackException]:
    """``report`` and the exceptions chained to it (causes, contexts, groups)."""
    found: List[traceback.TracebackException] = []
    pending = [report]
    while pending:
        current = pending.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        pending.extend(
            chained
            for chained in (current.__cause__, current.__context__)
            if chained is not None
        )
        pending.extend(getattr(current, "exceptions", None) or [])
    return found


def _failure(error: BaseException) -> Err[str]:
    """The error result for ``error``: its type and message, then the Python traceback."""
    if isinstance(error, ModuleError):
        return Err(_printable(_said(error)))
    if isinstance(error, Err):
        # The WIT's error is a string: another value (``Err(42)``) would trap the call
        # as the result is lowered, so it is said as Python shows it.
        value = error.value
        return Err(_printable(value if isinstance(value, str) else repr(value)))
    report = traceback.TracebackException(type(error), error, error.__traceback__)
    if _SDK_FILE:
        # The SDK's own frames around the module's code say nothing to its author: keep
        # the module's frames and the SDK function it called.
        frames = list(report.stack)
        mine = [i for i, frame in enumerate(frames) if frame.filename != _SDK_FILE]
        kept = frames[mine[0] : mine[-1] + 2] if mine else frames[-1:]
        report.stack = traceback.StackSummary.from_list(kept)
    for chained in _reports(report):
        for frame in chained.stack:
            frame.filename = _shown_path(frame.filename)
    # A long message (rows printed into it, say) is cut on each line it takes, so that
    # the frames, which point at the module's code, always fit.
    lines = [
        line if len(line) <= _LINE_LIMIT else line[:_LINE_LIMIT] + "…\n"
        for line in report.format()
    ]
    trace = "".join(lines)
    if len(trace) > _TRACEBACK_LIMIT:
        trace = "…" + trace[-_TRACEBACK_LIMIT:]
    message = _said(error)
    if len(message) > _LINE_LIMIT:
        message = message[:_LINE_LIMIT] + "…"
    return Err(_printable(f"{type(error).__name__}: {message}{_lazy_import_hint(error)}\n{trace}"))


def _type_error(function: str, argument: str, expected: str, value: object) -> NoReturn:
    """Raises the :class:`TypeError` for ``function``'s ``argument`` not being ``expected``."""
    raise TypeError(
        f"{function}: `{argument}` must be {expected}, not {type(value).__name__} ({value!r:.80})"
    )


def _text(function: str, argument: str, value: object) -> str:
    """``value`` if it is a ``str`` the host can take; a :class:`TypeError` naming
    ``function`` otherwise, or a :class:`ValueError` for a lone surrogate."""
    if not isinstance(value, str):
        _type_error(function, argument, "a str", value)
    _unicode(f"{function}: `{argument}`", value)
    return value


def _unicode(what: str, value: str) -> None:
    """Raises :class:`ValueError` when ``value`` holds a lone surrogate (what
    ``errors="surrogateescape"`` decoding leaves), which no UTF-8 string can carry:
    passed to the host, it would stop the interpreter instead of failing the call."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{what} is not valid Unicode text: a lone surrogate {value[error.start]!r} at "
            f"index {error.start} (decode bytes with errors='replace', or keep them as bytes)"
        ) from None


def _not_async(what: str, returned: object, function: Any = None) -> None:
    """Raises :class:`TypeError` when ``what`` returned a coroutine: an ``async def``
    runs nothing until awaited, and modhost never awaits it. ``function``, when given,
    is named with where it is defined (see :func:`_where`)."""
    if isinstance(returned, (types.CoroutineType, types.AsyncGeneratorType)):
        if isinstance(returned, types.CoroutineType):
            returned.close()
        raise TypeError(
            f"{what} returned a coroutine: modhost does not wait for it, so none of its "
            "code ran: make it a plain def, without async/await"
            + (f" — {_where(function)}" if function is not None else "")
        )


def _takes(function: Any, count: int) -> bool:
    """Whether ``function`` (a method, unbound) can be called with ``count`` positional
    arguments, ``self`` included: read from its code object, as ``inspect`` would (which
    the component would then have to bundle)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return True
    defaults = len(getattr(function, "__defaults__", None) or ())
    kwonly_defaults = getattr(function, "__kwdefaults__", None) or {}
    takes_varargs = bool(code.co_flags & 0x04)
    required = code.co_argcount - defaults
    required_kwonly = code.co_kwonlyargcount - len(kwonly_defaults)
    return (
        required <= count
        and (code.co_argcount >= count or takes_varargs)
        and required_kwonly == 0
    )


def _takes_hook_and_payload(function: Any) -> bool:
    """Whether ``function`` can be called with ``(self, hook, payload)``."""
    return _takes(function, 3)


# The lifecycle methods and what modhost calls each with, after ``self``.
_LIFECYCLE = {
    "install": "",
    "upgrade": "from_version: str",
    "uninstall": "",
    "enable": "",
    "disable": "",
}


def _slip_of(name: str, meant: str) -> bool:
    """Whether ``name`` is one typing slip from ``meant``: the same but for case or an
    ``on_`` prefix, or one letter added (not at its end), dropped, changed or two swapped
    (``instal``, ``enabel``)."""
    a = name.lower()
    a = a[3:] if a.startswith("on_") else a[2:] if a.startswith("on") else a
    b = meant
    if a == b:
        return True
    # A word made longer (`enabled`, `installs`) is a name of its own, not a slip.
    if abs(len(a) - len(b)) > 1 or a.startswith(b):
        return False
    # Optimal string alignment distance.
    rows = [[j for j in range(len(b) + 1)]]
    for i in range(1, len(a) + 1):
        row = [i]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, rows[i - 2][j - 2] + 1)
            row.append(best)
        rows.append(row)
    return rows[len(a)][len(b)] <= 1


def _printable(text: str) -> str:
    """``text`` with any lone surrogate written as its escape: what the SDK itself sends
    (an error message, a log field) must never stop the interpreter."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


HandlerFn = Callable[[Any, str, str], str]
M = TypeVar("M", bound="Module")


def handler(name: str) -> Callable[[HandlerFn], HandlerFn]:
    """Marks a method as the handler ``name`` (as module.xml names it).

    The method is called with ``(hook, payload)`` and returns the output, a ``str``:
    anything else (``None`` from a forgotten ``return``, a dict) fails the call, so
    ``json.dumps`` structured data. Two methods of one class marked with the same name
    are refused when the class is defined.
    """
    if callable(name):
        # `@handler` without its name: the method itself came as the name.
        method = getattr(name, "__name__", "method")
        raise TypeError(
            f"@handler needs the handler's name, as module.xml's <methods> or <hooks> "
            f"names it: write @handler(\"NAME\") above `def {method}`"
        )
    _text("handler", "name", name)

    def mark(function: HandlerFn) -> HandlerFn:
        setattr(function, "_modhost_handler", name)
        return function

    return mark


def _where(function: Any) -> str:
    """Where ``function`` is defined, as ``Class.method (app.py, line 7)``, or ``""``."""
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    name = getattr(function, "__qualname__", getattr(function, "__name__", "?"))
    if code is None:
        return str(name)
    return f"{name} ({_shown_path(code.co_filename)}, line {code.co_firstlineno})"


#: The line the host reads on stderr as where a call is (see :func:`_running`).
_RUNNING_MARK = "[modhost] running "


def _mark(function: Any) -> str:
    """The line :func:`_running` writes for ``function``."""
    return f"{_RUNNING_MARK}{_where(function)}\n"


def _running(mark: Optional[str]) -> None:
    """Tells the host which of the author's functions the call runs now (its ``mark``,
    made once by :func:`_mark`): a call stopped at its deadline is then said to have
    been stopped in it (``Pyx.loop (app.py, line 21)``), where the interpreter's own
    frames would name nothing of the author's. The host reads the line on stderr and
    shows it as no output of the module's."""
    if mark is None:
        return
    stream = sys.__stderr__ or sys.stderr
    try:
        stream.write(mark)
        stream.flush()
    except (OSError, ValueError):
        pass


class Module:
    """A modhost module. Override the lifecycle methods you need; mark handlers with
    :func:`handler`; export with :meth:`exports`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        seen: Dict[str, str] = {}
        for attribute, value in vars(cls).items():
            name = getattr(value, "_modhost_handler", None)
            if name is None:
                continue
            if name in seen:
                raise TypeError(
                    f"{cls.__name__}: methods `{seen[name]}` and `{attribute}` are both "
                    f"marked @handler({name!r}); a handler name may be used once"
                )
            if not _takes_hook_and_payload(value):
                raise TypeError(
                    f"@handler({name!r}) {_where(value)}: a handler is called with "
                    "(self, hook, payload); write `def "
                    f"{attribute}(self, hook: str, payload: str) -> str`"
                )
            seen[name] = attribute
        # Refused when the class is made (at build time, for the module's class), at the
        # author's line, rather than when modhost first calls it, or never: a lifecycle
        # method misspelled (`instal`) would silently not run.
        for attribute, value in vars(cls).items():
            if attribute in _LIFECYCLE or attribute.startswith("__") or not callable(value):
                continue
            if getattr(value, "_modhost_handler", None) is not None:
                continue
            meant = next((m for m in _LIFECYCLE if _slip_of(attribute, m)), None)
            if meant is not None:
                raise TypeError(
                    f"{_where(value)}: modhost calls no method `{attribute}`: did you mean "
                    f"`{meant}`? (name a helper otherwise)"
                )
        for method, parameters in _LIFECYCLE.items():
            value = vars(cls).get(method)
            count = 2 if parameters else 1
            if value is not None and callable(value) and not _takes(value, count):
                raise TypeError(
                    f"{_where(value)}: modhost calls `{method}` with (self"
                    f"{', ' + parameters.split(':')[0] if parameters else ''}); write "
                    f"`def {method}(self{', ' + parameters if parameters else ''}) -> None`"
                )

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
        """The handlers of this class, as ``{handler name: method name}``; a subclass's
        handler replaces its base's of the same name."""
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
        # Where each of the author's functions is, made once: a call only writes it. A
        # lifecycle method is marked when the author wrote it: the default does nothing,
        # and never runs long.
        marks: Dict[str, str] = {
            method: _mark(getattr(module, method)) for method in set(handlers.values())
        }
        for name in ("install", "upgrade", "uninstall", "enable", "disable"):
            function = getattr(module, name)
            if getattr(function, "__func__", None) is not getattr(Module, name):
                marks[name] = _mark(function)

        def guarded(call: Callable[[], Any]) -> Any:
            # `tempfile` looks for a writable directory among TMPDIR, /tmp and the working
            # directory, and a module may write only to /data: its temporary files go
            # there (counted in its /data quota while they last). Set for each call, as
            # the environment a build saw is not the one a call runs in.
            os.environ.setdefault("TMPDIR", "/data")
            try:
                return call()
            except BaseException as error:  # noqa: BLE001 - every failure is the call's error
                raise _failure(error) from None

        def lifecycle(name: str, call: Callable[[], Any]) -> None:
            _running(marks.get(name))

            def checked() -> None:
                _not_async(f"{name}()", call())

            guarded(checked)

        def run(name: str, method: str, hook: str, payload: str) -> str:
            function = getattr(module, method)
            _running(marks.get(method))
            output = function(hook, payload)
            _not_async(f"handler `{name}`", output, function)
            if isinstance(output, str):
                try:
                    _unicode(f"handler `{name}` returned a str that", output)
                except ValueError as error:
                    raise ValueError(f"{error} — {_where(function)}") from None
                return output
            if output is None:
                hint = "did it forget `return`?"
            elif isinstance(output, (bytes, bytearray)):
                hint = "decode bytes: .decode()"
            else:
                hint = "json.dumps for structured data"
            kind = "None" if output is None else type(output).__name__
            raise TypeError(
                f"handler `{name}` returned {kind}: return a str ({hint})"
                f" — {_where(function)}"
            )

        class Lifecycle:
            def install(self) -> None:
                lifecycle("install", module.install)

            def upgrade(self, from_version: str) -> None:
                lifecycle("upgrade", lambda: module.upgrade(from_version))

            def uninstall(self) -> None:
                lifecycle("uninstall", module.uninstall)

            def enable(self) -> None:
                lifecycle("enable", module.enable)

            def disable(self) -> None:
                lifecycle("disable", module.disable)

        class Hooks:
            def handle(self, handler: str, hook: str, payload: str) -> str:
                method = handlers.get(handler)
                if method is None:
                    known = ", ".join(sorted(handlers)) or "none"
                    raise Err(f"no handler `{handler}` for hook `{hook}` (handlers: {known})")
                output: str = guarded(lambda: run(handler, method, hook, payload))
                return output

        return Lifecycle, Hooks


class _Kv:
    """The module's own key-value store: ``str`` keys to ``str`` values."""

    def get(self, key: str) -> Optional[str]:
        """The value of ``key``, or ``None``."""
        return _kv.get(_text("kv.get", "key", key))

    def set(self, key: str, value: str) -> None:
        """Sets ``key`` to ``value`` (both ``str``: ``str()`` or ``json.dumps`` others);
        raises :class:`HostError` when the host refuses (a limit, the module's quota)."""
        _text("kv.set", "key", key)
        _text("kv.set", "value", value)
        try:
            _kv.set(key, value)
        except Err as error:
            raise _host_error(error) from None

    def delete(self, key: str) -> bool:
        """Deletes ``key``; whether it existed."""
        return _kv.delete(_text("kv.delete", "key", key))

    def keys(self, prefix: str = "") -> List[str]:
        """The keys starting with ``prefix``, sorted."""
        return _kv.keys(_text("kv.keys", "prefix", prefix))


class _Log:
    """Structured log records, which the host writes with the module's name.

    The message must be a ``str``; field values may be anything, converted with ``str()``:
    ``log.info("stored", rows=3)``. A field may be called ``message`` too.
    """

    def _log(self, level: _types.Level, function: str, message: str, fields: Dict[str, Any]) -> None:
        _text(function, "message", message)
        _log.log(
            level,
            message,
            [_types.Field(_printable(k), _printable(str(v))) for k, v in fields.items()],
        )

    def trace(self, message: str, /, **fields: Any) -> None:
        """Logs at trace level: ``log.trace("seen", caller="100")``."""
        self._log(_types.Level.TRACE, "log.trace", message, fields)

    def debug(self, message: str, /, **fields: Any) -> None:
        """Logs at debug level."""
        self._log(_types.Level.DEBUG, "log.debug", message, fields)

    def info(self, message: str, /, **fields: Any) -> None:
        """Logs at info level."""
        self._log(_types.Level.INFO, "log.info", message, fields)

    def warn(self, message: str, /, **fields: Any) -> None:
        """Logs at warning level."""
        self._log(_types.Level.WARN, "log.warn", message, fields)

    def error(self, message: str, /, **fields: Any) -> None:
        """Logs at error level."""
        self._log(_types.Level.ERROR, "log.error", message, fields)


#: What a ``db`` parameter may be, and what a column reads back as:
#:
#: ===========================================  ============  =====================
#: Python                                       SQLite        read back as
#: ===========================================  ============  =====================
#: ``None``                                     NULL          ``None``
#: ``bool``                                     INTEGER 1/0   ``int``
#: ``int`` from ``-2**63`` to ``2**63 - 1``     INTEGER       ``int``
#: ``float``                                    REAL          ``float``
#: ``str``                                      TEXT          ``str``
#: ``bytes``, ``bytearray``, ``memoryview``     BLOB          ``bytes``
#: ===========================================  ============  =====================
#:
#: Anything else raises :class:`TypeError`; an ``int`` out of range, :class:`OverflowError`.
SqlValue = Union[None, bool, int, float, str, bytes]


def _to_value(function: str, index: int, value: object) -> _db.Value:
    """The WIT value for parameter ``?index`` of ``function``."""
    if value is None:
        return _db.Value_Null()
    if isinstance(value, bool):
        return _db.Value_Integer(int(value))
    if isinstance(value, int):
        if not _I64_MIN <= value <= _I64_MAX:
            raise OverflowError(
                f"{function}: parameter ?{index} = {value} is outside SQLite's INTEGER range "
                f"(-2**63 to 2**63 - 1); bind it as a str"
            )
        return _db.Value_Integer(int(value))
    if isinstance(value, float):
        return _db.Value_Real(float(value))
    if isinstance(value, str):
        _unicode(f"{function}: parameter ?{index}", value)
        return _db.Value_Text(str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _db.Value_Blob(bytes(value))
    hint = ""
    if isinstance(value, (list, tuple)):
        hint = f"; pass parameters as separate arguments: {function}(sql, *params)"
    raise TypeError(
        f"{function}: parameter ?{index} is a {type(value).__name__}, which SQL cannot bind "
        f"(None, bool, int, float, str or bytes){hint}"
    )


def _from_value(value: _db.Value) -> SqlValue:
    if isinstance(value, _db.Value_Null):
        return None
    result: SqlValue = value.value
    return result


class _Db:
    """The tables the module's module.xml ``<database>`` declares. Parameters bind to
    ``?1``, ``?2``, … as :data:`SqlValue` describes; a statement the host refuses or that
    fails raises :class:`HostError`."""

    def _params(self, function: str, sql: object, params: Tuple[object, ...]) -> List[_db.Value]:
        _text(function, "sql", sql)
        return [_to_value(function, index, p) for index, p in enumerate(params, 1)]

    def execute(self, sql: str, *params: SqlValue) -> int:
        """Runs one statement that changes data; the number of rows changed."""
        values = self._params("db.execute", sql, params)
        try:
            changed: int = _db.execute(sql, values)
        except Err as error:
            raise _host_error(error) from None
        return changed

    def query(self, sql: str, *params: SqlValue) -> List[Dict[str, SqlValue]]:
        """Runs one query; each row as ``{column: value}``."""
        values = self._params("db.query", sql, params)
        try:
            rows = _db.query(sql, values)
        except Err as error:
            raise _host_error(error) from None
        return [
            {column: _from_value(v) for column, v in zip(rows.columns, row)} for row in rows.rows
        ]


Outcome = _dispatch.Outcome

#: The module's key-value store.
kv = _Kv()
#: The module's log.
log = _Log()


class _ToModuleLog(_logging.Handler):
    """The root logger's handler: Python's :mod:`logging` writes to the module's log, at
    the record's level, the logger's name as a field. Without it, ``logging.warning``
    would set up a handler writing to stderr, which the host logs at debug level only."""

    def emit(self, record: _logging.LogRecord) -> None:
        levels = (
            (_logging.ERROR, _types.Level.ERROR),
            (_logging.WARNING, _types.Level.WARN),
            (_logging.INFO, _types.Level.INFO),
            (_logging.DEBUG, _types.Level.DEBUG),
        )
        level = next((ours for at, ours in levels if record.levelno >= at), _types.Level.TRACE)
        fields = {} if record.name == "root" else {"logger": record.name}
        try:
            log._log(level, "logging", self.format(record), fields)
        except Exception:
            # Logging never fails the call; and at build time (componentize-py runs the top
            # level) there is no host to log to.
            pass


# On the root logger, as hosts of Python code (Azure Functions' worker) put theirs: what
# any logger writes reaches it, and `logging.basicConfig` then leaves it in place.
_logging.getLogger().addHandler(_ToModuleLog())

#: The module's tables.
db = _Db()


def fire(hook: str, payload: str) -> List[Outcome]:
    """Fires hook point ``hook`` with ``payload`` (a ``str``: ``json.dumps`` structured
    data); each handler's outcome, in the order they ran. Raises :class:`HostError` when
    the hook cannot be fired (nested too deep)."""
    _text("fire", "hook", hook)
    _text("fire", "payload", payload)
    try:
        outcomes: List[Outcome] = _dispatch.fire(hook, payload)
    except Err as error:
        raise _host_error(error) from None
    return outcomes
