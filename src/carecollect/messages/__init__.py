"""Patient messages in English, German, Norwegian and Bulgarian.

:func:`render` turns an outreach purpose, a channel, the patient's preferred
language and a :class:`MessageContext` into a checked
:class:`RenderedMessage`; :class:`Renderer` does the same with vendor
templates and catalogs. See :mod:`carecollect.messages.render`.

>>> from carecollect.messages import render, MessageContext
>>> callable(render) and MessageContext.__name__
'MessageContext'
"""

from __future__ import annotations

from .checks import MessageCheckFailed
from .context import MessageContext, PlanOption, RenderedMessage
from .render import MissingTranslation, Renderer, choose_language, render

__all__ = [
    "MessageCheckFailed",
    "MessageContext",
    "MissingTranslation",
    "PlanOption",
    "RenderedMessage",
    "Renderer",
    "choose_language",
    "render",
]
