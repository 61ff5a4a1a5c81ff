"""Downloading against a local HTTP server: resume, verification, safe extraction, offline message."""
import hashlib
import io
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from course_utils.data import download_dataset, safe_extract
from course_utils.data.mini_wiki import build_mini_wiki


@pytest.fixture(scope="module")
def archive_bytes(tmp_path_factory):
    """A small mini-wiki archive, served as if it were wiki_crop.tar."""
    folder = tmp_path_factory.mktemp("archive")
    return build_mini_wiki(folder, n_entries=40, seed=5, workers=1, progress=False).read_bytes()


class RangeHandler(BaseHTTPRequestHandler):
    """Serves ``server.payload``; honours Range; can cut the first full transfer half way."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        data = server.payload
        requested = self.headers.get("Range")
        server.ranges.append(requested)
        start = int(requested.split("=")[1].split("-")[0]) if requested else 0
        body = data[start:]
        self.send_response(206 if requested else 200)
        if requested:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_next_transfer:
            server.cut_next_transfer = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # drop the connection mid-transfer
            self.close_connection = True
            return
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the deliberately dropped connection is expected


@pytest.fixture
def server(archive_bytes):
    httpd = QuietServer(("127.0.0.1", 0), RangeHandler)
    httpd.payload = archive_bytes
    httpd.ranges = []
    httpd.cut_next_transfer = False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def leftovers(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_cut_off_download_resumes_with_range(tmp_path, server, archive_bytes):
    server.cut_next_transfer = True
    digest = hashlib.sha256(archive_bytes).hexdigest()
    folder = download_dataset("wiki", root=tmp_path, progress=False, base_url=server.url, sha256=digest)
    assert folder == tmp_path / "wiki" / "wiki_crop"
    assert (folder / "wiki.mat").exists() and len(list(folder.glob("*/*.jpg"))) > 20
    assert server.ranges[0] is None
    half = len(archive_bytes) // 2
    assert server.ranges[1] == f"bytes={half}-"
    assert (tmp_path / "wiki" / "wiki_crop.tar").read_bytes() == archive_bytes
    assert not (tmp_path / "wiki" / "wiki_crop.tar.part").exists()


def test_partial_file_from_an_earlier_session_is_resumed(tmp_path, server, archive_bytes):
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "wiki_crop.tar.part").write_bytes(archive_bytes[:1000])
    download_dataset("wiki", root=tmp_path, progress=False, base_url=server.url)
    assert server.ranges == ["bytes=1000-"]
    assert (tmp_path / "wiki" / "wiki_crop.tar").read_bytes() == archive_bytes


def test_corrupted_download_is_refused_and_nothing_extracted(tmp_path, server, archive_bytes):
    digest = hashlib.sha256(archive_bytes).hexdigest()
    corrupted = bytearray(archive_bytes)
    corrupted[len(corrupted) // 3] ^= 0xFF
    server.payload = bytes(corrupted)
    with pytest.raises(RuntimeError, match="SHA-256"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url=server.url, sha256=digest)
    assert leftovers(tmp_path) == ["wiki"]


def test_wrong_size_is_refused(tmp_path, server, archive_bytes):
    with pytest.raises(RuntimeError, match="expected"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url=server.url,
                         expected_size=len(archive_bytes) + 10)
    assert leftovers(tmp_path) == ["wiki"]


def malicious_tar(kind):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name, data=b"x", **fields):
            info = tarfile.TarInfo(name)
            info.size = len(data) if not fields else 0
            for key, value in fields.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if not fields else None)
        add("wiki_crop/wiki.mat")  # a harmless member first: must not be left behind either
        if kind == "dotdot":
            add("wiki_crop/../../evil.txt")
        elif kind == "absolute":
            add("/tmp/evil_absolute_course_test.txt")
        elif kind == "symlink":
            add("wiki_crop/link", type=tarfile.SYMTYPE, linkname="../../../etc")
        elif kind == "hardlink":
            add("wiki_crop/hard", type=tarfile.LNKTYPE, linkname="../outside.txt")
        elif kind == "device":
            add("wiki_crop/dev", type=tarfile.CHRTYPE)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_malicious_archive_is_refused_and_nothing_extracted(tmp_path, kind):
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "wiki_crop.tar").write_bytes(malicious_tar(kind))
    with pytest.raises(RuntimeError, match="refusing"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url="http://127.0.0.1:9")
    assert leftovers(tmp_path) == ["wiki", "wiki/wiki_crop.tar"]


def test_malicious_archive_served_over_http_is_refused(tmp_path, server):
    server.payload = malicious_tar("symlink")
    with pytest.raises(RuntimeError, match="links outside"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url=server.url)
    assert not (tmp_path / "wiki" / "wiki_crop").exists()


def test_safe_extract_accepts_a_clean_archive(tmp_path, archive_bytes):
    archive = tmp_path / "a.tar"
    archive.write_bytes(archive_bytes)
    safe_extract(archive, tmp_path / "out", expected_folder="wiki_crop")
    assert (tmp_path / "out" / "wiki_crop" / "wiki.mat").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["wiki_crop"]


def test_offline_error_says_what_to_download_and_where(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RuntimeError) as error:
        download_dataset("imdb", root=tmp_path, progress=False, base_url=f"http://127.0.0.1:{port}/static")
    message = str(error.value)
    assert f"http://127.0.0.1:{port}/static/imdb_crop.tar" in message
    assert str(tmp_path / "imdb" / "imdb_crop.tar") in message
    assert "FACE_AGING_DATASET=mini-wiki" in message


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset"):
        download_dataset("faces-of-mars")
