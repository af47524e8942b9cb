#!/usr/bin/env bash
# The layering rule (docs/ARCHITECTURE.md), checked mechanically.
#
# Stages, lowest first: common (0) < preload/core (1) < preload/hot (2) <
# preload/record (3) < preload/interpret (4) < preload/sinks (5) <
# preload/process (6).  A file includes ("x.h") only headers of its own
# folder or of a lower rank; common/ only common/; exporter/ and cli/ only
# their own folder and common/.  Includes are written by basename, so a
# header's basename is unique across common/, preload/*/, exporter/, cli/.
# A declaration is held to the same rule: a header (or .c) may not declare a
# function or variable that only a folder it may not include defines.
# Generated protobuf headers (*.pb-c.h) and <system> headers are outside it.
# No file of preload/ or common/ declares a weak symbol.
#
# Every header of preload/ opens with a comment (its first bytes are "/*")
# whose block, up to the first "*/", holds the three labels "Owns:" (what
# state or contract the module owns), "Threads:" (which threads run it)
# and "May not:" (what it must never do), spelt exactly so, colon
# included; a header without them is reported at its line 1.
#
# The files are discovered, never listed.  Then, so that the check cannot
# pass by looking at nothing, wrong includes and a wrong declaration are
# planted in copies of the sources and each must be reported at the line
# it was planted on: a header's opening removed, and one label struck from
# another's, are planted the same way.
#
# usage: layering.sh SOURCE_ROOT
set -uo pipefail
top=$(cd "${1:-$(dirname "$0")/..}" && pwd)

check() {
    ELMON_TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" python3 - "$1" <<'PY'
import os, re, sys

root = sys.argv[1]
STAGES = ["core", "hot", "record", "interpret", "sinks", "process"]
RANK = {"common": 0}
RANK.update({"preload/" + s: i + 1 for i, s in enumerate(STAGES)})
SIDES = ("exporter", "cli")   # no rank: their own folder and common/ only

violations = []
def bad(msg):
    violations.append(msg)

# ---- discovery ----
files = {}          # relative path -> folder
for top in ("common", "preload") + SIDES:
    base = os.path.join(root, top)
    if not os.path.isdir(base):
        if top in ("common", "preload"):
            bad(f"{top}/: missing")
        continue
    for d, subdirs, names in os.walk(base):
        subdirs.sort()
        for n in sorted(names):
            if not n.endswith((".c", ".h")) or n.endswith(".pb-c.h") or n.endswith(".pb-c.c"):
                continue
            rel = os.path.relpath(os.path.join(d, n), root)
            parts = rel.split(os.sep)
            if top == "preload":
                if len(parts) != 3 or parts[1] not in STAGES:
                    bad(f"{rel}: not in a stage folder of preload/ ({', '.join(STAGES)})")
                    continue
                files[rel] = "preload/" + parts[1]
            else:
                files[rel] = top

def rank_str(folder):
    return str(RANK[folder]) if folder in RANK else "-"

def allowed(frm, to):
    if frm == to or to == "common":
        return True
    return frm.startswith("preload/") and to.startswith("preload/") and RANK[to] < RANK[frm]

# ---- a rough C reader (tests/csource.py) ----
sys.path.insert(0, os.environ["ELMON_TESTS_DIR"])
from csource import strip

def line_of(text, pos):
    return text.count("\n", 0, pos) + 1

text = {}
for rel in files:
    with open(os.path.join(root, rel), errors="replace") as f:
        text[rel] = f.read()

# ---- unique header basenames ----
def order(rel):   # lowest stage first; exporter/ and cli/ after preload/
    return (RANK.get(files[rel], len(RANK)), rel)
headers = {}
for rel in sorted(files, key=order):
    if rel.endswith(".h"):
        headers.setdefault(os.path.basename(rel), []).append(rel)
for b, paths in sorted(headers.items()):
    for p in paths[1:]:
        bad(f"{p}:1: header basename {b} is also {paths[0]} (includes are by basename: one of them is shadowed)")

# ---- includes ----
n_includes = 0
inc_re = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)
for rel in sorted(files):
    src = strip(text[rel], blank_strings=False)
    frm = files[rel]
    for m in inc_re.finditer(src):
        name = m.group(1)
        ln = line_of(src, m.start())
        if name.endswith(".pb-c.h"):
            continue
        n_includes += 1
        if "/" in name:
            bad(f"{rel}:{ln}: includes {name} by path (includes are written by basename)")
            continue
        if name not in headers:
            bad(f"{rel}:{ln}: includes {name}, a header of none of common/, preload/*/, exporter/, cli/")
            continue
        # A duplicated basename is reported above; here it passes if any copy may be included.
        if any(allowed(frm, files[h]) for h in headers[name]):
            continue
        to = files[headers[name][0]]
        bad(f"{rel}:{ln}: includes {name} (stage {to}, rank {rank_str(to)}) "
            f"from stage {frm} (rank {rank_str(frm)})")

