"""`make bench`: run every benchmark script, one after the other (never two at
a time, so timings do not compete for the cores), logs in benchmarks/results/.

Usage: python benchmarks/run.py [name ...]   (default: all present)
Extra arguments after `--` are passed to every script (e.g. `-- --peers`).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["foundation", "speed", "images", "maf", "vi", "training", "integrations"]


def main() -> int:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    names = [a for a in argv[: argv.index("--")] if a] if "--" in argv else argv
    names = names or [n for n in ORDER if (HERE / f"{n}.py").exists()]
    (HERE / "results").mkdir(exist_ok=True)
    status = 0
    for name in names:
        log = HERE / "results" / f"{name}.log"
        print(f"== {name} (log: {log})", flush=True)
        with log.open("w") as fh:
            proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py"), *extra], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            for line in proc.stdout:
                sys.stdout.write(line)
                fh.write(line)
            status |= proc.wait()
    return status


if __name__ == "__main__":
    sys.exit(main())
