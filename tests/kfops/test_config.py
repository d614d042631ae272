import pytest

from kfops import config, errors


def test_store_settings_read_minio_env():
    s = config.StoreSettings.from_env(
        {
            "MINIO_ENDPOINT": "minio:9000",
            "MINIO_ACCESS_KEY": "ak",
            "MINIO_SECRET_KEY": "sk",
            "MINIO_SECURE": "true",
        }
    )
    assert (s.endpoint, s.access_key, s.secure) == ("minio:9000", "ak", True)


def test_store_settings_repr_hides_keys():
    s = config.StoreSettings(endpoint="e:1", access_key="AKIDX", secret_key="S3CR3T")
    assert "S3CR3T" not in repr(s) and "AKIDX" not in repr(s)


def test_store_settings_accept_url_endpoint():
    s = config.StoreSettings.from_env({"MINIO_ENDPOINT": "https://minio.example:9000/"})
    assert (s.endpoint, s.secure) == ("minio.example:9000", True)


def test_store_settings_refuse_non_boolean_secure():
    with pytest.raises(errors.ConfigError, match="MINIO_SECURE"):
        config.StoreSettings.from_env({"MINIO_SECURE": "maybe"})


def test_the_default_local_store_is_spelled_once():
    """Every command's --store default comes from config.LOCAL_STORE, not its own literal."""
    import pathlib  # noqa: PLC0415

    root = pathlib.Path(config.__file__).parent
    spelled = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if f'"{config.LOCAL_STORE}"' in p.read_text(encoding="utf-8")
    ]
    assert spelled == ["config.py"]
