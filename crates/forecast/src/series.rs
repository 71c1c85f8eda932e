//! From loads to training data: min–max normalisation to `[0, 1]` (the
//! seed's preprocessing; this is the boundary where integer Wh become `f32`
//! for learning) and sliding windows `(last W hours → next hour)`, with
//! optional hour-of-day channels.

use crate::ForecastError;

/// Min–max scaling fitted on a training series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaler {
    pub min: f64,
    pub max: f64,
}

impl Scaler {
    /// Fit on `wh` (hourly Wh); a flat series maps to 0.
    pub fn fit(wh: &[u64]) -> Result<Self, ForecastError> {
        let (Some(&min), Some(&max)) = (wh.iter().min(), wh.iter().max()) else {
            return Err(ForecastError::NotEnoughData { need: 1, have: 0 });
        };
        Ok(Self { min: min as f64, max: max as f64 })
    }

    /// `(x − min) / (max − min)`, clamped to `[0, 1]` (values outside the
    /// fitted range, e.g. in a validation month, saturate).
    pub fn scale(&self, wh: u64) -> f32 {
        let span = self.max - self.min;
        if span <= 0.0 {
            return 0.0;
        }
        (((wh as f64 - self.min) / span).clamp(0.0, 1.0)) as f32
    }

    /// Back to Wh, rounded to the nearest whole Wh.
    pub fn unscale(&self, y: f32) -> u64 {
        (self.min + y.clamp(0.0, 1.0) as f64 * (self.max - self.min)).round() as u64
    }
}

/// Channels of an input window with hour-of-day features: the load,
/// `sin(2πh/24)` and `cos(2πh/24)` of each step's hour `h`.
pub const HOUR_CHANNELS: usize = 3;

/// The hour-of-day channels of `len` steps whose first is hour `first_hour`.
fn hour_channels(first_hour: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    (0..len)
        .map(|t| {
            let a = std::f64::consts::TAU * ((first_hour + t) % 24) as f64 / 24.0;
            (a.sin() as f32, a.cos() as f32)
        })
        .unzip()
}

/// One model input of `channels` channels: the load window, then (with
/// [`HOUR_CHANNELS`]) its steps' hour-of-day sine and cosine, channel-major
/// as the network reads `(channels, length)`.
pub fn input(load: &[f32], first_hour: usize, channels: usize) -> Vec<f32> {
    let mut x = load.to_vec();
    if channels == HOUR_CHANNELS {
        let (sin, cos) = hour_channels(first_hour, load.len());
        x.extend(sin);
        x.extend(cos);
    }
    x
}

/// Supervised windows: inputs `series[i..i+w]` (and, with hour features,
/// their hours of day), target `series[i+w]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows {
    pub window: usize,
    /// 1 (the load) or [`HOUR_CHANNELS`].
    pub channels: usize,
    /// `channels · window` values per window, channel-major.
    pub inputs: Vec<f32>,
    pub targets: Vec<f32>,
}

impl Windows {
    /// Load-only windows.
    pub fn new(series: &[f32], window: usize) -> Result<Self, ForecastError> {
        Self::build(series, window, 0, 1)
    }

    /// Windows with hour-of-day channels; `series[0]` is hour `first_hour` of its day.
    pub fn with_hours(series: &[f32], window: usize, first_hour: usize) -> Result<Self, ForecastError> {
        Self::build(series, window, first_hour, HOUR_CHANNELS)
    }

    fn build(series: &[f32], window: usize, first_hour: usize, channels: usize) -> Result<Self, ForecastError> {
        if window == 0 || series.len() <= window {
            return Err(ForecastError::NotEnoughData { need: window + 1, have: series.len() });
        }
        if series.iter().any(|x| !x.is_finite()) {
            return Err(ForecastError::NonFinite);
        }
        let n = series.len() - window;
        let mut inputs = Vec::with_capacity(n * window * channels);
        let mut targets = Vec::with_capacity(n);
        for i in 0..n {
            inputs.extend(input(&series[i..i + window], first_hour + i, channels));
            targets.push(series[i + window]);
        }
        Ok(Self { window, channels, inputs, targets })
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_roundtrips_and_saturates() {
        let s = Scaler::fit(&[100, 300, 500]).unwrap();
        assert_eq!(s.scale(300), 0.5);
        assert_eq!(s.scale(900), 1.0);
        assert_eq!(s.unscale(s.scale(420)), 420);
        assert_eq!(Scaler::fit(&[]), Err(ForecastError::NotEnoughData { need: 1, have: 0 }));
        assert_eq!(Scaler::fit(&[7, 7]).unwrap().scale(7), 0.0);
    }

    #[test]
    fn windows_pair_inputs_with_the_next_value() {
        let w = Windows::new(&[0.0, 0.1, 0.2, 0.3], 2).unwrap();
        assert_eq!(w.inputs, vec![0.0, 0.1, 0.1, 0.2]);
        assert_eq!(w.channels, 1);
        assert_eq!(w.targets, vec![0.2, 0.3]);
        assert_eq!(Windows::new(&[0.0, 0.1], 2), Err(ForecastError::NotEnoughData { need: 3, have: 2 }));
        assert_eq!(Windows::new(&[0.0, f32::NAN, 0.1], 1), Err(ForecastError::NonFinite));
    }

    #[test]
    fn hour_windows_carry_each_steps_hour_of_day() {
        let series: Vec<f32> = (0..30).map(|i| i as f32 / 30.0).collect();
        let w = Windows::with_hours(&series, 4, 22).unwrap();
        assert_eq!((w.channels, w.len()), (HOUR_CHANNELS, 26));
        assert_eq!(w.inputs.len(), 26 * 4 * HOUR_CHANNELS);
        // Window 1 covers series[1..5]: hours 23, 0, 1, 2.
        let x = &w.inputs[12..24];
        assert_eq!(&x[..4], &series[1..5]);
        let hour = |t: usize| (x[4 + t].atan2(x[8 + t]) / std::f32::consts::TAU * 24.0).rem_euclid(24.0).round();
        assert_eq!([hour(0), hour(1), hour(2), hour(3)], [23.0, 0.0, 1.0, 2.0]);
        assert_eq!(w.targets[1], series[5]);
    }
}
