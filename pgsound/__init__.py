"""pgsound: Progressive Growing of GANs for sound, as a course book and the package behind it.

The package follows the path of the data, one small module per idea (see README.md, "The package"):

- ``profile``, ``device``, ``display``: what every chapter uses (run size, CPU/GPU, seeding, inline media).
- the sound path, the networks, the datasets, the training loop and the metrics each live in their own
  modules, imported explicitly (``from pgsound import phase_retrieval``) so that ``import pgsound`` stays light.
"""

from pgsound.device import configure_process, default_device, seed_everything
from pgsound.profile import PROFILES, current_profile, pick, work_folder

__version__ = "0.1.0"

__all__ = [
    "PROFILES", "configure_process", "current_profile", "default_device", "pick", "seed_everything", "work_folder",
    "__version__",
]
