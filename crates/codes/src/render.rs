//! Drawing QR codes: PNG at a requested pixel size and SVG, always with the 4-module quiet zone
//! scanners need, and error correction level Q (about 25% of the symbol can be smudged or torn
//! and it still reads), which suits printed stickers.

use image::{ImageFormat, Luma};
use qrcode::{EcLevel, QrCode};
use std::io::Cursor;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the text is too long for a QR code")]
    TooLong,
    #[error("size must be between {min} and {max} pixels")]
    BadSize { min: u32, max: u32 },
    #[error("encoding the image failed: {0}")]
    Image(String),
}

pub const MIN_PX: u32 = 64;
pub const MAX_PX: u32 = 2048;

fn code(text: &str) -> Result<QrCode, RenderError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q)
        .map_err(|_| RenderError::TooLong)
}

/// A PNG of about `size_px` × `size_px` (whole pixels per module, never smaller than asked).
pub fn png(text: &str, size_px: u32) -> Result<Vec<u8>, RenderError> {
    if !(MIN_PX..=MAX_PX).contains(&size_px) {
        return Err(RenderError::BadSize {
            min: MIN_PX,
            max: MAX_PX,
        });
    }
    let img = code(text)?
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .min_dimensions(size_px, size_px)
        .max_dimensions(MAX_PX, MAX_PX)
        .build();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| RenderError::Image(e.to_string()))?;
    Ok(out.into_inner())
}

/// An SVG that scales to any size.
pub fn svg(text: &str) -> Result<String, RenderError> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(256, 256)
        .build())
}

/// The module matrix (true = dark), with the quiet zone, for drawing into other documents.
pub fn modules(text: &str) -> Result<(usize, Vec<bool>), RenderError> {
    let c = code(text)?;
    let width = c.width();
    let quiet = 4;
    let full = width + 2 * quiet;
    let colors = c.to_colors();
    let mut out = vec![false; full * full];
    for y in 0..width {
        for x in 0..width {
            out[(y + quiet) * full + x + quiet] = colors[y * width + x] == qrcode::Color::Dark;
        }
    }
    Ok((full, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_png(bytes: &[u8]) -> String {
        let img = image::load_from_memory(bytes).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    #[test]
    fn a_rendered_png_decodes_to_exactly_its_text() {
        for text in [
            "https://o2o.example/q/abcdefghjk",
            "O2O:AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYUCULBOGA",
            "191234567890123456",
        ] {
            let png = png(text, 300).unwrap();
            assert_eq!(decode_png(&png), text);
        }
    }

    #[test]
    fn the_requested_size_is_respected_and_bounded() {
        let img = image::load_from_memory(&png("https://o2o.example/q/x", 512).unwrap()).unwrap();
        assert!(img.width() >= 512 && img.width() <= MAX_PX);
        assert!(png("x", 10).is_err());
        assert!(png("x", 100_000).is_err());
    }

    #[test]
    fn an_svg_is_a_scalable_document() {
        let s = svg("https://o2o.example/q/x").unwrap();
        assert!(s.contains("<svg") && s.contains("viewBox"));
    }

    #[test]
    fn the_module_matrix_has_a_quiet_zone() {
        let (w, m) = modules("hello").unwrap();
        assert!(m[..w * 4].iter().all(|d| !d));
        assert!(m.iter().any(|d| *d));
    }
}
