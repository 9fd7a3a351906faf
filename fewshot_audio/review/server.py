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

from fewshot_audio.review.labels import LABELS
from fewshot_audio.review.session import Session

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PAGES = {"review.js": "text/javascript", "review.css": "text/css"}


def make_token() -> str:
    """A fresh random token for the page's URL (every request must carry it)."""
    return secrets.token_urlsafe(18)


def create_app(session: Session, token: str):
    """The ASGI app of one review session."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    def allowed(request: Request) -> bool:
        given = request.query_params.get("token") or request.headers.get("x-review-token") or ""
        return secrets.compare_digest(given.encode(), token.encode())

    def guarded(handler):
        async def wrapped(request: Request):
            if not allowed(request):
                return PlainTextResponse("forbidden: this page needs its token (the URL the review command printed)",
                                         status_code=403)
            return await handler(request)
        return wrapped

    def item_number(request: Request) -> int | None:
        text = request.path_params["n"]
        if not text.isdigit() or int(text) >= len(session.items):
            return None
        return int(text)

    async def page(request):
        # the page's own script and style carry the token too (the page is only served to a request that had it)
        return HTMLResponse((STATIC / "index.html").read_text().replace("__TOKEN__", token))

    async def static(request):
        name = request.path_params["name"]
        if name not in PAGES:  # a fixed list: no request reaches another file
            return PlainTextResponse("not found", status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=PAGES[name])

    async def state(request):
        return JSONResponse(session.state())

    async def item(request):
        n = item_number(request)
        if n is None:
            return PlainTextResponse("not found", status_code=404)
        return JSONResponse(session.describe(n))

    async def decide(request):
        body = await request.json()
        n, label = body.get("item"), body.get("label")
        if not isinstance(n, int) or not 0 <= n < len(session.items) or label not in LABELS:
            return JSONResponse({"error": f"give an item number and one of {', '.join(LABELS)}"}, status_code=400)
        session.labels.decide(n, label)
        return JSONResponse(session.state())

    async def undo(request):
        n = session.labels.undo()
        return JSONResponse({**session.state(), "undone": n})

    async def media(request, render):
        n = item_number(request)
        if n is None:
            return PlainTextResponse("not found", status_code=404)
        try:
            data, kind = render(n)
        except Exception as exc:  # any unreadable file: shown on the page, the server goes on
            logger.warning("item %d (%s): %s", n, session.items[n].path, exc)
            return PlainTextResponse(f"cannot read {Path(session.items[n].path).name}: {exc}", status_code=404)
        return Response(data, media_type=kind, headers={"Cache-Control": "no-store"})

    async def audio(request):
        return await media(request, lambda n: (session.audio_wav(n), "audio/wav"))

    async def spectrogram(request):
        return await media(request, lambda n: (session.spectrogram_png(n), "image/png"))

    async def summary(request):
        return JSONResponse(session.summary())

    routes = [Route("/", guarded(page)), Route("/static/{name}", guarded(static)),
              Route("/api/state", guarded(state)), Route("/api/item/{n}", guarded(item)),
              Route("/api/decide", guarded(decide), methods=["POST"]), Route("/api/undo", guarded(undo), methods=["POST"]),
              Route("/api/summary", guarded(summary)),
              Route("/audio/{n}", guarded(audio)), Route("/spectrogram/{n}", guarded(spectrogram))]
    return Starlette(routes=routes)

