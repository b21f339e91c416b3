"""The sandbox campaign templates run in: Jinja's immutable sandbox, with limits.

Jinja's sandbox keeps a template away from Python's internals, not from the machine's
resources: a dozen characters (`{{ 7**3000000 }}`, `{{ 'ab' * 30000000 }}`,
`{{ 'x'|center(10**9) }}`) cost seconds of CPU or gigabytes. Here every way to make a big
number, string or list is bounded: the operators that can (`**`, `*`, `+`, `%`) are
intercepted (which also keeps Jinja from folding them at compile time), as are `~`, `range`,
the filters and string methods that take a width, count or separator, and loops (a budget of
iterations per render). What builds text outside the rendered output (macros, `{% set %}`
and `{% filter %}` blocks, namespaces) is refused at compile time, and so is what needs a
loader (`include`, `import`, `extends`). A render stops at `MAX_TEXT_CHARS` characters. A
limit exceeded raises `TemplateError`.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn

import jinja2
from jinja2 import filters, nodes
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from clarion.errors import TemplateError

MAX_TEXT_CHARS = 65_536  # a template, its rendered message, any string or list it makes
MAX_WIDTH = 1_600  # a width, padding, indent or precision: an SMS's most characters
MAX_INT_BITS = 4_096  # a number a template makes (about 1,233 digits)
MAX_LOOP_ITERATIONS = 10_000  # per render, every loop together; also range()'s most items
TOO_LONG = f"the message is over {MAX_TEXT_CHARS:,} characters"

# Compiled templates name their frames so; a traceback's last such frame is the line.
_TEMPLATE_FILENAME = "<template>"
_REFUSED: dict[type[nodes.Node], str] = {
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from %}",
    nodes.Block: "{% block %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.AssignBlock: "a {% set %} block",
    nodes.NSRef: "setting a namespace attribute",
}
_LOOP_FILTER, _CONCAT_FILTER = "_loop_budget", "_concat"
# A printf conversion: "%%", or "%" with optional (key), flags, width and .precision.
_PRINTF = re.compile(r"%%|%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+)?)?")
_DIGITS = re.compile(r"\d+")


def _refuse(message: str) -> NoReturn:
    raise TemplateError(message)


def _size(value: Any) -> int:
    """Characters or items `value` holds, nested containers' contents included."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple):
        return len(value) + sum(_size(v) for v in value)
    if isinstance(value, dict):
        return len(value) + sum(_size(k) + _size(v) for k, v in value.items())
    return 1


def _check_size(what: str, value: Any) -> None:
    if _size(value) > MAX_TEXT_CHARS:
        _refuse(f"{what} makes over {MAX_TEXT_CHARS:,} characters or items")


def _check_width(what: str, width: Any) -> None:
    if isinstance(width, int) and abs(width) > MAX_WIDTH:
        _refuse(f"{what}: a width over {MAX_WIDTH:,} is not allowed")


def _too_wide(digits: str | None) -> bool:
    return digits is not None and (digits == "*" or len(digits) > 5 or int(digits) > MAX_WIDTH)


def _check_printf(fmt: str) -> None:
    """Refuse a %-format whose width or precision is over MAX_WIDTH, or given by `*`."""
    for match in _PRINTF.finditer(fmt):
        if _too_wide(match.group(1)) or _too_wide(match.group(2)):
            _refuse(f"'%': a width or precision over {MAX_WIDTH:,} is not allowed")


def _check_format_string(fmt: str) -> None:
    """Refuse a str.format string whose field widths are over MAX_WIDTH, or nested."""
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if spec and ("{" in spec or any(_too_wide(d) for d in _DIGITS.findall(spec))):
            _refuse(f"format: a width over {MAX_WIDTH:,}, or a nested one, is not allowed")


def _check_replace(s: str | bytes, old: Any, new: Any, count: Any) -> None:
    try:
        n = s.count(old)
        grow = len(new) - len(old)
    except TypeError:
        return  # not strings: the call itself raises
    if isinstance(count, int) and 0 <= count < n:
        n = count
    if len(s) + n * grow > MAX_TEXT_CHARS:
        _refuse(f"replace makes over {MAX_TEXT_CHARS:,} characters")


