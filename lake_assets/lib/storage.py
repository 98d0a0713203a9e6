"""Files under a root that is a local path or s3://bucket/prefix, through pyarrow.fs.

S3 credentials and endpoint come from the usual AWS variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3), as for every AWS
client. Three clients read them, each in its own way:

- pyarrow's S3FileSystem (landing zone, simulator, staging): :func:`filesystem`;
- delta-rs (`deltalake`, log inspection): :func:`storage_options`;
- the embedded engine (Sail): the Rust `object_store` crate reads the AWS_* variables itself
  (``AmazonS3Builder::from_env``) when a bucket is first used, so a server that is already
  running reaches a bucket as long as the variables are set before that bucket's first use.
  It refuses an ``http://`` endpoint unless AWS_ALLOW_HTTP=true; :func:`engine_env` derives
  that from the endpoint, as the two other clients do.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass

import pyarrow.fs as pafs


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://") or uri.startswith("s3a://")


def s3_endpoint() -> str | None:
    """The custom S3 endpoint of the environment (AWS_ENDPOINT_URL_S3 wins), or None for AWS."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return endpoint.strip().rstrip("/") if endpoint and endpoint.strip() else None


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a root URI."""
    if is_s3(uri):
        rest = uri.split("://", 1)[1]
        endpoint = s3_endpoint()
        kwargs = {}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            kwargs["region"] = region
        return pafs.S3FileSystem(**kwargs), rest.rstrip("/")
    return pafs.LocalFileSystem(), uri.rstrip("/")


# What a local path may hold for the engines to take it literally: no character a URL encodes.
_LITERAL = re.compile(r"[A-Za-z0-9/._=-]*")


def engine_path(path: str) -> str:
    """`path` as Sail and delta-rs must be given it to read and write exactly there.

    Both take a local path as a URL. Given a character that a URL encodes (a space, `%`, `#`,
    `(`, non-ASCII), Sail (0.7.2) writes a Delta table into percent-encoded twins of the folder
    (the log in one, the data files in another), and delta-rs (1.6.6) decodes `%20` into a
    space (docs/engine.md, "Paths"). Such a path goes to them through a symbolic link whose own
    path has none of those characters: the files land inside the real folder.
    """
    if is_s3(path) or _LITERAL.fullmatch(path):
        return path
    parts = path.rstrip("/").split("/")
    last = max(i for i, part in enumerate(parts) if not _LITERAL.fullmatch(part))
    link = _link_to("/".join(parts[: last + 1]))
    return "/".join([link, *parts[last + 1 :]])


def _links_dir() -> str:
    """A folder of this user's, with a literal path, for the links engine_path makes."""
    base = next((d for d in (tempfile.gettempdir(), "/tmp") if _LITERAL.fullmatch(d)), "/tmp")
    home = os.path.join(base, f"lake_assets-paths-{os.getuid()}")
    os.makedirs(home, mode=0o700, exist_ok=True)
    st = os.lstat(home)
    if os.path.islink(home) or st.st_uid != os.getuid():
        # Another user's folder could send the lake's writes anywhere.
        raise PermissionError(f"{home} is not a folder of this user's")
    return home


def _link_to(target: str) -> str:
    os.makedirs(target, exist_ok=True)
    link = os.path.join(_links_dir(), hashlib.sha256(target.encode()).hexdigest()[:32])
    if os.path.islink(link) and os.readlink(link) == target:
        return link
    # Made beside and renamed into place: a process that looks at the same moment sees the
    # old link or the new one, never none.
    staged = f"{link}.{os.getpid()}.{threading.get_ident()}"
    os.symlink(target, staged)
    os.replace(staged, link)
    return link


def storage_options(uri: str) -> dict[str, str]:
    """Options for deltalake (delta-rs) to reach the same root."""
    if not is_s3(uri):
        return {}
    opts: dict[str, str] = {}
    endpoint = s3_endpoint()
    if endpoint:
        opts["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        if os.environ.get(k):
            opts[k] = os.environ[k]
    opts.setdefault("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    opts["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
    return opts


def engine_env() -> dict[str, str]:
    """AWS variables the embedded engine needs and the environment lacks: AWS_ALLOW_HTTP=true
    for an http:// endpoint (pyarrow and delta-rs take that from the endpoint's scheme)."""
    endpoint = s3_endpoint()
    if endpoint and endpoint.lower().startswith("http://") and not os.environ.get("AWS_ALLOW_HTTP"):
        return {"AWS_ALLOW_HTTP": "true"}
    return {}


class StoreUnreachableError(OSError):
    """The object store of a root cannot be reached; the message names the setting."""


def check_reachable(uri: str, setting: str) -> None:
    """StoreUnreachableError, naming `setting` and the endpoint, unless the store holding the
    root `uri` answers (a local root always does). An answer of "no such key" is an answer."""
    if not is_s3(uri):
        return
    fs, base = filesystem(uri)
    try:
        fs.get_file_info(base)
    except OSError as e:
        endpoint = s3_endpoint()
        where = (
            f"the S3 endpoint {endpoint} (AWS_ENDPOINT_URL)" if endpoint else "S3 (no endpoint set)"
        )
        detail = " ".join(str(e).split())[:300]
        raise StoreUnreachableError(
            f"{setting}={uri}: {where} cannot be reached or refused the request: {detail}"
        ) from None


def remove_tree(uri: str) -> None:
    """Remove a folder and everything under it; an absent folder is fine."""
    fs, base = filesystem(uri)
    try:
        fs.delete_dir(base)
    except (FileNotFoundError, OSError):
        pass


@dataclass(frozen=True)
class FileInfo:
    path: str  # full path inside the filesystem
    rel: str  # path relative to the listed folder
    size: int
    mtime_ns: int


def list_files(fs: pafs.FileSystem, base: str) -> list[FileInfo]:
    """Every file under base, recursively; an absent folder is empty."""
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        return []
    out = []
    for f in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
        if f.type != pafs.FileType.File:
            continue
        rel = f.path[len(base) :].lstrip("/")
        out.append(FileInfo(f.path, rel, f.size or 0, f.mtime_ns or 0))
    return sorted(out, key=lambda x: x.rel)


def all_exist(table_root: str, relative: list[str]) -> bool:
    """Every one of these data files of a table (paths relative to its root, as a Delta log
    holds them: URL-encoded) is there; one listing call for all."""
    from urllib.parse import unquote

    fs, base = filesystem(table_root)
    infos = fs.get_file_info([f"{base}/{unquote(p)}" for p in relative])
    return all(i.type == pafs.FileType.File for i in infos)
