"""Downloading against a local HTTP server: resume, verification, safe extraction, offline message."""
import hashlib
import io
import socket
import tarfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import served_on_localhost

from course_utils.data import download_dataset, safe_extract
from course_utils.data.download import CorruptArchive
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
    with served_on_localhost(httpd):
        yield httpd


def leftovers(root):
    """What is under ``root``, less download_dataset's lock file (a lock file stays between runs)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != "wiki.lock")


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


# ---------------------------------------------------------------- links, broken transfers, stuck states

def tar_of(members):
    """A tar from (name, kind, linkname_or_data) triples; kind is 'dir', 'file' or 'sym'."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
                tar.addfile(info)
            else:
                info.size = len(extra)
                tar.addfile(info, io.BytesIO(extra))
    return buffer.getvalue()


def test_chained_symlinks_are_refused_and_nothing_is_written_outside(tmp_path):
    # Each link looks harmless on its own text; together they lead to /etc.
    archive = tmp_path / "a.tar"
    archive.write_bytes(tar_of([
        ("wiki_crop/a/b/c", "dir", None),
        ("wiki_crop/a/b/c/u", "sym", "../../../.."),
        ("wiki_crop/esc", "sym", "a/b/c/u/../../../../etc"),
        ("wiki_crop/esc/course_test_evil", "file", b"pwned"),
    ]))
    with pytest.raises(RuntimeError, match="refusing"):
        safe_extract(archive, tmp_path / "out", expected_folder="wiki_crop")
    assert leftovers(tmp_path) == ["a.tar", "out"]


def test_long_symlink_chain_cannot_overwrite_a_file_outside(tmp_path):
    # The CVE-2025-4517 shape: long directory names and a chain of links whose
    # resolved path exceeds PATH_MAX, ending in a link to a file outside the target.
    outside = tmp_path / "outside.txt"
    outside.write_text("original")
    target = tmp_path / "deep" / "er" / "out"
    component = "d" * 247
    members, path = [], "wiki_crop"
    for step in "abcdefghijklmnop":
        members.append((f"{path}/{component}", "dir", None))
        members.append((f"{path}/{step}", "sym", component))
        path = f"{path}/{component}"
    chain = "wiki_crop/" + "/".join("abcdefghijklmnop") + "/" + "l" * 254
    members.append((chain, "sym", "../" * 16))
    members.append(("wiki_crop/escape", "sym", f"{chain}/../../../outside.txt"))
    members.append(("wiki_crop/escape", "file", b"overwritten"))
    archive = tmp_path / "chain.tar"
    archive.write_bytes(tar_of(members))
    with pytest.raises(RuntimeError, match="links to"):
        safe_extract(archive, target, expected_folder="wiki_crop")
    assert outside.read_text() == "original"
    assert list(target.iterdir()) == []


def test_archives_that_are_not_tars_or_hold_no_expected_folder_are_corrupt(tmp_path):
    for name, data in [("zeros.tar", bytes(20480)), ("html.tar", b"<html><body>Not found</body></html>"),
                       ("other.tar", tar_of([("imdb_crop/x.jpg", "file", b"x")]))]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CorruptArchive):
            safe_extract(tmp_path / name, tmp_path / "out", expected_folder="wiki_crop")
    assert list((tmp_path / "out").iterdir()) == []


class FlakyHandler(BaseHTTPRequestHandler):
    """Serves ``server.payload`` with Range and 416 like a real server; can hide the size or cut transfers."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        server, data = self.server, self.server.payload
        requested = self.headers.get("Range")
        server.ranges.append(requested)
        start = int(requested.split("=")[1].split("-")[0]) if requested else 0
        if start >= len(data) and requested:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if requested else 200)
        if requested:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if server.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: server.cut_at] if server.cut_at else body)
        self.wfile.flush()
        if server.cut_at:
            self.connection.shutdown(socket.SHUT_RDWR)  # close at a tar boundary / mid-transfer
        self.close_connection = True


@pytest.fixture
def flaky(archive_bytes):
    httpd = QuietServer(("127.0.0.1", 0), FlakyHandler)
    httpd.payload, httpd.ranges, httpd.send_length, httpd.cut_at = archive_bytes, [], True, None
    httpd.timeout = 5
    with served_on_localhost(httpd, poll_interval=0.05):
        yield httpd


def tar_member_boundary(data):
    """Byte offset just after the third member of a tar (a place a short read could stop cleanly)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    return members[3].offset


