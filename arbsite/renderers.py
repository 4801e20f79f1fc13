"""Renders every successful `/api` payload inside the envelope."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer


class EnvelopeRenderer(JSONRenderer):
    """Wraps successful payloads in `{"success": true, "data": ...}`; errors come pre-wrapped."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        response = (renderer_context or {}).get("response")
        already_wrapped = isinstance(data, dict) and "success" in data and (
            "data" in data or "error" in data or len(data) == 1
        )
        if response is not None and response.status_code == 204:
            response.status_code = 200
            data = {"success": True}
        elif not already_wrapped:
            data = {"success": True, "data": data}
        return super().render(data, accepted_media_type, renderer_context)
