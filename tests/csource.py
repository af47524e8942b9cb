"""A rough C reader shared by the source checks (tests/layering.sh,
tests/signal_safety.py): comments to blanks, string literals kept or
blanked, line numbers kept."""
import re


def strip(src, blank_strings=True):
    """Comments (and string/char literals' contents) to blanks, newlines kept."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", src[i + 1:j - 1]) + c if blank_strings else src[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)
