"""Provides safe decoding of untrusted image bytes and deterministic, metadata-free encoding."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from io import BytesIO
from typing import Any
from xml.sax.saxutils import quoteattr

from django.core.exceptions import ValidationError
from PIL import Image, ImageCms, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "AVIF": "avif"}

DEFAULT_UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP")

# IPTC's term for media made by a model trained on sampled content (C2PA uses the same).
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
BRANDFORGE_XMP_NS = "https://brandforge.dev/ns/recipe/1.0/"

# EPS shells out to Ghostscript; no caller may opt into it for untrusted bytes.
_FORBIDDEN_FORMATS = frozenset({"EPS", "PDF"})

# Signatures are only used to word the error for files Pillow was not allowed to parse,
# so the disallowed parsers never run on the bytes.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"WEBP", 8, "WEBP"),
    (b"ftypavif", 4, "AVIF"),
    (b"ftypavis", 4, "AVIF"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIC"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"8BPS", 0, "PSD"),
    (b"%!PS", 0, "EPS"),
    (b"\xc5\xd0\xd3\xc6", 0, "EPS"),
    (b"%PDF", 0, "PDF"),
    (b"<svg", 0, "SVG"),
    (b"<?xml", 0, "SVG"),
)

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WHITE = (255, 255, 255)
_SRGB = ImageCms.createProfile("sRGB")
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    # No timestamps or text chunks are written, so equal pixels give equal bytes.
    "PNG": {"compress_level": 6, "optimize": False},
    "JPEG": {"optimize": False, "progressive": False},
    "WEBP": {"method": 4},
    # A fixed thread count keeps the bytes from depending on how many cores a worker has.
    "AVIF": {"speed": 6, "max_threads": 1},
}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sniff_format(data: bytes) -> str | None:
    """Return the format named by the file's magic bytes, without parsing it."""
    head = data[:64].lstrip()
    for signature, offset, fmt in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            if fmt == "WEBP" and not head.startswith(b"RIFF"):
                continue
            return fmt
    return None


def open_untrusted_image(
    data: bytes,
    *,
    formats: Iterable[str] = DEFAULT_UPLOAD_FORMATS,
    max_pixels: int = 40_000_000,
    max_side: int = 12_000,
) -> Image.Image:
    """Decode bytes from outside the system into a fully loaded, upright image.

    Only the parsers in ``formats`` run; the size is checked from the header before any
    pixel data is decoded; animated images are refused. Any failure raises
    ``ValidationError`` with code ``not_image``, ``too_large``, ``unsupported_format`` or
    ``corrupt`` and a message that can be shown to the uploader.
    """
    allowed = tuple(fmt.upper() for fmt in formats)
    if forbidden := _FORBIDDEN_FORMATS.intersection(allowed):
        raise ValueError(f"formats must not include {', '.join(sorted(forbidden))}")
    # Another library flipping this global would let half-written uploads through.
    ImageFile.LOAD_TRUNCATED_IMAGES = False

    image = _open_header(data, allowed)
    _check_size(image.size, max_pixels=max_pixels, max_side=max_side)
    if getattr(image, "n_frames", 1) != 1:
        raise ValidationError(
            "Animated images are not supported; upload a single still image.",
            code="unsupported_format",
        )
    try:
        image.verify()
        # verify() leaves the image unusable, so decode from a fresh parser.
        image = _open_header(data, (image.format,))
        upright = ImageOps.exif_transpose(image)
        upright.load()
    except ValidationError:
        raise
    except Exception as exc:
        # Hostile input makes Pillow's decoders raise many unrelated types; all mean the
        # same thing to the uploader.
        raise ValidationError("The image file is damaged or incomplete.", code="corrupt") from exc
    return upright


def sanitize_image_upload(data: bytes, **open_kwargs: Any) -> bytes:
    """Return the upload re-encoded as a metadata-free sRGB PNG.

    Re-encoding drops anything appended to or hidden inside the original file (HTML
    polyglots, EXIF with GPS, comments), so only these bytes should ever be stored.
    """
    image = open_untrusted_image(data, **open_kwargs)
    return encode_image(image, fmt="PNG")


def encode_image(
    image: Image.Image,
    *,
    fmt: str,
    quality: int = 85,
    dpi: int | None = None,
    xmp: bytes | None = None,
    fast: bool = False,
) -> bytes:
    """Encode ``image`` as PNG, JPEG, WEBP or AVIF with no metadata but ``xmp``.

    Pixels are converted to sRGB; alpha is kept for PNG, WEBP and AVIF when the image has
    it, and JPEG is flattened onto white. Equal pixels and parameters give equal bytes.
    ``quality`` applies to the lossy formats only; ``dpi`` is written where the format has
    a field for it (PNG pHYs, JPEG JFIF). ``xmp`` (see ``provenance_xmp``) is embedded as the
    format's XMP packet (PNG: the ``XML:com.adobe.xmp`` iTXt chunk). ``fast`` trades size for
    time where the format allows it losslessly (PNG at zlib level 1: ~4× faster, ~4% larger),
    for files kept in our own storage rather than shipped.
    """
    fmt = fmt.upper()
    if fmt not in CONTENT_TYPES:
        raise ValueError(
            f"unsupported output format {fmt!r}; use one of {', '.join(CONTENT_TYPES)}"
        )
    keep_alpha = fmt != "JPEG" and has_alpha(image)
    pixels = _to_srgb(image, "RGBA" if keep_alpha else "RGB")
    options: dict[str, object] = dict(_SAVE_OPTIONS[fmt])
    if fast and fmt == "PNG":
        options["compress_level"] = 1
    if fmt != "PNG":
        options["quality"] = quality
    if dpi is not None and fmt in ("PNG", "JPEG"):
        options["dpi"] = (dpi, dpi)
    if xmp and fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        options["pnginfo"] = info
    elif xmp:
        options["xmp"] = xmp
    buffer = BytesIO()
    pixels.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def provenance_xmp(*, recipe_id: str, recipe_hash: str = "") -> bytes:
    """The XMP packet every rendition carries: IPTC's DigitalSourceType for AI-made media
    (trainedAlgorithmicMedia) and the id of the recipe that made it."""
    attributes = {
        "Iptc4xmpExt:DigitalSourceType": DIGITAL_SOURCE_TYPE,
        "brandforge:RecipeId": recipe_id,
        "brandforge:RecipeHash": recipe_hash,
    }
    described = "".join(
        f"\n    {name}={quoteattr(value)}" for name, value in attributes.items() if value
    )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        f'    xmlns:brandforge="{BRANDFORGE_XMP_NS}"{described}/>\n'
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    ).encode()


