import sys

from clipdesk.cli import main

sys.exit(main())
