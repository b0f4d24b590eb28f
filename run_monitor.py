"""Entry point: python run_monitor.py [--config PATH] COMMAND"""

import sys

from monitor.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
