"""``python -m ilf`` (and ``accelerate launch -m ilf finetune ...``)."""

import sys

from ilf.cli import main

sys.exit(main())
