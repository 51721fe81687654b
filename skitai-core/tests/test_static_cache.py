"""The static files' cache (skitai.static.cache) and directory snapshots (skitai.static.listing):
what a changed, deleted, replaced or re-linked file is answered with, within and after the
validity interval, and the cache's bounds. The clock is a test's own, so nothing sleeps."""
import os

import pytest

from skitai.static.cache import NOT_FOUND, CacheSettings, StaticCache
from skitai.static.listing import DirectoryListings

OLD = 1_700_000_000        # an mtime far in the past: the cache trusts it (see listing.is_racy)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def write(path, content, mtime=OLD):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    write(root / "a.txt", b"version one")
    write(root / "sub" / "index.html", b"<h1>sub</h1>")
    write(root / "big.bin", b"B" * 5000)
    (tmp_path / "outside").mkdir()
    write(tmp_path / "outside" / "secret.txt", b"SECRET")
    write(tmp_path / "outside" / "big.bin", b"S" * 5000)
    for directory in (root, root / "sub", tmp_path / "outside"):
        os.utime(directory, (OLD, OLD))
    return root


@pytest.fixture
def clock():
    return Clock()


def make_cache(root, clock, **settings):
    settings = {"valid": 1.0, "max_file_size": 1024, **settings}
    return StaticCache(str(root), CacheSettings(**settings), clock)


def answer(cache, path):
    """(code, body, etag) as the handler would answer: the body is the cached bytes, or what
    the descriptor a large file is sent from holds, None for an error."""
    entry = cache.lookup(path)
    if entry.code == 200 and entry.file.body is None:
        entry, file = cache.reopen(path, entry)
        if file is not None:
            with file:
                return entry.code, os.pread(file.fileno(), entry.file.size + 1, 0), entry.file.etag
    if entry.code != 200:
        return entry.code, None, None
    return entry.code, entry.file.body, entry.file.etag


def test_a_hit_within_the_interval_asks_the_disk_nothing(root, clock, monkeypatch):
    cache = make_cache(root, clock)
    assert answer(cache, "/a.txt")[1] == b"version one"
    assert cache.lookup("/sub/").file.body == b"<h1>sub</h1>"
    for name in ("stat", "lstat", "open", "scandir"):
        monkeypatch.setattr(os, name, lambda *args, _name=name, **kwargs: pytest.fail(f"os.{_name} called"))
    for _ in range(3):
        assert cache.lookup("/a.txt").code == 200 and cache.lookup("/sub/").directory


def test_a_changed_file_is_the_old_version_whole_until_checked_then_the_new(root, clock):
    cache = make_cache(root, clock)
    code, body, etag = answer(cache, "/a.txt")
    write(root / "a.txt", b"version two, longer", OLD + 5)
    assert answer(cache, "/a.txt") == (200, b"version one", etag)   # never the new length with old bytes
    clock.advance(1.0)
    code, body, new_etag = answer(cache, "/a.txt")
    assert body == b"version two, longer" and new_etag != etag
    assert cache.lookup("/a.txt").file.size == len(body)


def test_a_deleted_file_is_then_404_and_the_404_is_cached_briefly(root, clock):
    cache = make_cache(root, clock)
    assert answer(cache, "/a.txt")[0] == 200
    (root / "a.txt").unlink()
    assert answer(cache, "/a.txt")[:2] == (200, b"version one")
    clock.advance(1.0)
    assert answer(cache, "/a.txt")[0] == 404
    write(root / "a.txt", b"back again")     # within the 404's interval it is still missing
    assert answer(cache, "/a.txt")[0] == 404
    clock.advance(1.0)
    assert answer(cache, "/a.txt")[:2] == (200, b"back again")


def test_a_file_replaced_by_rename_is_served_after_the_interval(root, clock):
    cache = make_cache(root, clock)
    answer(cache, "/a.txt")
    write(root / "new.tmp", b"renamed over", OLD + 9)
    os.replace(root / "new.tmp", root / "a.txt")
    assert answer(cache, "/a.txt")[1] == b"version one"
    clock.advance(1.0)
    assert answer(cache, "/a.txt")[1] == b"renamed over"


def test_a_symlink_retargeted_out_of_the_root_stops_serving(root, clock):
    cache = make_cache(root, clock)
    (root / "link.txt").symlink_to(root / "a.txt")
    assert answer(cache, "/link.txt")[1] == b"version one"
    (root / "link.txt").unlink()
    (root / "link.txt").symlink_to(root.parent / "outside" / "secret.txt")
    clock.advance(1.0)
    assert answer(cache, "/link.txt")[0] == 404


def test_a_large_file_is_described_by_the_descriptor_it_is_sent_from(root, clock):
    cache = make_cache(root, clock)
    assert answer(cache, "/big.bin")[1] == b"B" * 5000
    write(root / "big.bin", b"C" * 7000, OLD + 3)              # rewritten in place, same inode
    code, body, etag = answer(cache, "/big.bin")               # within the interval: current anyway
    assert body == b"C" * 7000 and cache.lookup("/big.bin").file.size == 7000
    write(root / "big.tmp", b"D" * 6000, OLD + 4)
    os.replace(root / "big.tmp", root / "big.bin")             # another inode at the same path
    assert answer(cache, "/big.bin")[1] == b"D" * 6000


def test_a_directory_swapped_for_a_symlink_out_of_the_root_is_caught_on_open(root, clock):
    """Within the interval the resolved path is reused; the descriptor opened through it is
    another inode, which sends the path through the containment check again."""
    write(root / "d" / "big.bin", b"B" * 5000)
    cache = make_cache(root, clock)
    assert answer(cache, "/d/big.bin")[1] == b"B" * 5000
    os.rename(root / "d", root / "d-away")
    (root / "d").symlink_to(root.parent / "outside")
    code, body, _ = answer(cache, "/d/big.bin")
    assert code == 404 and body is None


