"""Tests of `lit_gan.data.download` against a local HTTP server serving tiny generated archives (no internet)."""

import functools
import io
import os
import re
import socket
import tarfile
import threading
import time
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from lit_gan.data import download
from lit_gan.data.download import DATASETS, DatasetDownloadError, dataset_names, dataset_url, ensure_dataset

# layout -> (a dataset name, its folders, archive path on the server)
CASES = {
    "unaligned": ("horse2zebra", ("trainA", "trainB", "testA", "testB"), "cyclegan/datasets/horse2zebra.zip"),
    "aligned": ("edges2shoes", ("train", "val"), "pix2pix/datasets/edges2shoes.tar.gz"),
}


class _Handler(SimpleHTTPRequestHandler):
    """Serves files; records requests; `server.interrupted` paths promise more bytes than they send."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        time.sleep(self.server.delay)
        if self.path in self.server.interrupted:
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"PK\x03\x04 only a few bytes")
            return
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(download.CACHE_ENV, raising=False)
    monkeypatch.delenv(download.URL_ENV, raising=False)


@pytest.fixture
def server(tmp_path):
    """A local server of `tmp_path / "www"`; its URL is `server.url`."""
    (tmp_path / "www").mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(tmp_path / "www")))
    httpd.requests, httpd.interrupted, httpd.delay, httpd.www = [], set(), 0.0, tmp_path / "www"
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 40 % 256, 80, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def _members(name: str, folders: tuple[str, ...], n: int = 2) -> dict[str, bytes]:
    return {f"{name}/{folder}/{i}.png": _png(i) for folder in folders for i in range(n)}


def _write_archive(path: Path, members: dict[str, bytes]) -> Path:
    """A zip or tar.gz (by suffix) holding `members` (archive name -> bytes), names kept as given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for member, data in members.items():
                zf.writestr(member, data)
        return path
    with tarfile.open(path, "w:gz") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _publish(server, layout: str, members: dict[str, bytes] | None = None) -> tuple[str, tuple[str, ...]]:
    name, folders, rel = CASES[layout]
    _write_archive(server.www / rel, _members(name, folders) if members is None else members)
    return name, folders


def _leftovers(cache: Path) -> list[str]:
    """Everything in the cache besides complete dataset folders' contents: temp files, locks, partial folders."""
    return sorted(str(p.relative_to(cache)) for p in cache.glob("*/*")) if cache.exists() else []


@pytest.mark.parametrize("layout", CASES)
def test_download_and_extract(tmp_path, server, layout):
    name, folders = _publish(server, layout)
    root = ensure_dataset(name, layout, tmp_path / "cache", base_url=server.url)
    assert root == tmp_path / "cache" / download.GROUPS[layout] / name
    assert sorted(p.name for p in root.iterdir()) == sorted(folders)
    assert sorted(p.name for p in (root / folders[0]).iterdir()) == ["0.png", "1.png"]
    assert _leftovers(tmp_path / "cache") == [f"{download.GROUPS[layout]}/{name}"]  # no .part, temp, lock


def test_second_call_makes_no_request(tmp_path, server):
    name, _ = _publish(server, "unaligned")
    first = ensure_dataset(name, "unaligned", tmp_path / "cache", base_url=server.url)
    assert ensure_dataset(name, "unaligned", tmp_path / "cache", base_url="http://127.0.0.1:9") == first
    assert len(server.requests) == 1


def test_cache_and_server_from_environment(tmp_path, server, monkeypatch):
    name, _ = _publish(server, "aligned")
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "env_cache"))
    monkeypatch.setenv(download.URL_ENV, server.url + "/")
    assert ensure_dataset(name, "aligned") == tmp_path / "env_cache" / "pix2pix" / name
    monkeypatch.delenv(download.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.dataset_dir(name, "aligned") == tmp_path / "home/.cache/lit_gan/datasets/pix2pix" / name


@pytest.mark.parametrize("key", sorted(DATASETS))
def test_registry_urls(key):
    name, layout = key
    suffix = {"unaligned": "zip", "aligned": "tar.gz", "domains": "zip"}[layout]
    path = f"/{download.GROUPS[layout]}/datasets/{name}.{suffix}"
    server = "https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=1" if name == "afhq" else download.SERVER + path
    assert dataset_url(name, layout) == server
    assert dataset_url(name, layout, "https://mirror.example/x/") == "https://mirror.example/x" + path


def test_registry_catalogue_and_duplicates():
    assert {"horse2zebra", "facades", "maps", "mini"} <= set(dataset_names("unaligned"))
    assert {"edges2shoes", "night2day", "facades", "maps"} <= set(dataset_names("aligned"))
    with pytest.raises(ValueError, match="already registered"):
        download.register_dataset("facades", "aligned", "http://x/facades.tar.gz")


def test_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="unknown cyclegan.*'horse3zebra'.*Valid names:.*apple2orange, cezanne2photo"):
        ensure_dataset("horse3zebra", "unaligned", tmp_path)


