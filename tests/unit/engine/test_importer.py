"""`docker import --change` semantics."""

from __future__ import annotations

import pytest

from engine.api import InvalidArgument
from engine.images.importer import duration_ns, import_config

DIFF = "sha256:" + "1" * 64


def test_plain_import_config() -> None:
    cfg = import_config(DIFF, created="2024-01-02T03:04:05Z")
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": [DIFF]}
    assert cfg["history"] == [{"created": "2024-01-02T03:04:05Z",
                               "comment": "Imported from -"}]
    assert cfg["config"]["Cmd"] is None and cfg["config"]["Env"] is None
    assert (cfg["os"], cfg["architecture"]) == ("linux", "amd64")


def test_changes() -> None:
    cfg = import_config(DIFF, (
        'CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/run --x", "ENV A=1 B='two words'",
        "ENV C plain value", "env A=3", "WORKDIR /srv", "WORKDIR app", "USER 1000:1000",
        'LABEL a=1 "b c"=d', "EXPOSE 80 53/udp 9000-9001", 'VOLUME ["/data"]',
        "VOLUME /a /b", "STOPSIGNAL SIGINT",
        "HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost",
    ), message="msg")["config"]
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/run --x"]
    assert cfg["Env"] == ["B=two words", "C=plain value", "A=3"]
    assert cfg["WorkingDir"] == "/srv/app"
    assert cfg["User"] == "1000:1000"
    assert cfg["Labels"] == {"a": "1", "b c": "d"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/a": {}, "/b": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"] == {"Interval": 5_000_000_000, "Retries": 2,
                                  "Test": ["CMD-SHELL", "wget -q localhost"]}


def test_message_replaces_comment() -> None:
    assert import_config(DIFF, message="base")["history"][0]["comment"] == "base"


@pytest.mark.parametrize("change", ["RUN echo", "FROM x", "COPY a b", "EXPOSE 99999",
                                    "EXPOSE http", "LABEL novalue", "ENV", "bogus"])
def test_bad_changes(change: str) -> None:
    with pytest.raises(InvalidArgument):
        import_config(DIFF, (change,))


def test_duration() -> None:
    assert duration_ns("1m30s") == 90_000_000_000
    assert duration_ns("250ms") == 250_000_000
    with pytest.raises(InvalidArgument):
        duration_ns("5 sec")
