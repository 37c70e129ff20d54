"""The demo project as an ASGI application, static files included.

Django serves static files only under ``runserver``; the browser tests run the
demo under uvicorn, so the staticfiles app's ASGI handler (the one
``runserver`` uses) serves the stylesheet and the expiry-warning script.
"""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

application = ASGIStaticFilesHandler(get_asgi_application())
