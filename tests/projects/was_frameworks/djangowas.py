"""A one-file Django project with `was`; a middleware answers `skitai.HTTPError` with its status."""
import django
from django.conf import settings

settings.configure(DEBUG=False, SECRET_KEY="skitai-test-only", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"],
                   MIDDLEWARE=[f"{__name__}.HTTPErrorMiddleware"], INSTALLED_APPS=[])
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after settings)
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from work import concurrent_work, gone, visit  # noqa: E402

import skitai  # noqa: E402


class HTTPErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, skitai.HTTPError):
            return HttpResponse(exception.explain, status=exception.code, content_type="text/plain")
        return None


urlpatterns = [
    path("tasks", lambda request: JsonResponse(concurrent_work())),
    path("visit", lambda request: JsonResponse(visit())),
    path("gone", lambda request: JsonResponse(gone(), safe=False)),
]
application = get_wsgi_application()
