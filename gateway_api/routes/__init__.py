"""One blueprint per module, and ``incoming.py``: what the routes read from every request
the same way (the caller, the JSON body, the headers that shape a submission)."""
