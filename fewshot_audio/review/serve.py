"""Run a review session's server on ``host:port`` (0: a free port) until Ctrl-C; the URL with its token is
announced through ``on_ready`` once the socket is bound."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from fewshot_audio.review.server import create_app, make_token
from fewshot_audio.review.session import Session

logger = logging.getLogger(__name__)
LOCAL = ("127.0.0.1", "localhost", "::1")


def serve(session: Session, *, host: str = "127.0.0.1", port: int = 0, on_ready: Callable[[str], None]) -> None:
    """Serve ``session``'s page with uvicorn on ``host:port`` (0: a free port) until interrupted; ``on_ready(url)``
    gets the URL with its token once listening."""
    import uvicorn  # imported on use: only the review server needs it

    if host not in LOCAL:
        logger.warning("the review page listens on %s: anyone who can reach this machine and has the URL's token can "
                       "hear the audio and change the labels", host)
    token = make_token()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections made as soon as the URL is printed wait for the server, not refused
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(create_app(session, token), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    on_ready(f"http://{shown}:{bound}/?token={token}")
    server.run(sockets=[sock])
