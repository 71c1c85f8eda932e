//! The temporal convolutional network of §7.5.1 on `candle`: `levels`
//! residual blocks, block `i` two causal convolutions of kernel `k` and
//! dilation `2^i` (left zero padding `(k−1)·2^i`, so an output never sees a
//! later input), ReLU and dropout after each, a 1×1 convolution on the
//! residual path where the channel count changes, and a linear head on the
//! last time step predicting the next hour. Seed defaults: hidden 64,
//! 8 levels, kernel 3, dropout 0.1, SGD with learning rate 0.001.
//!
//! Determinism (decision): candle's CPU generator cannot be seeded, so the
//! weights are initialised and the dropout masks drawn from a ChaCha20
//! generator the caller seeds — weights uniform in `±1/√fan_in`, biases 0.
//! The parameters as one `f32` vector ([`Tcn::params`]) list the variables
//! by name, each in row-major order: that vector is what a CTP-FL client
//! codes, and [`Tcn::set_params`] takes the aggregate back.

use crate::series::Windows;
use crate::ForecastError;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Conv1d, Conv1dConfig, Linear, Optimizer, VarBuilder, VarMap, SGD};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TcnConfig {
    pub inputs: usize,
    pub hidden: usize,
    pub levels: usize,
    pub kernel: usize,
    pub dropout: f32,
    pub learning_rate: f64,
}

impl Default for TcnConfig {
    /// The seed's settings.
    fn default() -> Self {
        Self { inputs: 1, hidden: 64, levels: 8, kernel: 3, dropout: 0.1, learning_rate: 0.001 }
    }
}

impl TcnConfig {
    /// The number of parameters [`Tcn::new`] creates with these settings,
    /// computed without building the network (saturating: a budget check
    /// on user input must not overflow). Block 0 maps the inputs to
    /// `hidden` channels (two convolutions of kernel `k` with biases, and a
    /// 1×1 residual projection when `inputs ≠ hidden`); every later block
    /// has two `hidden → hidden` convolutions; the head is one linear layer.
    pub fn param_count(&self) -> u64 {
        let (i, h, k, l) = (self.inputs as u64, self.hidden as u64, self.kernel as u64, self.levels as u64);
        let conv = |c_in: u64, c_out: u64, k: u64| c_in.saturating_mul(c_out).saturating_mul(k).saturating_add(c_out);
        let mut n = conv(i, h, k).saturating_add(conv(h, h, k));
        if i != h {
            n = n.saturating_add(conv(i, h, 1));
        }
        let later = conv(h, h, k).saturating_mul(2).saturating_mul(l.saturating_sub(1));
        n.saturating_add(later).saturating_add(h.saturating_add(1))
    }
}

/// Windows [`Tcn::evaluate`] runs through the network at once.
pub const EVAL_CHUNK: usize = 256;

impl TcnConfig {
    /// `f32` values one sample of `window` hours keeps alive through a
    /// forward pass of [`Tcn::features`] (saturating): per block `i`, the
    /// two left-padded convolution inputs, `(c_in + hidden) × (window +
    /// (kernel − 1)·2^i)` (block 0's `c_in` is `inputs`, later ones'
    /// `hidden`), and eleven `hidden × window` tensors (two convolution
    /// outputs, their ReLUs, dropout masks and products, the residual
    /// path, the sum and its ReLU). candle keeps them all for the backward
    /// pass, so the padding — which doubles with every level, whatever the
    /// window — dominates deep networks.
    pub fn activation_floats_per_sample(&self, window: usize) -> u64 {
        let (i, h, k, w) = (self.inputs as u64, self.hidden as u64, self.kernel as u64, window as u64);
        let mut total = 0u64;
        for level in 0..self.levels {
            let c_in = if level == 0 { i } else { h };
            let dilation = 1u64.checked_shl(level.min(63) as u32).unwrap_or(u64::MAX);
            let padded = w.saturating_add(k.saturating_sub(1).saturating_mul(dilation));
            let block =
                c_in.saturating_add(h).saturating_mul(padded).saturating_add(h.saturating_mul(w).saturating_mul(11));
            total = total.saturating_add(block);
        }
        total
    }
}

struct Block {
    conv1: Conv1d,
    conv2: Conv1d,
    down: Option<Conv1d>,
    pad: usize,
}

