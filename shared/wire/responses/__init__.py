"""The Responses API (``POST /v1/responses``) over chat completions: a Responses request
becomes the chat body sent to providers (``request.py``), and a chat completion becomes the
Response object the client reads (``response.py``, with ``envelope.py`` for the fields every
Response carries and the queued, in-progress, failed and cancelled ones). Pure functions: no
web framework, no Redis."""
