"""ASGI entry point: HTTP through Django, `/ws` through Channels (authenticated)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from arbsite.routing import websocket_urlpatterns  # noqa: E402
from arbsite.ws_auth import SessionOrTokenAuthMiddleware  # noqa: E402


async def _bare_endpoint(scope, receive, send):  # type: ignore[no-untyped-def]
    """The cheapest possible response on the same server: the benchmark's yardstick."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"success":true,"data":"bare"}'})


def _with_bare_endpoint(app):  # type: ignore[no-untyped-def]
    async def router(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"] == "/_bench/bare":
            return await _bare_endpoint(scope, receive, send)
        return await app(scope, receive, send)

    return router


from arbsite.fast_path import with_prices_fast_path  # noqa: E402

# The cached-book read path answered without Django's middleware thread hops (same semantics).
http_app = with_prices_fast_path(django_asgi_app)
# Only `make bench` sets this; production never exposes the bare endpoint.
if os.environ.get("ARBSITE_BENCH_BARE") == "1":
    http_app = _with_bare_endpoint(http_app)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            SessionOrTokenAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
