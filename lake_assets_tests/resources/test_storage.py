"""lake_assets.lib.storage: one root URI, three S3 clients configured alike from the AWS
variables (pyarrow, delta-rs, the embedded engine), and the local filesystem unchanged."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest

from lake_assets.lib import storage
from lake_assets_tests.resources.conftest import UNSET, set_aws_env


@pytest.fixture
def no_aws(monkeypatch):
    """An environment with no S3 endpoint, credentials or region."""
    for k in UNSET + (
        "AWS_ENDPOINT_URL",
        "AWS_ALLOW_HTTP",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def s3_kwargs(fs: pafs.FileSystem) -> dict:
    """The options an S3FileSystem was made with."""
    assert isinstance(fs, pafs.S3FileSystem)
    return fs.__reduce__()[1][0]


# ---- is_s3 / filesystem --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/lake", True),
        ("s3a://bucket/lake", True),
        ("/tmp/lake", False),
        ("lake", False),
        ("file:///tmp/lake", False),
        ("S3bucket/x", False),
    ],
)
def test_is_s3(uri, expected):
    assert storage.is_s3(uri) is expected


def test_filesystem_local_path(tmp_path, no_aws):
    fs, path = storage.filesystem(str(tmp_path) + "/lake/")
    assert isinstance(fs, pafs.LocalFileSystem)
    assert path == f"{tmp_path}/lake"


@pytest.mark.parametrize("uri", ["s3://bucket/lake/prefix/", "s3a://bucket/lake/prefix"])
def test_filesystem_s3_path_is_bucket_and_key(uri, no_aws):
    fs, path = storage.filesystem(uri)
    assert isinstance(fs, pafs.S3FileSystem)
    assert path == "bucket/lake/prefix"


def test_filesystem_s3_on_aws_has_no_endpoint_override(no_aws):
    no_aws.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    kw = s3_kwargs(storage.filesystem("s3://bucket/lake")[0])
    assert kw["endpoint_override"] == ""
    assert kw["scheme"] == "https"
    assert kw["region"] == "eu-west-1"
    assert kw["force_virtual_addressing"] is False


def test_filesystem_s3_custom_http_endpoint(no_aws):
    set_aws_env(no_aws, "http://127.0.0.1:9000/")
    kw = s3_kwargs(storage.filesystem("s3://bucket/lake")[0])
    assert (kw["endpoint_override"], kw["scheme"], kw["region"]) == (
        "127.0.0.1:9000",
        "http",
        "us-east-1",
    )


def test_filesystem_s3_endpoint_without_scheme_is_https(no_aws):
    no_aws.setenv("AWS_ENDPOINT_URL", "minio.internal:9000")
    kw = s3_kwargs(storage.filesystem("s3://bucket/lake")[0])
    assert (kw["endpoint_override"], kw["scheme"]) == ("minio.internal:9000", "https")


def test_filesystem_s3_service_endpoint_wins(no_aws):
    no_aws.setenv("AWS_ENDPOINT_URL", "http://general:1")
    no_aws.setenv("AWS_ENDPOINT_URL_S3", "https://s3only:2")
    kw = s3_kwargs(storage.filesystem("s3://bucket/lake")[0])
    assert (kw["endpoint_override"], kw["scheme"]) == ("s3only:2", "https")


# ---- storage_options (delta-rs) --------------------------------------------------------------


def test_storage_options_local_is_empty(tmp_path, monkeypatch):
    set_aws_env(monkeypatch, "http://127.0.0.1:9000")
    assert storage.storage_options(str(tmp_path)) == {}
    assert storage.storage_options("file:///tmp/lake") == {}


def test_storage_options_custom_endpoint(no_aws):
    set_aws_env(no_aws, "http://127.0.0.1:9000/")
    no_aws.setenv("AWS_SESSION_TOKEN", "tok")
    assert storage.storage_options("s3://bucket/lake/raw/shop/orders") == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "tok",
        "AWS_REGION": "us-east-1",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }


def test_storage_options_aws(no_aws):
    no_aws.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    opts = storage.storage_options("s3a://bucket/lake")
    assert opts == {"AWS_REGION": "eu-central-1", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
    no_aws.delenv("AWS_DEFAULT_REGION")
    assert storage.storage_options("s3://bucket/lake")["AWS_REGION"] == "us-east-1"


def test_storage_options_https_endpoint_does_not_allow_http(no_aws):
    no_aws.setenv("AWS_ENDPOINT_URL_S3", "https://s3.example.com")
    opts = storage.storage_options("s3://bucket/lake")
    assert opts["AWS_ENDPOINT_URL"] == "https://s3.example.com"
    assert "AWS_ALLOW_HTTP" not in opts


# ---- engine_env (Sail) -----------------------------------------------------------------------


def test_engine_env(no_aws):
    assert storage.engine_env() == {}
    no_aws.setenv("AWS_ENDPOINT_URL", "https://s3.example.com")
    assert storage.engine_env() == {}
    no_aws.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert storage.engine_env() == {"AWS_ALLOW_HTTP": "true"}
    no_aws.setenv("AWS_ALLOW_HTTP", "false")  # an explicit choice stays
    assert storage.engine_env() == {}


# ---- list_files ------------------------------------------------------------------------------


def test_list_files_local(tmp_path):
    (tmp_path / "a" / "2024" / "01").mkdir(parents=True)
    (tmp_path / "a" / "LOAD00000001.parquet").write_bytes(b"12")
    (tmp_path / "a" / "2024" / "01" / "x.csv").write_bytes(b"123")
    fs, base = storage.filesystem(str(tmp_path / "a"))
    files = storage.list_files(fs, base)
    assert [(f.rel, f.size) for f in files] == [("2024/01/x.csv", 3), ("LOAD00000001.parquet", 2)]
    assert files[1].path == f"{tmp_path}/a/LOAD00000001.parquet"
    assert storage.list_files(fs, str(tmp_path / "absent")) == []


def test_list_files_s3(s3):
    """The same listing through pyarrow against the real endpoint; an absent prefix is empty."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, bucket = s3
    fs, base = storage.filesystem(f"s3://{bucket}/landing/shop/public/orders/")
    pq.write_table(pa.table({"x": [1]}), f"{base}/LOAD00000001.parquet", filesystem=fs)
    with fs.open_output_stream(f"{base}/2024/01/15/20240115-093012345.csv") as out:
        out.write(b"I,1\n")
    files = storage.list_files(fs, base)
    assert [f.rel for f in files] == ["2024/01/15/20240115-093012345.csv", "LOAD00000001.parquet"]
    assert (
        files[0].size == 4
        and files[0].path
        == f"{bucket}/landing/shop/public/orders/2024/01/15/20240115-093012345.csv"
    )
    assert storage.list_files(*storage.filesystem(f"s3://{bucket}/landing/absent")) == []
