"""Websocket routes: `/ws` and `/ws/` both reach the desk's event stream."""

from django.urls import path

from arbsite.consumers import DeskConsumer

websocket_urlpatterns = [
    path("ws/", DeskConsumer.as_asgi()),
    path("ws", DeskConsumer.as_asgi()),
]