def cover(
    image: Image.Image,
    *,
    width: int,
    height: int,
    focal_point: tuple[float, float] = (0.5, 0.5),
) -> Image.Image:
    """Return ``image`` scaled to cover ``width`` x ``height`` and cropped to exactly that.

    The crop is centred on ``focal_point`` (fractions of the source width and height) as far
    as the image allows: near an edge the crop box is shifted back inside rather than padded.
    Cropping and scaling happen in one resample.
    """
    if width < 1 or height < 1:
        raise ValueError(f"the size must be positive, got {width}x{height}")
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = width / scale, height / scale
    left = min(max(focal_point[0] * image.width - crop_w / 2, 0.0), image.width - crop_w)
    top = min(max(focal_point[1] * image.height - crop_h / 2, 0.0), image.height - crop_h)
    if scale == 1.0:
        # A master made at the target size is only cropped: no resample, no softening.
        left, top = round(left), round(top)
        return image.crop((left, top, left + width, top + height))
    # LANCZOS where detail is thrown away (it aliases least); BICUBIC to enlarge, where it looks
    # the same and costs a third less (a 1024 px master into a 1080x1920 story: 22 ms vs 34 ms).
    resample = Image.Resampling.LANCZOS if scale < 1.0 else Image.Resampling.BICUBIC
    region = (left, top, left + crop_w, top + crop_h)
    return image.resize((width, height), resample, box=region)


def thumbnail(image: Image.Image, *, size: int = 256) -> Image.Image:
    """Return an RGB copy that fits within ``size`` x ``size``; smaller images are not enlarged."""
    small = flatten(image)
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    return small


def has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def flatten(image: Image.Image, background: tuple[int, int, int] = _WHITE) -> Image.Image:
    """Return an RGB copy with any transparency composited onto ``background``."""
    if not has_alpha(image):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _open_header(data: bytes, allowed: tuple[str, ...]) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(BytesIO(data), formats=list(allowed))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ValidationError(
            "The image has too many pixels to process safely.", code="too_large"
        ) from exc
    except UnidentifiedImageError as exc:
        raise _unidentified(data, allowed) from exc
    except Exception as exc:
        raise ValidationError("The image file is damaged or incomplete.", code="corrupt") from exc


def _unidentified(data: bytes, allowed: tuple[str, ...]) -> ValidationError:
    sniffed = sniff_format(data)
    if sniffed is None:
        return ValidationError(
            f"The file is not a recognised image; upload {_human_list(allowed)}.",
            code="not_image",
        )
    if sniffed not in allowed:
        return ValidationError(
            f"{sniffed} images are not accepted; upload {_human_list(allowed)}.",
            code="unsupported_format",
        )
    return ValidationError(f"The {sniffed} file is damaged or incomplete.", code="corrupt")


def _check_size(size: tuple[int, int], *, max_pixels: int, max_side: int) -> None:
    width, height = size
    if width * height > max_pixels or max(width, height) > max_side:
        raise ValidationError(
            f"The image is {width} x {height} pixels; the limit is {max_pixels:,} pixels "
            f"and {max_side:,} pixels per side.",
            code="too_large",
        )
    if width < 1 or height < 1:
        raise ValidationError("The image has no pixels.", code="corrupt")


def _human_list(formats: tuple[str, ...]) -> str:
    if len(formats) == 1:
        return formats[0]
    return f"{', '.join(formats[:-1])} or {formats[-1]}"


def _to_srgb(image: Image.Image, mode: str) -> Image.Image:
    """Return a new ``mode`` image in sRGB with an empty ``info`` dict.

    Pillow's encoders copy ICC profiles and transparency from ``info``, so the result
    must never share it with the source.
    """
    source = _to_8bit(image)
    converted = _apply_icc(source, mode) or (
        flatten(source) if mode == "RGB" else source.convert(mode)
    )
    converted.info = {}
    return converted


def _to_8bit(image: Image.Image) -> Image.Image:
    # 16-bit and float greys would saturate in a plain convert(); rescale them instead.
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        scaled = image.convert("F").point(lambda value: value / 257)
        return scaled.convert("L")
    return image


def _apply_icc(image: Image.Image, mode: str) -> Image.Image | None:
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return None
    source = image if mode == "RGBA" or image.mode != "RGBA" else flatten(image)
    output_mode = "RGBA" if source.mode == "RGBA" else "RGB"
    try:
        profile = ImageCms.ImageCmsProfile(BytesIO(icc))
        converted = ImageCms.profileToProfile(source, profile, _SRGB, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken or mismatched embedded profile is treated as if it were absent.
        return None
    if converted is None or converted.mode != mode:
        return None
    return converted
