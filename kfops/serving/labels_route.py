"""`POST /v2/models/<name>/labels`: delayed labels delivered to the server that logged the requests.

Not part of the Open Inference Protocol (KServe has no ground-truth endpoint): a kfops extension
beside it, so a client that knows the outcome of a prediction can send it back where the request
id came from. The body is JSON, `{"labels": [{"request_id": "...", "row": 0, "label": 1}, ...]}`
(`row` defaults to 0), read under the server's body-size limit; the delivery goes to the store the
server logs to, by the same rules as `kfops labels add` (kfops.labels). Storing is a blocking
write, so it runs in a worker thread, off the event loop that answers predictions.
"""

from __future__ import annotations

import asyncio

from kfops import errors, labels
from kfops.serving import errors as serr


async def deliver(handlers, request):
    """Checks and stores one delivery; answers {"model", "accepted", "collapsed", "key"}."""
    name = request.path_params["name"]
    if name != handlers.config.name:
        raise serr.ModelNotFound(
            f"model {name!r} is not served here; this server serves {handlers.config.name!r}"
        )
    if handlers.label_store is None:
        raise errors.StorageError("labels need a store: start kfops serve with --store")
    body = await handlers._read_json(dict(request.scope["headers"]), request.receive)
    records = body.get("labels") if isinstance(body, dict) else None
    frame = labels.from_records(records)
    delivery = await asyncio.to_thread(labels.deliver, handlers.label_store, name, frame)
    return {"model": name, "accepted": delivery.rows, "collapsed": delivery.collapsed,
            "key": delivery.key}  # fmt: skip
