"""The built-in engine: one object composed of the services of each engine part.

Each part contributes a mixin that implements its slice of the `engine.api.Engine`
protocol plus the few internal hooks other parts call (named `_image_*`, `_net_*`,
`_volume_*`). All of them share `self.store`.
"""

from __future__ import annotations

import os

from engine.build.service import BuildService
from engine.images.registry_service import RegistryService
from engine.images.service import ImageService
from engine.network.service import NetworkService
from engine.runtime.ops_service import ContainerOpsService
from engine.runtime.service import ContainerService
from engine.store import Store
from engine.system import SystemService
from engine.volumes import VolumeService


class LocalEngine(ImageService, RegistryService, BuildService, ContainerService,
                  ContainerOpsService, NetworkService, VolumeService, SystemService):
    """The built-in, daemonless engine rooted at one data directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.store = Store(root)
