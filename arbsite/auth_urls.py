from django.urls import path

from arbsite import auth_views

urlpatterns = [
    path("csrf", auth_views.CsrfView.as_view()),
    path("login", auth_views.LoginView.as_view()),
    path("logout", auth_views.LogoutView.as_view()),
    path("me", auth_views.MeView.as_view()),
]
