"""What checking that a stage is up to date costs: content digests of a model-sized folder.

A stage records the content of every file and folder it read (``ilf.reads``), so a rerun that
finds everything up to date hashes them again, unless the digest cache knows the file: it keys each
file's sha256 on (size, mtime, ctime, inode, device), in memory and in SQLite across processes.
The workload is a folder of ``--files`` files of ``--mib`` MiB in all (a checkpoint's shards, say).
All variants run in this process, in this order:

- cold: no cache (a first run): every byte hashed;
- SQLite cache: a new process's first check (the in-memory cache emptied, the SQLite one kept);
- in-memory cache: the same process checking again (every stage of a study's cells);
- one shard rewritten with its size and mtime kept (``cp -p``, ``rsync -a``): only that file is
  hashed again, and the digest changes.

Rates are MiB checked per second.

    python benchmarks/up_to_date.py [--mib 512] [--files 4] [--out table.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Table, emit  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512, help="Size of the folder in MiB.")
    parser.add_argument("--files", type=int, default=4, help="Files it is split into.")
    parser.add_argument("--out", help="Also write the table to this file.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ILF_CACHE_DIR"] = str(Path(tmp) / "cache")  # before ilf.reads opens its cache
        from ilf import reads

        folder = Path(tmp) / "model"
        folder.mkdir()
        size = args.mib * 2**20 // args.files
        for i in range(args.files):
            (folder / f"shard-{i}.bin").write_bytes(os.urandom(size))
        table = Table(f"Up-to-date checks of a {args.mib} MiB folder in {args.files} files", "MiB/s")
        digests = {}

        def check(variant: str) -> int:
            digests[variant] = reads.content_digest(folder)
            return args.mib

        table.measure("cold", lambda: check("cold"))
        reads._MEMO.clear()  # a new process: only SQLite remembers
        table.measure("SQLite cache", lambda: check("sqlite"))
        table.measure("in-memory cache", lambda: check("memory"))
        shard = folder / "shard-0.bin"
        stat = shard.stat()
        data = bytearray(shard.read_bytes())
        data[0] ^= 0xFF
        shard.write_bytes(bytes(data))
        os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        table.measure("one shard rewritten, size and mtime kept", lambda: check("edited"), note="rehashes that shard only")
        assert digests["cold"] == digests["sqlite"] == digests["memory"] != digests["edited"]

    header = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {date.today().isoformat()}"
    emit(f"{header}\n\n{table.render('cold')}\n\nThe digest changed after the edit: yes.", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
