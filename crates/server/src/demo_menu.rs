//! The demo café's menu: categories, products with Chinese and English names, option groups
//! (size, sugar, milk), a few barcodes, per-store prices and stock, and photos the demo draws
//! itself (simple cups, glasses and pastries in each product's colours), so the journeys look
//! like a real café without shipping any image files.

use crate::catalog::model::{CreateCategory, CreateProduct, OptionGroup, PutStoreProduct};
use crate::catalog::service as catalog;
use crate::db::{MerchantScope, Tx};
use image::{Rgb, RgbImage};

/// What a demo photo shows.
#[derive(Clone, Copy)]
enum Shape {
    Cup,
    Glass,
    Croissant,
    Cake,
    Muffin,
    Bottle,
}

struct DemoProduct {
    category: usize,
    zh: &'static str,
    en: &'static str,
    description: &'static str,
    price: i64,
    options: &'static [&'static str],
    barcode: Option<&'static str>,
    shape: Shape,
    colour: [u8; 3],
}

const CATEGORIES: &[(&str, &str)] = &[
    ("咖啡", "Coffee"),
    ("茶饮", "Tea & more"),
    ("烘焙", "Bakery"),
];

const PRODUCTS: &[DemoProduct] = &[
    DemoProduct {
        category: 0,
        zh: "美式咖啡",
        en: "Americano",
        description: "双份浓缩加热水，醇厚不苦",
        price: 2200,
        options: &["size", "sugar"],
        barcode: None,
        shape: Shape::Cup,
        colour: [62, 39, 25],
    },
    DemoProduct {
        category: 0,
        zh: "拿铁",
        en: "Caffè Latte",
        description: "浓缩咖啡与丝滑热牛奶",
        price: 2800,
        options: &["size", "milk", "sugar"],
        barcode: None,
        shape: Shape::Cup,
        colour: [196, 154, 108],
    },
    DemoProduct {
        category: 0,
        zh: "燕麦拿铁",
        en: "Oat Latte",
        description: "燕麦奶拿铁，植物基之选",
        price: 3200,
        options: &["size", "sugar"],
        barcode: None,
        shape: Shape::Cup,
        colour: [214, 180, 132],
    },
    DemoProduct {
        category: 0,
        zh: "卡布奇诺",
        en: "Cappuccino",
        description: "厚奶泡，撒少许可可粉",
        price: 2800,
        options: &["size", "milk"],
        barcode: None,
        shape: Shape::Cup,
        colour: [170, 120, 80],
    },
    DemoProduct {
        category: 0,
        zh: "焦糖玛奇朵",
        en: "Caramel Macchiato",
        description: "香草糖浆、牛奶、浓缩与焦糖酱",
        price: 3200,
        options: &["size", "milk"],
        barcode: None,
        shape: Shape::Cup,
        colour: [201, 130, 54],
    },
    DemoProduct {
        category: 0,
        zh: "馥芮白",
        en: "Flat White",
        description: "瑞斯特雷托与微奶泡",
        price: 3000,
        options: &["milk"],
        barcode: None,
        shape: Shape::Cup,
        colour: [180, 135, 95],
    },
    DemoProduct {
        category: 1,
        zh: "抹茶拿铁",
        en: "Matcha Latte",
        description: "宇治抹茶与牛奶",
        price: 3000,
        options: &["size", "milk", "sugar"],
        barcode: None,
        shape: Shape::Cup,
        colour: [118, 160, 70],
    },
    DemoProduct {
        category: 1,
        zh: "桂花乌龙",
        en: "Osmanthus Oolong",
        description: "冷泡乌龙，桂花清香",
        price: 2400,
        options: &["size", "sugar"],
        barcode: None,
        shape: Shape::Glass,
        colour: [222, 160, 60],
    },
    DemoProduct {
        category: 1,
        zh: "柠檬气泡水",
        en: "Sparkling Lemonade",
        description: "鲜榨柠檬与气泡水",
        price: 1800,
        options: &["size"],
        barcode: None,
        shape: Shape::Glass,
        colour: [246, 226, 110],
    },
    DemoProduct {
        category: 1,
        zh: "瓶装矿泉水",
        en: "Bottled Water",
        description: "550 ml",
        price: 500,
        options: &[],
        barcode: Some("6901234560046"),
        shape: Shape::Bottle,
        colour: [120, 180, 230],
    },
    DemoProduct {
        category: 2,
        zh: "可颂",
        en: "Croissant",
        description: "法国黄油，每日现烤",
        price: 1500,
        options: &[],
        barcode: Some("6901234560015"),
        shape: Shape::Croissant,
        colour: [214, 150, 62],
    },
    DemoProduct {
        category: 2,
        zh: "芝士蛋糕",
        en: "Cheesecake",
        description: "纽约风味重芝士",
        price: 2800,
        options: &[],
        barcode: Some("6901234560022"),
        shape: Shape::Cake,
        colour: [250, 226, 160],
    },
    DemoProduct {
        category: 2,
        zh: "蓝莓玛芬",
        en: "Blueberry Muffin",
        description: "新鲜蓝莓，松软香甜",
        price: 1600,
        options: &[],
        barcode: Some("6901234560039"),
        shape: Shape::Muffin,
        colour: [92, 84, 160],
    },
];

