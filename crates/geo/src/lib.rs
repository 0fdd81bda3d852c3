//! Coordinates, distances and nearby search for o2o.
//!
//! A [`LatLng`] is a WGS 84 point that is known to be finite and in range,
//! parsed either from two numbers or from the `?near=lat,lng` query form.
//! [`distance_m`] gives the great-circle distance between two points, and
//! [`BoundingBox::around`] gives a latitude/longitude rectangle that is
//! guaranteed to contain every point within a radius, so that a nearby search
//! can pre-filter on indexed columns before computing exact distances.
//! [`Radius`] is the search radius a caller is allowed to ask for.

use std::f64::consts::{FRAC_PI_2, PI};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Mean Earth radius in metres (IUGG R1), used for all distances.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Why a coordinate or radius was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GeoError {
    /// The coordinates are malformed, not finite or out of range.
    #[error("invalid coordinates: {0}")]
    InvalidCoordinates(CoordinateProblem),
    /// A search radius outside [`Radius::MIN_M`]..=[`Radius::MAX_M`] metres.
    #[error(
        "radius must be between {min} and {max} metres, got {got}",
        min = Radius::MIN_M,
        max = Radius::MAX_M
    )]
    RadiusOutOfRange {
        /// The radius that was asked for, in metres.
        got: u32,
    },
}

impl GeoError {
    /// A stable snake_case code for this error, suitable for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            GeoError::InvalidCoordinates(_) => "invalid_coordinates",
            GeoError::RadiusOutOfRange { .. } => "radius_out_of_range",
        }
    }
}

/// What exactly is wrong with rejected coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CoordinateProblem {
    /// The text has no comma between latitude and longitude.
    #[error("expected `lat,lng`, found no comma")]
    MissingComma,
    /// One of the two parts is not a decimal number.
    #[error("latitude and longitude must be decimal numbers")]
    NotANumber,
    /// A coordinate is NaN or infinite.
    #[error("latitude and longitude must be finite")]
    NotFinite,
    /// The latitude is outside [-90, 90] degrees.
    #[error("latitude must be between -90 and 90 degrees")]
    LatitudeOutOfRange,
    /// The longitude is outside [-180, 180] degrees.
    #[error("longitude must be between -180 and 180 degrees")]
    LongitudeOutOfRange,
}

impl From<CoordinateProblem> for GeoError {
    fn from(problem: CoordinateProblem) -> Self {
        GeoError::InvalidCoordinates(problem)
    }
}

/// A point on Earth in decimal degrees: latitude in [-90, 90], longitude in
/// [-180, 180], both finite.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatLng {
    lat: f64,
    lng: f64,
}

impl LatLng {
    /// A point from latitude and longitude in degrees, rejecting NaN,
    /// infinities and out-of-range values.
    pub fn new(lat: f64, lng: f64) -> Result<LatLng, GeoError> {
        if !lat.is_finite() || !lng.is_finite() {
            return Err(CoordinateProblem::NotFinite.into());
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(CoordinateProblem::LatitudeOutOfRange.into());
        }
        if !(-180.0..=180.0).contains(&lng) {
            return Err(CoordinateProblem::LongitudeOutOfRange.into());
        }
        Ok(LatLng { lat, lng })
    }

    /// Parses the `?near=` query form `"lat,lng"`, e.g. `"31.2304,121.4737"`;
    /// spaces around either number are ignored.
    pub fn parse(text: &str) -> Result<LatLng, GeoError> {
        let (lat, lng) = text
            .split_once(',')
            .ok_or(CoordinateProblem::MissingComma)?;
        let number = |part: &str| {
            part.trim()
                .parse::<f64>()
                .map_err(|_| GeoError::from(CoordinateProblem::NotANumber))
        };
        LatLng::new(number(lat)?, number(lng)?)
    }

    /// Latitude in degrees, positive north.
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// Longitude in degrees, positive east.
    pub fn lng(self) -> f64 {
        self.lng
    }
}

impl fmt::Display for LatLng {
    /// Formats in the `"lat,lng"` form that [`LatLng::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.lat, self.lng)
    }
}

