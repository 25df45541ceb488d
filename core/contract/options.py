"""Plugin options: one declaration per option (type, range, default), one ``--set`` parser.

Every model, dataset and metric option has a declared :class:`Option`. A plugin declares
them in an ``option_types`` mapping on its factory (class attribute, or attribute of the
factory function); options it does not declare are inferred from their default value
(a metric's ``defaults``, a dataset's ``defaults``, or the factory's keyword defaults: an
``int`` default makes an integer option, a list of numbers a list of numbers, and so on).
A factory whose signature takes ``**options`` and declares nothing accepts unknown
options unchecked (a third-party plugin that validates them itself).

``--set`` values are read once, here (:func:`parse_sets`): ``TARGET.OPTION=VALUE`` for every
plugin of a kind, ``KIND:NAME.OPTION=VALUE`` for one; a value is JSON when it parses
(``3``, ``true``, ``[1, 10]``), else text, and a list option also takes the comma form
(``1,10,100``). :func:`coerce` then checks each value against its declaration and converts
it, so a wrong type, a value out of range or an unknown option is one sentence naming the
option and what it accepts — raised by :func:`brainbench.core.registry.guards.build`, before a
plugin does any work. :func:`key_options` gives the options a result's key records:
checked, converted, and without those equal to their default, so that spelling out a
default never makes a second row for one computation.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..errors import BrainbenchError

TARGETS = ("model", "dataset", "metric")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_NONE = ("none", "null")


class OptionError(BrainbenchError):
    """A plugin option that is unknown, of the wrong type or out of range."""


class SetSyntaxError(OptionError):
    """A ``--set`` item that is not ``TARGET.OPTION=VALUE``; ``usage`` is the sentence without the prefix."""

    def __init__(self, item: str, usage: str):
        super().__init__(f"invalid --set {item!r}: {usage}")
        self.usage = f"{item!r}: {usage}"


@dataclass(frozen=True)
class Option:
    """The declared type and range of one plugin option.

    ``kind``: ``int``, ``float``, ``bool``, ``text``, ``path``, ``choice``, ``floats`` (a list of
    numbers), ``texts`` (a list of names) or ``any``. Bounds: ``minimum``/``maximum`` inclusive,
    ``above``/``below`` exclusive (for a list, they bound every element). ``words``: literal
    words accepted besides the type (``"all"``, ``"best"``). ``nullable``: None (``none``) is
    accepted, meaning "the plugin's own choice". ``length``: exact length of a list.
    """

    kind: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple = ()
    words: tuple = ()
    length: int | None = None
    nullable: bool = False
    help: str = ""

    # ---------------------------------------------------------------- description
    def accepts(self) -> str:
        """What the option accepts, as a phrase: ``a whole number ≥ 2``."""
        bounds = self._bounds()
        what = {
            "int": "a whole number", "float": "a number", "bool": "true or false", "text": "a text",
            "path": "a file or folder path", "any": "any value",
            "choice": "one of " + ", ".join(map(str, self.choices)),
            "floats": "a list of numbers (JSON [1, 10] or 1,10)", "texts": "a list of names (JSON or a,b)",
        }[self.kind]
        if self.length is not None:
            what = what.replace("a list of", f"a list of {self.length}")
        if bounds:
            what += (", each " if self.kind == "floats" else " ") + bounds
        extra = [repr(w) for w in self.words] + (["none"] if self.nullable else [])
        if extra:
            what += f", or {' or '.join(extra)}"
        return what

    def _bounds(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"≥ {self.minimum:g}")
        if self.above is not None:
            parts.append(f"> {self.above:g}")
        if self.maximum is not None:
            parts.append(f"≤ {self.maximum:g}")
        if self.below is not None:
            parts.append(f"< {self.below:g}")
        return " and ".join(parts)

    def describe(self) -> str:
        """``accepts`` plus the default, for ``bench info``."""
        default = "the plugin's own" if self.default is None else json.dumps(self.default)
        return f"{self.accepts()} (default: {default})" + (f"; {self.help}" if self.help else "")

    # ---------------------------------------------------------------- conversion
    def convert(self, value: Any) -> Any:
        """``value`` checked and converted to the declared type; ValueError when it does not fit."""
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE and self.kind != "text"):
            if self.nullable or self.default is None:
                return None
            raise ValueError
        if isinstance(value, str) and value.strip() in self.words:
            return value.strip()
        converter = getattr(self, f"_to_{self.kind}")
        return converter(value)

    def _in_range(self, number: float) -> float:
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum) \
                or (self.above is not None and number <= self.above) or (self.below is not None and number >= self.below):
            raise ValueError
        return number

    def _to_int(self, value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            value = int(value.strip())  # ValueError for "abc" and "2.5"
        if not isinstance(value, int):
            raise ValueError
        return int(self._in_range(value))

    def _to_float(self, value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError
        number = float(value.strip() if isinstance(value, str) else value)
        if not math.isfinite(number):
            raise ValueError
        return float(self._in_range(number))

    def _to_bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError

    def _to_text(self, value: Any) -> str:
        if isinstance(value, (list, dict)):
            raise ValueError
        return str(value)

    _to_path = _to_text

    def _to_any(self, value: Any) -> Any:
        return value

    def _to_choice(self, value: Any) -> Any:
        for choice in self.choices:
            if value == choice or str(value) == str(choice):
                return choice
        raise ValueError

    def _items(self, value: Any) -> list:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            items = [part.strip() for part in text.split(",") if part.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        elif isinstance(value, dict):
            raise ValueError
        else:
            items = [value]
        if not items or (self.length is not None and len(items) != self.length):
            raise ValueError
        return items

    def _to_floats(self, value: Any) -> list[float]:
        return [self._to_float(item) for item in self._items(value)]

    def _to_texts(self, value: Any) -> list[str]:
        return [self._to_text(item).strip() for item in self._items(value)]


# ---------------------------------------------------------------- declaring
def Int(default: Any = None, **bounds: Any) -> Option:  # noqa: N802 - reads like a type
    """A whole-number option."""
    return Option("int", default, **bounds)


def Float(default: Any = None, **bounds: Any) -> Option:  # noqa: N802
    """A finite number option."""
    return Option("float", default, **bounds)


def Bool(default: Any = None, **extra: Any) -> Option:  # noqa: N802
    return Option("bool", default, **extra)


def Text(default: Any = None, **extra: Any) -> Option:  # noqa: N802
    return Option("text", default, **extra)


def PathOption(default: Any = None, **extra: Any) -> Option:  # noqa: N802
    """A file or folder; None: the configured default."""
    return Option("path", default, nullable=True, **extra)


def Choice(*choices: Any, default: Any = None, **extra: Any) -> Option:  # noqa: N802
    return Option("choice", default, choices=tuple(choices), **extra)


def Floats(default: Any = None, **bounds: Any) -> Option:  # noqa: N802
    """A non-empty list of numbers (JSON ``[1, 10]`` or comma form ``1,10``)."""
    return Option("floats", default, **bounds)


def Texts(default: Any = None, **extra: Any) -> Option:  # noqa: N802
    """A non-empty list of names (JSON or comma form)."""
    return Option("texts", default, **extra)


#: the options of every metric that fits cross-validated ridge (``brainbench.core.compute.ridge.cv_predict``)
RIDGE_OPTIONS = {
    "alphas": Floats(above=0, help="ridge penalties to choose from"),
    "folds": Int(minimum=2, help="cross-validation folds"),
    "alpha_selection": Choice("loo", "gcv", "kfold", help="how each unit's penalty is chosen"),
    "n_permutations": Int(minimum=0),
    "seed": Int(minimum=0),
}


def infer(default: Any) -> Option:
    """The option a default value implies (for options a plugin does not declare)."""
    if isinstance(default, bool):
        return Bool(default)
    if isinstance(default, int):
        return Int(default)
    if isinstance(default, float):
        return Float(default)
    if isinstance(default, str):
        return Text(default)
    if isinstance(default, (list, tuple)) and default:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in default):
            return Floats(list(default))
        if all(isinstance(v, str) for v in default):
            return Texts(list(default))
    return Option("any", default)


@dataclass
class Declared:
    """The options of one plugin: ``table`` name → :class:`Option`; ``open``: unknown names pass unchecked."""

    table: dict[str, Option]
    open: bool = False


def _signature_defaults(factory) -> tuple[dict[str, Any], bool]:
    """Keyword defaults of a factory (its class's ``__init__`` chain), and whether it takes ``**options``."""
    functions = [c.__init__ for c in inspect.getmro(factory) if "__init__" in vars(c)] \
        if inspect.isclass(factory) else [factory]
    found: dict[str, Any] = {}
    takes_more = True
    for function in functions:
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            continue
        for p in parameters:
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "checkpoint", "name") \
                    and p.name not in found:
                found[p.name] = None if p.default is p.empty else p.default
        takes_more = any(p.kind == p.VAR_KEYWORD for p in parameters)
        if not takes_more:
            break  # the chain stops where **options are no longer passed up
    return found, takes_more


