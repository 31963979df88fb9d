import sys

from charlm.cli.main import main

sys.exit(main())
