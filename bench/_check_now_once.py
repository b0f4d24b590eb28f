"""`check-now` on a prepared configuration, for profiling under py-spy:
    py-spy record --subprocesses --format raw -o out.txt -- python bench/_check_now_once.py CONFIG
With --json, its summary is printed as the last line (bench_new_entries --isolated).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import check_now  # noqa: E402

if __name__ == "__main__":
    seconds, code, summary = check_now(Path(sys.argv[1]))
    if "--json" in sys.argv[2:]:
        import json
        print(json.dumps(summary))
    else:
        print(f"{seconds:.2f} s, exit {code}, {summary.get('new_articles')} new")
    sys.exit(code)
