"""A WSGI app for the gunicorn configuration's test: it answers with its process id, `/slow`
after holding its thread for a while."""

import os
import time

SLOW_S = 3.0


def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(SLOW_S)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
