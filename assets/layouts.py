"""Provides brand layouts as data: the layer schema, its validator and a deterministic renderer."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from django.core.exceptions import ValidationError
from PIL import Image, ImageChops, ImageDraw, ImageFont

from brandforge.images import cover, flatten
from brandforge.slots import SLOT, malformed_slot

# Geometry
# --------
# Boxes are [x0, y0, x1, y1] in px of the layout's design canvas (x1, y1 exclusive). A render at
# another size scales x by width / design width and y by height / design height, so each box
# keeps its place relative to the canvas edges (a full-bleed image stays full-bleed, a footer
# stays at the bottom) even when the aspect differs. Lengths that are not boxes (font sizes,
# corner radius) scale by the smaller of the two factors, so text never grows faster than its
# box; shrink-to-fit and clipping keep it inside the box whatever the aspect.

MAX_LAYERS = 40
MAX_TEXT = 1000
MAX_FONT_SIZE = 2000
MAX_FONT_BYTES = 10 * 1024 * 1024
ELLIPSIS = "…"
HEX = re.compile(r"#[0-9A-Fa-f]{6}")

# (horizontal, vertical) position inside a box: 0 = start, 0.5 = centre, 1 = end.
ANCHORS: dict[str, tuple[float, float]] = {
    "top-left": (0.0, 0.0),
    "top": (0.5, 0.0),
    "top-right": (1.0, 0.0),
    "left": (0.0, 0.5),
    "center": (0.5, 0.5),
    "right": (1.0, 0.5),
    "bottom-left": (0.0, 1.0),
    "bottom": (0.5, 1.0),
    "bottom-right": (1.0, 1.0),
}
ALIGN = {"left": 0.0, "center": 0.5, "right": 1.0}
VALIGN = {"top": 0.0, "middle": 0.5, "bottom": 1.0}
DIRECTIONS = ("to-bottom", "to-top", "to-right", "to-left")

Colour = int | str
Box = tuple[int, int, int, int]


# --- validation -------------------------------------------------------------------------------


class _Bad(Exception):
    """One value of one layer is wrong; the message names the key and the value."""


@dataclass(frozen=True)
class _Context:
    width: int
    height: int
    fonts: frozenset[str] | None
    palette_size: int


_REQUIRED = object()


@dataclass(frozen=True)
class _Key:
    check: Callable[[str, Any, _Context], Any]
    default: Any = _REQUIRED


def _box(key: str, value: Any, ctx: _Context) -> list[int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise _Bad(f"{key} must be [x0, y0, x1, y1] in whole canvas px, got {value!r}")
    x0, y0, x1, y1 = value
    shown = ",".join(str(v) for v in value)
    if x1 <= x0 or y1 <= y0:
        raise _Bad(f"{key} {shown} is empty: x1 must be greater than x0 and y1 than y0")
    if x0 < 0 or y0 < 0 or x1 > ctx.width or y1 > ctx.height:
        raise _Bad(f"{key} {shown} is outside the {ctx.width}×{ctx.height} canvas")
    return list(value)


def _whole_canvas(ctx: _Context) -> list[int]:
    return [0, 0, ctx.width, ctx.height]


def _colour(key: str, value: Any, ctx: _Context) -> Colour:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < ctx.palette_size:
            raise _Bad(
                f"{key}: palette index {value} is out of range; the brand palette has "
                f"{ctx.palette_size} colour(s), numbered 0 to {ctx.palette_size - 1}"
            )
        return value
    if isinstance(value, str) and HEX.fullmatch(value):
        return value.upper()
    raise _Bad(f"{key} must be a palette index (0 = main colour) or #RRGGBB, got {value!r}")


def _number(low: float, high: float, *, whole: bool = False, optional: bool = False):
    kind = "a whole number" if whole else "a number"

    def check(key: str, value: Any, ctx: _Context) -> Any:
        if value is None and optional:
            return None
        allowed = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, allowed) or not low <= value <= high:
            extra = " or null" if optional else ""
            raise _Bad(f"{key} must be {kind} from {low:g} to {high:g}{extra}, got {value!r}")
        return value if whole else float(value)

    return check


def _choice(options: Sequence[str]):
    def check(key: str, value: Any, ctx: _Context) -> str:
        if value not in options:
            raise _Bad(f"{key} must be one of {', '.join(options)}, got {value!r}")
        return value

    return check


def _flag(key: str, value: Any, ctx: _Context) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{key} must be true or false, got {value!r}")
    return value


def _text(key: str, value: Any, ctx: _Context) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{key} must be text, got {value!r}")
    if len(value) > MAX_TEXT:
        raise _Bad(f"{key} is longer than {MAX_TEXT} characters")
    if (bad := malformed_slot(value)) is not None:
        raise _Bad(
            f"malformed slot {bad} in {key}: a slot is {{{{name}}}} "
            "with lowercase letters, digits and _"
        )
    return value


def _font(key: str, value: Any, ctx: _Context) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise _Bad(f"{key} must be the family name of a brand font, got {value!r}")
    if ctx.fonts is not None and value not in ctx.fonts:
        known = ", ".join(sorted(ctx.fonts)) or "none yet"
        raise _Bad(
            f"unknown font family {value!r}; the brand's fonts are: {known} "
            "(upload it under the brand's fonts)"
        )
    return value


_OPACITY = _Key(_number(0, 1), 1.0)
SCHEMA: dict[str, dict[str, _Key]] = {
    "image": {"box": _Key(_box, _whole_canvas), "opacity": _OPACITY},
    "scrim": {
        "box": _Key(_box, _whole_canvas),
        "direction": _Key(_choice(DIRECTIONS), "to-bottom"),
        "start_colour": _Key(_colour, "#000000"),
        "end_colour": _Key(_colour, None),
        "start_opacity": _Key(_number(0, 1), 0.0),
        "end_opacity": _Key(_number(0, 1), 0.6),
    },
    "text": {
        "box": _Key(_box),
        "text": _Key(_text),
        "font": _Key(_font, None),
        "size": _Key(_number(1, MAX_FONT_SIZE, whole=True), 48),
        "min_size": _Key(_number(1, MAX_FONT_SIZE, whole=True), None),
        "colour": _Key(_colour, 0),
        "opacity": _OPACITY,
        "align": _Key(_choice(tuple(ALIGN)), "left"),
        "valign": _Key(_choice(tuple(VALIGN)), "top"),
        "line_height": _Key(_number(0.5, 4), 1.2),
        "max_lines": _Key(_number(1, 100, whole=True, optional=True), None),
        "ellipsis": _Key(_flag, True),
    },
    "logo": {
        "box": _Key(_box),
        "anchor": _Key(_choice(tuple(ANCHORS)), "center"),
        "opacity": _OPACITY,
    },
    "shape": {
        "box": _Key(_box),
        "colour": _Key(_colour, 0),
        "opacity": _OPACITY,
        "radius": _Key(_number(0, 10_000, whole=True), 0),
    },
}


def validate_layers(
    layers: object,
    *,
    width: int,
    height: int,
    fonts: set[str] | frozenset[str] | None,
    palette_size: int,
) -> list[dict[str, Any]]:
    """Check ``layers`` against the schema and return them normalised, every default filled in.

    Boxes are checked against the ``width`` x ``height`` design canvas, colours against a palette
    of ``palette_size`` colours and font families against ``fonts`` (``None`` skips that check:
    a render falls back to the built-in font). Raises ``ValidationError`` listing every problem,
    each naming the layer (numbered from 1), its type and the key.
    """
    if not isinstance(layers, list):
        raise ValidationError('Layers are a list of layer objects, e.g. [{"type": "image"}].')
    if len(layers) > MAX_LAYERS:
        raise ValidationError(f"A layout has at most {MAX_LAYERS} layers.")
    ctx = _Context(width, height, None if fonts is None else frozenset(fonts), palette_size)
    errors: list[str] = []
    normalised = []
    for number, layer in enumerate(layers, start=1):
        try:
            normalised.append(_validate_layer(layer, ctx))
        except _Bad as exc:
            errors.append(f"layer {number}{exc}")
    if errors:
        raise ValidationError(errors, code="invalid_layer")
    return normalised


def _validate_layer(layer: object, ctx: _Context) -> dict[str, Any]:
    if not isinstance(layer, dict):
        raise _Bad(f': expected an object such as {{"type": "text", ...}}, got {layer!r}')
    kind = layer.get("type")
    if kind not in SCHEMA:
        raise _Bad(f": unknown type {kind!r}; use one of {', '.join(SCHEMA)}")
    keys = SCHEMA[kind]
    problems = []
    unknown = sorted(set(layer) - set(keys) - {"type"}, key=str)
    if unknown:
        problems.append(
            f"unknown key(s) {', '.join(map(repr, unknown))}; "
            f"{kind} layers take {', '.join(sorted(keys))}"
        )
    result: dict[str, Any] = {"type": kind}
    for key, spec in keys.items():
        if key in layer:
            try:
                result[key] = spec.check(key, layer[key], ctx)
            except _Bad as exc:
                problems.append(str(exc))
        elif spec.default is _REQUIRED:
            problems.append(f"{key} is required")
        else:
            result[key] = spec.default(ctx) if callable(spec.default) else spec.default
    if not problems:
        problems.extend(_fill_dependent_defaults(result))
    if problems:
        raise _Bad(f" ({kind}): " + "; ".join(problems))
    return result


def _fill_dependent_defaults(layer: dict[str, Any]) -> list[str]:
    if layer["type"] == "scrim" and layer["end_colour"] is None:
        layer["end_colour"] = layer["start_colour"]
    if layer["type"] == "text":
        if layer["min_size"] is None:
            layer["min_size"] = max(1, layer["size"] // 2)
        elif layer["min_size"] > layer["size"]:
            return [f"min_size {layer['min_size']} is larger than size {layer['size']}"]
    return []


def fill_slots(text: str, variables: Mapping[str, object]) -> str:
    """Replace each ``{{name}}`` with its variable; a missing one becomes empty text.

    A single pass, so a value that itself contains ``{{...}}`` is never expanded.
    """
    return SLOT.sub(lambda match: str(variables.get(match.group(1), "")), text)


def font_format(data: bytes, *, name: str = "The file") -> str:
    """Return ``"ttf"`` or ``"otf"`` for a single TrueType/OpenType font FreeType can draw with.

    Raises ``ValidationError`` (codes ``not_font``, ``unsupported_font``, ``corrupt_font``)
    with a message for the uploader that starts with ``name``.
    """
    if len(data) > MAX_FONT_BYTES:
        raise ValidationError(
            "%(name)s is larger than %(limit)s MB; fonts are limited to that size.",
            code="too_large",
            params={"name": name, "limit": MAX_FONT_BYTES // (1024 * 1024)},
        )
    head = data[:4]
    if head in (b"wOFF", b"wOF2"):
        raise ValidationError(
            "%(name)s is a WOFF web font; upload the .ttf or .otf file instead.",
            code="unsupported_font",
            params={"name": name},
        )
    if head == b"ttcf":
        raise ValidationError(
            "%(name)s is a font collection (.ttc); upload a single .ttf or .otf font.",
            code="unsupported_font",
            params={"name": name},
        )
    if head not in (b"\x00\x01\x00\x00", b"true", b"OTTO"):
        raise ValidationError(
            "%(name)s is not a TrueType/OpenType font (.ttf or .otf).",
            code="not_font",
            params={"name": name},
        )
    try:
        font = ImageFont.truetype(BytesIO(data), 24, layout_engine=ImageFont.Layout.BASIC)
        font.getbbox("Ag")
    except Exception as exc:
        # FreeType reports damaged tables through several exception types; all mean the same.
        raise ValidationError(
            "%(name)s is not a TrueType/OpenType font that can be drawn with (damaged?).",
            code="corrupt_font",
            params={"name": name},
        ) from exc
    return "otf" if head == b"OTTO" else "ttf"


# --- fonts ------------------------------------------------------------------------------------

_FACES_PER_THREAD = 96
# A FreeType face must not be used by two threads at once, so each thread keeps its own cache.
_faces = threading.local()


class _Fonts:
    """The fonts one render may use: each family's bytes hashed once, faces cached by size."""

    def __init__(self, fonts: Mapping[str, bytes]) -> None:
        self._data = fonts
        self._digests: dict[str, str] = {}

    def face(self, family: str | None, size: int) -> ImageFont.FreeTypeFont:
        data = self._data.get(family) if family else None
        if data is None:
            key = ("builtin", size)
        else:
            if family not in self._digests:
                self._digests[family] = hashlib.sha256(data).hexdigest()
            key = (self._digests[family], size)
        cache: OrderedDict | None = getattr(_faces, "cache", None)
        if cache is None:
            cache = _faces.cache = OrderedDict()
        face = cache.get(key)
        if face is None:
            face = _load_face(data, size)
            cache[key] = face
            if len(cache) > _FACES_PER_THREAD:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return face


