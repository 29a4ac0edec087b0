#!/usr/bin/env python3
"""Write a reproducible newc cpio of a directory: sorted paths, uid/gid 0, one mtime
(SOURCE_DATE_EPOCH), no inode or device numbers from the build machine."""
import os, stat, sys

def entry(out, name, mode, data, ino, mtime):
    nb = name.encode() + b"\0"
    hdr = "070701" + "".join(f"{v:08x}" for v in (
        ino, mode, 0, 0, 1, mtime, len(data), 0, 0, 0, 0, len(nb), 0))
    out.write(hdr.encode() + nb)
    out.write(b"\0" * ((4 - (110 + len(nb)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))

def main(src, dst, mtime):
    paths = []
    for root, dirs, files in os.walk(src):
        for n in dirs + files:
            paths.append(os.path.relpath(os.path.join(root, n), src))
    with open(dst, "wb") as out:
        for i, p in enumerate(sorted(paths), 1):
            full = os.path.join(src, p)
            st = os.lstat(full)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                mode, data = stat.S_IFLNK | 0o777, os.readlink(full).encode()
            elif stat.S_ISDIR(st.st_mode):
                mode, data = stat.S_IFDIR | perm, b""
            else:
                mode, data = stat.S_IFREG | perm, open(full, "rb").read()
            entry(out, p, mode, data, i, mtime)
        entry(out, "TRAILER!!!", 0, b"", 0, 0)

main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
