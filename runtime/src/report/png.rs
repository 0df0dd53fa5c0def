//! PNG copies of the charts: the same SVG documents rasterised with resvg, text set in a font
//! found on the system (no network, no font bundled).

use std::path::Path;

use anyhow::Context;
use resvg::{tiny_skia, usvg};

/// Sans-serif families tried in order; the first installed one sets the charts' text.
const SANS_SERIF: [&str; 5] = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans", "Arial"];

/// Pixels per SVG unit: twice the page size, sharp on high-density screens.
const SCALE: f32 = 2.0;

/// Rasterises SVG documents with one font database, loaded once.
pub struct PngRenderer {
    options: usvg::Options<'static>,
}

impl PngRenderer {
    pub fn new() -> Self {
        let mut options = usvg::Options::default();
        let fonts = options.fontdb_mut();
        fonts.load_system_fonts();
        let family = SANS_SERIF
            .iter()
            .find(|name| fonts.faces().any(|f| f.families.iter().any(|(family, _)| family == *name)))
            .map(|name| name.to_string())
            .or_else(|| fonts.faces().next().and_then(|f| f.families.first()).map(|(family, _)| family.clone()));
        match family {
            Some(family) => {
                tracing::debug!(%family, faces = fonts.len(), "PNG text font");
                fonts.set_sans_serif_family(family.clone());
                options.font_family = family;
            }
            None => tracing::warn!(
                "no fonts found on this system: the PNG charts will have no text (the HTML page is unaffected; \
                 install one, e.g. Debian's fonts-dejavu-core)"
            ),
        }
        PngRenderer { options }
    }

    /// Writes `svg` as a PNG file at `path`.
    pub fn write(&self, svg: &str, path: &Path) -> anyhow::Result<()> {
        let tree = usvg::Tree::from_str(svg, &self.options).context("parsing a chart's SVG")?;
        let size = tree.size().to_int_size().scale_by(SCALE).context("chart too large for a PNG")?;
        let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).context("chart too large for a PNG")?;
        resvg::render(&tree, tiny_skia::Transform::from_scale(SCALE, SCALE), &mut pixmap.as_mut());
        let bytes = pixmap.encode_png().context("encoding a PNG")?;
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }
}

impl Default for PngRenderer {
    fn default() -> Self {
        Self::new()
    }
}