/// The network, its variables and its optimiser.
pub struct Tcn {
    cfg: TcnConfig,
    varmap: VarMap,
    blocks: Vec<Block>,
    head: Linear,
    sgd: SGD,
    rng: ChaCha20Rng,
}

/// Validation errors on the normalised scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Errors {
    pub mse: f32,
    pub mae: f32,
    pub rmse: f32,
}

impl Tcn {
    /// A fresh network with weights drawn from `seed`.
    pub fn new(cfg: TcnConfig, seed: u64) -> Result<Self, ForecastError> {
        if cfg.inputs == 0
            || cfg.hidden == 0
            || cfg.levels == 0
            || cfg.kernel == 0
            || !(0.0..1.0).contains(&cfg.dropout)
        {
            return Err(ForecastError::Tensor("invalid TCN configuration".into()));
        }
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let mut blocks = Vec::with_capacity(cfg.levels);
        for i in 0..cfg.levels {
            let dilation = 1usize << i.min(30);
            let c_in = if i == 0 { cfg.inputs } else { cfg.hidden };
            let conv_cfg = Conv1dConfig { dilation, ..Default::default() };
            let vbi = vb.pp(format!("block{i:02}"));
            let conv1 = candle_nn::conv1d(c_in, cfg.hidden, cfg.kernel, conv_cfg, vbi.pp("conv1"))?;
            let conv2 = candle_nn::conv1d(cfg.hidden, cfg.hidden, cfg.kernel, conv_cfg, vbi.pp("conv2"))?;
            let down = if c_in != cfg.hidden {
                Some(candle_nn::conv1d(c_in, cfg.hidden, 1, Conv1dConfig::default(), vbi.pp("down"))?)
            } else {
                None
            };
            blocks.push(Block { conv1, conv2, down, pad: (cfg.kernel - 1) * dilation });
        }
        let head = candle_nn::linear(cfg.hidden, 1, vb.pp("head"))?;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for (name, var) in sorted_vars(&varmap) {
            let dims = var.dims().to_vec();
            let n: usize = dims.iter().product();
            let values: Vec<f32> = if name.ends_with("bias") {
                vec![0.0; n]
            } else {
                let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
                let b = 1.0 / (fan_in as f32).sqrt();
                (0..n).map(|_| rng.random_range(-b..b)).collect()
            };
            var.set(&Tensor::from_vec(values, dims, &dev)?)?;
        }
        let sgd = SGD::new(varmap.all_vars(), cfg.learning_rate)?;
        Ok(Self { cfg, varmap, blocks, head, sgd, rng })
    }

    pub fn config(&self) -> TcnConfig {
        self.cfg
    }

