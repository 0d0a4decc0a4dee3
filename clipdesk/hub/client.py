"""A small client of the model hub's public HTTP interface, on the standard library.

It knows files and HTTP, nothing of CLIP. What it relies on (docs/catalog.md, "The download client"):
- `HEAD {endpoint}/{repo}/resolve/{revision}/{path}` answers 200 for small files (with `ETag`, the git blob
  id) and a redirect to a CDN for large ones; either way with `X-Repo-Commit`, and for large (LFS) files
  `X-Linked-Etag` (their SHA-256) and `X-Linked-Size`. A 404 says why in `X-Error-Code`.
- `GET` on the same URL follows the redirect to the file, and honours `Range`.

Why not huggingface_hub: it resumes only within one process, never checks SHA-256, and brings a compiled
transfer client. Here a download is kept as `NAME.part` beside its target: a new process, after a kill,
a crash or a night asleep, asks for the rest with `Range: bytes=N-`, and the finished file is refused
unless its SHA-256 matches the pinned one, or failing that the one the hub announces.
Proxies come from the usual variables (`https_proxy`, `no_proxy`, ...), through urllib's ProxyHandler.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from clipdesk import __version__
from clipdesk.errors import ClipdeskError, is_disk_full
from clipdesk.progress import Progress

DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 1 << 18  # bytes a read: progress and cancel checks come this often
TIMEOUT_S = 30.0
RETRIES = 4  # a dropped connection mid-file is resumed in-process this many times before giving up
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_OID = re.compile(r"^[0-9a-f]{40}$")


class HubError(ClipdeskError):
    """The hub could not be reached, or refused, or sent bytes that are not the file asked for."""


class DownloadCancelled(ClipdeskError):
    """The user cancelled; the partial file is kept so that the next try resumes it."""


def hub_endpoint() -> str:
    """The public hub, or the mirror (or test stand-in) that HF_ENDPOINT names."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@dataclass(frozen=True)
class RemoteFile:
    repo: str
    revision: str
    path: str
    url: str
    size: int | None
    sha256: str | None  # announced by the hub for LFS files
    git_oid: str | None  # announced for small files: sha1 of "blob {size}\0" + content
    commit: str | None


