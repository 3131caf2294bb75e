"""Tests for safe image decoding and deterministic, metadata-free encoding."""

import struct
import time
import zlib
from io import BytesIO

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image, ImageCms, ImageFile

from brandforge.images import (
    CONTENT_TYPES,
    EXTENSIONS,
    encode_image,
    open_untrusted_image,
    sanitize_image_upload,
    sha256_hex,
    thumbnail,
)

FORMATS = ["PNG", "JPEG", "WEBP", "AVIF"]


def noise_image(size=(96, 64), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    channels = len(mode)
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(), mode)


def to_bytes(image, fmt, **options):
    buffer = BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming_size(width, height):
    """A valid small PNG whose IHDR (and its CRC) is rewritten to claim another size."""
    data = bytearray(to_bytes(Image.new("L", (64, 64)), "PNG"))
    # Signature (8) + chunk length (4) + b"IHDR" (4): width and height follow.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def error_code(data, **kwargs):
    with pytest.raises(ValidationError) as caught:
        open_untrusted_image(data, **kwargs)
    return caught.value.code


def test_a_valid_png_opens_fully_loaded():
    source = noise_image()
    image = open_untrusted_image(to_bytes(source, "PNG"))
    assert image.size == (96, 64)
    assert np.array_equal(np.asarray(image), np.asarray(source))


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, world", b"<html><body>hi</body></html>", bytes(range(256)) * 4],
    ids=["empty", "text", "html", "binary"],
)
def test_bytes_that_are_no_image_are_rejected_as_not_image(data):
    assert error_code(data) == "not_image"


def test_a_header_claiming_20000_squared_is_rejected_before_decoding():
    data = png_claiming_size(20_000, 20_000)
    started = time.perf_counter()
    assert error_code(data) == "too_large"
    assert time.perf_counter() - started < 1.0


def test_pixel_cap_below_pillows_bomb_limit_is_enforced():
    # 50 MP is under Pillow's own warning level, so only our cap can catch it.
    assert error_code(png_claiming_size(10_000, 5_000)) == "too_large"
    assert error_code(png_claiming_size(64, 64), max_pixels=4_000) == "too_large"


def test_side_cap_is_enforced_even_when_pixels_are_few():
    assert error_code(png_claiming_size(13_000, 100)) == "too_large"


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_formats_not_allowed_are_rejected_as_unsupported(fmt):
    data = to_bytes(noise_image(), fmt)
    with pytest.raises(ValidationError) as caught:
        open_untrusted_image(data)
    assert caught.value.code == "unsupported_format"
    assert fmt in caught.value.messages[0]


def test_an_allowed_format_list_can_be_narrowed():
    data = to_bytes(noise_image(), "JPEG")
    assert error_code(data, formats=("PNG",)) == "unsupported_format"


