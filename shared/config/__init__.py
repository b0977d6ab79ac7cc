"""Configuration: layers merged deeply, validated as a whole, turned into frozen Settings.

Layers, later overriding earlier (maps merged deeply, lists replaced whole):
defaults (``defaults``); the file (``--config`` or ``GATEWAY_CONFIG_FILE``; YAML, JSON or
TOML, with ``${VAR}`` and ``${VAR:-default}``); the original design's environment names
(``ZAI_API_KEY``, ``OPENAI_API_KEY``, ``LITELLM_PROXY_URL``, ``REDIS_URL``,
``CELERY_BROKER_URL``...); ``GATEWAY__SECTION__KEY`` variables; the ``GATEWAY_CONFIG`` JSON
document (those five: ``layers``); the Redis layer (``store``) and the HTTP source
(``sources``). ``schema`` validates the merged document, ``loader`` turns it into the frozen
``settings``, ``watcher`` keeps a process's copy current, ``redact`` is what may be shown.
"""