def _load_face(data: bytes | None, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout (no Raqm) everywhere: the output must not depend on whether a worker has
    # libraqm installed. Pillow's built-in font uses BASIC too.
    if data is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(BytesIO(data), size, layout_engine=ImageFont.Layout.BASIC)


# --- text fitting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TextFit:
    """How one text layer was set: the chosen size, the lines drawn and whether text was cut."""

    size: int
    lines: tuple[str, ...]
    line_advance: int
    truncated: bool


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if face.getlength(candidate) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            # A word wider than the box is broken wherever it has to be.
            while len(word) > 1 and face.getlength(word) > width:
                cut = _longest_prefix(word, face, width)
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


def _longest_prefix(text: str, face: ImageFont.FreeTypeFont, width: float) -> int:
    low, high = 1, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if face.getlength(text[:mid]) <= width:
            low = mid
        else:
            high = mid - 1
    return low


def _ellipsize(line: str, face: ImageFont.FreeTypeFont, width: int) -> str:
    words = line.split(" ")
    while len(words) > 1 and face.getlength(" ".join(words) + ELLIPSIS) > width:
        words.pop()
    line = " ".join(words)
    while line and face.getlength(line + ELLIPSIS) > width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS


def _line_height(face: ImageFont.FreeTypeFont) -> int:
    ascent, descent = face.getmetrics()
    return ascent + descent


def _fit(
    text: str,
    layer: Mapping[str, Any],
    box_size: tuple[int, int],
    size: int,
    min_size: int,
    fonts: _Fonts,
) -> TextFit:
    width, height = box_size

    def attempt(px: int) -> tuple[list[str], int, bool]:
        face = fonts.face(layer["font"], px)
        lines = _wrap(text, face, width)
        advance = max(1, round(px * layer["line_height"]))
        block = (len(lines) - 1) * advance + _line_height(face)
        too_many = layer["max_lines"] is not None and len(lines) > layer["max_lines"]
        return lines, advance, not too_many and block <= height

    lines, advance, fits = attempt(size)
    chosen = size
    if not fits and size > min_size:
        # Largest size that fits, by bisection: ~log2(size) wraps instead of one per px.
        low, high = min_size, size - 1
        while low < high:
            mid = (low + high + 1) // 2
            if attempt(mid)[2]:
                low = mid
            else:
                high = mid - 1
        chosen = low
        lines, advance, fits = attempt(chosen)
    if fits:
        return TextFit(chosen, tuple(lines), advance, truncated=False)

    face = fonts.face(layer["font"], chosen)
    room = 1 + max(0, (height - _line_height(face)) // advance)
    keep = min(room, layer["max_lines"] or room)
    kept = lines[:keep]
    if layer["ellipsis"]:
        kept[-1] = _ellipsize(kept[-1], face, width)
    return TextFit(chosen, tuple(kept), advance, truncated=True)


# --- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    sx: float
    sy: float

    @property
    def uniform(self) -> float:
        return min(self.sx, self.sy)

    def box(self, box: Sequence[int]) -> Box:
        x0, y0 = round(box[0] * self.sx), round(box[1] * self.sy)
        x1, y1 = round(box[2] * self.sx), round(box[3] * self.sy)
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)

    def length(self, value: float) -> int:
        return max(1, round(value * self.uniform))


def _rgb(colour: Colour, palette: Sequence[str]) -> tuple[int, int, int]:
    value = palette[colour] if isinstance(colour, int) else colour
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _faded(mask: Image.Image, opacity: float) -> Image.Image:
    if opacity >= 1.0:
        return mask
    return mask.point([round(level * opacity) for level in range(256)])


def _size(box: Box) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def _draw_image(canvas, layer, box, *, image, focal_point) -> None:
    if image is None:
        return
    width, height = _size(box)
    tile = cover(image, width=width, height=height, focal_point=focal_point)
    if layer["opacity"] >= 1.0:
        canvas.paste(tile, box[:2])
    else:
        canvas.paste(tile, box[:2], Image.new("L", tile.size, round(255 * layer["opacity"])))


def _ramp(start: float, end: float, length: int) -> list[float]:
    if length == 1:
        return [start]
    return [start + (end - start) * i / (length - 1) for i in range(length)]


def _draw_scrim(canvas, layer, box, *, palette) -> None:
    width, height = _size(box)
    direction = layer["direction"]
    vertical = direction in ("to-bottom", "to-top")
    length = height if vertical else width
    strip_size = (1, length) if vertical else (length, 1)
    alphas = _ramp(layer["start_opacity"], layer["end_opacity"], length)
    start, end = _rgb(layer["start_colour"], palette), _rgb(layer["end_colour"], palette)
    if direction in ("to-top", "to-left"):
        alphas.reverse()
        start, end = end, start
    mask = Image.new("L", strip_size)
    mask.putdata([round(255 * alpha) for alpha in alphas])
    mask = mask.resize((width, height), Image.Resampling.NEAREST)
    if start == end:
        canvas.paste(start, box, mask)
        return
    channels = [_ramp(a, b, length) for a, b in zip(start, end, strict=True)]
    strip = Image.new("RGB", strip_size)
    strip.putdata([tuple(round(c[i]) for c in channels) for i in range(length)])
    canvas.paste(strip.resize((width, height), Image.Resampling.NEAREST), box, mask)


def _draw_shape(canvas, layer, box, *, palette, scale) -> None:
    width, height = _size(box)
    colour = _rgb(layer["colour"], palette)
    if layer["radius"]:
        mask = Image.new("L", (width, height), 0)
        radius = min(scale.length(layer["radius"]), min(width, height) // 2)
        ImageDraw.Draw(mask).rounded_rectangle(
            (0, 0, width - 1, height - 1), radius=radius, fill=255
        )
        canvas.paste(colour, box, _faded(mask, layer["opacity"]))
    elif layer["opacity"] >= 1.0:
        canvas.paste(colour, box)
    else:
        canvas.paste(colour, box, Image.new("L", (width, height), round(255 * layer["opacity"])))


def _draw_logo(canvas, layer, box, *, logo) -> None:
    if logo is None:
        return
    width, height = _size(box)
    ratio = min(width / logo.width, height / logo.height)
    size = (
        min(width, max(1, round(logo.width * ratio))),
        min(height, max(1, round(logo.height * ratio))),
    )
    fitted = logo.resize(size, Image.Resampling.LANCZOS)
    horizontal, vertical = ANCHORS[layer["anchor"]]
    x = box[0] + round((width - size[0]) * horizontal)
    y = box[1] + round((height - size[1]) * vertical)
    alpha = _faded(fitted.getchannel("A"), layer["opacity"])
    canvas.paste(fitted.convert("RGB"), (x, y), alpha)


def _text_fit(layer, box, *, scale, variables, fonts) -> tuple[str, TextFit | None]:
    text = fill_slots(layer["text"], variables).strip()
    if not text:
        return text, None
    size = scale.length(layer["size"])
    min_size = min(size, scale.length(layer["min_size"]))
    return text, _fit(text, layer, _size(box), size, min_size, fonts)


def _draw_text(canvas, layer, box, *, palette, scale, variables, fonts) -> None:
    _, fit = _text_fit(layer, box, scale=scale, variables=variables, fonts=fonts)
    if fit is None:
        return
    width, height = _size(box)
    face = fonts.face(layer["font"], fit.size)
    block = (len(fit.lines) - 1) * fit.line_advance + _line_height(face)
    top = round((height - block) * VALIGN[layer["valign"]])
    # Drawn into a mask the size of the box, so no glyph can reach past the box's edges.
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for index, line in enumerate(fit.lines):
        x = round((width - face.getlength(line)) * ALIGN[layer["align"]])
        draw.text((x, top + index * fit.line_advance), line, font=face, fill=255, anchor="la")
    canvas.paste(_rgb(layer["colour"], palette), box, _faded(mask, layer["opacity"]))


def _prepare(layers, *, width, height, design_size, palette):
    design_w, design_h = design_size
    if min(width, height, design_w, design_h) < 1:
        raise ValueError(f"sizes must be positive, got {width}x{height} from {design_w}x{design_h}")
    spec = validate_layers(
        layers, width=design_w, height=design_h, fonts=None, palette_size=len(palette)
    )
    return spec, _Scale(width / design_w, height / design_h)


def render_layout(
    layers: object,
    *,
    image: Image.Image | None,
    width: int,
    height: int,
    design_size: tuple[int, int],
    variables: Mapping[str, object],
    palette: Sequence[str],
    fonts: Mapping[str, bytes],
    logo: Image.Image | None,
    focal_point: tuple[float, float] = (0.5, 0.5),
) -> Image.Image:
    """Draw ``layers`` (designed on a ``design_size`` canvas) at ``width`` x ``height``.

    Layers are painted in order onto a white RGB canvas: ``image`` is the picture for image
    layers (cover-cropped around ``focal_point``, fractions of its width and height), ``logo``
    the brand logo (logo layers are skipped without one), ``fonts`` maps family → font bytes (a
    family not in it falls back to Pillow's built-in font) and ``variables`` fill the
    ``{{slots}}`` of text layers. Same inputs give the same pixels.
    """
    spec, scale = _prepare(
        layers, width=width, height=height, design_size=design_size, palette=palette
    )
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    source = image if image is None or image.mode == "RGB" else flatten(image)
    logo_rgba = None if logo is None else logo.convert("RGBA")
    faces = _Fonts(fonts)
    for layer in spec:
        box = scale.box(layer["box"])
        kind = layer["type"]
        if kind == "image":
            _draw_image(canvas, layer, box, image=source, focal_point=focal_point)
        elif kind == "scrim":
            _draw_scrim(canvas, layer, box, palette=palette)
        elif kind == "shape":
            _draw_shape(canvas, layer, box, palette=palette, scale=scale)
        elif kind == "logo":
            _draw_logo(canvas, layer, box, logo=logo_rgba)
        else:
            _draw_text(
                canvas,
                layer,
                box,
                palette=palette,
                scale=scale,
                variables=variables,
                fonts=faces,
            )
    return canvas


def text_fits(
    layers: object,
    *,
    width: int,
    height: int,
    design_size: tuple[int, int],
    variables: Mapping[str, object],
    fonts: Mapping[str, bytes],
    palette_size: int = 16,
) -> list[TextFit | None]:
    """Return how each text layer would be set at ``width`` x ``height`` (None: nothing to draw).

    The same fitting ``render_layout`` uses, for previews that explain a cut headline, and tests.
    """
    spec, scale = _prepare(
        layers,
        width=width,
        height=height,
        design_size=design_size,
        palette=["#000000"] * palette_size,
    )
    faces = _Fonts(fonts)
    return [
        _text_fit(layer, scale.box(layer["box"]), scale=scale, variables=variables, fonts=faces)[1]
        for layer in spec
        if layer["type"] == "text"
    ]


def placeholder_image(width: int, height: int) -> Image.Image:
    """A neutral grey-blue diagonal gradient that stands in for a picture in previews."""
    down = Image.linear_gradient("L")
    diagonal = ImageChops.add(down, down.transpose(Image.Transpose.TRANSPOSE), scale=2.0)
    ramp = diagonal.resize((width, height), Image.Resampling.BILINEAR)
    bands = (
        ramp.point([base + level * 70 // 255 for level in range(256)]) for base in (150, 156, 166)
    )
    return Image.merge("RGB", tuple(bands))
