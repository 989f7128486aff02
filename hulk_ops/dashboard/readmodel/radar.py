"""The technology radar as the pages read it: the schema and rules live in `hulk_ops.core.radar` (the collector's
end-of-life digest uses them too)."""

from hulk_ops.core.radar import (
    DEFAULT_FILE,
    DRIFT_ORDER,
    QUADRANTS,
    RINGS,
    Component,
    EolFlag,
    RadarEntry,
    RadarError,
    RadarFile,
    drift,
    eol_flags,
    load_radar,
    parse_version,
    radar_entries,
    radar_path,
    with_rings,
)

__all__ = ["DEFAULT_FILE", "DRIFT_ORDER", "QUADRANTS", "RINGS", "Component", "EolFlag", "RadarEntry", "RadarError",
           "RadarFile", "drift", "eol_flags", "load_radar", "parse_version", "radar_entries", "radar_path",
           "with_rings"]
