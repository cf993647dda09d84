import sys

from btc_platform.demo.cli import main

sys.exit(main())