@pytest.mark.parametrize(
    ("name", "layout", "other"), [("edges2shoes", "unaligned", "aligned"), ("horse2zebra", "aligned", "unaligned")]
)
def test_wrong_layout_hint(tmp_path, name, layout, other):
    with pytest.raises(ValueError, match=f"{name} is a .* dataset: set data.mode: {other}"):
        ensure_dataset(name, layout, tmp_path)


def test_unreachable_server_explains_manual_install(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    with pytest.raises(DatasetDownloadError) as info:
        ensure_dataset("horse2zebra", "unaligned", tmp_path / "cache", base_url=f"http://127.0.0.1:{port}")
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/cyclegan/datasets/horse2zebra.zip" in message
    assert str(tmp_path / "cache" / "cyclegan" / "horse2zebra" / "trainA") in message and "data.root" in message
    assert _leftovers(tmp_path / "cache") == []


def test_interrupted_transfer_leaves_nothing_and_retry_works(tmp_path, server):
    name, _ = _publish(server, "unaligned")
    server.interrupted.add("/" + CASES["unaligned"][2])
    with pytest.raises(DatasetDownloadError, match="interrupted after 21 of 100000 bytes"):
        ensure_dataset(name, "unaligned", tmp_path / "cache", base_url=server.url)
    assert _leftovers(tmp_path / "cache") == []
    server.interrupted.clear()
    assert (ensure_dataset(name, "unaligned", tmp_path / "cache", base_url=server.url) / "trainB" / "1.png").is_file()


@pytest.mark.parametrize("layout", CASES)
def test_truncated_archive_is_refused(tmp_path, server, layout):
    name, _ = _publish(server, layout)
    archive = server.www / CASES[layout][2]
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetDownloadError, match="bad archive"):
        ensure_dataset(name, layout, tmp_path / "cache", base_url=server.url)
    assert _leftovers(tmp_path / "cache") == []


@pytest.mark.parametrize("layout", CASES)
@pytest.mark.parametrize("evil", ["../evil.png", "/tmp/lit_gan_evil.png"])
def test_path_traversal_is_refused(tmp_path, server, layout, evil):
    name, folders = CASES[layout][:2]
    _publish(server, layout, {**_members(name, folders), evil: b"x"})
    with pytest.raises(DatasetDownloadError, match=f"unsafe archive member '{re.escape(evil)}'"):
        ensure_dataset(name, layout, tmp_path / "cache", base_url=server.url)
    assert _leftovers(tmp_path / "cache") == [] and not (tmp_path / "cache" / "cyclegan" / "evil.png").exists()
    assert not Path("/tmp/lit_gan_evil.png").exists()


def test_missing_domain_is_named(tmp_path, server):
    _publish(server, "unaligned", _members("horse2zebra", ("trainA", "testA", "testB")))
    with pytest.raises(DatasetDownloadError, match="lacks trainB.*horse2zebra/ holds testA, testB, trainA"):
        ensure_dataset("horse2zebra", "unaligned", tmp_path / "cache", base_url=server.url)
    assert _leftovers(tmp_path / "cache") == []


def test_flat_archive_is_accepted(tmp_path, server):
    _publish(server, "aligned", {"train/0.png": _png(0), "val/0.png": _png(1)})
    assert (ensure_dataset("edges2shoes", "aligned", tmp_path / "cache", base_url=server.url) / "val/0.png").is_file()


def test_stale_temp_files_and_lock_are_removed(tmp_path, server):
    name, _ = _publish(server, "unaligned")
    group = tmp_path / "cache" / "cyclegan"
    (group / f".{name}.abc.extract" / name / "trainA").mkdir(parents=True)
    (group / f".{name}.def.part").write_bytes(b"partial")
    lock = group / f".{name}.lock"
    lock.touch()
    old = time.time() - download.STALE_LOCK_S - 10
    os.utime(lock, (old, old))
    ensure_dataset(name, "unaligned", tmp_path / "cache", base_url=server.url)
    assert _leftovers(tmp_path / "cache") == [f"cyclegan/{name}"]


def test_incomplete_existing_folder_is_not_overwritten(tmp_path, server):
    name, _ = _publish(server, "unaligned")
    (tmp_path / "cache" / "cyclegan" / name / "trainA").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="lacks trainA or trainB; delete it"):
        ensure_dataset(name, "unaligned", tmp_path / "cache", base_url=server.url)
    assert server.requests == []


def test_concurrent_calls_download_once(tmp_path, server, monkeypatch):
    name, _ = _publish(server, "unaligned")
    server.delay = 0.2  # keeps the first download in flight while the second call starts
    monkeypatch.setattr(download, "LOCK_POLL_S", 0.02)
    results = []

    def fetch() -> None:
        results.append(ensure_dataset(name, "unaligned", tmp_path / "cache", base_url=server.url))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 2 and results[0] == results[1] and len(server.requests) == 1
    assert _leftovers(tmp_path / "cache") == [f"cyclegan/{name}"]
