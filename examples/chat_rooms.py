"""A Starlette chat with rooms on wsdoctor's Hub, served by uvicorn with wsdoctor's WebSockets.

One server:

    uvicorn examples.chat_rooms:app --ws wsdoctor.asgi:WebSocketProtocol

Two servers sharing the rooms through Redis (a message sent on one reaches the room's
members on both):

    export WSDOCTOR_REDIS=redis://127.0.0.1:6379/0
    uvicorn examples.chat_rooms:app --ws wsdoctor.asgi:WebSocketProtocol --port 8000 &
    uvicorn examples.chat_rooms:app --ws wsdoctor.asgi:WebSocketProtocol --port 8001

Connect to ``ws://127.0.0.1:8000/rooms/NAME``: every text you send goes to everyone in
room NAME (you included), prefixed with your nickname (``?nick=...``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import wsdoctor


def create_app(redis_url: str | None = None) -> Starlette:
    """The chat app; with ``redis_url`` its rooms span every server on that Redis."""
    hub = wsdoctor.Hub(redis_url)

    async def room(websocket: WebSocket) -> None:
        name = websocket.path_params["room"]
        nick = websocket.query_params.get("nick", "someone")
        await websocket.accept()
        hub.join(name, websocket)  # under wsdoctor.asgi the hub leaves by itself when it ends
        try:
            async for text in websocket.iter_text():
                await hub.publish(name, f"{nick}: {text}")
        except WebSocketDisconnect:
            pass
        finally:
            hub.leave(name, websocket)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.close()

    app = Starlette(routes=[WebSocketRoute("/rooms/{room}", room)], lifespan=lifespan)
    app.state.hub = hub
    return app


app = create_app(os.environ.get("WSDOCTOR_REDIS"))
