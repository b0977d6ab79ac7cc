"""What the tests share: the stack of real processes, the client keys, the in-process app,
the answer-shape checks and the batch helpers. Tests import from here, never from one
another or from conftest."""
