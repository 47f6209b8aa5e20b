import sys

from dfx.hw.vitis import main

sys.exit(main())
