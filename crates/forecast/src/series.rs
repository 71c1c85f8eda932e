//! From loads to training data: min–max normalisation to `[0, 1]` (the
//! seed's preprocessing; this is the boundary where integer Wh become `f32`
//! for learning) and sliding windows `(last W hours → next hour)`.

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

/// Supervised windows: inputs `series[i..i+w]`, target `series[i+w]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows {
    pub window: usize,
    pub inputs: Vec<f32>,
    pub targets: Vec<f32>,
}

impl Windows {
    pub fn new(series: &[f32], window: usize) -> Result<Self, ForecastError> {
        if window == 0 || series.len() <= window {
            return Err(ForecastError::NotEnoughData { need: window + 1, have: series.len() });
        }
        if series.iter().any(|x| !x.is_finite()) {
            return Err(ForecastError::NonFinite);
        }
        let n = series.len() - window;
        let mut inputs = Vec::with_capacity(n * window);
        let mut targets = Vec::with_capacity(n);
        for i in 0..n {
            inputs.extend_from_slice(&series[i..i + window]);
            targets.push(series[i + window]);
        }
        Ok(Self { window, inputs, targets })
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
        assert_eq!(w.targets, vec![0.2, 0.3]);
        assert_eq!(Windows::new(&[0.0, 0.1], 2), Err(ForecastError::NotEnoughData { need: 3, have: 2 }));
        assert_eq!(Windows::new(&[0.0, f32::NAN, 0.1], 1), Err(ForecastError::NonFinite));
    }
}
