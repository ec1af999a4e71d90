"""The provider's door: payment webhooks and channel replies, verified by their plugin, kept in the inbox."""

from __future__ import annotations

from typing import Any

from ..errors import CareCollectError
from ..plugins.providers import WebhookError
from ..run.inbound import InboundKind
from ..store.base import InboxItem
from .views import _DROPPED_HEADERS, _Views, log

__all__: list[str] = []


class _Door(_Views):
    """``POST /webhooks/{provider}`` and ``POST /inbound/{channel}``."""

    # -- the provider's door -------------------------------------------------------------------
    async def webhook(self, request: Any) -> Any:
        from starlette.background import BackgroundTask
        from starlette.responses import JSONResponse

        name = request.path_params["provider"]
        if (limited := self.limited(request, None)) is not None:
            return limited
        if name not in self.settings.payment_providers:
            return JSONResponse({"error": "unknown provider"}, 404)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
        now = self.clock()
        try:
            event = self.provider(name).parse_webhook(headers, body, now=now)
        except WebhookError as exc:
            log.info("webhook from %s refused: %s", name, type(exc).__name__)
            return JSONResponse({"error": "signature refused"}, 400)
        except (CareCollectError, ValueError, KeyError, TypeError) as exc:
            log.info("webhook from %s malformed: %s", name, type(exc).__name__)
            return JSONResponse({"error": "malformed event"}, 400)
        item = InboxItem(InboundKind.PAYMENT.value, name, event.event_id, body, headers, now)
        new = await self.store.run(lambda s: s.inbox_put(item))  # committed before the 2xx goes out
        task = BackgroundTask(self.take_in) if new and self.web.take_in_webhooks else None
        return JSONResponse({"received": event.event_id, "duplicate": not new}, 200, background=task)

    async def inbound(self, request: Any) -> Any:
        from starlette.background import BackgroundTask
        from starlette.responses import JSONResponse

        name = request.path_params["channel"]
        if (limited := self.limited(request, None)) is not None:
            return limited
        if name not in self.web.inbound_channels:
            return JSONResponse({"error": "unknown channel"}, 404)
        try:
            desc = self.pm.message_channel(name)
        except CareCollectError:
            return JSONResponse({"error": "unknown channel"}, 404)
        if not getattr(desc.capabilities, "inbound", True):
            return JSONResponse({"error": "channel takes no replies"}, 404)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
        now = self.clock()
        try:
            channel = desc.create(dict(self.settings.channel_config.get(name, {})))
            reply = channel.parse_inbound(headers, body, now=now)  # the plugin checks the signature
        except (CareCollectError, ValueError, KeyError, TypeError) as exc:
            log.info("inbound reply via %s refused: %s", name, type(exc).__name__)
            return JSONResponse({"error": "refused"}, 400)
        item = InboxItem(InboundKind.REPLY.value, name, reply.provider_message_id, body, headers, now)
        new = await self.store.run(lambda s: s.inbox_put(item))
        task = BackgroundTask(self.take_in) if new and self.web.take_in_webhooks else None
        return JSONResponse(
            {"received": reply.provider_message_id, "duplicate": not new}, 200, background=task
        )
