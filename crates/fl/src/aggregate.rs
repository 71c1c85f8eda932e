//! Aggregation inside the leader's enclave (thesis §7.4.2, §7.5.1):
//! the Byzantine-tolerant trimmed mean (Eqs 7.19–7.20) and FedAvg.
//!
//! Model parameters are `f32` (learning is the documented place for floats);
//! on the wire a fragment is its parameters as little-endian `f32`. A
//! fragment of the wrong length or with a non-finite value is refused with a
//! typed error — a NaN would otherwise survive any trimming.

use crate::error::FlError;

/// Parameters as little-endian bytes.
pub fn params_to_bytes(params: &[f32]) -> Vec<u8> {
    params.iter().flat_map(|p| p.to_le_bytes()).collect()
}

/// Parameters from bytes: exactly `dims` finite values.
pub fn params_from_bytes(bytes: &[u8], dims: usize) -> Result<Vec<f32>, FlError> {
    if bytes.len() != dims * 4 {
        return Err(FlError::WrongLength { expected: dims * 4, got: bytes.len() });
    }
    let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if v.iter().any(|x| !x.is_finite()) {
        return Err(FlError::Malformed("non-finite model parameter"));
    }
    Ok(v)
}

/// Eq 7.19 per dimension `d`: drop the `β` highest and `β` lowest values
/// and average the remaining `n − 2β`. With `n ≤ 2β` it trims
/// `⌊(n−1)/2⌋` from each side instead (the median), so too few inputs never
/// leave an empty mean. All inputs must have the same dimension.
pub fn trimmed_mean(models: &[Vec<f32>], beta: usize) -> Result<Vec<f32>, FlError> {
    let Some(first) = models.first() else {
        return Err(FlError::Undecodable { need: 1, have: 0 });
    };
    let dims = first.len();
    if let Some(bad) = models.iter().find(|m| m.len() != dims) {
        return Err(FlError::WrongLength { expected: dims, got: bad.len() });
    }
    let n = models.len();
    let b = if n > 2 * beta { beta } else { (n - 1) / 2 };
    let mut col = vec![0f32; n];
    let mut out = Vec::with_capacity(dims);
    for d in 0..dims {
        for (c, m) in models.iter().enumerate() {
            col[c] = m[d];
        }
        col.sort_by(|a, b| a.total_cmp(b));
        let kept = &col[b..n - b];
        out.push((kept.iter().map(|&x| x as f64).sum::<f64>() / kept.len() as f64) as f32);
    }
    Ok(out)
}

/// FedAvg: the mean weighted by each client's sample count.
pub fn fedavg(models: &[(Vec<f32>, u64)]) -> Result<Vec<f32>, FlError> {
    let Some((first, _)) = models.first() else {
        return Err(FlError::Undecodable { need: 1, have: 0 });
    };
    let dims = first.len();
    // Sample counts are client-reported: an overflowing total is refused.
    let total = models
        .iter()
        .try_fold(0u64, |t, (_, w)| t.checked_add(*w))
        .ok_or(FlError::Malformed("total sample count overflows u64"))?;
    if total == 0 {
        return Err(FlError::Malformed("zero total weight"));
    }
    let mut acc = vec![0f64; dims];
    for (m, w) in models {
        if m.len() != dims {
            return Err(FlError::WrongLength { expected: dims, got: m.len() });
        }
        for (a, x) in acc.iter_mut().zip(m) {
            *a += *x as f64 * *w as f64;
        }
    }
    Ok(acc.into_iter().map(|a| (a / total as f64) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_mean_ignores_beta_outliers_per_dimension() {
        let mut models: Vec<Vec<f32>> = (0..7).map(|i| vec![1.0 + i as f32 * 0.01, -2.0]).collect();
        models[0] = vec![1e9, -2.0];
        models[3] = vec![1.0, 5e8];
        let m = trimmed_mean(&models, 2).unwrap();
        assert!((m[0] - 1.03).abs() < 0.02, "{m:?}");
        assert_eq!(m[1], -2.0);
        // Without trimming the outlier dominates: the test can fail.
        assert!(trimmed_mean(&models, 0).unwrap()[0] > 1e8);
    }

    #[test]
    fn too_few_inputs_fall_back_to_the_median_and_bad_inputs_are_refused() {
        let models = vec![vec![1.0], vec![100.0], vec![2.0]];
        assert_eq!(trimmed_mean(&models, 5).unwrap(), vec![2.0]);
        assert_eq!(trimmed_mean(&[], 1), Err(FlError::Undecodable { need: 1, have: 0 }));
        assert_eq!(trimmed_mean(&[vec![1.0], vec![1.0, 2.0]], 0), Err(FlError::WrongLength { expected: 1, got: 2 }));
        assert_eq!(params_from_bytes(&[0; 7], 2), Err(FlError::WrongLength { expected: 8, got: 7 }));
        assert!(matches!(params_from_bytes(&params_to_bytes(&[f32::NAN]), 1), Err(FlError::Malformed(_))));
        assert_eq!(params_from_bytes(&params_to_bytes(&[1.5, -2.0]), 2).unwrap(), vec![1.5, -2.0]);
    }

    #[test]
    fn fedavg_weights_by_samples() {
        let m = fedavg(&[(vec![1.0], 3), (vec![5.0], 1)]).unwrap();
        assert_eq!(m, vec![2.0]);
        assert!(matches!(fedavg(&[(vec![1.0], 0)]), Err(FlError::Malformed(_))));
    }
}
