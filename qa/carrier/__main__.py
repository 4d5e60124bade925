import sys

from qa.carrier.cli import main

sys.exit(main())