def test_transfer_without_content_length_that_stops_early_is_not_accepted(tmp_path, flaky, archive_bytes):
    flaky.send_length, flaky.cut_at = False, tar_member_boundary(archive_bytes)
    with pytest.raises(RuntimeError, match="without its size"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert not (tmp_path / "wiki" / "wiki_crop.tar").exists()
    assert not (tmp_path / "wiki" / "wiki_crop").exists()


def test_transfer_that_always_stops_early_grows_the_part_until_complete(tmp_path, flaky, archive_bytes):
    flaky.cut_at = len(archive_bytes) // 12 + 1
    part = tmp_path / "wiki" / "wiki_crop.tar.part"
    sizes = []
    for _ in range(2):
        with pytest.raises(RuntimeError, match="kept and the next run resumes it"):
            download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
        sizes.append(part.stat().st_size)
    assert 0 < sizes[0] < sizes[1] < len(archive_bytes)
    assert part.read_bytes() == archive_bytes[:sizes[1]]
    folder = download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert (folder / "wiki.mat").exists()
    assert (tmp_path / "wiki" / "wiki_crop.tar").read_bytes() == archive_bytes
    assert not part.exists()


def test_complete_part_left_behind_is_finished_without_a_416_loop(tmp_path, flaky, archive_bytes):
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "wiki_crop.tar.part").write_bytes(archive_bytes)
    folder = download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert (folder / "wiki.mat").exists()
    assert flaky.ranges == [f"bytes={len(archive_bytes)}-"]  # one request, answered 416 with the size
    assert leftovers(tmp_path / "wiki")[0] == "wiki_crop"
    assert not (tmp_path / "wiki" / "wiki_crop.tar.part").exists()


def test_part_of_zeros_is_moved_aside_and_fetched_again(tmp_path, flaky, archive_bytes, capsys):
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "wiki_crop.tar.part").write_bytes(bytes(len(archive_bytes)))
    folder = download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert (folder / "wiki.mat").exists()
    aside = tmp_path / "wiki" / "wiki_crop.tar.bad-1"
    assert aside.read_bytes() == bytes(len(archive_bytes)) and str(aside) in capsys.readouterr().out


def test_html_archive_on_disk_is_moved_aside_named_and_fetched_again(tmp_path, flaky, archive_bytes, capsys):
    (tmp_path / "wiki").mkdir()
    html = b"<!DOCTYPE html><html><body>Please log in</body></html>"
    (tmp_path / "wiki" / "wiki_crop.tar").write_bytes(html)
    folder = download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert (folder / "wiki.mat").exists()
    assert (tmp_path / "wiki" / "wiki_crop.tar").read_bytes() == archive_bytes
    aside = tmp_path / "wiki" / "wiki_crop.tar.bad-1"
    assert aside.read_bytes() == html
    out = capsys.readouterr().out
    assert str(tmp_path / "wiki" / "wiki_crop.tar") in out and str(aside) in out


def test_a_broken_archive_from_the_server_is_an_error_naming_it(tmp_path, flaky):
    flaky.payload = b"<html>maintenance</html>" * 50
    with pytest.raises(CorruptArchive, match="wiki_crop.tar.bad-2"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert not (tmp_path / "wiki" / "wiki_crop").exists()


# ---------------------------------------------------------------- disk bombs, odd names, leftovers, planted links

def size_on_disk(root):
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


class Zeros(io.RawIOBase):
    """``size`` zero bytes, read without holding them in memory."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def compressed_tar_bomb(kind, unpacked=200 << 20):
    """A wiki_crop tar holding ``unpacked`` bytes of zeros, compressed with gzip or xz (a few hundred KB)."""
    import gzip
    import lzma

    buffer = io.BytesIO()
    stream = gzip.GzipFile(fileobj=buffer, mode="wb") if kind == "gzip" else lzma.LZMAFile(buffer, "wb", preset=0)
    with stream, tarfile.open(fileobj=stream, mode="w|") as tar:
        info = tarfile.TarInfo("wiki_crop/wiki.mat")
        info.size = unpacked
        tar.addfile(info, Zeros(unpacked))
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["gzip", "xz"])
def test_a_compressed_stream_named_wiki_crop_tar_is_refused_never_unpacked(tmp_path, flaky, kind):
    flaky.payload = compressed_tar_bomb(kind)
    assert len(flaky.payload) < 1 << 20
    with pytest.raises(CorruptArchive, match=rf"{kind}-compressed stream, not a plain tar"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert not (tmp_path / "wiki" / "wiki_crop").exists()
    assert size_on_disk(tmp_path) < 4 * len(flaky.payload)  # the two refused downloads, kept aside; nothing else


class HugeLengthHandler(BaseHTTPRequestHandler):
    """Announces a terabyte, then sends a few bytes."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10 ** 12))
        self.end_headers()
        self.wfile.write(b"\0" * 4096)
        self.close_connection = True


def test_a_huge_content_length_is_refused_before_anything_is_written(tmp_path):
    httpd = QuietServer(("127.0.0.1", 0), HugeLengthHandler)
    with served_on_localhost(httpd, poll_interval=0.05):
        with pytest.raises(RuntimeError, match=r"is 1000\.00 GB, more than the 2\.15 GB this file can be"):
            download_dataset("wiki", root=tmp_path, progress=False, base_url=httpd.url)
    assert leftovers(tmp_path) == ["wiki"]


def fake_free_disk(monkeypatch, free):
    """shutil.disk_usage reports ``free`` bytes free (filling a real disk would take too long)."""
    import shutil

    real = shutil.disk_usage

    def disk_usage(path):
        usage = real(path)
        return type(usage)(usage.total, usage.total - free, free)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)


