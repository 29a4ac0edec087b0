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

def closure(moddir, depfile, names):
    """Modules to insmod, dependencies first, from the .modinfo 'depends=' of each .ko;
    writes depmod's modules.dep format (every dependency, transitively, uncompressed names)
    to depfile: Debian's package leaves modules.dep to depmod at install time."""
    index, builtin = {}, set()
    for line in open(os.path.join(moddir, "modules.builtin")):
        builtin.add(norm(os.path.basename(line.strip()).split(".ko")[0]))
    for root, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if ".ko" in f:
                index[norm(f.split(".ko")[0])] = os.path.join(root, f)
    order, seen, deps = [], set(), {}
    def visit(n):
        n = norm(n)
        if n in seen:
            return deps.get(n, [])
        seen.add(n)
        if n in builtin:
            return []
        if n not in index:
            sys.exit(f"module {n}: neither a .ko in {moddir} nor built in")
        data = open(index[n], "rb").read()
        if index[n].endswith(".xz"):
            data = lzma.decompress(data)
        m = re.search(rb"\0depends=([^\0]*)\0", data)
        mine = []
        for d in (m.group(1).decode().split(",") if m and m.group(1) else []):
            for x in visit(d) + [norm(d)]:
                if x in index and x not in builtin and x not in mine:
                    mine.append(x)
        deps[n] = mine
        order.append(os.path.relpath(index[n], moddir))
        return mine
    for n in names:
        visit(n)
    print("\n".join(order))
    ko = lambda n: os.path.relpath(index[n], moddir).removesuffix(".xz")
    with open(depfile, "w") as f:
        for path in order:
            n = norm(os.path.basename(path).split(".ko")[0])
            f.write(f"{ko(n)}:{''.join(' ' + ko(d) for d in reversed(deps[n]))}\n")

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "board": board(sys.argv[2])
    elif cmd == "nics": nics(sys.argv[2])
    elif cmd == "closure": closure(sys.argv[2], sys.argv[3], sys.argv[4:])
