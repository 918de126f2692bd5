"""`docker inspect` shape of a container record (`container_inspect(c) -> dict`)."""

from __future__ import annotations

from typing import Any

from engine.api import Container

_NS = 1_000_000_000


def _state(c: Container) -> dict[str, Any]:
    s = c.state
    out: dict[str, Any] = {
        "Status": s.status, "Running": s.status in ("running", "paused"),
        "Paused": s.status == "paused", "Restarting": s.status == "restarting",
        "OOMKilled": s.oom_killed, "Dead": s.status == "dead", "Pid": s.pid,
        "ExitCode": s.exit_code, "Error": s.error, "StartedAt": s.started_at,
        "FinishedAt": s.finished_at,
    }
    if s.health is not None:
        out["Health"] = {
            "Status": s.health.status, "FailingStreak": s.health.failing_streak,
            "Log": [{"Start": h.start, "End": h.end, "ExitCode": h.exit_code,
                     "Output": h.output} for h in s.health.log],
        }
    return out


def _mounts(c: Container) -> list[dict[str, Any]]:
    out = []
    for m in c.spec.mounts:
        entry: dict[str, Any] = {"Type": m.type, "Source": m.source, "Destination": m.target,
                                 "Mode": "", "RW": not m.read_only,
                                 "Propagation": m.propagation or ("rprivate" if m.type ==
                                                                  "bind" else "")}
        if m.type == "volume":
            entry["Name"] = m.source
            entry["Driver"] = "local"
        out.append(entry)
    return out


def _ports(c: Container) -> dict[str, Any]:
    ports: dict[str, Any] = {}
    for p in c.spec.ports:
        ports.setdefault(f"{p.container_port}/{p.protocol}", None)
    for e in c.spec.expose:
        key = e if "/" in e else f"{e}/tcp"
        ports.setdefault(key, None)
    for pub in c.ports:
        key = f"{pub.container_port}/{pub.protocol}"
        if ports.get(key) is None:
            ports[key] = []
        ports[key].append({"HostIp": pub.host_ip or "0.0.0.0", "HostPort": str(pub.host_port)})
    return ports


def _networks(c: Container) -> dict[str, Any]:
    nets: dict[str, Any] = {}
    for a in c.networks:
        nets[a.network] = {
            "Aliases": list(a.aliases), "NetworkID": a.network_id, "Gateway": a.gateway,
            "IPAddress": a.ip_address, "IPPrefixLen": a.prefix_len, "MacAddress": a.mac_address,
            "DNSNames": [c.name, c.id[:12], *a.aliases],
        }
    return nets


def _healthcheck(c: Container) -> dict[str, Any] | None:
    hc = c.spec.healthcheck
    if hc is None:
        return None
    return {"Test": list(hc.test), "Interval": int(hc.interval * _NS),
            "Timeout": int(hc.timeout * _NS), "Retries": hc.retries,
            "StartPeriod": int(hc.start_period * _NS),
            "StartInterval": int(hc.start_interval * _NS)}


def container_inspect(c: Container) -> dict[str, Any]:
    spec = c.spec
    args = list(spec.entrypoint or ()) + list(spec.command or ())
    r = spec.resources
    first_net = c.networks[0] if c.networks else None
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": _state(c),
        "Image": c.image_id,
        "Name": "/" + c.name,
        "RestartCount": c.state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {
            "NetworkMode": spec.network_mode or "bridge",
            "RestartPolicy": {"Name": spec.restart.name,
                              "MaximumRetryCount": spec.restart.maximum_retry_count},
            "AutoRemove": spec.auto_remove,
            "CapAdd": list(spec.cap_add) or None, "CapDrop": list(spec.cap_drop) or None,
            "Privileged": spec.privileged, "ReadonlyRootfs": spec.read_only,
            "SecurityOpt": list(spec.security_opt) or None, "Init": spec.init,
            "ShmSize": spec.shm_size or 67108864,
            "Sysctls": dict(spec.sysctls) or None,
            "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard}
                        for u in spec.ulimits] or None,
            "LogConfig": {"Type": spec.log_config.driver,
                          "Config": dict(spec.log_config.options)},
            "Memory": r.memory or 0, "MemorySwap": r.memory_swap or 0,
            "NanoCpus": int((r.cpus or 0) * 1e9), "CpuShares": r.cpu_shares or 0,
            "PidsLimit": r.pids_limit, "CpusetCpus": r.cpuset_cpus or "",
            "PidMode": spec.pid_mode, "IpcMode": spec.ipc_mode or "private",
            "ExtraHosts": list(spec.extra_hosts) or None, "Dns": list(spec.dns),
            "PortBindings": {f"{p.container_port}/{p.protocol}": [
                {"HostIp": p.host_ip, "HostPort": p.host_port}] for p in spec.ports},
            "Mounts": [{"Type": m.type, "Source": m.source, "Target": m.target,
                        "ReadOnly": m.read_only} for m in spec.mounts],
        },
        "Mounts": _mounts(c),
        "Config": {
            "Hostname": spec.hostname or c.id[:12],
            "Domainname": spec.domainname or "",
            "User": spec.user or "",
            "Tty": spec.tty, "OpenStdin": spec.stdin_open,
            "Env": [f"{k}={v}" for k, v in spec.env],
            "Cmd": list(spec.command) if spec.command is not None else None,
            "Entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
            "Image": c.image,
            "WorkingDir": spec.working_dir or "",
            "Labels": dict(spec.labels),
            "StopSignal": spec.stop_signal or "SIGTERM",
            "StopTimeout": int(spec.stop_grace_period) if spec.stop_grace_period
            is not None else None,
            "Healthcheck": _healthcheck(c),
            "ExposedPorts": {k: {} for k in _ports(c)} or None,
        },
        "NetworkSettings": {
            "Ports": _ports(c),
            "Networks": _networks(c),
            "IPAddress": first_net.ip_address if first_net else "",
            "Gateway": first_net.gateway if first_net else "",
            "IPPrefixLen": first_net.prefix_len if first_net else 0,
            "MacAddress": first_net.mac_address if first_net else "",
        },
    }
