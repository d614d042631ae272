"""`kfops ui`: a local, read-only web UI over a store (runs, reports, comparisons, models).

`create_app(store)` builds the Starlette application; `kfops.commands.ui` serves it on 127.0.0.1.
"""

from kfops.ui.app import create_app

__all__ = ["create_app"]
