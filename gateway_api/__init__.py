"""The Flask front door: authenticate, validate, enqueue, wait or answer 202."""

from gateway_api.app import create_app

__all__ = ["create_app"]
