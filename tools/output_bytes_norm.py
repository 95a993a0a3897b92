"""Blank the run-dependent fields of tools/output_bytes.sh's outputs (times, versions, paths)."""

import re
import sys
from pathlib import Path

PATTERNS = [
    (
        re.compile(
            r'"(created|started|finished|elapsed_s|seconds|wall_s|time|timestamp|date|host|hostname|python|torch|numpy|version|e2net_eval|platform|git_commit)": [^,\n}]+'
        ),
        r'"\1": "-"',
    ),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?"), "<time>"),
    (re.compile(r"\d+(\.\d+)? s\b"), "<secs>"),
    (re.compile(r"\bgit [0-9a-f]{40}\b"), "git <commit>"),
]


def main(root: Path) -> None:
    base = str(root.parent)
    for f in sorted(root.rglob("*")):
        if not f.is_file() or f.suffix in (".png", ".gz", ".nii", ".pdf"):
            continue
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        new = text.replace(base, "<root>")
        for pat, rep in PATTERNS:
            new = pat.sub(rep, new)
        if new != text:
            f.write_text(new)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
