"""`python -m r2b_torch`: see cli.py."""

import os
import sys

from .cli import main

code = main()
if "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ:
    # A process of a torchrun job leaves without running the interpreter's and C++ libraries' exit
    # handlers: with gloo, a communication thread still joinable at static destruction makes the C++
    # runtime abort (SIGABRT, "terminate called without an active exception") in about one exit in ten,
    # after all the work is done and written, and torchrun would then report the whole job as failed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
