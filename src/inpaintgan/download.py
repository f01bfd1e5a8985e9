"""Downloading and unpacking dataset files and model weights, with checksums.

One place for the network: :func:`download_url` streams a URL (``https://``, ``http://`` or ``file://``)
into a temporary file next to the destination, verifies its SHA-256 / MD5 while it streams, and only
then renames it into place (``os.replace``, atomic on one filesystem), so an interrupted or corrupt
download never leaves a file that looks complete. Offline machines get an error naming the URL and
the path to put the file at by hand.

The MD5 sums published with CIFAR-10 (Krizhevsky, 2009) and Fashion-MNIST (Xiao et al., 2017) are
checked as published; MD5 is used only to detect corruption, not for security (hence
``usedforsecurity=False``).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from tqdm.auto import tqdm

CHUNK = 1 << 20  # 1 MiB reads
TIMEOUT_S = 60.0


class DownloadError(OSError):
    """A URL could not be fetched (offline, HTTP error, missing file): the message says where to
    place the file by hand."""


def cache_dir() -> Path:
    """``$INPAINTGAN_CACHE`` if set (and not empty), else ``~/.cache/inpaintgan``. Not created here."""
    env = os.environ.get("INPAINTGAN_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "inpaintgan"


def _hashers(sha256: str | None, md5: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if sha256:
        out["sha256"] = hashlib.sha256()
    if md5:
        out["md5"] = hashlib.md5(usedforsecurity=False)
    return out


def _check_digests(what: str, hashers: dict[str, Any], sha256: str | None, md5: str | None) -> None:
    """Raise ``ValueError`` naming the algorithm, expected and actual digest on the first mismatch."""
    expected = {"sha256": sha256, "md5": md5}
    for name, h in hashers.items():
        want = expected[name].strip().lower()
        got = h.hexdigest()
        if got != want:
            raise ValueError(
                f"{name} checksum mismatch for {what}: expected {want}, got {got} "
                "(the file is corrupt, truncated, or not the expected version)"
            )


def verify_checksum(path: str | Path, sha256: str | None = None, md5: str | None = None) -> None:
    """Check a file's SHA-256 and/or MD5 (hex); ``ValueError`` naming expected/actual on mismatch.

    With neither checksum given there is nothing to check and this only asserts the file exists.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot verify checksum: file not found: {path}")
    hashers = _hashers(sha256, md5)
    if not hashers:
        return
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    _check_digests(str(path), hashers, sha256, md5)


def _file_name(url: str) -> str:
    name = PurePosixPath(unquote(urlparse(url).path)).name
    if not name:
        raise ValueError(f"cannot tell a file name from the URL {url!r}; pass a destination file path")
    return name


def download_url(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to the file ``dest`` (or into ``dest`` if it is an existing folder) and return
    its path.

    The bytes go to a temporary ``.part`` file in the destination folder, hashed as they arrive; on a
    checksum mismatch the temporary file is deleted and ``ValueError`` says expected vs actual; on
    success it is renamed into place atomically. An existing ``dest`` whose checksums match (or any
    existing ``dest`` when no checksum is given) is returned without downloading again.
    Network failures raise :class:`DownloadError` naming the URL and where to put the file by hand.
    """
    dest = Path(dest).expanduser()
    if dest.is_dir():
        dest = dest / _file_name(url)
    if dest.is_file():
        try:
            verify_checksum(dest, sha256=sha256, md5=md5)
            return dest
        except ValueError:
            pass  # stale or corrupt: download again, replacing it only once the new copy verifies
    dest.parent.mkdir(parents=True, exist_ok=True)
    hashers = _hashers(sha256, md5)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise DownloadError(
                    f"could not download {url}: {reason}. If this machine is offline, fetch that URL "
                    f"elsewhere and place the file at {dest}"
                ) from e
            with response:
                total = response.headers.get("Content-Length")
                bar = tqdm(
                    total=int(total) if total and total.isdigit() else None,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                    leave=False,
                )
                with bar:
                    try:
                        while chunk := response.read(CHUNK):
                            out.write(chunk)
                            for h in hashers.values():
                                h.update(chunk)
                            bar.update(len(chunk))
                    except OSError as e:  # connection dropped mid-way
                        raise DownloadError(
                            f"download of {url} was interrupted: {e}. Try again, or fetch it "
                            f"elsewhere and place the file at {dest}"
                        ) from e
        _check_digests(url, hashers, sha256, md5)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _is_within(base: Path, target: Path) -> bool:
    try:
        target.resolve().relative_to(base.resolve())
        return True
    except ValueError:
        return False


def extract_archive(path: str | Path, dest: str | Path) -> Path:
    """Unpack a tar archive (``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``) into ``dest``
    and return ``dest``. Members that would land outside ``dest`` (absolute paths, ``..``, links
    pointing out) are refused with ``ValueError``."""
    path, dest = Path(path), Path(dest)
    if not path.is_file():
        raise FileNotFoundError(f"archive not found: {path}")
    if not tarfile.is_tarfile(path):
        raise ValueError(f"{path} is not a tar archive (expected .tar, .tar.gz, .tgz, .tar.bz2 or .tar.xz)")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "r:*") as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12: the standard safe filter
            try:
                tar.extractall(dest, filter="data")
            except tarfile.FilterError as e:
                raise ValueError(f"unsafe member in archive {path}: {e}") from e
        else:  # pragma: no cover - older Pythons
            for member in tar.getmembers():
                target = dest / member.name
                if not _is_within(dest, target) or member.isdev():
                    raise ValueError(f"unsafe member in archive {path}: {member.name!r}")
                if (member.issym() or member.islnk()) and not _is_within(
                    dest, target.parent / member.linkname
                ):
                    raise ValueError(f"unsafe link in archive {path}: {member.name!r} -> {member.linkname!r}")
            tar.extractall(dest)
    return dest


__all__ = ["DownloadError", "cache_dir", "download_url", "extract_archive", "verify_checksum"]