def test_entries_are_bounded_in_count_and_memory(root, clock):
    for index in range(20):
        write(root / f"f{index}.txt", bytes([65 + index]) * 100)
    cache = make_cache(root, clock, max_entries=5, max_memory=350)
    for index in range(20):
        assert answer(cache, f"/f{index}.txt")[1] == bytes([65 + index]) * 100
        assert len(cache.entries) <= 5 and cache.memory <= 350
        assert cache.memory == sum(len(e.file.body) for e in cache.entries.values() if e.file and e.file.body)
    assert "/f19.txt" in cache.entries and "/f0.txt" not in cache.entries    # the oldest went first


def test_large_files_and_bodies_beyond_the_memory_bound_are_not_held(root, clock):
    cache = make_cache(root, clock, max_memory=5)
    assert cache.lookup("/big.bin").file.body is None          # above max_file_size
    assert cache.lookup("/a.txt").file.body is None            # 11 bytes > 5 bytes of memory
    assert answer(cache, "/a.txt")[1] == b"version one"        # still served, from the disk
    assert cache.memory == 0


def test_misses_known_without_the_disk_are_not_stored(root, clock):
    cache = make_cache(root, clock, max_entries=3)
    answer(cache, "/a.txt")
    for index in range(50):
        assert cache.lookup(f"/scan-{index}.php") is NOT_FOUND
        assert cache.lookup(f"/a.txt/../x{index}") is NOT_FOUND
    assert list(cache.entries) == ["/a.txt"]


def test_revalidation_moves_an_entry_to_the_young_end(root, clock):
    write(root / "b.txt", b"b")
    cache = make_cache(root, clock, max_entries=2)
    answer(cache, "/a.txt")
    answer(cache, "/b.txt")
    clock.advance(1.0)
    answer(cache, "/a.txt")                  # checked again: now the younger of the two
    write(root / "c.txt", b"c")
    clock.advance(1.0)
    answer(cache, "/c.txt")
    assert set(cache.entries) == {"/a.txt", "/c.txt"}


def test_valid_zero_checks_every_request(root, clock):
    cache = make_cache(root, clock, valid=0.0)
    assert answer(cache, "/a.txt")[1] == b"version one"
    write(root / "a.txt", b"edited", OLD + 1)
    assert answer(cache, "/a.txt")[1] == b"edited"
    (root / "a.txt").unlink()
    assert answer(cache, "/a.txt")[0] == 404
    assert cache.entries == {}


# directory snapshots
def test_a_name_missing_from_a_snapshot_needs_no_filesystem_call(root, clock, monkeypatch):
    listings = DirectoryListings(60.0, 16, 100, clock)
    assert listings.may_exist(str(root), ["a.txt"]) and listings.may_exist(str(root), ["sub", "index.html"])
    monkeypatch.setattr(os, "stat", lambda *a, **k: pytest.fail("stat called"))
    monkeypatch.setattr(os, "scandir", lambda *a, **k: pytest.fail("scandir called"))
    assert not listings.may_exist(str(root), ["api", "users", "42"])
    assert not listings.may_exist(str(root), ["sub", "missing.html"])


def test_a_snapshot_sees_a_new_name_after_the_interval(root, clock):
    listings = DirectoryListings(1.0, 16, 100, clock)
    assert not listings.may_exist(str(root), ["new.txt"])
    write(root / "new.txt", b"x")
    os.utime(root, (OLD + 1, OLD + 1))            # as creating a name in it does
    assert not listings.may_exist(str(root), ["new.txt"])
    clock.advance(1.0)
    assert listings.may_exist(str(root), ["new.txt"])


def test_a_snapshot_of_a_recently_changed_directory_is_read_again_not_trusted(tmp_path, clock):
    """A name created in the same timestamp tick as the snapshot leaves the directory's mtime
    as it was: a snapshot taken while the mtime was recent is re-read at every check."""
    directory = tmp_path / "fresh"
    directory.mkdir()
    listings = DirectoryListings(1.0, 16, 100, clock)
    assert not listings.may_exist(str(directory), ["late.txt"])
    stamp = os.stat(directory).st_mtime_ns
    (directory / "late.txt").write_bytes(b"x")
    os.utime(directory, ns=(stamp, stamp))        # the same tick
    clock.advance(1.0)
    assert listings.may_exist(str(directory), ["late.txt"])


def test_snapshots_are_bounded_in_directories_and_in_names_all_together(root, clock):
    for index in range(10):
        write(root / f"dir{index}" / "a.txt", b"a")
        write(root / f"dir{index}" / "b.txt", b"b")
    listings = DirectoryListings(60.0, 4, 13, clock)       # the root holds 13 names
    for index in range(10):
        listings.may_exist(str(root), [f"dir{index}", "x"])
        assert len(listings.snapshots) <= 4 and listings.names_held <= 13
        assert listings.names_held == sum(len(snap.names or ()) for snap in listings.snapshots.values())
    small = DirectoryListings(60.0, 4, 5, clock)
    assert small.names(str(root)) is None                  # more names than may be held: not known
    assert small.may_exist(str(root), ["anything"])


def test_names_are_compared_as_a_case_insensitive_filesystem_would(root, clock):
    """Never missing by the snapshot when such a filesystem would find the file: the lookup
    that follows decides (on a case-sensitive one it is a 404 there)."""
    write(root / "Caf\u00e9.txt", b"x")
    listings = DirectoryListings(60.0, 16, 100, clock)
    assert listings.may_exist(str(root), ["A.TXT"]) and listings.may_exist(str(root), ["cafe\u0301.TXT"])
    assert not listings.may_exist(str(root), ["b.txt"])
