#!/usr/bin/env bash
# Keeps the exit status table of docs/CLI.md and cli/cli.h in agreement:
# every ELMON_EXIT_* the code defines has a row with the same value, and
# every row names a status the code defines.
set -euo pipefail
top=${1:-$(dirname "$0")/..}
cd "$top"
code=$(grep -oE '^#define ELMON_EXIT_[A-Z_]+ +[0-9]+' cli/cli.h | awk '{print $2, $3}' | sort)
table=$(grep -oE '^\| `[0-9]+` \| `ELMON_EXIT_[A-Z_]+`' docs/CLI.md | tr -d '|`' | awk '{print $2, $1}' | sort)
if [ "$code" != "$table" ]; then
    echo "cli/cli.h and docs/CLI.md disagree:"
    diff <(echo "$code") <(echo "$table") || true
    exit 1
fi
echo "docs/CLI.md: $(echo "$code" | wc -l) exit statuses, table and code agree"
