"""Provides the fake's image-to-image models: upscale, face restore and outpaint of a sent image."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

# Model path (fal) or model name (Replicate) -> the task it performs.
EDIT_MODELS = {
    "fal-ai/esrgan": "upscale",
    "fal-ai/codeformer": "face_restore",
    "fal-ai/bria/expand": "outpaint",
    "nightmareai/real-esrgan": "upscale",
    "sczhou/codeformer": "face_restore",
}
MAX_SOURCE_BYTES = 40 * 1024 * 1024
MAX_OUTPUT_SIDE = 8192
_DATA_URI = re.compile(r"data:image/(png|jpeg|webp);base64,(.+)", re.DOTALL)


class EditInputError(ValueError):
    """The edit's input is unusable; ``field`` names the offending input field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Edit:
    """One image-to-image request: the decoded source and what to do to it."""

    task: str
    source: bytes
    width: int
    height: int
    scale: float = 1.0
    aspect: tuple[int, int] | None = None

    @property
    def output_size(self) -> tuple[int, int]:
        if self.task == "upscale":
            return round(self.width * self.scale), round(self.height * self.scale)
        if self.task == "outpaint" and self.aspect:
            w, h = self.aspect
            if self.width * h >= self.height * w:
                return self.width, round(self.width * h / w)
            return round(self.height * w / h), self.height
        return self.width, self.height


def parse_edit(task: str, image_field: str, payload: dict[str, Any]) -> Edit:
    """Check an edit model's input as the model would; raise ``EditInputError``."""
    source = _decode(image_field, payload.get(image_field))
    with Image.open(BytesIO(source)) as probe:
        width, height = probe.size
    scale, aspect = 1.0, None
    if task == "upscale":
        scale = payload.get("scale", 2)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 1 <= scale <= 8:
            raise EditInputError("scale", "scale must be a number from 1 to 8")
    if task == "outpaint":
        match = re.fullmatch(r"(\d+):(\d+)", str(payload.get("aspect_ratio", "")))
        if match is None or not all(int(part) > 0 for part in match.groups()):
            raise EditInputError("aspect_ratio", "aspect_ratio must be W:H, e.g. 9:16")
        aspect = (int(match.group(1)), int(match.group(2)))
    edit = Edit(task, source, width, height, float(scale), aspect)
    if max(edit.output_size) > MAX_OUTPUT_SIDE:
        raise EditInputError(image_field, f"the output would exceed {MAX_OUTPUT_SIDE} px")
    return edit


def render_edit(edit: Edit, fmt: str) -> bytes:
    """Do the edit for real, deterministically, so callers can check the pixels they get."""
    with Image.open(BytesIO(edit.source)) as opened:
        image = opened.convert("RGB")
    size = edit.output_size
    if edit.task == "upscale":
        image = image.resize(size, Image.Resampling.LANCZOS)
    elif edit.task == "face_restore":
        image = image.filter(ImageFilter.UnsharpMask(radius=2, percent=120, threshold=2))
    elif edit.task == "outpaint":
        # "Generated" surroundings: the stretched, blurred image, with the original in the middle.
        canvas = ImageOps.fit(image, size).filter(ImageFilter.GaussianBlur(8))
        canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
        image = canvas
    buffer = BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return buffer.getvalue()


def _decode(field: str, value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise EditInputError(field, f"{field} is required")
    match = _DATA_URI.fullmatch(value)
    if match is None:
        # The fake has no network: inputs come inline, as the engine sends them.
        raise EditInputError(field, f"{field} must be a data:image/...;base64 URI")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise EditInputError(field, f"{field} is not valid base64") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise EditInputError(field, f"{field} is larger than {MAX_SOURCE_BYTES} bytes")
    try:
        with Image.open(BytesIO(data)) as probe:
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise EditInputError(field, f"{field} is not a decodable image") from None
    return data
