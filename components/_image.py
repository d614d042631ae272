"""The one image every component and the server run in.

The tag derives from the package version. `KFOPS_IMAGE` overrides it at compile time (this is the
single place a component module reads the environment: the decorator needs the image when the
module is imported, which is when compiling happens).
"""

import os

from kfops import __version__

DEFAULT_IMAGE = f"ghcr.io/kfops/kfops:{__version__}"
KFOPS_IMAGE = os.environ.get("KFOPS_IMAGE") or DEFAULT_IMAGE
