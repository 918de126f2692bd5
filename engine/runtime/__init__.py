"""Containers: ctypes syscalls, namespaces, rootfs, cgroups, capabilities, monitor, exec, logs."""
