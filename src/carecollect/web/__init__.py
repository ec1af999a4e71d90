"""The patient pages and the provider's door: pay links that open a real page, webhooks over HTTP.

``pip install "carecollect[web]"`` (Starlette, uvicorn, python-multipart). Build the ASGI
application with :func:`create_app` from the run's settings, store and plugin manager; mount
it in a FastAPI or Starlette application, or serve it alone with ``carecollect web serve``.
See :doc:`/how-to/mount-patient-pages`, :doc:`/extend/webhooks` and
:doc:`/explanation/patient-pages-threat-model`.
"""

from __future__ import annotations

from .app import create_app
from .security import BodyLimit, FormTokens, RateLimiter, SecurityHeaders, content_security_policy
from .settings import BankTransfer, OfficeHours, WebSettings
from .texts import LANGUAGES, PageTexts, pick_language
from .views import payment_id_for_link

__all__ = [
    "LANGUAGES",
    "BankTransfer",
    "BodyLimit",
    "FormTokens",
    "OfficeHours",
    "PageTexts",
    "RateLimiter",
    "SecurityHeaders",
    "WebSettings",
    "content_security_policy",
    "create_app",
    "payment_id_for_link",
    "pick_language",
]