def declared(spec) -> Declared:
    """Every option of a registered plugin (``spec``: a registry ``Spec``), with its default."""
    factory = spec.factory
    table = dict(getattr(factory, "option_types", None) or {})
    defaults = getattr(factory, "defaults", None)
    defaults = dict(defaults) if isinstance(defaults, Mapping) else {}
    signature, takes_more = _signature_defaults(factory)
    closed = bool(table) or bool(defaults) or not takes_more
    names = list(dict.fromkeys([*table, *defaults, *(signature if not defaults else ())]))
    out = {}
    for name in names:
        default = defaults.get(name, signature.get(name))
        if default is None and spec.kind == "models" and name in spec.metadata:
            default = spec.metadata[name]  # "the plugin's own" value, as its registration states it
        option = table.get(name) or infer(default)
        if default is not None and option.default is None:
            option = dataclasses.replace(option, default=default)
        out[name] = option
    return Declared(out, open=not closed)


def _plugin(spec) -> str:
    return f"{spec.kind[:-1]} {spec.name!r}"


def _unknown(spec, name: str, known: Iterable[str]) -> OptionError:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; its options: {', '.join(known) or 'none'}"
    return OptionError(f"{_plugin(spec)} has no option {name!r}{hint}")


def coerce(spec, options: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """``options`` checked against ``spec``'s declarations and converted (see the module docstring).

    ``partial``: leave options the plugin does not know out instead of refusing them.
    Raises :class:`OptionError` (one sentence naming the option and what it accepts).
    """
    decl = declared(spec)
    out = {}
    for name, value in options.items():
        option = decl.table.get(name)
        if option is None:
            if decl.open:
                out[name] = value
            elif not partial:
                raise _unknown(spec, name, decl.table)
            continue
        try:
            out[name] = option.convert(value)
        except (TypeError, ValueError):
            shown = value if isinstance(value, str) else json.dumps(value)
            default = "" if option.default is None or isinstance(option.default, (list, tuple)) \
                else f" (default {json.dumps(option.default)})"
            raise OptionError(f"{_plugin(spec)} cannot use {name}={shown}: {name} takes "
                              f"{option.accepts()}{default}") from None
    return out


def key_options(spec, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a result's key records: checked, converted, and those equal to the default left out."""
    decl = declared(spec)
    out = {}
    for name, value in coerce(spec, options).items():
        option = decl.table.get(name)
        if option is not None and option.default is not None:
            try:
                if option.convert(option.default) == value:
                    continue
            except (TypeError, ValueError):
                pass
        out[name] = value
    return out


def describe(spec) -> list[str]:
    """One line per option, ``name: what it accepts (default: …)`` (``bench info``)."""
    decl = declared(spec)
    lines = [f"{name}: {option.describe()}" for name, option in decl.table.items()]
    if decl.open:
        lines.append("(also options the plugin checks itself)")
    return lines


# ---------------------------------------------------------------- --set
@dataclass
class PluginOptions:
    """``--set`` options: for every plugin of a kind, or for one plugin (``KIND:NAME.OPTION``)."""

    general: dict[str, dict[str, Any]] = field(default_factory=lambda: {t: {} for t in TARGETS})
    scoped: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The options of plugin ``name`` of ``kind`` (``model``, ``dataset`` or ``metric``)."""
        return {**self.general[kind], **self.scoped.get((kind, name), {})}


def read_value(raw: str) -> Any:
    """A ``--set`` value: JSON when it parses (``3``, ``true``, ``[1, 2]``), else the text itself."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_sets(values: Iterable[str], target: str | None = None) -> PluginOptions:
    """Parse ``TARGET.OPTION=VALUE`` items; TARGET is ``model``/``dataset``/``metric`` or ``KIND:NAME``.

    ``target``: items are bare ``OPTION=VALUE`` for that kind (``bench data check``, ``bench check``).
    """
    out = PluginOptions()
    for item in values:
        key, sep, raw = item.partition("=")
        if target is not None:
            if not sep or not key.strip():
                raise SetSyntaxError(item, "use OPTION=VALUE, e.g. n_images=40")
            out.general[target][key.strip()] = read_value(raw)
            continue
        name_part, dot, option = key.rpartition(".")
        kind, colon, name = name_part.partition(":")
        if not sep or not dot or not option or kind not in TARGETS or (colon and not name):
            raise SetSyntaxError(item, "use TARGET.OPTION=VALUE with TARGET model, dataset or metric, or KIND:NAME "
                                 "for one plugin (e.g. metric:spatial.n_permutations=1000)")
        (out.scoped.setdefault((kind, name), {}) if colon else out.general[kind])[option] = read_value(raw)
    return out


def parse_plain(values: Iterable[str]) -> dict[str, Any]:
    """Bare ``OPTION=VALUE`` items (``bench check NAME --set …``, ``bench data check``), read like ``--set``."""
    return parse_sets(values, target="model").general["model"]


def _hint(option: str, specs: list) -> str:
    known = sorted({n for s in specs for n in declared(s).table})
    close = difflib.get_close_matches(option, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; their options: {', '.join(known)}"
