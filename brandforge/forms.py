"""Provides form fields shared by the admin: uploads that are validated and re-encoded."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.template.defaultfilters import filesizeformat

from brandforge.images import sanitize_image_upload


class SafeImageField(forms.ImageField):
    """An image upload checked for size, format and decompression bombs, then re-encoded as PNG.

    Only the re-encoded PNG is stored: metadata and anything appended to the file (HTML in a
    PNG polyglot, say) are gone, and the name is chosen by the server.
    """

    default_error_messages = {
        "too_big": "The file is %(size)s; uploads are limited to %(limit)s.",
    }

    def to_python(self, data):
        if data in self.empty_values:
            return None
        limit = settings.BRANDFORGE_MAX_UPLOAD_BYTES
        if data.size > limit:
            raise ValidationError(
                self.error_messages["too_big"],
                code="too_big",
                params={"size": filesizeformat(data.size), "limit": filesizeformat(limit)},
            )
        png = sanitize_image_upload(data.read())
        clean = ContentFile(png, name="upload.png")
        clean.content_type = "image/png"
        return clean
