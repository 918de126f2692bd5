"""Dockerfile parser, build context, build executor and layer cache."""