def test_eps_can_never_be_allowed():
    with pytest.raises(ValueError, match="EPS"):
        open_untrusted_image(b"%!PS-Adobe-3.0 EPSF-3.0", formats=("PNG", "EPS"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_rejected_as_corrupt(fmt):
    data = to_bytes(noise_image((128, 128)), fmt)
    assert error_code(data[: len(data) // 2]) == "corrupt"


def test_truncated_files_stay_rejected_when_someone_enabled_loading_them(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = to_bytes(noise_image((128, 128)), "PNG")
    assert error_code(data[: len(data) // 2]) == "corrupt"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_animated_images_are_rejected_but_single_frame_ones_pass():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue")]
    animated = to_bytes(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert error_code(animated) == "unsupported_format"
    still = to_bytes(frames[0], "PNG", save_all=True)
    assert open_untrusted_image(still).getpixel((0, 0)) == (255, 0, 0)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    source = Image.new("RGB", (40, 20), "white")
    source.paste((255, 0, 0), (0, 0, 10, 20))  # red strip on the stored left edge
    image = open_untrusted_image(to_bytes(source, "JPEG", exif=exif, quality=95))
    assert image.size == (20, 40)
    red, green, _ = image.getpixel((10, 3))  # after rotation the strip is at the top
    assert red > 200 and green < 60


def test_sanitize_removes_html_appended_to_a_png():
    source = noise_image()
    payload = b"<html><script>alert(document.cookie)</script></html>"
    cleaned = sanitize_image_upload(to_bytes(source, "PNG") + payload)
    assert b"<script" not in cleaned and b"<html" not in cleaned
    reopened = Image.open(BytesIO(cleaned))
    assert reopened.format == "PNG" and reopened.mode == "RGB"
    assert np.array_equal(np.asarray(reopened), np.asarray(source))


def test_sanitize_keeps_alpha_and_drops_text_chunks():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    source = noise_image(mode="RGBA")
    cleaned = sanitize_image_upload(to_bytes(source, "PNG", pnginfo=info))
    reopened = Image.open(BytesIO(cleaned))
    assert reopened.mode == "RGBA"
    assert b"tEXt" not in cleaned and b"script" not in cleaned
    assert np.array_equal(np.asarray(reopened), np.asarray(source))


def test_sanitize_passes_open_options_through():
    data = to_bytes(noise_image(), "WEBP", lossless=True)
    with pytest.raises(ValidationError) as caught:
        sanitize_image_upload(data, formats=("PNG",))
    assert caught.value.code == "unsupported_format"


def test_encode_image_strips_exif_from_a_jpeg():
    exif = Image.Exif()
    exif[0x010F] = "Evil Camera Co"
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS latitude
    data = to_bytes(noise_image(), "JPEG", exif=exif)
    assert b"Evil Camera" in data
    for fmt in FORMATS:
        out = encode_image(open_untrusted_image(data), fmt=fmt)
        assert b"Evil Camera" not in out
        reopened = Image.open(BytesIO(out))
        assert "exif" not in reopened.info
        assert len(reopened.getexif()) == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_image_writes_no_icc_profile(fmt):
    source = noise_image()
    source.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = Image.open(BytesIO(encode_image(source, fmt=fmt)))
    assert not out.info.get("icc_profile")


def test_an_srgb_profile_is_honoured_without_shifting_colours():
    tagged = noise_image()
    tagged.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = Image.open(BytesIO(encode_image(tagged, fmt="PNG")))
    diff = np.abs(np.asarray(out, dtype=int) - np.asarray(noise_image(), dtype=int))
    assert diff.max() <= 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_encode_image_is_deterministic(fmt, mode):
    first = encode_image(noise_image(mode=mode), fmt=fmt, quality=80)
    second = encode_image(noise_image(mode=mode).copy(), fmt=fmt, quality=80)
    assert first == second
    assert sha256_hex(first) == sha256_hex(second)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "AVIF"])
def test_alpha_is_kept_where_the_format_supports_it(fmt):
    out = Image.open(BytesIO(encode_image(noise_image(mode="RGBA"), fmt=fmt)))
    assert out.mode == "RGBA"
    assert Image.open(BytesIO(encode_image(noise_image(), fmt=fmt))).mode == "RGB"


def test_jpeg_of_rgba_is_flattened_on_white():
    source = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    source.paste((200, 0, 0, 255), (0, 0, 32, 64))
    out = Image.open(BytesIO(encode_image(source, fmt="jpeg", quality=95)))
    assert out.mode == "RGB"
    array = np.asarray(out, dtype=int)
    assert np.abs(array[32, 56] - (255, 255, 255)).max() <= 3
    assert np.abs(array[32, 8] - (200, 0, 0)).max() <= 6


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_dpi_is_recorded(fmt):
    out = Image.open(BytesIO(encode_image(noise_image(), fmt=fmt, dpi=300)))
    assert tuple(round(value) for value in out.info["dpi"]) == (300, 300)


def test_without_dpi_no_density_is_written():
    assert "dpi" not in Image.open(BytesIO(encode_image(noise_image(), fmt="PNG"))).info


def test_unknown_output_format_raises_value_error():
    with pytest.raises(ValueError, match="GIF"):
        encode_image(noise_image(), fmt="GIF")


def test_tables_cover_every_output_format():
    assert set(CONTENT_TYPES) == set(EXTENSIONS) == set(FORMATS)
    for fmt in FORMATS:
        assert Image.open(BytesIO(encode_image(noise_image(), fmt=fmt))).format == fmt


def test_sha256_hex_matches_the_known_digest():
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_thumbnail_fits_within_the_box_and_is_rgb():
    small = thumbnail(noise_image((300, 150), mode="RGBA"), size=64)
    assert small.size == (64, 32) and small.mode == "RGB"
    assert thumbnail(noise_image((40, 20))).size == (40, 20)


def xmp_of(data: bytes) -> bytes:
    with Image.open(BytesIO(data)) as image:
        packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    return packet.encode() if isinstance(packet, str) else packet


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "AVIF"])
def test_encoded_images_carry_the_digital_source_type_and_recipe_id(fmt):
    from xml.etree import ElementTree

    from brandforge.images import BRANDFORGE_XMP_NS, DIGITAL_SOURCE_TYPE, provenance_xmp

    packet = provenance_xmp(recipe_id="3f2c<&>", recipe_hash="ab12")
    data = encode_image(Image.new("RGB", (24, 16), (10, 120, 200)), fmt=fmt, xmp=packet)

    body = xmp_of(data).split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0]
    root = ElementTree.fromstring(body)  # noqa: S314 (the packet we just wrote)
    description = root.find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    iptc = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}"
    assert description.get(f"{iptc}DigitalSourceType") == DIGITAL_SOURCE_TYPE
    assert description.get(f"{{{BRANDFORGE_XMP_NS}}}RecipeId") == "3f2c<&>"  # escaped, intact
    assert description.get(f"{{{BRANDFORGE_XMP_NS}}}RecipeHash") == "ab12"


def test_without_xmp_nothing_is_embedded_and_bytes_are_stable():
    image = Image.new("RGB", (24, 16), (10, 120, 200))
    first, second = encode_image(image, fmt="WEBP"), encode_image(image, fmt="WEBP")
    assert first == second and xmp_of(first) in (None, b"")


def test_fast_png_is_lossless_and_deterministic():
    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    fast = encode_image(image, fmt="PNG", fast=True)
    assert fast == encode_image(image, fmt="PNG", fast=True)
    assert fast != encode_image(image, fmt="PNG")  # another zlib level
    assert np.array_equal(np.asarray(Image.open(BytesIO(fast))), pixels)
