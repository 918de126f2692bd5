"""A snapshot of what the engine holds for one project, taken before planning so the
planner can compare desired and actual state without any further engine calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from compose import labels as L

if TYPE_CHECKING:
    from engine.api import Container, Engine


@dataclass(frozen=True)
class ObservedContainer:
    """One container carrying the project label, reduced to what planning needs."""

    name: str
    service: str
    number: int
    config_hash: str = ""
    status: str = "running"  # engine.api.ContainerStatus
    health: str = ""  # "", starting, healthy, unhealthy
    oneoff: bool = False
    image: str = ""
    image_id: str = ""
    id: str = ""
    exit_code: int = 0
    depends_on: tuple[str, ...] = ()  # from the depends_on label: services it needs

    @property
    def running(self) -> bool:
        return self.status in ("running", "restarting", "paused")


@dataclass(frozen=True)
class ObservedState:
    project: str
    containers: tuple[ObservedContainer, ...] = ()
    networks: frozenset[str] = frozenset()  # engine names of existing networks
    volumes: frozenset[str] = frozenset()  # engine names of existing volumes
    images: dict[str, str] = field(default_factory=dict)  # every tag -> image id
    owned_networks: frozenset[str] = frozenset()  # those carrying the project label
    owned_volumes: frozenset[str] = frozenset()


def observed_container(c: Container) -> ObservedContainer:
    labels = c.labels
    number = labels.get(L.CONTAINER_NUMBER, "0")
    return ObservedContainer(
        name=c.name, service=labels.get(L.SERVICE, ""),
        number=int(number) if number.isdigit() else 0,
        config_hash=labels.get(L.CONFIG_HASH, ""), status=c.state.status,
        health=c.state.health.status if c.state.health and c.state.health.status != "none"
        else "",
        oneoff=labels.get(L.ONEOFF, "False") == "True", image=c.image, image_id=c.image_id,
        id=c.id, exit_code=c.state.exit_code,
        depends_on=tuple(d.split(":", 1)[0] for d in labels.get(L.DEPENDS_ON, "").split(",")
                         if d))


def project_containers(engine: Engine, project: str, *, all: bool = True,
                       oneoff: bool | None = False) -> list[Container]:
    """The project's containers, sorted by service and number (a stable order)."""
    found = engine.container_list(all=all, labels=L.project_filter(project))
    if oneoff is not None:
        found = [c for c in found if (c.labels.get(L.ONEOFF, "False") == "True") == oneoff]
    return sorted(found, key=lambda c: (c.labels.get(L.SERVICE, ""),
                                        int(c.labels.get(L.CONTAINER_NUMBER, "0") or 0),
                                        c.name))


def observe(engine: Engine, project: str) -> ObservedState:
    containers = project_containers(engine, project, oneoff=None)
    owned = L.project_filter(project)
    images: dict[str, str] = {}
    for image in engine.image_list():
        for tag in image.repo_tags:
            images[tag] = image.id
    return ObservedState(
        project=project,
        containers=tuple(observed_container(c) for c in containers),
        networks=frozenset(n.name for n in engine.network_list()),
        volumes=frozenset(v.name for v in engine.volume_list()),
        images=images,
        owned_networks=frozenset(n.name for n in engine.network_list(labels=owned)),
        owned_volumes=frozenset(v.name for v in engine.volume_list(labels=owned)))