    fn dropout(&mut self, x: &Tensor) -> Result<Tensor, ForecastError> {
        let p = self.cfg.dropout;
        if p <= 0.0 {
            return Ok(x.clone());
        }
        let n = x.elem_count();
        let keep = 1.0 / (1.0 - p);
        let mask: Vec<f32> = (0..n).map(|_| if self.rng.random::<f32>() < p { 0.0 } else { keep }).collect();
        Ok(x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)?)
    }

    /// Features for every time step: `(batch, hidden, length)`.
    pub fn features(&mut self, x: &Tensor, train: bool) -> Result<Tensor, ForecastError> {
        let mut h = x.clone();
        for i in 0..self.blocks.len() {
            let (pad, y) = {
                let b = &self.blocks[i];
                (b.pad, b.conv1.forward(&h.pad_with_zeros(2, b.pad, 0)?)?.relu()?)
            };
            let y = if train { self.dropout(&y)? } else { y };
            let y = self.blocks[i].conv2.forward(&y.pad_with_zeros(2, pad, 0)?)?.relu()?;
            let y = if train { self.dropout(&y)? } else { y };
            let res = match &self.blocks[i].down {
                Some(d) => d.forward(&h)?,
                None => h.clone(),
            };
            h = (y + res)?.relu()?;
        }
        Ok(h)
    }

    /// Next-hour prediction for each window: input `(batch, inputs, length)`, output `(batch)`.
    pub fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor, ForecastError> {
        let h = self.features(x, train)?;
        let len = h.dim(2)?;
        let last = h.narrow(2, len - 1, 1)?.squeeze(2)?;
        Ok(self.head.forward(&last)?.squeeze(1)?)
    }

    fn batch(&self, w: &Windows, idx: &[usize]) -> Result<(Tensor, Tensor), ForecastError> {
        if w.channels != self.cfg.inputs {
            return Err(ForecastError::Config(format!(
                "windows of {} channels for a network of {} inputs",
                w.channels, self.cfg.inputs
            )));
        }
        let per = w.window * w.channels;
        let mut xs = Vec::with_capacity(idx.len() * per);
        let mut ys = Vec::with_capacity(idx.len());
        for &i in idx {
            xs.extend_from_slice(&w.inputs[i * per..(i + 1) * per]);
            ys.push(w.targets[i]);
        }
        let x = Tensor::from_vec(xs, (idx.len(), w.channels, w.window), &Device::Cpu)?;
        let y = Tensor::from_vec(ys, idx.len(), &Device::Cpu)?;
        Ok((x, y))
    }

    /// One epoch of SGD over shuffled mini-batches; returns the mean training MSE.
    pub fn train_epoch(&mut self, data: &Windows, batch: usize) -> Result<f32, ForecastError> {
        if data.is_empty() || batch == 0 {
            return Err(ForecastError::NotEnoughData { need: 1, have: data.len() });
        }
        let mut order: Vec<usize> = (0..data.len()).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.random_range(0..=i);
            order.swap(i, j);
        }
        let mut total = 0.0f32;
        let mut batches = 0;
        for idx in order.chunks(batch) {
            let (x, y) = self.batch(data, idx)?;
            let pred = self.forward(&x, true)?;
            let loss = (pred - y)?.sqr()?.mean_all()?;
            self.sgd.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()?;
            batches += 1;
        }
        Ok(total / batches as f32)
    }

    /// Errors on `data` without dropout.
    pub fn evaluate(&mut self, data: &Windows) -> Result<Errors, ForecastError> {
        if data.is_empty() {
            return Err(ForecastError::NotEnoughData { need: 1, have: 0 });
        }
        let mut se = 0.0f64;
        let mut ae = 0.0f64;
        let all: Vec<usize> = (0..data.len()).collect();
        for idx in all.chunks(EVAL_CHUNK) {
            let (x, y) = self.batch(data, idx)?;
            let d = (self.forward(&x, false)? - y)?;
            se += d.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            ae += d.abs()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let n = data.len() as f64;
        Ok(Errors { mse: (se / n) as f32, mae: (ae / n) as f32, rmse: (se / n).sqrt() as f32 })
    }

    /// Predict the next value after `history` (normalised), without dropout.
    pub fn predict_next(&mut self, history: &[f32]) -> Result<f32, ForecastError> {
        self.predict_next_from(history)
    }

    /// Predict the next value from one input of `cfg.inputs` channels of
    /// equal length, channel-major (see [`crate::series::input`]).
    pub fn predict_next_from(&mut self, input: &[f32]) -> Result<f32, ForecastError> {
        let c = self.cfg.inputs;
        if input.is_empty() || !input.len().is_multiple_of(c) {
            return Err(ForecastError::NotEnoughData { need: c, have: input.len() });
        }
        let x = Tensor::from_vec(input.to_vec(), (1, c, input.len() / c), &Device::Cpu)?;
        Ok(self.forward(&x, false)?.to_vec1::<f32>()?[0])
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        sorted_vars(&self.varmap).iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// All parameters, variables in name order.
    pub fn params(&self) -> Result<Vec<f32>, ForecastError> {
        let mut out = Vec::with_capacity(self.param_count());
        for (_, v) in sorted_vars(&self.varmap) {
            out.extend(v.as_tensor().flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Replace all parameters (e.g. with the global model); refuses a
    /// vector of the wrong length or with a non-finite value, changing nothing.
    pub fn set_params(&mut self, p: &[f32]) -> Result<(), ForecastError> {
        let vars = sorted_vars(&self.varmap);
        let n: usize = vars.iter().map(|(_, v)| v.elem_count()).sum();
        if p.len() != n {
            return Err(ForecastError::WrongLength { expected: n, got: p.len() });
        }
        if p.iter().any(|x| !x.is_finite()) {
            return Err(ForecastError::NonFinite);
        }
        let mut at = 0;
        for (_, v) in vars {
            let c = v.elem_count();
            v.set(&Tensor::from_vec(p[at..at + c].to_vec(), v.dims(), &Device::Cpu)?)?;
            at += c;
        }
        Ok(())
    }
}

fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().map(|m| m.clone()).unwrap_or_default();
    let mut v: Vec<(String, Var)> = data.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
