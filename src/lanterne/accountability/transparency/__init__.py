"""The public transparency notice (TR-01, TR-02, TR-04): who runs the cameras, what they watch,
under which authorisation, with which algorithms and how often their alerts were right. Served
live by the console at `/public` and exported as static files by `lanterne transparency publish`;
`alerts` mode cannot start before a notice is published for the configuration in force."""

from lanterne.accountability.transparency.data import PublicData, public_data
from lanterne.accountability.transparency.render import (
    Publication,
    export,
    geojson,
    notice_published,
    render_geojson,
    render_html,
    render_json,
    require_notice,
)

__all__ = [
    "PublicData",
    "Publication",
    "export",
    "geojson",
    "notice_published",
    "public_data",
    "render_geojson",
    "render_html",
    "render_json",
    "require_notice",
]