impl FromStr for LatLng {
    type Err = GeoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LatLng::parse(s)
    }
}

impl<'de> Deserialize<'de> for LatLng {
    /// Reads `{"lat": .., "lng": ..}` and applies the same checks as
    /// [`LatLng::new`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            lat: f64,
            lng: f64,
        }
        let raw = Raw::deserialize(deserializer)?;
        LatLng::new(raw.lat, raw.lng).map_err(serde::de::Error::custom)
    }
}

/// Great-circle distance in metres between two points, by the haversine
/// formula on a sphere of radius [`EARTH_RADIUS_M`].
pub fn distance_m(a: LatLng, b: LatLng) -> f64 {
    let (lat_a, lat_b) = (a.lat.to_radians(), b.lat.to_radians());
    let half_dlat = (lat_b - lat_a) / 2.0;
    let half_dlng = (b.lng - a.lng).to_radians() / 2.0;
    let h = half_dlat.sin().powi(2) + lat_a.cos() * lat_b.cos() * half_dlng.sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// [`distance_m`] rounded to the nearest whole metre; half the
/// circumference of the Earth is about 20 million metres, so it always fits.
pub fn distance_m_rounded(a: LatLng, b: LatLng) -> u32 {
    // The distance is finite, non-negative and at most about 2.0e7.
    distance_m(a, b).round() as u32
}

/// A latitude/longitude rectangle in degrees, with `min <= max` on both axes.
///
/// Rectangles built by [`BoundingBox::around`] never wrap across the
/// antimeridian: when they would, they cover the full longitude range
/// instead, so `lng BETWEEN min_lng AND max_lng` is always a valid filter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoundingBox {
    min_lat: f64,
    max_lat: f64,
    min_lng: f64,
    max_lng: f64,
}

impl BoundingBox {
    /// The smallest convenient rectangle containing every point within
    /// `radius_m` metres (great-circle) of `center`.
    ///
    /// It is meant as an indexed pre-filter before the exact
    /// [`distance_m`] check, so it errs on the side of being too large: the
    /// radius gets a tiny safety margin against rounding, a circle that
    /// reaches a pole covers every longitude, and a circle that would cross
    /// the ±180° meridian also covers every longitude.
    pub fn around(center: LatLng, radius_m: u32) -> BoundingBox {
        // Angular radius in radians, widened by a relative 1e-6 plus about
        // 6 mm so floating-point rounding can never exclude a point that is
        // within the radius.
        let delta = f64::from(radius_m) / EARTH_RADIUS_M * (1.0 + 1e-6) + 1e-9;
        let lat = center.lat.to_radians();
        let (min_lat, max_lat) = (lat - delta, lat + delta);

        let full_longitudes = |min_lat: f64, max_lat: f64| BoundingBox {
            min_lat: min_lat.to_degrees().max(-90.0),
            max_lat: max_lat.to_degrees().min(90.0),
            min_lng: -180.0,
            max_lng: 180.0,
        };

        if min_lat <= -FRAC_PI_2 || max_lat >= FRAC_PI_2 {
            // A pole is within reach, and around it every meridian is.
            return full_longitudes(min_lat, max_lat);
        }
        // Widest longitude offset of the circle, reached at the points where
        // meridians are tangent to it.
        let sin_dlng = delta.sin() / lat.cos();
        if sin_dlng >= 1.0 {
            return full_longitudes(min_lat, max_lat);
        }
        let dlng = sin_dlng.asin();
        let lng = center.lng.to_radians();
        let (min_lng, max_lng) = (lng - dlng, lng + dlng);
        if min_lng < -PI || max_lng > PI {
            // Crossing the antimeridian would need two ranges; take all.
            return full_longitudes(min_lat, max_lat);
        }
        BoundingBox {
            min_lat: min_lat.to_degrees().max(-90.0),
            max_lat: max_lat.to_degrees().min(90.0),
            min_lng: min_lng.to_degrees().max(-180.0),
            max_lng: max_lng.to_degrees().min(180.0),
        }
    }

