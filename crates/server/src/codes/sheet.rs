//! A4 sheets of printed codes, ready to print and cut: a grid of cells, each with the QR code
//! (drawn as vector squares, so it prints sharp at any size), the store's name and the label
//! under it. Text needs a font with CJK glyphs: the configured one, else the first found among
//! the usual system font paths; the font is embedded (subset) in the PDF.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::text::{Font, TextDirection};
use std::path::{Path, PathBuf};

/// Where Debian and friends keep fonts with Chinese glyphs.
const CJK_FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
];

/// One cell of the sheet.
pub struct Cell {
    /// The text the QR code carries (the code's URL).
    pub url: String,
    /// The big label under the code (the table's label).
    pub label: String,
}

/// Why no sheet could be made.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("no font with Chinese glyphs was found; install fonts-wqy-microhei or set cjk_font")]
    NoFont,
    #[error("a code could not be drawn: {0}")]
    Code(String),
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

fn find_font(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return p.exists().then(|| p.to_path_buf());
    }
    CJK_FONT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn black() -> Fill {
    Fill {
        paint: rgb::Color::new(0, 0, 0).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

fn grey() -> Fill {
    Fill {
        paint: rgb::Color::new(110, 110, 115).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

const A4_W: f32 = 595.0;
const A4_H: f32 = 842.0;
const COLS: usize = 3;
const ROWS: usize = 4;
const MARGIN: f32 = 28.0;

/// Lays out `cells` on A4 pages, 12 to a page, each headed by `title` (store and merchant).
pub fn render(
    title: &str,
    subtitle: &str,
    cells: &[Cell],
    font_path: Option<&Path>,
) -> Result<Vec<u8>, SheetError> {
    let path = find_font(font_path).ok_or(SheetError::NoFont)?;
    let data = std::fs::read(&path).map_err(|_| SheetError::NoFont)?;
    let font = Font::new(data.into(), 0).ok_or(SheetError::NoFont)?;
    let mut doc = Document::new();
    let cell_w = (A4_W - 2.0 * MARGIN) / COLS as f32;
    let cell_h = (A4_H - 2.0 * MARGIN - 40.0) / ROWS as f32;
    let pages: Vec<&[Cell]> = if cells.is_empty() {
        vec![&[]]
    } else {
        cells.chunks(COLS * ROWS).collect()
    };
    for chunk in pages {
        let mut page = doc.start_page_with(
            PageSettings::from_wh(A4_W, A4_H).ok_or(SheetError::Pdf("page size".into()))?,
        );
        let mut surface = page.surface();
        surface.set_fill(Some(black()));
        surface.draw_text(
            Point::from_xy(MARGIN, MARGIN + 14.0),
            font.clone(),
            16.0,
            title,
            false,
            TextDirection::Auto,
        );
        surface.set_fill(Some(grey()));
        surface.draw_text(
            Point::from_xy(MARGIN, MARGIN + 32.0),
            font.clone(),
            10.0,
            subtitle,
            false,
            TextDirection::Auto,
        );
        for (i, cell) in chunk.iter().enumerate() {
            let col = i % COLS;
            let row = i / COLS;
            let x0 = MARGIN + col as f32 * cell_w;
            let y0 = MARGIN + 40.0 + row as f32 * cell_h;
            let (n, modules) = o2o_codes::render::modules(&cell.url)
                .map_err(|e| SheetError::Code(e.to_string()))?;
            let qr_size = (cell_w - 24.0).min(cell_h - 52.0);
            let unit = qr_size / n as f32;
            let qx = x0 + (cell_w - qr_size) / 2.0;
            let qy = y0 + 8.0;
            let mut pb = PathBuilder::new();
            for (k, dark) in modules.iter().enumerate() {
                if *dark {
                    let (mx, my) = ((k % n) as f32, (k / n) as f32);
                    if let Some(r) = Rect::from_xywh(qx + mx * unit, qy + my * unit, unit, unit) {
                        pb.push_rect(r);
                    }
                }
            }
            surface.set_fill(Some(black()));
            if let Some(p) = pb.finish() {
                surface.draw_path(&p);
            }
            let label_y = qy + qr_size + 18.0;
            surface.draw_text(
                Point::from_xy(x0 + 12.0, label_y),
                font.clone(),
                14.0,
                &cell.label,
                false,
                TextDirection::Auto,
            );
            surface.set_fill(Some(grey()));
            surface.draw_text(
                Point::from_xy(x0 + 12.0, label_y + 14.0),
                font.clone(),
                8.0,
                title,
                false,
                TextDirection::Auto,
            );
            // Cut guide: a light frame around the cell.
            let mut frame = PathBuilder::new();
            if let Some(r) = Rect::from_xywh(x0 + 2.0, y0, cell_w - 4.0, cell_h - 4.0) {
                frame.push_rect(r);
            }
            if let Some(p) = frame.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(krilla::paint::Stroke {
                    paint: rgb::Color::new(200, 200, 205).into(),
                    width: 0.5,
                    ..Default::default()
                }));
                surface.draw_path(&p);
                surface.set_stroke(None);
            }
        }
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| SheetError::Pdf(format!("{e:?}")))
}
