"""The dashboard's pages: each module here defines `PAGE`, a `trackway.dashboard.page.Page`.

Adding a page is adding a module (and its template); nothing else lists them.
"""

import importlib
import pkgutil

from trackway.dashboard.page import Page


def discover() -> list[Page]:
    """Every module's `PAGE`, in navigation order."""
    pages = [
        importlib.import_module(f"{__name__}.{module.name}").PAGE
        for module in pkgutil.iter_modules(__path__)
    ]
    return sorted(pages, key=lambda page: page.order)