    /// Southern edge, in degrees.
    pub fn min_lat(&self) -> f64 {
        self.min_lat
    }

    /// Northern edge, in degrees.
    pub fn max_lat(&self) -> f64 {
        self.max_lat
    }

    /// Western edge, in degrees.
    pub fn min_lng(&self) -> f64 {
        self.min_lng
    }

    /// Eastern edge, in degrees.
    pub fn max_lng(&self) -> f64 {
        self.max_lng
    }

    /// Whether `point` lies inside the rectangle, edges included.
    pub fn contains(&self, point: LatLng) -> bool {
        (self.min_lat..=self.max_lat).contains(&point.lat)
            && (self.min_lng..=self.max_lng).contains(&point.lng)
    }
}

/// A nearby-search radius in whole metres, between [`Radius::MIN_M`] and
/// [`Radius::MAX_M`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Radius(u32);

impl Radius {
    /// The smallest radius that may be asked for, in metres.
    pub const MIN_M: u32 = 1;
    /// The largest radius that may be asked for, in metres (50 km).
    pub const MAX_M: u32 = 50_000;

    /// A radius of `metres`, rejected with [`GeoError::RadiusOutOfRange`]
    /// outside `1..=50_000`.
    pub fn parse_m(metres: u32) -> Result<Radius, GeoError> {
        if (Radius::MIN_M..=Radius::MAX_M).contains(&metres) {
            Ok(Radius(metres))
        } else {
            Err(GeoError::RadiusOutOfRange { got: metres })
        }
    }

    /// The radius in metres.
    pub fn metres(self) -> u32 {
        self.0
    }

