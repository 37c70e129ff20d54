"""WSGI entry point of the test project, for a real server (tests/realserver.py)."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