def test_an_archive_larger_than_the_free_disk_is_not_downloaded(tmp_path, flaky, archive_bytes, monkeypatch):
    from course_utils.data.download import DISK_MARGIN_BYTES, NotEnoughDisk

    fake_free_disk(monkeypatch, DISK_MARGIN_BYTES + len(archive_bytes) // 2)
    with pytest.raises(NotEnoughDisk, match="make room"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert leftovers(tmp_path) == ["wiki"]


def test_an_archive_whose_files_exceed_the_free_disk_is_not_extracted_and_kept(tmp_path, archive_bytes, monkeypatch):
    from course_utils.data.download import DISK_MARGIN_BYTES, NotEnoughDisk

    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "wiki_crop.tar").write_bytes(archive_bytes)
    fake_free_disk(monkeypatch, DISK_MARGIN_BYTES + len(archive_bytes) // 2)
    with pytest.raises(NotEnoughDisk, match=r"extracting .*wiki_crop\.tar needs"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url="http://127.0.0.1:9")
    assert leftovers(tmp_path) == ["wiki", "wiki/wiki_crop.tar"]  # kept: nothing is wrong with it


def odd_archive(kind):
    if kind == "long name":
        return tar_of([("wiki_crop/" + "n" * 200 + "/" * 1 + "x" * 9790, "file", b"x")])
    if kind == "5000 folders deep":
        return tar_of([("wiki_crop/" + "d/" * 5000 + "x.jpg", "file", b"x")])
    return tar_of([("wiki_crop", "file", b"not a folder")])  # a file where the folder must be


@pytest.mark.parametrize("kind", ["long name", "5000 folders deep", "file named wiki_crop"])
def test_an_archive_with_odd_member_names_is_named_moved_aside_and_fetched_again(tmp_path, flaky, kind, capsys):
    (tmp_path / "wiki").mkdir()
    odd = odd_archive(kind)
    (tmp_path / "wiki" / "wiki_crop.tar").write_bytes(odd)
    folder = download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert (folder / "wiki.mat").is_file()
    assert (tmp_path / "wiki" / "wiki_crop.tar.bad-1").read_bytes() == odd
    out = capsys.readouterr().out
    assert "archive member" in out and "this is not the expected archive" in out and len(out) < 2000


def test_staging_left_by_a_killed_run_is_removed_by_the_next(tmp_path, flaky):
    home = tmp_path / "wiki"
    (home / ".extracting-k1ll3d" / "wiki_crop").mkdir(parents=True)
    (home / ".extracting-k1ll3d" / "wiki_crop" / "half.jpg").write_bytes(b"x" * 1000)
    (home / ".wiki_crop.tar.k1ll3d.tmp").write_bytes(b"x" * 1000)
    download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert not (home / ".extracting-k1ll3d").exists() and not (home / ".wiki_crop.tar.k1ll3d.tmp").exists()
    assert [p.name for p in home.iterdir() if p.name.startswith(".")] == []


def test_a_planted_link_at_the_part_file_is_never_written_through(tmp_path, flaky):
    victim = tmp_path / "victim.txt"
    victim.write_text("a file the learner can write")
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "wiki_crop.tar.part").symlink_to(victim)
    with pytest.raises(RuntimeError, match="symbolic link"):
        download_dataset("wiki", root=tmp_path, progress=False, base_url=flaky.url)
    assert victim.read_text() == "a file the learner can write"
