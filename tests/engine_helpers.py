"""Provides small helpers shared by the engine tests."""

import base64
import io

from PIL import Image


def data_uri_png(size=(96, 96), colour=(30, 120, 200)) -> str:
    """A PNG as a data: URI: provider outputs that need no network to fetch."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
