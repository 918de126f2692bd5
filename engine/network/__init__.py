"""Bridges, veth, IPAM, the DNS responder, port publishing and firewall rules."""