# ---- no weak symbols: every hook and sink is named in process/pipeline.c,
# so a module left out is a link error, never a silent skip ----
weak_re = re.compile(r'__attribute__\s*\(\(\s*(?:__)?weak(?:__)?\b|^[ \t]*#[ \t]*pragma[ \t]+weak\b', re.M)
for rel in sorted(files):
    if not (rel.startswith("preload/") or rel.startswith("common/")):
        continue
    src = strip(text[rel], blank_strings=True)
    for m in weak_re.finditer(src):
        bad(f"{rel}:{line_of(src, m.start())}: a weak symbol (name the hook in process/pipeline.c instead)")

# ---- every preload/ header opens with what it owns, its threads, and what
# it may not do ----
OPENING = ("Owns:", "Threads:", "May not:")
n_openings = 0
for rel in sorted(files):
    if not (rel.startswith("preload/") and rel.endswith(".h")):
        continue
    n_openings += 1
    t = text[rel]
    if not t.startswith("/*"):
        bad(f"{rel}:1: does not open with a comment saying {', '.join(OPENING)}")
        continue
    end = t.find("*/")
    block = t[:end] if end >= 0 else t
    missing = [w for w in OPENING if w not in block]
    if missing:
        bad(f"{rel}:1: opening comment lacks {', '.join(missing)} (it must say {', '.join(OPENING)})")
if not n_openings:
    bad("preload/: no header found to check the opening comment of")

# ---- declarations: top-level prototypes and externs vs. where they are defined ----
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "__attribute__", "defined"}
def top_level(src):
    """(statement text, start offset) of each depth-0 statement; bodies and
    initialisers collapse to '{}', preprocessor lines are dropped."""
    src = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", lambda m: re.sub(r"[^\n]", " ", m.group(0)), src, flags=re.M)
    stmts, depth, cur, start = [], 0, [], None
    for i, c in enumerate(src):
        if depth == 0 and start is None and not c.isspace():
            start = i
        if c == "{":
            if depth == 0:
                cur.append("{")
            depth += 1
            continue
        if c == "}":
            depth -= 1
            if depth == 0:
                cur.append("}")
                s = "".join(cur)
                # a function body ends the statement; an initialiser does not
                if re.search(r"\)\s*(?:__attribute__\s*\(\(.*?\)\)\s*)*\{\}$", s, re.S):
                    stmts.append((s, start)); cur, start = [], None
            continue
        if depth:
            continue
        if c == ";":
            stmts.append(("".join(cur) + ";", start)); cur, start = [], None
        else:
            cur.append(c)
    return stmts

def strip_attrs(s):
    while True:
        m = re.search(r"__attribute__\s*\(\(", s)
        if not m:
            return s
        d, j = 0, m.end() - 2
        while j < len(s):
            d += s[j] == "("
            d -= s[j] == ")"
            j += 1
            if d == 0:
                break
        s = s[:m.start()] + " " + s[j:]

