"""Provides the small project-level views: home redirect, health check and staff-only media."""

import mimetypes

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("admin:index")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@require_GET
@staff_member_required
def media(request: HttpRequest, name: str) -> FileResponse:
    """Serve a file from local storage to staff only (S3 serves presigned URLs instead).

    Generated and uploaded files are untrusted content: they go out with nosniff (set by
    SecurityMiddleware), a sandboxing CSP and only when they are images.
    """
    storage = storages["default"]
    if not isinstance(storage, FileSystemStorage):
        raise Http404
    content_type, _ = mimetypes.guess_type(name)
    if not content_type or not content_type.startswith("image/"):
        raise Http404
    try:
        fh = storage.open(name)
    except (FileNotFoundError, IsADirectoryError, SuspiciousFileOperation) as exc:
        # Storage.path() raises SuspiciousFileOperation for names that leave MEDIA_ROOT.
        raise Http404 from exc
    response = FileResponse(fh, content_type=content_type)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
