"""`dfx serve`: an OpenAI-compatible HTTP server for the appliance (docs/serve.md).

    protocol   checks /v1/completions requests, stop strings, logprobs, OpenAI's error object
    engine     the appliance: one Session in one worker thread, a bounded FIFO of requests before it
    metrics    the Prometheus metrics (prometheus_client)
    app        the Starlette app, the playground page, uvicorn, SIGTERM

Needs the `serve` extra (pip install 'dfx[serve]'): starlette, uvicorn, prometheus_client.
"""

from dfx.host.serve.app import Perf, bind, bundle_info, create_app, make_server, serve_bundle
from dfx.host.serve.engine import Engine

__all__ = ["Engine", "Perf", "bind", "bundle_info", "create_app", "make_server", "serve_bundle"]