def git_blob_oid(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def partial_path(target: Path) -> Path:
    """Where a download of `target` collects until it is complete and verified."""
    return target.with_name(target.name + ".part")


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """HEAD requests stop at the first redirect: its headers carry the file's hash and size."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _strip_quotes(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower() or None


class HubClient:
    def __init__(self, endpoint: str | None = None, timeout: float = TIMEOUT_S):
        self.endpoint = (endpoint or hub_endpoint()).rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener()
        self._head_opener = urllib.request.build_opener(_KeepRedirects())
        self._headers = {"User-Agent": f"clipdesk/{__version__}"}
        self._token = os.environ.get("HF_TOKEN") or None  # gated repositories; sent to the hub only (_request)

    def resolve_url(self, repo: str, revision: str, path: str) -> str:
        return (f"{self.endpoint}/{urllib.parse.quote(repo, safe='/')}/resolve/"
                f"{urllib.parse.quote(revision, safe='')}/{urllib.parse.quote(path, safe='/')}")

    def _request(self, url: str, method: str, headers: dict[str, str] | None = None) -> urllib.request.Request:
        request = urllib.request.Request(url, method=method, headers={**self._headers, **(headers or {})})
        if self._token and url.startswith(self.endpoint + "/"):
            request.add_unredirected_header("Authorization", f"Bearer {self._token}")
        return request

    def file_info(self, repo: str, revision: str, path: str) -> RemoteFile:
        """What the hub says of one file: its size and hash, and the commit the revision points at."""
        url = self.resolve_url(repo, revision, path)
        for _ in range(5):  # relative redirects stay on the hub (a renamed repository)
            try:
                response = self._head_opener.open(self._request(url, "HEAD"), timeout=self.timeout)
                headers, status = response.headers, response.status
                response.close()
            except urllib.error.HTTPError as error:
                headers, status = error.headers, error.code
                if not 300 <= status < 400:
                    raise self._refusal(error, repo, revision, path) from None
            except (urllib.error.URLError, OSError) as error:
                raise self._unreachable(error) from None
            location = headers.get("Location")
            if 300 <= status < 400 and location and not headers.get("X-Linked-Etag") and \
                    not urllib.parse.urlsplit(location).netloc:
                url = urllib.parse.urljoin(url, location)
                continue
            break
        size = headers.get("X-Linked-Size") or (headers.get("Content-Length") if status == 200 else None)
        linked = _strip_quotes(headers.get("X-Linked-Etag"))
        etag = _strip_quotes(headers.get("ETag"))
        # LFS files announce their SHA-256 in X-Linked-Etag (on the redirect) or, answered directly (some
        # mirrors), as their ETag; small files' ETag is their git blob id.
        announced = linked or etag
        return RemoteFile(
            repo=repo, revision=revision, path=path, url=url,
            size=int(size) if size and size.isdigit() else None,
            sha256=announced if announced and _SHA256.match(announced) else None,
            git_oid=etag if not linked and etag and _GIT_OID.match(etag) else None,
            commit=headers.get("X-Repo-Commit"),
        )

    def list_folder(self, repo: str, revision: str, folder: str) -> list[RemoteFile]:
        """The files directly inside `folder` of the repository, with sizes and hashes, from the hub's API
        (`GET /api/models/{repo}/revision/{revision}?blobs=true`)."""
        url = (f"{self.endpoint}/api/models/{urllib.parse.quote(repo, safe='/')}/revision/"
               f"{urllib.parse.quote(revision, safe='')}?blobs=true")
        try:
            with self._opener.open(self._request(url, "GET"), timeout=self.timeout) as response:
                data = json.loads(response.read(64 << 20))
        except urllib.error.HTTPError as error:
            raise self._refusal(error, repo, revision, folder) from None
        except (urllib.error.URLError, OSError) as error:
            raise self._unreachable(error) from None
        except ValueError:
            raise HubError(f"the model hub sent an unreadable file list for {repo}") from None
        found = []
        for sibling in data.get("siblings", []) if isinstance(data, dict) else []:
            name = sibling.get("rfilename") if isinstance(sibling, dict) else None
            if not isinstance(name, str) or name.rpartition("/")[0] != folder.strip("/"):
                continue
            lfs = sibling.get("lfs") or {}
            size = lfs.get("size", sibling.get("size"))
            sha = lfs.get("sha256") if isinstance(lfs.get("sha256"), str) else None
            oid = sibling.get("blobId") if not sha and isinstance(sibling.get("blobId"), str) else None
            found.append(RemoteFile(repo, revision, name, self.resolve_url(repo, revision, name),
                                    size if isinstance(size, int) else None,
                                    sha if sha and _SHA256.match(sha) else None,
                                    oid if oid and _GIT_OID.match(oid) else None, data.get("sha")))
        if not found:
            raise HubError(f"repository {repo!r} has no files in {folder!r} at revision {revision!r}")
        return found

    def _refusal(self, error: urllib.error.HTTPError, repo: str, revision: str, path: str) -> HubError:
        code = error.headers.get("X-Error-Code", "") if error.headers else ""
        where = self.endpoint
        if error.code == 404 and code == "RepoNotFound":
            return HubError(f"the model hub ({where}) has no repository {repo!r} (or it is private)")
        if error.code == 404 and code == "RevisionNotFound":
            return HubError(f"repository {repo!r} has no revision {revision!r} on the model hub ({where})")
        if error.code == 404:
            return HubError(f"repository {repo!r} has no file {path!r} at revision {revision!r} ({where})")
        if error.code in (401, 403):
            return HubError(f"the model hub refused {repo}/{path} ({error.code}): the repository is gated or "
                            "private; accept its terms on the hub and set HF_TOKEN")
        return HubError(f"the model hub answered {error.code} {error.reason} for {repo}/{path}; try again later")

    def _unreachable(self, error: BaseException) -> HubError:
        reason = getattr(error, "reason", error)
        return HubError(f"cannot reach the model hub at {self.endpoint} ({reason}); check the internet "
                        "connection or the proxy settings (https_proxy), then run the same command again")

    def download(self, remote: RemoteFile, target: Path, *, expected_sha256: str | None = None,
                 progress: Progress | None = None, done_before: int = 0, total: int | None = None) -> str:
        """Fetch `remote` into `target` through `target.part`, resuming what an earlier try left there.

        Returns the file's SHA-256. Refuses (and deletes) a file whose size or hash differs from what the
        catalog pins (`expected_sha256`) and the hub announces. `progress.update(done_before + bytes,
        total)` reports bytes as they arrive; `progress.cancelled` stops the transfer (DownloadCancelled,
        the partial file kept).
        """
        progress = progress or Progress()
        if expected_sha256 and remote.sha256 and expected_sha256 != remote.sha256:
            raise HubError(f"{remote.repo}/{remote.path}: the hub now serves another file than the catalog pins "
                           f"(SHA-256 {remote.sha256[:12]}…, expected {expected_sha256[:12]}…); refused")
        target.parent.mkdir(parents=True, exist_ok=True)
        part = partial_path(target)
        digest = hashlib.sha256()
        have = _hash_existing(part, digest, remote.size)
        failures = 0
        while remote.size is None or have < remote.size:
            if progress.cancelled:
                raise DownloadCancelled(f"download of {remote.path} cancelled; {have:,} bytes kept to resume")
            try:
                have, finished = self._transfer(remote, part, have, digest, progress, done_before, total)
                if finished:
                    break
            except DownloadCancelled:
                raise
            except _RestartFromZero:
                digest, have = hashlib.sha256(), 0
                part.unlink(missing_ok=True)
            except (urllib.error.URLError, OSError, TimeoutError, socket.timeout) as error:
                if isinstance(error, urllib.error.HTTPError):
                    raise self._refusal(error, remote.repo, remote.revision, remote.path) from None
                if is_disk_full(error):
                    raise HubError(f"the disk is full while writing {part}: free some space, then run the same "
                                   f"command again to resume ({have:,} bytes kept)") from None
                failures += 1
                if failures > RETRIES:
                    raise self._unreachable(error) from None
                time.sleep(min(2.0 ** failures, 10.0) * 0.25)
                digest = hashlib.sha256()  # the failed transfer fed it bytes `have` does not count: start over
                have = _hash_existing(part, digest, remote.size)
        actual = digest.hexdigest()
        size = part.stat().st_size
        problem = None
        if remote.size is not None and size != remote.size:
            problem = f"{size:,} bytes where the hub announced {remote.size:,}"
        elif expected_sha256 and actual != expected_sha256:
            problem = f"SHA-256 {actual[:12]}… where the catalog pins {expected_sha256[:12]}…"
        elif remote.sha256 and actual != remote.sha256:
            problem = f"SHA-256 {actual[:12]}… where the hub announced {remote.sha256[:12]}…"
        elif not expected_sha256 and not remote.sha256 and remote.git_oid and git_blob_oid(part) != remote.git_oid:
            problem = f"git blob id differs from the hub's {remote.git_oid[:12]}…"
        if problem:
            part.unlink(missing_ok=True)
            raise HubError(f"{remote.repo}/{remote.path}: the downloaded file is not the published one ({problem}); "
                           "refused and deleted")
        os.replace(part, target)
        return actual

    def _transfer(self, remote: RemoteFile, part: Path, have: int, digest, progress: Progress,
                  done_before: int, total: int | None) -> tuple[int, bool]:
        """One GET from byte `have` on; returns the new byte count and whether the file is complete."""
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            response = self._opener.open(self._request(remote.url, "GET", headers), timeout=self.timeout)
        except urllib.error.HTTPError as error:
            if error.code == 416 and have and remote.size == have:
                return have, True
            if error.code == 416:
                raise _RestartFromZero() from None
            raise
        with response:
            if have and response.status != 206:
                raise _RestartFromZero()  # the server ignored the Range: start over rather than append twice
            if have and not _content_range_starts_at(response.headers.get("Content-Range"), have):
                raise _RestartFromZero()
            with open(part, "ab") as sink:
                while True:
                    if progress.cancelled:
                        raise DownloadCancelled(f"download of {remote.path} cancelled; "
                                                f"{have:,} bytes kept to resume")
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    if remote.size is not None and have + len(chunk) > remote.size:
                        raise HubError(f"{remote.repo}/{remote.path}: the server sent more than the announced "
                                       f"{remote.size:,} bytes; refused")
                    sink.write(chunk)
                    digest.update(chunk)
                    have += len(chunk)
                    progress.update(done_before + have, total)
        return have, remote.size is None or have >= remote.size


class _RestartFromZero(Exception):
    pass


def _content_range_starts_at(value: str | None, start: int) -> bool:
    match = re.match(r"bytes (\d+)-", value or "")
    return bool(match) and int(match.group(1)) == start


def _hash_existing(part: Path, digest, size: int | None) -> int:
    """Feed an earlier try's bytes to the digest; a part longer than the file is discarded."""
    if not part.exists():
        return 0
    if size is not None and part.stat().st_size > size:
        part.unlink()
        return 0
    have = 0
    with open(part, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
            have += len(chunk)
    return have
