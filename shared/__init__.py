"""Code shared by the API and the workers: config, job store, Redis keys, Celery app, errors."""
