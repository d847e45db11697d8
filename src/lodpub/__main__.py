import sys

from lodpub.cli import main

sys.exit(main())
