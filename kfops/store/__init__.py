"""Object storage: one small interface, two implementations (local directory, S3 via minio).

Use `open_store(uri, settings)`: a plain path gives `LocalStore`, `s3://bucket/prefix` gives
`S3Store`. Keys are '/'-separated and relative to the store's root.
"""

from kfops.store.base import Store, open_store

__all__ = ["Store", "open_store"]
