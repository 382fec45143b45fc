"""A real multi-threaded Python workload for the enforcement tests.

    workload.py          4 threads each write a file under /tmp, read it back and checksum it;
                         then a child interpreter (subprocess) does the same for one file.
    workload.py mkdir    the same, then os.mkdir("/tmp/extra"): a syscall the traced run
                         never made; prints the errno's name and exits 3 when it is refused.

The output is the same bytes on every run. A thread that cannot be started prints the error
to stderr and the program exits 2.
"""

import errno
import os
import subprocess
import sys
import threading
import zlib

THREADS = 4
BLOCKS = 16
BLOCK = 4096

CHILD = """
import os, zlib
path = "/tmp/py-child.dat"
with open(path, "wb") as f:
    f.write(bytes((99 * 131 + i * 7) & 0xFF for i in range(65536)))
with open(path, "rb") as f:
    data = f.read()
os.unlink(path)
print("child: %d bytes crc32 %08x" % (len(data), zlib.crc32(data)))
"""


def file_work(seed, results, index):
    path = "/tmp/py-thread-%d.dat" % index
    with open(path, "wb") as f:
        for b in range(BLOCKS):
            f.write(bytes((seed * 131 + b * 31 + i * 7) & 0xFF for i in range(BLOCK)))
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    results[index] = (len(data), zlib.crc32(data))


def main():
    extra_mkdir = sys.argv[1:] == ["mkdir"]
    if sys.argv[1:] and not extra_mkdir:
        print("usage: workload.py [mkdir]", file=sys.stderr)
        return 64
    results = [None] * THREADS
    threads = []
    for i in range(THREADS):
        t = threading.Thread(target=file_work, args=(i + 1, results, i))
        try:
            t.start()
        except RuntimeError as e:
            print("threading.Thread.start: %s" % e, file=sys.stderr)
            return 2
        threads.append(t)
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        if r is None:
            print("thread %d: no result" % i, file=sys.stderr)
            return 1
        print("thread %d: %d bytes crc32 %08x" % (i, r[0], r[1]))
    print("threads: %d joined" % THREADS)
    sys.stdout.flush()

    child = subprocess.run(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, check=False
    )
    if child.returncode != 0:
        print("child failed: %d" % child.returncode, file=sys.stderr)
        return 1
    sys.stdout.write(child.stdout.decode())

    if extra_mkdir:
        try:
            os.mkdir("/tmp/extra")
        except OSError as e:
            print("mkdir: %s" % errno.errorcode.get(e.errno, str(e.errno)))
            return 3
        print("mkdir: ok")
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
