from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

import skitai


def hello(request):
    return HttpResponse(f"Hello from Django: path={request.path} script={request.META['SCRIPT_NAME']}")


@csrf_exempt
def echo(request):
    return JsonResponse({"method": request.method, "post": request.POST.dict(), "size": len(request.body)})


@skitai.websocket(60)
def chat(request):
    """The manual's generator-style WebSocket in a Django view."""
    while True:
        message = yield
        if not message:
            return
        yield f"ECHO:{message} user-agent={request.META.get('HTTP_USER_AGENT', '-')[:10]}"


def shout(request):
    return HttpResponse(request.GET["message"].upper())


@skitai.websocket("message", 60)
def per_message(request):
    """The per-message style: a Django response's body is the reply."""
    return shout(request)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("hello/", hello),
    path("echo/", echo),
    path("chat/", chat),
    path("shout/", per_message),
]
