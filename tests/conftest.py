"""Shared fixtures live in tests/fixtures/, one plugin module per concern."""

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.kfp_local",
    "tests.fixtures.monitoring",
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
]
