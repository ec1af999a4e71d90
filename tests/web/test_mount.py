"""The pages mounted under a prefix in a parent application, as the FastAPI how-to does it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.web.conftest import WEB

from carecollect.run.settings import RunSettings
from carecollect.store.sqlite import SQLiteStore
from carecollect.web import create_app


def test_the_pages_work_mounted_under_a_prefix(
    db: Path, settings: RunSettings, pm: Any, link: Any, clock: Any
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.testclient import TestClient

    pages = create_app(settings, lambda: SQLiteStore(db), pm, web=WEB, clock=clock)

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("the vendor's own app")

    parent = Starlette(routes=[Route("/", home), Mount("/billing", app=pages)])
    try:
        with TestClient(parent, base_url="https://testserver") as client:
            assert client.get("/").text == "the vendor's own app"
            token = link("INV-de1")
            page = client.get(f"/billing/p/{token}")
            assert page.status_code == 200 and "Ihre Rechnung" in page.text
            assert 'href="/billing/static/carecollect.css"' in page.text
            assert f'action="/billing/p/{token}/pay/demo-gateway"' in page.text
            assert client.get("/billing/static/carecollect.css").status_code == 200
            field = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            handoff = client.post(
                f"/billing/p/{token}/pay/demo-gateway", data={"csrf": field}, follow_redirects=False
            )
            assert handoff.status_code == 303
            assert "return_url=https%3A%2F%2Ftestserver%2Fbilling%2Fp%2F" in handoff.headers["location"]
    finally:
        pages.state.carecollect_close()
