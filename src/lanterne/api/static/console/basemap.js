// The background of a camera map: the site's tile server when it has one, otherwise the city's
// boundaries drawn from the console's own data (no third-party tiles by default). Shared by the
// camera map and the live wall's map.
import { api, say } from "./common.js";

// `note` says what is missing (the camera map shows it; the wall keeps its message line for tiles).
export async function baseLayer(map, settings, note = say) {
  if (settings.tile_url) {
    L.tileLayer(settings.tile_url, { maxZoom: 19 }).addTo(map);
    return;
  }
  if (!settings.boundaries) {
    note("No map tiles and no boundaries configured: cameras are drawn on a blank background.");
    return;
  }
  const response = await api("/api/boundaries");
  if (!response.ok) {
    note("Boundaries unavailable: " + ((await response.json()).detail || response.status));
    return;
  }
  const outline = L.geoJSON(await response.json(), {
    className: "boundary",
    style: { color: "#66b3ff", weight: 2, fillColor: "#1b232c", fillOpacity: 0.35 },
  }).addTo(map);
  outline.bringToBack();
  // The whole city first; the cameras, once listed, bring the view to where they are.
  if (outline.getBounds().isValid()) map.fitBounds(outline.getBounds());
}
