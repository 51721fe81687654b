from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse(f"Hello from Django: path={request.path} script={request.META['SCRIPT_NAME']}")


@csrf_exempt
def echo(request):
    return JsonResponse({"method": request.method, "post": request.POST.dict(), "size": len(request.body)})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("hello/", hello),
    path("echo/", echo),
]