def _check_join(separator: str | bytes, items: list[Any]) -> None:
    if len(separator) * max(len(items) - 1, 0) + sum(map(_size, items)) > MAX_TEXT_CHARS:
        _refuse(f"join makes over {MAX_TEXT_CHARS:,} characters")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        if right * math.log2(abs(left)) > MAX_INT_BITS:
            _refuse(f"'**' makes a number over {MAX_INT_BITS:,} bits")
    elif operator == "*" and ints:
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            _refuse(f"'*' makes a number over {MAX_INT_BITS:,} bits")
    elif operator == "*":
        seq, times = (left, right) if isinstance(right, int) else (right, left)
        sized = isinstance(seq, str | bytes | list | tuple)
        if sized and isinstance(times, int) and _size(seq) * times > MAX_TEXT_CHARS:
            _refuse(f"'*' makes over {MAX_TEXT_CHARS:,} characters or items")
    elif operator == "%" and isinstance(left, str):
        _check_printf(left)


def _range(*args: int) -> range:
    items = range(*args)
    try:
        too_many = len(items) > MAX_LOOP_ITERATIONS
    except OverflowError:  # more items than a C ssize_t counts
        too_many = True
    if too_many:
        _refuse(f"range() of over {MAX_LOOP_ITERATIONS:,} items is not allowed")
    return items


@jinja2.pass_context
def _loop_budget(context: Context, items: Iterable[Any]) -> Iterator[Any]:
    """A loop's items, each counted against the render's budget (kept on its context)."""
    budget: list[int] = context.__dict__.setdefault("_clarion_loops_left", [MAX_LOOP_ITERATIONS])
    for item in items:
        budget[0] -= 1
        if budget[0] < 0:
            _refuse(f"loops ran over {MAX_LOOP_ITERATIONS:,} times in one message")
        yield item


def _concat(values: Iterable[Any]) -> str:
    """`a ~ b`: Jinja's concatenation, bounded."""
    texts = [str(v) for v in values]
    if sum(map(len, texts)) > MAX_TEXT_CHARS:
        _refuse(f"'~' makes over {MAX_TEXT_CHARS:,} characters")
    return "".join(texts)


def _center(value: Any, width: int = 80) -> str:
    _check_width("center", width)
    return filters.do_center(value, width)


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    pad = len(width) if isinstance(width, str) else width
    _check_width("indent", pad)
    if isinstance(pad, int) and len(text) + pad * (text.count("\n") + 1) > MAX_TEXT_CHARS:
        _refuse(f"indent makes over {MAX_TEXT_CHARS:,} characters")
    return filters.do_indent(s, width, first, blank)