defs = {}      # name -> set of folders with a non-static definition
decls = []     # (rel, line, name)
for rel in sorted(files):
    src = strip(text[rel], blank_strings=True)
    for s, pos in top_level(src):
        s2 = strip_attrs(s)
        flat = " ".join(s2.split())
        if flat.startswith(("typedef", "struct", "union", "enum")) and "(" not in flat.split("{")[0]:
            continue
        if flat.startswith("typedef"):
            continue
        m = re.match(r"(.*?)\b([A-Za-z_]\w*)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*(\{\}|;)$", flat)
        if m and "(*" not in m.group(1) and m.group(2) not in KEYWORDS and m.group(1).strip():
            name, body = m.group(2), m.group(4)
            if re.search(r"\bstatic\b", m.group(1)):
                continue
            if body == "{}":
                defs.setdefault(name, set()).add(files[rel])
            else:
                decls.append((rel, line_of(src, pos), name))
            continue
        # variables: extern declarations, non-static definitions
        head = flat.split("=")[0].rstrip(";").strip()
        head = re.sub(r"\[[^\]]*\]", "", head)
        mv = re.search(r"([A-Za-z_]\w*)\s*$", head)
        if not mv or "(" in head or re.search(r"\bstatic\b", head):
            continue
        if flat.startswith("extern"):
            decls.append((rel, line_of(src, pos), mv.group(1)))
        else:
            defs.setdefault(mv.group(1), set()).add(files[rel])

n_decls = 0
for rel, ln, name in decls:
    where = defs.get(name)
    if not where:
        continue          # libc's, a dlsym'd symbol's, or defined nowhere we look
    n_decls += 1
    frm = files[rel]
    if any(allowed(frm, to) for to in where):
        continue
    to = sorted(where, key=lambda f: RANK.get(f, 99))[0]
    bad(f"{rel}:{ln}: declares {name}, defined in stage {to} (rank {rank_str(to)}), "
        f"from stage {frm} (rank {rank_str(frm)})")

for v in violations:
    print(v)
print(f"layering: {len(files)} files, {n_includes} includes, {n_decls} declarations of project symbols, "
      f"{n_openings} header openings, {len(violations)} violation(s)")
sys.exit(1 if violations else 0)
PY
}

rc=0
echo "== the tree"
if ! check "$top"; then
    echo "FAIL: the tree breaks the layering rule (violations above)"
    rc=1
fi

# ---- the check must catch what is planted ----
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

copy() {   # a fresh copy of the sources the rule covers
    local d=$tmp/$1
    mkdir -p "$d"
    for t in common preload exporter cli; do
        [ -d "$top/$t" ] && cp -R "$top/$t" "$d/"
    done
    echo "$d"
}
first() { ls $1 2>/dev/null | LC_ALL=C sort | head -n1; }

# plant NAME FILE LINE-TO-APPEND EXPECTED-MESSAGE-START (FILE relative to the copy)
plant() {
    local name=$1 d=$2 file=$3 text=$4 expect=$5
    if [ ! -f "$d/$file" ]; then
        echo "FAIL: plant '$name': no file to plant into ($file)"; rc=1; return
    fi
    printf '\n%s\n' "$text" >>"$d/$file"
    local line out
    line=$(wc -l <"$d/$file")
    out=$(check "$d")
    local status=$?
    local want="$file:$line: $expect"
    if [ $status -ne 0 ] && grep -qF -- "$want" <<<"$out"; then
        echo "plant '$name' caught: $(grep -F -- "$want" <<<"$out")"
    else
        echo "FAIL: plant '$name' ($text appended to $file) not caught; wanted a line starting"
        echo "  $want"
        echo "check said (exit $status):"; sed 's/^/  /' <<<"$out"
        rc=1
    fi
}

echo "== planted violations"
# The highest stage below which preload/hot sits, with a header.
high=""
for s in process sinks interpret record; do
    high=$(first "$top/preload/$s/*.h"); [ -n "$high" ] && break
done
high=$(basename "${high:-watchdog.h}")
high_stage=$(dirname "$(cd "$top" && ls preload/*/"$high" 2>/dev/null | head -n1)")

