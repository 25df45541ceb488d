"""Plugin options checked against the registry: the options a row's key records, and a whole
``--set`` request validated against the plugins selected, before any work.

Apart from :mod:`brainbench.core.contract.options` (the option types every plugin declares with)
because these need the registry, one floor above the contract.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..contract.options import OptionError, PluginOptions, _hint, _unknown, coerce, declared, key_options
from ..errors import UnknownNameError
from .specs import get_registry


def key_options_named(kind: str, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`key_options` of the registered plugin ``name`` of ``kind`` (``models``…); ``options`` as they
    are when no plugin of that name is registered (a built object whose name is not its registry name)."""
    try:
        spec = get_registry().get(kind, name)
    except UnknownNameError:
        return dict(options)
    return key_options(spec, options)


def validate(options: PluginOptions, selected: Mapping[str, list]) -> None:
    """Check every ``--set`` option against the plugins it goes to, before any of them is built.

    ``selected``: kind (``model``…) → the registry specs selected. A general option must be known
    to at least one selected plugin of its kind and fit every one that declares it; a scoped one
    (``KIND:NAME``) must name a registered plugin and fit it.
    """
    registry = get_registry()
    for (kind, name), given in options.scoped.items():
        coerce(registry.get(f"{kind}s", name), given)
    for kind, given in options.general.items():
        specs = selected.get(kind, [])
        for option, value in given.items():
            knowing = [s for s in specs if option in declared(s).table or declared(s).open]
            if len(specs) == 1 and not knowing:
                raise _unknown(specs[0], option, declared(specs[0]).table)
            if specs and not knowing:
                names = ", ".join(s.name for s in specs)
                raise OptionError(f"no selected {kind} ({names}) has option {option!r}" + _hint(option, specs))
            for spec in knowing:
                coerce(spec, {option: value}, partial=True)
