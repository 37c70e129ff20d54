"""Serve an ASGI application with uvicorn on a socket the test already bound:
``python -m tests.asgi_serve FD [module:application]`` (tests/realserver.py),
by default the test project's (tests/asgi_app.py).

One process on uvloop and httptools (``uvicorn[standard]``): the pure-Python
HTTP parser would add tens of milliseconds to every request.
"""

import socket
import sys

import uvicorn


def main() -> None:
    # Family and type are read from the descriptor (an AF_INET listener).
    listener = socket.socket(fileno=int(sys.argv[1]))
    application = sys.argv[2] if len(sys.argv) > 2 else "tests.asgi_app:application"
    config = uvicorn.Config(
        application,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
