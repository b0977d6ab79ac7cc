"""Celery workers: tasks, provider adapters, routing and the job runner."""
