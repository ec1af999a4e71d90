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

from ..deprecation import renamed
from .checks import MessageCheckFailed
from .context import MessageContext, PlanOptionInfo, RenderedMessage
from .render import MissingTranslation, Renderer, choose_language, render

__all__ = [
    "MessageCheckFailed",
    "MessageContext",
    "MissingTranslation",
    "PlanOptionInfo",
    "RenderedMessage",
    "Renderer",
    "choose_language",
    "render",
]


__getattr__ = renamed(__name__, {"PlanOption": "carecollect.messages.context:PlanOptionInfo"})
