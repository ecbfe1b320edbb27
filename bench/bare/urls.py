from django.urls import path

from bench.bare.views import store_raw
from oncall.urls import urlpatterns as app_urlpatterns

urlpatterns = [path("bare/webhook", store_raw), *app_urlpatterns]
