"""Plugin machinery: hook specifications, discovery, and the name registry."""

from lamina.plugins.contributions import Command, PathOpener
from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.manager import PluginHost, PluginRecord, get_host, use_host
from lamina.plugins.registrar import Registrar

__all__ = [
    "Command",
    "PathOpener",
    "PluginHost",
    "PluginRecord",
    "Registrar",
    "get_host",
    "hookimpl",
    "use_host",
]
