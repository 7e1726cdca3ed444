"""The kinds of destination this Trackway has: every package under `destinations/`
that exposes a `DEFINITION`."""

import functools
import importlib
import pkgutil

from trackway import destinations
from trackway.destinations.framework import Definition


@functools.cache
def definitions() -> dict[str, Definition]:
    """Every destination definition, by its type name."""
    found: dict[str, Definition] = {}
    for module in pkgutil.iter_modules(destinations.__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"{destinations.__name__}.{module.name}")
        definition = getattr(package, "DEFINITION", None)
        if isinstance(definition, Definition):
            found[definition.name] = definition
    return dict(sorted(found.items()))


def definition(type_name: str) -> Definition:
    """The definition of a destination type; raises KeyError naming the known types."""
    known = definitions()
    if type_name not in known:
        raise KeyError(f"unknown destination type '{type_name}' (one of: {', '.join(known)})")
    return known[type_name]