d=$(copy hot)
f=$(cd "$d" && first "preload/hot/*.c")
plant "hot includes $high" "$d" "${f:-preload/hot/NONE.c}" "#include \"$high\"" \
    "includes $high (stage $high_stage, rank "

d=$(copy cli)
f=$(cd "$d" && first "cli/*.c")
core=$(basename "$(cd "$top" && first "preload/core/*.h")")
plant "cli includes $core" "$d" "${f:-cli/NONE.c}" "#include \"$core\"" \
    "includes $core (stage preload/core, rank 1) from stage cli (rank -)"

d=$(copy exporter)
f=$(cd "$d" && first "exporter/*.c")
plant "exporter includes $high" "$d" "${f:-exporter/NONE.c}" "#include \"$high\"" \
    "includes $high (stage $high_stage, rank "

d=$(copy common)
f=$(cd "$d" && first "common/*.c")
plant "common includes $core" "$d" "${f:-common/NONE.c}" "#include \"$core\"" \
    "includes $core (stage preload/core, rank 1) from stage common (rank 0)"

d=$(copy decl)
echo 'int elmon_layering_plant(void) { return 0; }' >"$d/preload/process/layering_plant.c"
f=$(cd "$d" && first "preload/core/*.h")
plant "core declares a process function" "$d" "${f:-preload/core/NONE.h}" "int elmon_layering_plant(void);" \
    "declares elmon_layering_plant, defined in stage preload/process (rank 6), from stage preload/core (rank 1)"

d=$(copy weak)
f=$(cd "$d" && first "preload/sinks/*.h")
plant "a weak hook in sinks" "$d" "${f:-preload/sinks/NONE.h}" "void elmon_weak_plant(void) __attribute__((weak));" \
    "a weak symbol"

d=$(copy dup)
h=$(cd "$d" && first "common/*.h")
cp "$d/$h" "$d/cli/$(basename "$h")"
out=$(check "$d"); status=$?
if [ $status -ne 0 ] && grep -qF "cli/$(basename "$h"):1: header basename $(basename "$h") is also $h" <<<"$out"; then
    echo "plant 'duplicate header $(basename "$h")' caught: $(grep -F "header basename $(basename "$h")" <<<"$out")"
else
    echo "FAIL: plant 'duplicate header cli/$(basename "$h")' not caught"; sed 's/^/  /' <<<"$out"; rc=1
fi

# caught NAME DIR WANT: the check of DIR fails with a line starting WANT.
caught() {
    local name=$1 d=$2 want=$3 out status
    out=$(check "$d"); status=$?
    if [ $status -ne 0 ] && grep -qF -- "$want" <<<"$out"; then
        echo "plant '$name' caught: $(grep -F -- "$want" <<<"$out")"
    else
        echo "FAIL: plant '$name' not caught; wanted a line starting"
        echo "  $want"
        echo "check said (exit $status):"; sed 's/^/  /' <<<"$out"
        rc=1
    fi
}

d=$(copy opening)
h=$(cd "$d" && first "preload/hot/*.h")
if [ -n "$h" ]; then
    # Drop the opening comment: every line up to and including its first "*/".
    awk 'done { print; next } /\*\// { done = 1 }' "$d/$h" >"$d/$h.new" && mv "$d/$h.new" "$d/$h"
    caught "$h without its opening" "$d" "$h:1: does not open with a comment"
else
    echo "FAIL: plant 'a header without its opening': no header in preload/hot/"; rc=1
fi

d=$(copy label)
h=$(cd "$d" && first "preload/core/*.h")
if [ -n "$h" ]; then
    # Strike the first "May not:" (the opening's, in a header that passed).
    sed -i '0,/May not:/s//Must avoid:/' "$d/$h"
    caught "$h without May not:" "$d" "$h:1: opening comment lacks May not:"
else
    echo "FAIL: plant 'an opening without May not:': no header in preload/core/"; rc=1
fi

exit $rc