fn option_group(key: &str) -> OptionGroup {
    let v = match key {
        "size" => {
            serde_json::json!({"key": "size", "name_zh": "杯型", "name_en": "Size", "choice": "single", "required": true,
            "options": [{"key": "medium", "name_zh": "中杯", "name_en": "Medium", "price_delta": 0},
                        {"key": "large", "name_zh": "大杯", "name_en": "Large", "price_delta": 300}]})
        }
        "sugar" => {
            serde_json::json!({"key": "sugar", "name_zh": "糖度", "name_en": "Sugar", "choice": "single", "required": false,
            "options": [{"key": "none", "name_zh": "不另外加糖", "name_en": "No added sugar"},
                        {"key": "less", "name_zh": "少糖", "name_en": "Less sugar"},
                        {"key": "standard", "name_zh": "标准糖", "name_en": "Standard"}]})
        }
        _ => {
            serde_json::json!({"key": "milk", "name_zh": "奶", "name_en": "Milk", "choice": "single", "required": false,
            "options": [{"key": "whole", "name_zh": "全脂牛奶", "name_en": "Whole milk"},
                        {"key": "oat", "name_zh": "燕麦奶", "name_en": "Oat milk", "price_delta": 400}]})
        }
    };
    serde_json::from_value(v).expect("demo option groups are well formed")
}

/// A store's setting for a product: (store index, product index, price, available, stock).
type StoreSetting = (usize, usize, Option<i64>, bool, Option<i64>);

/// Per store (by index), products (by index) with a store price, availability or stock.
const STORE_SETTINGS: &[StoreSetting] = &[
    // Jing'an: twelve croissants left today; the muffins are sold out.
    (0, 10, None, true, Some(12)),
    (0, 12, None, true, Some(0)),
    // The Bund: tourist prices on the oat latte; no cheesecake today.
    (1, 2, Some(3400), true, None),
    (1, 11, None, false, None),
];

