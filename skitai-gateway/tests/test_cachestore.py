"""cachefs's tiers: the memory tier's LRU bound, and the disk tier's files, which are written
whole, bounded in bytes across processes, and deleted instead of served when damaged."""
import multiprocessing
import os

from skitai_gateway.cachepolicy import Entry, Response
from skitai_gateway.cachestore import EVICT_TO, DiskTier, MemoryTier


def make_entry(body=b"x" * 1000, tag="1"):
    return Entry(Response(200, "OK", (("Content-Type", "application/octet-stream"), ("X-Tag", tag)), body),
                 100.0, 101.0, (("accept", "application/json"),))


def test_memory_tier_drops_the_least_recently_used():
    one = make_entry()
    memory = MemoryTier(one.size() * 2)
    memory.put("a", one)
    memory.put("b", one)
    assert memory.get("a") is one  # a is now the most recent
    memory.put("c", one)
    assert memory.get("b") is None and memory.get("a") is one and memory.get("c") is one
    assert memory.size == one.size() * 2
    memory.put("huge", make_entry(b"x" * one.size() * 3))
    assert memory.get("huge") is None and memory.size == one.size() * 2


def test_disk_tier_round_trip(tmp_path):
    disk = DiskTier(str(tmp_path), 1_000_000)
    stored = make_entry()
    disk.put("GET http://a/x", stored)
    assert disk.get("GET http://a/x") == stored
    assert disk.get("GET http://a/y") is None
    assert os.listdir(tmp_path / "tmp") == []  # nothing left of the temporary file


def damage_is_dropped(tmp_path, damage):
    disk = DiskTier(str(tmp_path), 1_000_000)
    disk.put("GET http://a/x", make_entry())
    filename = disk.file_for("GET http://a/x")
    with open(filename, "r+b") as file:
        damage(file)
    assert disk.get("GET http://a/x") is None
    assert not os.path.exists(filename)
    assert disk._usage() == 0


def test_a_truncated_file_is_dropped(tmp_path):
    damage_is_dropped(tmp_path, lambda file: file.truncate(os.fstat(file.fileno()).st_size - 10))


def test_a_corrupt_file_is_dropped(tmp_path):
    def flip_a_body_byte(file):
        file.seek(-5, os.SEEK_END)
        byte = file.read(1)
        file.seek(-5, os.SEEK_END)
        file.write(bytes([byte[0] ^ 0xFF]))
    damage_is_dropped(tmp_path, flip_a_body_byte)


def test_a_file_of_another_format_is_dropped(tmp_path):
    damage_is_dropped(tmp_path, lambda file: (file.seek(0), file.write(b"HTTP/1.1 200 OK\r\n")))


def test_an_emptied_file_is_dropped(tmp_path):
    damage_is_dropped(tmp_path, lambda file: file.truncate(0))


def test_a_file_for_another_key_is_not_served(tmp_path):
    disk = DiskTier(str(tmp_path), 1_000_000)
    disk.put("GET http://a/x", make_entry())
    os.makedirs(os.path.dirname(disk.file_for("GET http://a/y")), exist_ok=True)
    os.replace(disk.file_for("GET http://a/x"), disk.file_for("GET http://a/y"))
    assert disk.get("GET http://a/y") is None


def test_disk_tier_stays_within_its_size(tmp_path):
    one = len(open_entry_bytes(tmp_path))
    disk = DiskTier(str(tmp_path / "cache"), one * 5)
    for number in range(12):
        disk.put(f"GET http://a/{number}", make_entry())
        assert disk._usage() <= one * 5
    kept = [number for number in range(12) if disk.get(f"GET http://a/{number}") is not None]
    assert kept[-1] == 11 and 0 not in kept  # the newest stay, the oldest went
    assert len(kept) <= int(5 * EVICT_TO) + 1
    assert disk._usage() == sum(os.path.getsize(disk.file_for(f"GET http://a/{n}")) for n in kept)


def test_an_eviction_deletes_abandoned_temporary_files(tmp_path):
    one = len(open_entry_bytes(tmp_path))
    disk = DiskTier(str(tmp_path / "cache"), one * 2)
    abandoned, recent = tmp_path / "cache" / "tmp" / "abandoned", tmp_path / "cache" / "tmp" / "recent"
    abandoned.write_bytes(b"half")
    recent.write_bytes(b"being written")
    os.utime(abandoned, (1, 1))
    for number in range(3):  # the third passes the bound
        disk.put(f"GET http://a/{number}", make_entry())
    assert not abandoned.exists() and recent.exists()


def test_a_lost_count_is_recounted(tmp_path):
    disk = DiskTier(str(tmp_path), 1_000_000)
    disk.put("GET http://a/x", make_entry())
    size = os.path.getsize(disk.file_for("GET http://a/x"))
    os.unlink(tmp_path / "usage")
    assert disk._usage() == size


def open_entry_bytes(tmp_path):
    from skitai_gateway.cachestore import encode
    return encode("GET http://a/0", make_entry())


def _writer(path, worker, count, maxsize):
    disk = DiskTier(path, maxsize)
    for number in range(count):
        disk.put(f"GET http://a/{worker}-{number % 7}", make_entry(tag=str(number)))


def test_processes_writing_at_once_keep_the_bound_and_whole_files(tmp_path):
    one = len(open_entry_bytes(tmp_path))
    path = str(tmp_path / "cache")
    DiskTier(path, one * 8)
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(path, worker, 40, one * 8)) for worker in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    disk = DiskTier(path, one * 8)
    sizes = [size for _, size, _ in disk._files()]
    assert sum(sizes) <= one * 8 and disk._usage() == sum(sizes)
    for worker in range(3):
        for number in range(7):
            found = disk.get(f"GET http://a/{worker}-{number}")
            assert found is None or found.response.body == make_entry().response.body
