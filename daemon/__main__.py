import sys

from tradectl.cli import main

sys.exit(main())
