"""Serve the test project's ASGI application with uvicorn on a socket the
test already bound: ``python -m tests.asgi_serve FD`` (tests/realserver.py).

One process on uvloop and httptools (``uvicorn[standard]``): the pure-Python
HTTP parser would add tens of milliseconds to every request.
"""

import socket
import sys

import uvicorn


def main() -> None:
    # Family and type are read from the descriptor (an AF_INET listener).
    listener = socket.socket(fileno=int(sys.argv[1]))
    config = uvicorn.Config(
        "tests.asgi_app:application",
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
