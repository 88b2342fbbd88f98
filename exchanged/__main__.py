import sys

from exchanged.cli import main

sys.exit(main())
