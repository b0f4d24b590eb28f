"""`check-now` on a prepared configuration, for profiling under py-spy:
    py-spy record --subprocesses --format raw -o out.txt -- python bench/_check_now_once.py CONFIG
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import check_now  # noqa: E402

if __name__ == "__main__":
    seconds, code, summary = check_now(Path(sys.argv[1]))
    print(f"{seconds:.2f} s, exit {code}, {summary.get('new_articles')} new")