@jinja2.pass_environment
def _wordwrap(
    environment: jinja2.Environment,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    # at most a break per character: the wrapped text is at most this long
    between = environment.newline_sequence if wrapstring is None else str(wrapstring)
    if len(between) * (len(str(s)) + 1) > MAX_TEXT_CHARS:
        _refuse(f"wordwrap makes over {MAX_TEXT_CHARS:,} characters")
    return filters.do_wordwrap(
        environment, s, width, break_long_words, wrapstring, break_on_hyphens
    )


@jinja2.pass_eval_context
def _replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    _check_replace(str(s), str(old), str(new), count)
    return filters.do_replace(eval_ctx, s, old, new, count)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_printf(str(value))
    out = filters.do_format(value, *args, **kwargs)
    _check_size("format", out)
    return out


@jinja2.pass_eval_context
def _join(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    if attribute is not None:
        value = map(filters.make_attrgetter(eval_ctx.environment, attribute), value)
    items = list(value)
    _check_join(str(d), items)
    return filters.sync_do_join(eval_ctx, items, d)


def _count_at_most(what: str, count: Any) -> None:
    if isinstance(count, int) and count > MAX_LOOP_ITERATIONS:
        _refuse(f"{what}: over {MAX_LOOP_ITERATIONS:,} is not allowed")


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _count_at_most("batch", linecount)
    return filters.do_batch(value, linecount, fill_with)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _count_at_most("slice", slices)
    return filters.sync_do_slice(value, slices, fill_with)


@jinja2.pass_eval_context
def _tojson(eval_ctx: EvalContext, value: Any, indent: Any = None) -> str:
    pad = len(indent) if isinstance(indent, str) else (indent or 0)
    if isinstance(pad, int) and pad * (_size(value) + 1) > MAX_TEXT_CHARS:
        _refuse(f"tojson makes over {MAX_TEXT_CHARS:,} characters")
    return filters.do_tojson(eval_ctx, value, indent)


def _round(value: Any, precision: int = 0, method: Any = "common") -> float:
    _check_width("round", precision)  # round(5, -10**7) computes 10**(10**7)
    return filters.do_round(value, precision, method)


@jinja2.pass_environment
def _sum(
    environment: jinja2.Environment,
    iterable: Iterable[Any],
    attribute: str | int | None = None,
    start: Any = 0,
) -> Any:
    if not isinstance(start, int | float):  # lists summed: each copied into the next
        _refuse("sum adds numbers: its start must be a number")
    return filters.sync_do_sum(environment, iterable, attribute, start)


_BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center, "indent": _indent, "wordwrap": _wordwrap, "replace": _replace,
    "format": _format, "join": _join, "batch": _batch, "slice": _slice, "tojson": _tojson,
    "round": _round, "sum": _sum, _LOOP_FILTER: _loop_budget, _CONCAT_FILTER: _concat,
}  # fmt: skip


def _method_of_text(obj: Any) -> tuple[str | bytes, str] | None:
    """(the string, the method's name) when `obj` is a str or bytes method, else None."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str | bytes):  # str.format comes wrapped by the sandbox
        owner = getattr(getattr(obj, "__wrapped__", None), "__self__", None)
    if not isinstance(owner, str | bytes):
        return None
    return owner, str(getattr(obj, "__name__", ""))


def _check_text_call(
    s: str | bytes, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, ...]:
    """Refuse a str or bytes method call that would make a huge string; the arguments to
    call it with (an iterable to join, read once here, as a list)."""
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(name, args[0])
    elif name == "expandtabs":
        tab = kwargs.get("tabsize", args[0] if args else 8)
        _check_width(name, tab)
        tabs = s.count("\t") if isinstance(s, str) else s.count(b"\t")
        if isinstance(tab, int) and len(s) + tab * tabs > MAX_TEXT_CHARS:
            _refuse(f"expandtabs makes over {MAX_TEXT_CHARS:,} characters")
    elif name == "replace" and len(args) >= 2:
        _check_replace(s, args[0], args[1], args[2] if len(args) > 2 else None)
    elif name == "join" and args:
        items = list(args[0])
        _check_join(s, items)
        return (items, *args[1:])
    elif name in ("format", "format_map") and isinstance(s, str):
        _check_format_string(s)
    elif name in ("translate", "maketrans"):
        _refuse(f"{name}() is not allowed in a campaign template")
    return args


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the limits above."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters.update(_BOUNDED_FILTERS)
        self.globals["range"] = _range
        del self.globals["lipsum"]  # lipsum(n=10**9) writes n paragraphs

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # Jinja's returns an undefined that raises only where it is used: `''.__class__`
        # rendered empty in a lenient render (a sample's), and `default()` hid it.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe."
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        result = self.binop_table[operator](left, right)
        if operator in ("+", "%"):
            _check_size(f"'{operator}'", result)
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        method = _method_of_text(obj)
        if method is not None:
            args = _check_text_call(*method, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(result, str | bytes) and len(result) > MAX_TEXT_CHARS:
            _refuse(f"a call makes over {MAX_TEXT_CHARS:,} characters")
        return result


class _Bound(NodeTransformer):
    """Counts every loop's iterations and bounds `~` (a filter each)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            _refuse_at(node, "a recursive loop")
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


def _refuse_at(node: nodes.Node, what: str) -> NoReturn:
    raise TemplateError(f"{what} is not allowed in a campaign template", line=node.lineno)


def parse(env: BoundedSandbox, source: str) -> nodes.Template:
    """The template's tree, checked (what is refused) and bounded (loops, `~`)."""
    if len(source) > MAX_TEXT_CHARS:
        _refuse(f"the template is over {MAX_TEXT_CHARS:,} characters")
    tree = env.parse(source)
    for node in tree.find_all(tuple(_REFUSED)):
        _refuse_at(node, _REFUSED[type(node)])
    bounded = _Bound().visit(tree)
    assert isinstance(bounded, nodes.Template)
    return bounded


def build(env: BoundedSandbox, tree: nodes.Template) -> jinja2.Template:
    """Compile a tree from `parse`."""
    return env.template_class.from_code(env, env.compile(tree), env.make_globals(None), None)


def render(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """Render, stopping as soon as the output is over MAX_TEXT_CHARS characters."""
    chunks = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_TEXT_CHARS:
            _refuse(TOO_LONG)
        chunks.append(chunk)
    return "".join(chunks)


def template_error(exc: Exception) -> TemplateError:
    """`exc`, raised compiling or rendering a template, as the error a user reads: its
    message, and the template's line where Jinja's traceback names one."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(exc.message or str(exc), line=exc.lineno)
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, TemplateError):
        known = exc.line is not None or line is None
        return exc if known else TemplateError(exc.message, line=line)
    if isinstance(exc, jinja2.UndefinedError | SecurityError):
        return TemplateError(str(exc), line=line)
    return TemplateError(f"{type(exc).__name__}: {exc}", line=line)
