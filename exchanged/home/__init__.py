"""The deployment on disk: paths, ``config.yaml``, safe file writes, agencies, drop folders."""

from exchanged.home.config import CONFIG_KEYS, Config, Listen, config_text, load_config
from exchanged.home.files import (
    DIR_MODE,
    FILE_MODE,
    atomic_write,
    atomic_writer,
    fsync_dir,
    make_private_dir,
    new_secret,
)
from exchanged.home.paths import DEFAULT_HOME, Home

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_HOME",
    "DIR_MODE",
    "FILE_MODE",
    "Config",
    "Home",
    "Listen",
    "atomic_write",
    "atomic_writer",
    "config_text",
    "fsync_dir",
    "load_config",
    "make_private_dir",
    "new_secret",
]
