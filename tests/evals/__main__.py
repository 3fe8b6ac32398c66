"""`python -m tests.evals`: print pass rates per category for both planners."""

import asyncio

from tests.evals.runner import main

asyncio.run(main())