/// Seeds the menu for the merchant's stores inside the demo's write.
pub async fn seed(tx: &mut Tx, scope: &MerchantScope, stores: &[String]) -> anyhow::Result<()> {
    let mut categories = Vec::new();
    for (i, (zh, en)) in CATEGORIES.iter().enumerate() {
        let c = catalog::create_category(
            tx,
            scope,
            CreateCategory {
                name_zh: Some((*zh).to_owned()),
                name_en: Some((*en).to_owned()),
                position: Some(i as i64),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        categories.push(c.value.id);
    }
    let mut ids = Vec::new();
    for (i, p) in PRODUCTS.iter().enumerate() {
        let product = catalog::create_product(
            tx,
            scope,
            CreateProduct {
                name_zh: Some(p.zh.to_owned()),
                name_en: Some(p.en.to_owned()),
                description: Some(p.description.to_owned()),
                price: p.price,
                currency: Some("CNY".to_owned()),
                category_id: Some(categories[p.category].clone()),
                option_groups: p.options.iter().map(|k| option_group(k)).collect(),
                barcode: p.barcode.map(str::to_owned),
                position: Some(i as i64),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .value;
        let png = photo_png(p.shape, p.colour)?;
        let etag = {
            use sha2::{Digest, Sha256};
            hex::encode(&Sha256::digest(&png)[..8])
        };
        let renditions = catalog::render_photo(&png).map_err(|e| anyhow::anyhow!("{e}"))?;
        let _ = catalog::store_rendered_photo(tx, scope, &product.id, &etag, renditions)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(product.id);
    }
    for (store, product, price, available, stock) in STORE_SETTINGS {
        let Some(store_id) = stores.get(*store) else {
            continue;
        };
        let _ = catalog::put_store_product(
            tx,
            scope,
            store_id,
            &ids[*product],
            PutStoreProduct {
                price: *price,
                available: Some(*available),
                stock: *stock,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

// ----- drawing -----

const SIZE: u32 = 480;

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> Rgb<u8> {
    let m = |x: u8, y: u8| (f32::from(x) * (1.0 - t) + f32::from(y) * t).round() as u8;
    Rgb([m(a[0], b[0]), m(a[1], b[1]), m(a[2], b[2])])
}

fn in_ellipse(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32) -> bool {
    let dx = (x - cx) / rx;
    let dy = (y - cy) / ry;
    dx * dx + dy * dy <= 1.0
}

/// Draws one product picture: a soft background in the product's colour and its shape.
fn draw(shape: Shape, colour: [u8; 3]) -> RgbImage {
    let white = [255, 255, 255];
    let bg_top = mix(colour, white, 0.85).0;
    let bg_bottom = mix(colour, white, 0.7).0;
    let shadow = mix(colour, [60, 60, 60], 0.6).0;
    RgbImage::from_fn(SIZE, SIZE, |px, py| {
        let (x, y) = (px as f32, py as f32);
        let mut c = mix(bg_top, bg_bottom, y / SIZE as f32);
        match shape {
            Shape::Cup => {
                if in_ellipse(x, y, 240.0, 392.0, 190.0, 40.0) {
                    c = Rgb([245, 245, 245]);
                }
                if in_ellipse(x, y, 240.0, 392.0, 190.0, 40.0)
                    && !in_ellipse(x, y, 240.0, 388.0, 182.0, 35.0)
                {
                    c = Rgb([215, 215, 215]);
                }
                // The handle: a ring on the right.
                let d = ((x - 345.0).powi(2) + (y - 250.0).powi(2)).sqrt();
                if (30.0..48.0).contains(&d) && x > 330.0 {
                    c = Rgb([250, 250, 250]);
                }
                // The cup: a trapezoid narrowing downwards.
                if (170.0..380.0).contains(&y) {
                    let t = (y - 170.0) / 210.0;
                    let half = 125.0 - 35.0 * t;
                    if (x - 240.0).abs() <= half {
                        c = mix(
                            white,
                            [225, 225, 225],
                            (x - 240.0 + half) / (2.0 * half) * 0.6,
                        );
                    }
                }
                if in_ellipse(x, y, 240.0, 172.0, 125.0, 26.0) {
                    c = Rgb(colour);
                    // A little latte art.
                    if in_ellipse(x, y, 240.0, 174.0, 40.0, 12.0) {
                        c = mix(colour, white, 0.75);
                    }
                }
            }
            Shape::Glass | Shape::Bottle => {
                let (left, right, top) = if matches!(shape, Shape::Glass) {
                    (160.0, 320.0, 110.0)
                } else {
                    (190.0, 290.0, 150.0)
                };
                if in_ellipse(x, y, 240.0, 420.0, 120.0, 18.0) {
                    c = Rgb(shadow);
                }
                if (left..right).contains(&x) && (top..420.0).contains(&y) {
                    c = mix(white, colour, 0.25);
                    let fill = if matches!(shape, Shape::Glass) {
                        170.0
                    } else {
                        top
                    };
                    if y > fill {
                        c = mix(
                            colour,
                            white,
                            ((x - left) / (right - left) - 0.3).abs() * 0.6,
                        );
                    }
                    // Bubbles.
                    for (bx, by) in [
                        (200.0, 260.0),
                        (260.0, 320.0),
                        (230.0, 220.0),
                        (285.0, 380.0),
                    ] {
                        if in_ellipse(x, y, bx, by, 8.0, 8.0) {
                            c = mix(colour, white, 0.8);
                        }
                    }
                }
                if matches!(shape, Shape::Bottle)
                    && (215.0..265.0).contains(&x)
                    && (90.0..150.0).contains(&y)
                {
                    c = Rgb([40, 90, 170]);
                }
                if matches!(shape, Shape::Bottle)
                    && (190.0..290.0).contains(&x)
                    && (250.0..320.0).contains(&y)
                {
                    c = Rgb([250, 250, 250]);
                }
            }
            Shape::Croissant => {
                if in_ellipse(x, y, 240.0, 380.0, 200.0, 30.0) {
                    c = Rgb(shadow);
                }
                if in_ellipse(x, y, 240.0, 280.0, 190.0, 110.0)
                    && !in_ellipse(x, y, 240.0, 370.0, 120.0, 90.0)
                {
                    // Ridges across the crescent.
                    let ridge = ((x - 240.0) / 38.0).sin().abs();
                    c = mix(colour, [120, 70, 20], 0.45 * (1.0 - ridge));
                }
            }
            Shape::Cake => {
                if in_ellipse(x, y, 240.0, 390.0, 180.0, 28.0) {
                    c = Rgb([245, 245, 245]);
                }
                // A wedge: crust below, cream body, berry top.
                if (110.0..370.0).contains(&x)
                    && (200.0..380.0).contains(&y)
                    && y >= 200.0 + (x - 110.0) * 0.25
                {
                    c = if y > 350.0 {
                        Rgb([170, 110, 50])
                    } else {
                        mix(colour, white, 0.2)
                    };
                }
                if (110.0..370.0).contains(&x)
                    && (170.0..200.0 + (x - 110.0) * 0.25).contains(&y)
                    && y >= 170.0 + (x - 110.0) * 0.25
                {
                    c = Rgb([190, 40, 60]);
                }
            }
            Shape::Muffin => {
                if in_ellipse(x, y, 240.0, 400.0, 150.0, 22.0) {
                    c = Rgb(shadow);
                }
                if (250.0..400.0).contains(&y) {
                    let half = 110.0 - 30.0 * (y - 250.0) / 150.0;
                    if (x - 240.0).abs() <= half {
                        let stripe = (((x - 240.0) / 12.0).floor() as i32).rem_euclid(2) == 0;
                        c = if stripe {
                            Rgb([230, 200, 200])
                        } else {
                            Rgb([240, 215, 215])
                        };
                    }
                }
                if in_ellipse(x, y, 240.0, 240.0, 140.0, 95.0) && y < 262.0 {
                    c = Rgb([205, 150, 80]);
                    for (bx, by) in [
                        (200.0, 210.0),
                        (270.0, 190.0),
                        (300.0, 235.0),
                        (180.0, 245.0),
                        (240.0, 225.0),
                    ] {
                        if in_ellipse(x, y, bx, by, 14.0, 14.0) {
                            c = Rgb(colour);
                        }
                    }
                }
            }
        }
        c
    })
}

/// The product picture as PNG bytes (it then goes through the same checks as an upload).
fn photo_png(shape: Shape, colour: [u8; 3]) -> anyhow::Result<Vec<u8>> {
    let img = draw(shape, colour);
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_photo_is_a_real_image_that_the_upload_path_accepts() {
        for p in PRODUCTS {
            let png = photo_png(p.shape, p.colour).unwrap();
            let renditions = catalog::render_photo(&png).unwrap();
            assert_eq!(renditions.len(), 2);
        }
    }

    #[test]
    fn demo_barcodes_and_option_groups_are_valid() {
        for p in PRODUCTS {
            if let Some(b) = p.barcode {
                crate::catalog::model::Barcode::parse(b).unwrap();
            }
            let groups = p.options.iter().map(|k| option_group(k)).collect();
            crate::catalog::model::parse_option_groups(groups).unwrap();
        }
    }
}