    /// The bounding box of this radius around `center`; see
    /// [`BoundingBox::around`].
    pub fn bounding_box(self, center: LatLng) -> BoundingBox {
        BoundingBox::around(center, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(lat: f64, lng: f64) -> LatLng {
        LatLng::new(lat, lng).unwrap()
    }

    fn peoples_square() -> LatLng {
        at(31.2304, 121.4737)
    }

    /// The point `distance` metres from `from` along initial `bearing`
    /// (radians), normalised into the valid coordinate ranges.
    fn destination(from: LatLng, bearing: f64, distance: f64) -> LatLng {
        let d = distance / EARTH_RADIUS_M;
        let lat1 = from.lat().to_radians();
        let lng1 = from.lng().to_radians();
        let lat2 = (lat1.sin() * d.cos() + lat1.cos() * d.sin() * bearing.cos())
            .clamp(-1.0, 1.0)
            .asin();
        let lng2 =
            lng1 + (bearing.sin() * d.sin() * lat1.cos()).atan2(d.cos() - lat1.sin() * lat2.sin());
        let lng2 = (lng2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        at(lat2.to_degrees().clamp(-90.0, 90.0), lng2)
    }

    #[test]
    fn peoples_square_to_the_bund_is_about_one_point_nine_kilometres() {
        let bund = at(31.2400, 121.4900);
        let d = distance_m(peoples_square(), bund);
        // Equirectangular estimate: 1067 m north, 1549 m east.
        assert!((d - 1_881.0).abs() / 1_881.0 < 0.02, "{d}");
        assert_eq!(distance_m_rounded(peoples_square(), bund), d.round() as u32);
    }

    #[test]
    fn a_point_is_zero_metres_from_itself() {
        assert_eq!(distance_m(peoples_square(), peoples_square()), 0.0);
        assert_eq!(distance_m_rounded(at(90.0, 0.0), at(90.0, 123.0)), 0);
    }

    #[test]
    fn antipodal_points_are_half_the_circumference_apart() {
        let half_circumference = PI * EARTH_RADIUS_M;
        let d = distance_m(at(0.0, 0.0), at(0.0, 180.0));
        assert!((d - half_circumference).abs() < 1.0, "{d}");
        let d = distance_m(peoples_square(), at(-31.2304, -58.5263));
        assert!((d - half_circumference).abs() < 1.0, "{d}");
        assert_eq!(
            distance_m_rounded(at(90.0, 0.0), at(-90.0, 0.0)) / 1000,
            20_015
        );
    }

    #[test]
    fn the_near_query_form_parses_with_or_without_spaces() {
        assert_eq!(LatLng::parse("31.2304,121.4737"), Ok(peoples_square()));
        assert_eq!(LatLng::parse(" 31.2304 , 121.4737 "), Ok(peoples_square()));
        assert_eq!("-90,180".parse::<LatLng>(), Ok(at(-90.0, 180.0)));
    }

    #[test]
    fn coordinates_without_a_comma_are_rejected() {
        assert_eq!(
            LatLng::parse("31.2304 121.4737"),
            Err(GeoError::InvalidCoordinates(
                CoordinateProblem::MissingComma
            ))
        );
        assert_eq!(
            LatLng::parse(""),
            Err(GeoError::InvalidCoordinates(
                CoordinateProblem::MissingComma
            ))
        );
    }

    #[test]
    fn coordinates_that_are_not_numbers_are_rejected() {
        for bad in [
            "abc,121",
            "31.2,",
            ",121",
            "31.2,121,5",
            "31.2;x,121",
            "1e,2",
        ] {
            assert_eq!(
                LatLng::parse(bad),
                Err(GeoError::InvalidCoordinates(CoordinateProblem::NotANumber)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn coordinates_that_are_not_finite_are_rejected() {
        for bad in ["NaN,0", "0,inf", "-infinity,0"] {
            assert_eq!(
                LatLng::parse(bad),
                Err(GeoError::InvalidCoordinates(CoordinateProblem::NotFinite)),
                "{bad:?}"
            );
        }
        assert!(LatLng::new(f64::NAN, 0.0).is_err());
    }

    #[test]
    fn coordinates_out_of_range_are_rejected() {
        assert_eq!(
            LatLng::new(90.000_001, 0.0),
            Err(CoordinateProblem::LatitudeOutOfRange.into())
        );
        assert_eq!(
            LatLng::new(-91.0, 0.0),
            Err(CoordinateProblem::LatitudeOutOfRange.into())
        );
        assert_eq!(
            LatLng::new(0.0, 180.5),
            Err(CoordinateProblem::LongitudeOutOfRange.into())
        );
        assert_eq!(
            LatLng::parse("121.4737,31.2304").unwrap_err().code(),
            "invalid_coordinates"
        );
    }

    #[test]
    fn a_point_serializes_as_lat_and_lng() {
        let json = serde_json::to_value(peoples_square()).unwrap();
        assert_eq!(json, serde_json::json!({ "lat": 31.2304, "lng": 121.4737 }));
        let back: LatLng = serde_json::from_value(json).unwrap();
        assert_eq!(back, peoples_square());
    }

    #[test]
    fn a_point_out_of_range_does_not_deserialize() {
        let err = serde_json::from_str::<LatLng>(r#"{"lat": 95, "lng": 0}"#).unwrap_err();
        assert!(err.to_string().contains("latitude"), "{err}");
    }

    #[test]
    fn radii_from_one_metre_to_fifty_kilometres_are_accepted() {
        assert_eq!(Radius::parse_m(1).map(Radius::metres), Ok(1));
        assert_eq!(Radius::parse_m(50_000).map(Radius::metres), Ok(50_000));
    }

    #[test]
    fn radii_of_zero_or_beyond_fifty_kilometres_are_rejected() {
        for bad in [0, 50_001, u32::MAX] {
            let err = Radius::parse_m(bad).unwrap_err();
            assert_eq!(err, GeoError::RadiusOutOfRange { got: bad });
            assert_eq!(err.code(), "radius_out_of_range");
        }
    }

    #[test]
    fn a_city_bounding_box_is_tight_around_its_circle() {
        let bbox = BoundingBox::around(peoples_square(), 5_000);
        // 5 km is about 0.045 degrees of latitude.
        assert!(
            (bbox.max_lat() - bbox.min_lat() - 0.0899).abs() < 0.001,
            "{bbox:?}"
        );
        assert!(bbox.max_lng() - bbox.min_lng() < 0.11, "{bbox:?}");
        assert!(bbox.contains(peoples_square()));
        let north_of_the_circle = destination(peoples_square(), 0.0, 5_050.0);
        let east_of_the_circle = destination(peoples_square(), FRAC_PI_2, 5_050.0);
        assert!(!bbox.contains(north_of_the_circle));
        assert!(!bbox.contains(east_of_the_circle));
    }

    #[test]
    fn a_box_reaching_a_pole_covers_every_longitude() {
        let bbox = BoundingBox::around(at(89.9, 10.0), 20_000);
        assert_eq!((bbox.min_lng(), bbox.max_lng()), (-180.0, 180.0));
        assert_eq!(bbox.max_lat(), 90.0);
        let bbox = Radius::parse_m(1).unwrap().bounding_box(at(-90.0, 0.0));
        assert_eq!(
            (bbox.min_lat(), bbox.min_lng(), bbox.max_lng()),
            (-90.0, -180.0, 180.0)
        );
    }

    #[test]
    fn a_box_crossing_the_antimeridian_covers_every_longitude() {
        let fiji = at(-17.8, 179.99);
        let bbox = BoundingBox::around(fiji, 10_000);
        assert_eq!((bbox.min_lng(), bbox.max_lng()), (-180.0, 180.0));
        assert!(bbox.max_lat() - bbox.min_lat() < 0.2, "{bbox:?}");
        assert!(bbox.contains(destination(fiji, FRAC_PI_2, 5_000.0)));
    }

    fn any_center() -> impl Strategy<Value = LatLng> {
        let lat = prop_oneof![
            -90.0..=90.0,
            89.0..=90.0,
            -90.0..=-89.0,
            Just(90.0),
            Just(-90.0),
        ];
        let lng = prop_oneof![
            -180.0..=180.0,
            179.0..=180.0,
            -180.0..=-179.0,
            Just(180.0),
            Just(-180.0),
        ];
        (lat, lng).prop_map(|(lat, lng)| at(lat, lng))
    }

    proptest! {
        #[test]
        fn every_point_within_the_radius_lies_inside_the_bounding_box(
            center in any_center(),
            radius_m in Radius::MIN_M..=Radius::MAX_M,
            bearing in 0.0..(2.0 * PI),
            fraction in prop_oneof![0.0..=1.0, Just(1.0)],
        ) {
            // On the circle itself (fraction 1) the generated point may land
            // a rounding error outside the radius; the box must hold it anyway.
            let point = destination(center, bearing, f64::from(radius_m) * fraction);
            let bbox = BoundingBox::around(center, radius_m);
            prop_assert!(bbox.contains(point), "{point} not in {bbox:?} around {center}");
        }

        #[test]
        fn bounding_boxes_stay_within_the_valid_ranges(
            center in any_center(),
            radius_m in any::<u32>(),
        ) {
            let bbox = BoundingBox::around(center, radius_m);
            prop_assert!(-90.0 <= bbox.min_lat() && bbox.min_lat() <= bbox.max_lat());
            prop_assert!(bbox.max_lat() <= 90.0);
            prop_assert!(-180.0 <= bbox.min_lng() && bbox.min_lng() <= bbox.max_lng());
            prop_assert!(bbox.max_lng() <= 180.0);
            prop_assert!(bbox.contains(center));
        }

        #[test]
        fn distance_is_symmetric_and_at_most_half_the_circumference(
            a in any_center(),
            b in any_center(),
        ) {
            let d = distance_m(a, b);
            prop_assert!((0.0..=PI * EARTH_RADIUS_M + 1e-6).contains(&d));
            prop_assert!((d - distance_m(b, a)).abs() < 1e-6);
        }

        #[test]
        fn a_point_reads_back_from_its_display_form(center in any_center()) {
            prop_assert_eq!(LatLng::parse(&center.to_string()), Ok(center));
        }

        #[test]
        fn arbitrary_text_never_panics_the_parser(text in ".{0,40}") {
            let _ = LatLng::parse(&text);
        }
    }
}
