"""Provides the fake CDN: deterministic images rendered on demand, and hostile file payloads."""

from __future__ import annotations

import functools
import struct
import threading
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import Image

from generation.fakeprovider.edits import Edit, render_edit
from generation.providers.local import NEUTRAL_PALETTE, parse_palette, prompt_digest, render

FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "jpg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
_PALETTE = parse_palette(NEUTRAL_PALETTE)
_SEED_SPACE = 1 << 64


@dataclass(frozen=True)
class ImageSpec:
    """What to draw for one output file; the pixels depend only on these fields."""

    width: int
    height: int
    seed: int
    prompt: str
    fmt: str = "PNG"
    black: bool = False
    # Monotonic time after which the file is gone (Replicate's one-hour deletion); None: never.
    expires_at: float | None = None
    # An image-to-image model's output: drawn from the sent image instead of from the seed.
    edit: Edit | None = None

    @property
    def content_type(self) -> str:
        return FORMATS[EXTENSIONS[self.fmt]][1]


def image_format(name: str | None, default: str = "png") -> str:
    """Pillow format name for an API's ``output_format`` value (unknown values: the default)."""
    key = (name or default).lower()
    return FORMATS.get(key, FORMATS[default])[0]


def scaled_size(width: int, height: int, longest: int | None) -> tuple[int, int]:
    """The size actually rendered: as requested, or shrunk so the longest side is ``longest``."""
    if longest is None or max(width, height) <= 0:
        return width, height
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_image(spec: ImageSpec) -> bytes:
    if spec.edit is not None and not spec.black:
        return render_edit(spec.edit, spec.fmt)
    if spec.black:
        # Providers black out images their safety checker flags.
        pixels = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
    else:
        rng = np.random.default_rng([spec.seed % _SEED_SPACE, prompt_digest(spec.prompt)])
        pixels = render(spec.width, spec.height, _PALETTE, rng)
    buffer = BytesIO()
    options = {"quality": 90} if spec.fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(pixels, "RGB").save(buffer, format=spec.fmt, **options)
    return buffer.getvalue()


class FileStore:
    """Maps opaque file names to image specs and keeps recently rendered bytes in an LRU."""

    def __init__(self, cache_size: int = 256) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, ImageSpec] = {}
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self.cache_size = cache_size

    def register(self, spec: ImageSpec, stem: str | None = None) -> str:
        name = f"{stem or uuid.uuid4().hex}.{EXTENSIONS[spec.fmt]}"
        with self._lock:
            self._specs[name] = spec
        return name

    def spec(self, name: str) -> ImageSpec | None:
        with self._lock:
            return self._specs.get(name)

    def content(self, name: str) -> bytes | None:
        """The file's bytes, rendered on first use; None for an unknown name."""
        with self._lock:
            spec = self._specs.get(name)
            cached = self._cache.get(name)
            if cached is not None:
                self._cache.move_to_end(name)
                return cached
        if spec is None:
            return None
        data = render_image(spec)
        with self._lock:
            self._cache[name] = data
            while len(self._cache) > max(0, self.cache_size):
                self._cache.popitem(last=False)
        return data

    def forget(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                self._specs.pop(name, None)
                self._cache.pop(name, None)

    def prune(self, now: float) -> None:
        """Drop files whose ``expires_at`` has passed."""
        with self._lock:
            gone = [
                n for n, s in self._specs.items() if s.expires_at is not None and s.expires_at < now
            ]
            for name in gone:
                del self._specs[name]
                self._cache.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._specs.clear()
            self._cache.clear()


def truncated(data: bytes) -> bytes:
    """Cut inside the image data, so the header parses and decoding fails."""
    return data[: max(8, len(data) // 2)]


@functools.lru_cache(maxsize=4)
def gzip_bomb(expanded_size: int) -> bytes:
    """A gzip stream of ``expanded_size`` zero bytes (about 1000:1), built once per size."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = []
    remaining = expanded_size
    while remaining > 0:
        parts.append(compressor.compress(chunk[: min(remaining, len(chunk))]))
        remaining -= len(chunk)
    parts.append(compressor.flush())
    return b"".join(parts)


@functools.lru_cache(maxsize=2)
def huge_png(side: int) -> bytes:
    """A valid 1-bit PNG of ``side`` x ``side`` pixels: tiny on the wire, a bomb to decode."""
    row = bytes(1 + (side + 7) // 8)  # filter byte + packed pixels, all zero
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
