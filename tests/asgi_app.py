"""ASGI entry point of the test project, for uvicorn (tests/asgi_serve.py)."""

from django.core.asgi import get_asgi_application

application = get_asgi_application()
