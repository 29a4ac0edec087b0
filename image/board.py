#!/usr/bin/env python3
"""Build-time helper: read boards/<id>.toml (tomllib), print what build-image.sh needs as
shell assignments, or compute a module load order. The device's /init never parses TOML."""
import lzma, os, re, shlex, sys, tomllib

def board(path):
    with open(path, "rb") as f:
        b = tomllib.load(f)
    q = shlex.quote
    out = {
        "B_ID": b["id"], "B_TARGET": b["target"], "B_KPKG": b["kernel"]["package"],
        "B_FLAVOUR": b["kernel"]["flavour"], "B_CMDLINE": b["kernel"]["cmdline"],
        "B_DTBS": " ".join(b["kernel"]["dtbs"]), "B_METHOD": b["boot"]["method"],
        "B_FILES": " ".join(b["boot"]["files"]), "B_MODULES": " ".join(b["modules"]),
        "B_LED": b["status_led"], "B_WATCHDOG": b["watchdog"],
        "B_SHIPPABLE": "1" if b["supported"] else "0",
    }
    for k, v in out.items():
        print(f"{k}={q(v)}")

def nics(path):
    """One line per NIC for /init: role name driver,driver,... device-path-glob"""
    with open(path, "rb") as f:
        b = tomllib.load(f)
    for n in b["nics"]:
        print(n["role"], n["name"], ",".join(n["drivers"]), n["device_path"])

def norm(n):
    return n.replace("-", "_")

def closure(moddir, names):
    """Modules to insmod, dependencies first, from the .modinfo 'depends=' of each .ko."""
    index, builtin = {}, set()
    for line in open(os.path.join(moddir, "modules.builtin")):
        builtin.add(norm(os.path.basename(line.strip()).split(".ko")[0]))
    for root, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if ".ko" in f:
                index[norm(f.split(".ko")[0])] = os.path.join(root, f)
    order, seen = [], set()
    def visit(n):
        n = norm(n)
        if n in seen:
            return
        seen.add(n)
        if n in builtin:
            return
        if n not in index:
            sys.exit(f"module {n}: neither a .ko in {moddir} nor built in")
        data = open(index[n], "rb").read()
        if index[n].endswith(".xz"):
            data = lzma.decompress(data)
        m = re.search(rb"\0depends=([^\0]*)\0", data)
        for d in (m.group(1).decode().split(",") if m and m.group(1) else []):
            visit(d)
        order.append(os.path.relpath(index[n], moddir))
    for n in names:
        visit(n)
    print("\n".join(order))

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "board": board(sys.argv[2])
    elif cmd == "nics": nics(sys.argv[2])
    elif cmd == "closure": closure(sys.argv[2], sys.argv[3:])
