"""``python -m kafka_llm.cli``: the same as the ``kafka-llm`` console script."""

import sys

from kafka_llm.cli import main

sys.exit(main())
