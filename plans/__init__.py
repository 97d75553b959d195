"""plans: the plan catalog and the agency registry, as YAML data files with citations."""

from pathlib import Path

PLANS_DIR = Path(__file__).parent
