import sys

from flowdeploy.local.devserver import main

sys.exit(main())
