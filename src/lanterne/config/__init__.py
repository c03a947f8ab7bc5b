"""Configuration: one YAML file validated by one pydantic schema."""

from lanterne.config.loader import config_hash, load_config, parse_config
from lanterne.config.schema import Camera, Config, Mode, Zone

__all__ = ["Camera", "Config", "Mode", "Zone", "config_hash", "load_config", "parse_config"]
