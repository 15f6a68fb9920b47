//! Number formatting shared by the markdown and HTML renderings.

/// Shown for a number that is missing or not finite.
pub(crate) const MISSING: &str = "–";

/// A fraction as a percentage with one decimal: `0.7312` -> `73.1`.
pub(crate) fn pct(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.1}", fraction * 100.0)
    } else {
        "n/a".to_string()
    }
}

/// A 95% interval as whole percentages: `[0.66, 0.79]` -> `[66–79]`.
pub(crate) fn ci(interval: [f64; 2]) -> String {
    let [lo, hi] = interval;
    if lo.is_finite() && hi.is_finite() {
        format!("[{:.0}–{:.0}]", lo * 100.0, hi * 100.0)
    } else {
        "[n/a]".to_string()
    }
}

/// A change of a fraction as signed percentage points: `0.042` -> `+4.2`.
pub(crate) fn delta_points(delta: f64) -> String {
    if !delta.is_finite() {
        return "n/a".to_string();
    }
    let points = delta * 100.0;
    if points.abs() < 0.05 {
        "±0.0".to_string()
    } else {
        format!("{points:+.1}")
    }
}

/// A count with a metric suffix and three significant digits: `2_049_000` -> `2.05M`.
pub(crate) fn human_count(n: u64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")];
    let x = n as f64;
    for (scale, suffix) in UNITS {
        // 0.9995: a value that rounds up to 1000 of the smaller unit is shown in the larger one.
        if x >= scale * 0.9995 {
            let v = x / scale;
            let digits = if v >= 100.0 {
                0
            } else if v >= 10.0 {
                1
            } else {
                2
            };
            return format!("{v:.digits$}{suffix}");
        }
    }
    n.to_string()
}

/// A FLOP count in short scientific notation: `1.23e13` -> `1.2e13`.
pub(crate) fn flops(x: f64) -> String {
    if !x.is_finite() {
        "n/a".to_string()
    } else if x == 0.0 {
        "0".to_string()
    } else {
        format!("{x:.1e}")
    }
}

/// Seconds of wall time: one decimal below 1000 s, whole seconds above.
pub(crate) fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "n/a".to_string()
    } else if s < 1000.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    }
}

/// The first 12 hex digits of a hash, or [`MISSING`] when there is none.
pub(crate) fn short_hash(h: &str) -> String {
    if h.is_empty() {
        MISSING.to_string()
    } else {
        h.chars().take(12).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(pct(0.7312), "73.1");
        assert_eq!(pct(f64::NAN), "n/a");
        assert_eq!(ci([0.6601, 0.794]), "[66–79]");
        assert_eq!(delta_points(0.042), "+4.2");
        assert_eq!(delta_points(-0.1), "-10.0");
        assert_eq!(delta_points(-0.0001), "±0.0");
        assert_eq!(human_count(950), "950");
        assert_eq!(human_count(2_049_000), "2.05M");
        assert_eq!(human_count(12_345), "12.3k");
        assert_eq!(human_count(123_456_789), "123M");
        assert_eq!(human_count(999_999), "1.00M");
        assert_eq!(flops(1.234e13), "1.2e13");
        assert_eq!(flops(0.0), "0");
        assert_eq!(seconds(12.345), "12.3");
        assert_eq!(seconds(4321.0), "4321");
        assert_eq!(short_hash("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash(""), MISSING);
    }
}
