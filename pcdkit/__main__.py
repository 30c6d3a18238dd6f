import sys

from pcdkit.cli import main

sys.exit(main())
