"""The ids of a Response's output items, made from the response's own id and the item's
place in ``output``: building the same answer again (a poll, a replay, another API process)
gives the same ids, and two responses never share one.

``resp_abc`` gives ``msg_abc_1`` (a message at output index 1), ``fc_abc_2`` (a function
call), ``rs_abc_0`` (reasoning), and ``call_abc_2`` for a tool call the provider sent
without an id of its own.
"""

from __future__ import annotations

MESSAGE = "msg"
FUNCTION_CALL = "fc"
REASONING = "rs"
CALL = "call"


def item_id(response_id: str, prefix: str, index: int) -> str:
    return f"{prefix}_{response_id.removeprefix('resp_')}_{index}"
