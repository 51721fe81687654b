"""A one-file Django project whose view pushes an image before answering."""
import django
from django.conf import settings

settings.configure(DEBUG=False, SECRET_KEY="skitai-test-only", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"],
                   MIDDLEWARE=[], INSTALLED_APPS=[])
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after settings)
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from skitai import was  # noqa: E402


def promise(request):
    pushed = was.push("/images/B.png")
    response = HttpResponse('<img src="/images/B.png">')
    response["X-Pushed"] = str(pushed)
    return response


urlpatterns = [path("promise", promise)]
application = get_wsgi_application()
