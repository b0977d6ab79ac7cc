"""The ``llm-gateway`` command line."""
