"""The review page's server (Starlette, served by uvicorn): small, maintained, asynchronous, with no template engine
or session layer to configure; the page itself is plain HTML, CSS and JavaScript shipped in ``review/static``.

Every request needs the session's token (``?token=`` or the ``X-Review-Token`` header), else 403. Audio and
spectrograms are served by item number only: no request names a path, so ``..``, absolute paths and links are 404.
A file that cannot be read answers 404 with a one-line reason, which the page shows; the server keeps running.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from fewshot_audio.review.labels import LABELS
from fewshot_audio.review.session import Session

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PAGES = {"review.js": "text/javascript", "review.css": "text/css"}


def make_token() -> str:
    """A fresh random token for the page's URL (every request must carry it)."""
    return secrets.token_urlsafe(18)


NOT_FOUND = "not found"


class _Endpoints:
    """The page's endpoints for one session: items by number only, every request checked for the token."""

    def __init__(self, session: Session, token: str):
        self.session, self.token = session, token

    def guarded(self, handler):
        """``handler`` behind the token check (403 without it)."""

        async def wrapped(request: Request):
            given = request.query_params.get("token") or request.headers.get("x-review-token") or ""
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return PlainTextResponse("forbidden: this page needs its token (the URL the review command printed)",
                                         status_code=403)
            return await handler(request)

        return wrapped

    def item_number(self, request: Request) -> int | None:
        """The item number in the path, or ``None`` when it is not one of the session's."""
        text = request.path_params["n"]
        if not text.isdigit() or int(text) >= len(self.session.items):
            return None
        return int(text)

    async def page(self, request):
        """The page (its script and style carry the token too: the page is only served to a request that had it)."""
        return HTMLResponse((STATIC / "index.html").read_text().replace("__TOKEN__", self.token))

    async def static(self, request):
        """The page's script or style, from a fixed list: no request reaches another file."""
        name = request.path_params["name"]
        if name not in PAGES:
            return PlainTextResponse(NOT_FOUND, status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=PAGES[name])

    async def state(self, request):
        """The review's progress."""
        return JSONResponse(self.session.state())

    async def item(self, request):
        """What the page shows of one item."""
        n = self.item_number(request)
        if n is None:
            return PlainTextResponse(NOT_FOUND, status_code=404)
        return JSONResponse(self.session.describe(n))

    async def decide(self, request):
        """Record a decision (``{"item": n, "label": ...}``), written to the labels file at once."""
        body = await request.json()
        n, label = body.get("item"), body.get("label")
        if not isinstance(n, int) or not 0 <= n < len(self.session.items) or label not in LABELS:
            return JSONResponse({"error": f"give an item number and one of {', '.join(LABELS)}"}, status_code=400)
        self.session.labels.decide(n, label)
        return JSONResponse(self.session.state())

    async def undo(self, request):
        """Take back the last decision."""
        n = self.session.labels.undo()
        return JSONResponse({**self.session.state(), "undone": n})

    async def media(self, request, render):
        """One item's audio or image from ``render(n) -> (bytes, media type)``; an unreadable file is a 404 with
        the reason (shown on the page), and the server goes on."""
        n = self.item_number(request)
        if n is None:
            return PlainTextResponse(NOT_FOUND, status_code=404)
        try:
            data, kind = render(n)
        except Exception as exc:  # any unreadable file: shown on the page, the server goes on
            logger.warning("item %d (%s): %s", n, self.session.items[n].path, exc)
            return PlainTextResponse(f"cannot read {Path(self.session.items[n].path).name}: {exc}", status_code=404)
        return Response(data, media_type=kind, headers={"Cache-Control": "no-store"})

    async def audio(self, request):
        """One item's audio with its context (WAV)."""
        return await self.media(request, lambda n: (self.session.audio_wav(n), "audio/wav"))

    async def spectrogram(self, request):
        """One item's spectrogram with its context (PNG)."""
        return await self.media(request, lambda n: (self.session.spectrogram_png(n), "image/png"))

    async def summary(self, request):
        """Counts, precision against score and the stratified estimate so far."""
        return JSONResponse(self.session.summary())


def create_app(session: Session, token: str) -> Starlette:
    """The ASGI app of one review session."""
    e = _Endpoints(session, token)
    g = e.guarded
    routes = [Route("/", g(e.page)), Route("/static/{name}", g(e.static)),
              Route("/api/state", g(e.state)), Route("/api/item/{n}", g(e.item)),
              Route("/api/decide", g(e.decide), methods=["POST"]), Route("/api/undo", g(e.undo), methods=["POST"]),
              Route("/api/summary", g(e.summary)),
              Route("/audio/{n}", g(e.audio)), Route("/spectrogram/{n}", g(e.spectrogram))]
    return Starlette(routes=routes)
