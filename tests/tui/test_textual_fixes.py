"""The workarounds for Textual's bugs (charlm/tui/textual_fixes.py) mend what they name."""

from __future__ import annotations

import gc
import weakref

from textual._styles_cache import StylesCache
from textual.color import Color
from textual.style import Style

from charlm.tui import textual_fixes


def test_a_dropped_widgets_style_cache_is_not_kept_by_get_inner_outer():
    """Textualize/textual#6665: the lru_cache on the method kept the last 1,024 StylesCaches
    (and every line each drew) alive; the app's own object counts showed ~50k caches kept."""
    textual_fixes.apply()
    cache = StylesCache()
    inner, outer = cache.get_inner_outer(Color(10, 20, 30), Color(200, 100, 0, 0.5))
    gone = weakref.ref(cache)
    del cache
    gc.collect()
    assert gone() is None, "a StylesCache outlived its widget through get_inner_outer's cache"
    # The same styles as Textual's own code gives: the background blended over the base one.
    assert outer == Style(background=Color(10, 20, 30))
    assert inner == Style(background=Color(10, 20, 30) + Color(200, 100, 0, 0.5))
    assert StylesCache().get_inner_outer(Color(10, 20, 30), Color(200, 100, 0, 0.5)) == (inner, outer)
