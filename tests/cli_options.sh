#!/usr/bin/env bash
# Keeps the option tables of docs/CLI.md, the options the code parses and
# `elmon COMMAND --help` in agreement: for each command (the cmds[] table
# of cli/elmon.c, and elmon itself), the options of its `struct option`
# array and short-option string in cli/*.c (elmon's own: the strcmp of
# argv[1] in main), the option lines of its --help, and the rows of its
# table in docs/CLI.md must be the same options with the same short forms,
# each taking an argument in all three or in none.  Every test a row names
# must exist: the ctest test registered in tests/*.cmake and, for a Check
# suite, the function defined (START_TEST) and added to its case; for a
# script test, the name found in its script.  A failure names the command
# and the option.
#
# Then the check must catch planted errors in copies of the tree: for every
# command a row removed from its table, a short option dropped from the
# code, an option added to the code, an option line gone from --help, and
# a test function misspelt in the docs.
# Usage: cli_options.sh SRC_DIR ELMON
set -euo pipefail
top=$(cd "${1:-$(dirname "$0")/..}" && pwd)
elmon=${2:?usage: cli_options.sh SRC_DIR ELMON}
tmp=$(mktemp -d /tmp/elmon-cli-options-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The commands: elmon itself and the names of cmds[] in main.
commands() {
    echo elmon
    grep -oE '\{"[a-z]+", cmd_[a-z]+\}' "$1/cli/elmon.c" | sed -E 's/\{"([a-z]+)".*/\1/'
}

# "COMMAND ARG FORMS" lines, ARG 1 when the option takes an argument, FORMS
# its names (short first, ", " between), from the getopt_long calls of
# cmd_COMMAND: the struct option array the call names (local to the
# function, or of the file) and its short-option string, a long option's
# short form being the character literal it returns when that character
# is in the string.  elmon's own from main: the options strcmp'd with
# argv[1] on one line are one option.
code_options() {
    awk '
    FNR == 1 { fn = "" }
    /^int cmd_[a-z]+\(/ { match($0, /cmd_[a-z]+/); fn = substr($0, RSTART + 4, RLENGTH - 4) }
    /^int main\(/ { fn = "main" }
    /^}/ { fn = "" }
    /struct option [A-Za-z_]+\[\] *= *\{/ {
        match($0, /struct option [A-Za-z_]+/)
        cur = FILENAME ":" fn ":" substr($0, RSTART + 14, RLENGTH - 14)
        n[cur] = 0
        next
    }
    cur != "" && /\{ *0 *, *0 *, *0 *, *0 *\}/ { cur = ""; next }
    cur != "" && /\{"[^"]+", *(no|required|optional)_argument/ {
        match($0, /"[^"]+"/)
        k = ++n[cur]
        nm[cur, k] = substr($0, RSTART + 1, RLENGTH - 2)
        ar[cur, k] = $0 ~ /no_argument/ ? 0 : 1
        v = $0
        sub(/ *\}.*/, "", v)
        sub(/.*, */, "", v)
        vl[cur, k] = v
        next
    }
    /getopt_long\(/ {
        if (!match($0, /getopt_long\([^,]*,[^,]*, *"[^"]*", *[A-Za-z_]+/)) {
            print "?? unparsed getopt_long call in " FILENAME ": " $0
            next
        }
        call = substr($0, RSTART, RLENGTH)
        match(call, /"[^"]*"/)
        shorts = substr(call, RSTART + 1, RLENGTH - 2)
        sub(/^[+-]/, "", shorts)
        arr = call
        sub(/.*, */, "", arr)
        key = FILENAME ":" fn ":" arr
        if (!(key in n))
            key = FILENAME "::" arr
        if (!(key in n)) {
            print "?? " fn ": no struct option " arr " found"
            next
        }
        delete sarg
        delete used
        for (i = 1; i <= length(shorts); i++) {
            c = substr(shorts, i, 1)
            if (c == ":")
                continue
            sarg[c] = substr(shorts, i + 1, 1) == ":" ? 1 : 0
        }
        for (k = 1; k <= n[key]; k++) {
            forms = "--" nm[key, k]
            if (vl[key, k] ~ /^\047.\047$/) {
                c = substr(vl[key, k], 2, 1)
                if (c in sarg) {
                    forms = "-" c ", " forms
                    used[c] = 1
                    if (sarg[c] != ar[key, k])
                        print "?? " fn ": -" c " and --" nm[key, k] " differ in taking an argument"
                }
            }
            print fn, ar[key, k], forms
        }
        for (c in sarg)
            if (!(c in used))
                print fn, sarg[c], "-" c
    }
    fn == "main" && /strcmp\(argv\[1\], "-/ {
        forms = ""
        line = $0
        while (match(line, /strcmp\(argv\[1\], "-[^"]*"/)) {
            o = substr(line, RSTART + 17, RLENGTH - 18)
            forms = forms == "" ? o : (o ~ /^--/ ? forms ", " o : o ", " forms)
            line = substr(line, RSTART + RLENGTH)
        }
        print "elmon", 0, forms
    }' "$1"/cli/*.c
}

# The same lines from the option lines of COMMAND --help ("  -w, --watch
# SECONDS   text": the names and argument before the first two spaces).
help_options() {
    local cmd=$1 c
    for c in $(commands "$2"); do
        if [ "$c" = elmon ]; then "$cmd" --help; else "$cmd" "$c" --help; fi |
            sed -nE 's/^  (-[^ ].*)/\1/p' | sed -E 's/  .*//' |
            awk -v c="$c" '{
                n = split($0, f, /, /); forms = ""; arg = 0
                for (i = 1; i <= n; i++) {
                    w = f[i]
                    if (w ~ / /) { arg = 1; sub(/ .*/, "", w) }
                    forms = forms == "" ? w : forms ", " w
                }
                print c, arg, forms
            }'
    done
}

# Rows of the option tables of a CLI.md: a table with the header
# "| option | what it does | default | test |" under "## elmon COMMAND"
# (or "## elmon").  $2 = opts: "COMMAND ARG FORMS" lines; $2 = tests:
# "COMMAND FORMS<TAB>SUITE<TAB>CASE" lines, CASE empty for a suite alone;
# rows without a test and second tables as "?? " lines.
doc_rows() {
    awk -v want="$2" '
    /^## / { sect = ""; intable = 0 }
    /^## elmon$/ { sect = "elmon" }
    /^## elmon [a-z]+$/ { sect = $3 }
    /^\| option \| what it does \| default \| test \|$/ {
        if (sect == "") { print "?? an option table outside any \"## elmon COMMAND\" section"; next }
        if (seen[sect]++) print "?? a second option table for " sect
        intable = 1
        next
    }
    intable && !/^\|/ { intable = 0 }
    intable && /^\|---/ { next }
    intable {
        line = $0
        gsub(/\\\|/, "\001", line)
        n = split(line, cell, /\|/)
        if (n != 6) { print "?? " sect ": a row of " n - 2 " cells: " $0; next }
        o = cell[2]; forms = ""; arg = 0; sh = ""; lg = ""
        while (match(o, /`[^`]*`/)) {
            t = substr(o, RSTART + 1, RLENGTH - 2)
            o = substr(o, RSTART + RLENGTH)
            if (t ~ / /) { arg = 1; sub(/ .*/, "", t) }
            if (t ~ /^--/) lg = lg == "" ? t : lg ", " t
            else sh = sh == "" ? t : sh ", " t
        }
        forms = sh == "" ? lg : lg == "" ? sh : sh ", " lg
        if (want == "opts") { print sect, arg, forms; next }
        ng = split(cell[5], group, /;/); named = 0
        for (g = 1; g <= ng; g++) {
            suite = ""; rest = group[g]; k = 0
            while (match(rest, /`[^`]*`/)) {
                t = substr(rest, RSTART + 1, RLENGTH - 2)
                rest = substr(rest, RSTART + RLENGTH)
                if (++k == 1) suite = t
                else { print sect " " forms "\t" suite "\t" t; named++ }
            }
            if (k == 1) { print sect " " forms "\t" suite "\t"; named++ }
        }
        if (!named) print "?? " sect " " forms ": no test named"
    }' "$1"
}

# Every test a row names exists (src tree $1, rows on stdin).
check_tests() {
    local src=$1 where suite case script
    while IFS=$'\t' read -r where suite case; do
        if grep -qE "^ *elmon_check_test\($suite( |\$)" "$src"/tests/*.cmake; then
            if [ -z "$case" ]; then
                echo "$where: $suite is a Check suite: name its test function"
            elif ! grep -qE "^START_TEST\($case\)" "$src/tests/$suite.c" 2>/dev/null ||
                 ! grep -qE "tcase_add_test\([a-z_]+, $case\);" "$src/tests/$suite.c"; then
                echo "$where: no test function $case in $suite (tests/$suite.c: START_TEST and tcase_add_test)"
            fi
        elif grep -qE "add_test\(NAME $suite COMMAND " "$src"/tests/*.cmake; then
            script=$(grep -hoE "add_test\(NAME $suite COMMAND [^ ]+" "$src"/tests/*.cmake |
                     sed -E 's|.*/||; s|^|tests/|')
            if [ -n "$case" ] && ! grep -qF -- "$case" "$src/$script"; then
                echo "$where: $case not in $script, the script of $suite"
            fi
        else
            echo "$where: no ctest test $suite in tests/*.cmake"
        fi
    done
}

# All problems of tree $1 with elmon $2, one line each; none: no output.
check() {
    local src=$1 cmd=$2 d
    d=$(mktemp -d "$tmp/check-XXXXXX")
    code_options "$src" | sort -u >"$d/code"
    help_options "$cmd" "$src" | sort -u >"$d/help"
    doc_rows "$src/docs/CLI.md" opts | sort -u >"$d/doc"
    grep -h '^??' "$d/code" "$d/doc" || true
    doc_rows "$src/docs/CLI.md" tests | grep '^??' || true
    doc_rows "$src/docs/CLI.md" tests | grep -v '^??' | check_tests "$src"
    local c
    for c in $(commands "$src"); do
        for f in code help doc; do
            grep -q "^$c " "$d/$f" || echo "elmon $c: no options found in $f"
        done
    done
    # One line per option per source, keyed by command and long name.
    awk '
    $1 == "??" { next }
    {
        cmd = $1; arg = $2; forms = $0
        sub(/^[^ ]+ [^ ]+ /, "", forms)
        name = forms; sub(/.*, /, "", name)
        k = cmd " " name
        keys[k] = 1
        what[k, FILENAME] = forms (arg ? " ARG" : "")
        has[k, FILENAME] = 1
    }
    END {
        src[1] = ARGV[1]; src[2] = ARGV[2]; src[3] = ARGV[3]
        label[1] = "the code (cli/*.c)"; label[2] = "--help"; label[3] = "docs/CLI.md"
        for (k in keys) {
            if (what[k, src[1]] == what[k, src[2]] && what[k, src[2]] == what[k, src[3]])
                continue
            msg = "elmon " k ":"
            for (i = 1; i <= 3; i++)
                msg = msg " " label[i] " " ((k, src[i]) in has ? "has `" what[k, src[i]] "`" : "lacks it") (i < 3 ? ";" : "")
            print msg
        }
    }' "$d/code" "$d/help" "$d/doc" | sort
}

problems=$(check "$top" "$elmon")
if [ -n "$problems" ]; then
    echo "docs/CLI.md, cli/*.c and elmon --help disagree:"
    echo "$problems"
    exit 1
fi
n_opts=$(code_options "$top" | wc -l)
n_tests=$(doc_rows "$top/docs/CLI.md" tests | wc -l)

# Planted errors, each in a copy of the tree: the check must name them.
copy() {
    rm -rf "$tmp/tree"
    mkdir -p "$tmp/tree/docs" "$tmp/tree/tests"
    cp -r "$top/cli" "$tmp/tree/"
    cp "$top/docs/CLI.md" "$tmp/tree/docs/"
    cp "$top"/tests/*.cmake "$top"/tests/*.c "$top"/tests/*.sh "$tmp/tree/tests/"
}
planted_fail=0
expect() {   # expect WHAT NEEDLE [ELMON]: the check of the copy reports NEEDLE
    local out
    out=$(check "$tmp/tree" "${3:-$elmon}")
    if ! grep -qF -- "$2" <<<"$out"; then
        echo "planted error not caught: $1 (no '$2' in:"
        echo "${out:-  nothing reported})"
        planted_fail=1
    fi
}
planted=0
for c in $(commands "$top"); do
    # The first row of the command's table removed.
    row=$(awk -v c="$c" '
        /^## / { s = "" } /^## elmon$/ { s = "elmon" } /^## elmon [a-z]+$/ { s = $3 }
        s == c && /^\| option \| what it does/ { t = 1; next }
        t && /^\|---/ { next }
        t && /^\|/ { print NR; exit }' "$top/docs/CLI.md")
    [ -n "$row" ] || { echo "planting: no table row for $c"; exit 1; }
    name=$(sed -n "${row}p" "$top/docs/CLI.md" | cut -d'|' -f2 | grep -oE -- '--?[a-z][a-z-]*' | tail -1)
    copy
    sed -i "${row}d" "$tmp/tree/docs/CLI.md"
    expect "the $name row of $c removed from docs/CLI.md" "elmon $c $name: the code (cli/*.c) has"
    planted=$((planted + 1))
done
# A short option dropped from each getopt string that has one (the code
# then lacks it where --help and the docs still have it).
while IFS= read -r spec; do
    file=${spec%%:*}
    str=$(sed -E 's/.*getopt_long\([^,]*,[^,]*, *"([^"]*)".*/\1/' <<<"$spec")
    letter=$(grep -oE '[a-z]' <<<"$str" | grep -v h | head -1 || true)
    [ -n "$letter" ] || continue
    copy
    sed -i -E "s/(getopt_long\([^,]*,[^,]*, *\"[^\"]*)$letter:?/\1/" "$tmp/tree/cli/$file"
    expect "-$letter dropped from \"$str\" in cli/$file" "docs/CLI.md has \`-$letter, "
    planted=$((planted + 1))
done < <(cd "$top/cli" && grep -HE 'getopt_long\(' *.c)
# An option added to the code: to every struct option array.
while IFS=: read -r file arr; do
    copy
    sed -i -E "/struct option $arr\[\] *= *\{/a\\        {\"planted-option\", required_argument, 0, 999}," "$tmp/tree/cli/$file"
    expect "--planted-option added to $arr in cli/$file" "--planted-option: the code (cli/*.c) has \`--planted-option ARG\`"
    planted=$((planted + 1))
done < <(cd "$top/cli" && grep -oE 'struct option [A-Za-z_]+\[\]' *.c | sed -E 's/struct option ([A-Za-z_]+)\[\]/\1/')
# An option line gone from run --help (a wrapper filters it out).
copy
cat >"$tmp/elmon-planted" <<EOF
#!/bin/sh
if [ "\$1" = run ]; then "$elmon" "\$@" | grep -v '^  --quiet '; else exec "$elmon" "\$@"; fi
EOF
chmod +x "$tmp/elmon-planted"
expect "--quiet gone from run --help" "elmon run --quiet: the code (cli/*.c) has \`--quiet\`; --help lacks it" \
    "$tmp/elmon-planted"
planted=$((planted + 1))
# A test function misspelt, a test function removed from its case, a
# ctest test misspelt, a row naming no test.
copy
first_case=$(doc_rows "$top/docs/CLI.md" tests | awk -F'\t' '$3 != "" && $2 ~ /^test_/ { print $2 "\t" $3; exit }')
suite=${first_case%%$'\t'*} case=${first_case#*$'\t'}
sed -i "0,/\`$case\`/s//\`${case}_planted\`/" "$tmp/tree/docs/CLI.md"
expect "$case misspelt in docs/CLI.md" "no test function ${case}_planted in $suite"
copy
sed -i "/tcase_add_test([a-z_]*, $case);/d" "$tmp/tree/tests/$suite.c"
expect "$case no longer added to its case" "no test function $case in $suite"
copy
sed -i "0,/\`$suite\` \//s//\`${suite}_planted\` \//" "$tmp/tree/docs/CLI.md"
expect "$suite misspelt in docs/CLI.md" "no ctest test ${suite}_planted"
copy
sed -i -E '0,/^(\| `--[a-z-]+[^|]*\|[^|]*\|[^|]*\|).*\|$/s//\1 |/' "$tmp/tree/docs/CLI.md"
expect "a row's tests emptied" ": no test named"
planted=$((planted + 4))
[ $planted_fail = 0 ] || exit 1
echo "docs/CLI.md: $n_opts options of $(commands "$top" | wc -l) commands, $n_tests tests named; tables, code and --help agree; $planted planted errors caught"
