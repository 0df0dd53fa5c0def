//! Picking the next token from logits: greedy (argmax) or temperature + top-p with a seeded RNG.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the next token is chosen.
pub enum Sampler {
    Greedy,
    Sample { temperature: f32, top_p: f32, rng: Box<StdRng> },
}

impl Sampler {
    /// Greedy when `temperature` is absent or not positive; otherwise sampling, seeded by `seed`
    /// (or from entropy).
    pub fn new(temperature: Option<f32>, top_p: Option<f32>, seed: Option<u64>) -> Self {
        match temperature {
            Some(t) if t > 0.0 && t.is_finite() => Sampler::Sample {
                temperature: t,
                top_p: top_p.filter(|p| *p > 0.0 && *p < 1.0).unwrap_or(1.0),
                rng: Box::new(match seed {
                    Some(s) => StdRng::seed_from_u64(s),
                    None => StdRng::from_os_rng(),
                }),
            },
            _ => Sampler::Greedy,
        }
    }

    /// The chosen token among `allowed` (all tokens when `None`). `allowed` must not be empty.
    pub fn select(&mut self, logits: &[f32], allowed: Option<&[u32]>) -> u32 {
        match self {
            Sampler::Greedy => argmax(logits, allowed),
            Sampler::Sample { temperature, top_p, rng } => {
                let mut cand: Vec<(u32, f32)> = match allowed {
                    Some(a) => a.iter().map(|&t| (t, logit(logits, t))).collect(),
                    None => logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect(),
                };
                sample(&mut cand, *temperature, *top_p, rng)
            }
        }
    }
}

fn logit(logits: &[f32], t: u32) -> f32 {
    logits.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY)
}

/// First index of the largest logit (NaN never wins), as `numpy.argmax` picks.
pub fn argmax(logits: &[f32], allowed: Option<&[u32]>) -> u32 {
    let mut best = (0u32, f32::NEG_INFINITY);
    let mut first = true;
    let mut consider = |t: u32, l: f32| {
        if first || l > best.1 {
            best = (t, if l.is_nan() { f32::NEG_INFINITY } else { l });
            first = false;
        }
    };
    match allowed {
        Some(a) => {
            let mut sorted: Vec<u32> = a.to_vec();
            sorted.sort_unstable();
            for t in sorted {
                consider(t, logit(logits, t));
            }
        }
        None => {
            for (i, &l) in logits.iter().enumerate() {
                consider(i as u32, l);
            }
        }
    }
    best.0
}

fn sample(cand: &mut [(u32, f32)], temperature: f32, top_p: f32, rng: &mut StdRng) -> u32 {
    cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let max = cand[0].1;
    let mut probs: Vec<f64> = cand.iter().map(|&(_, l)| (((l - max) / temperature) as f64).exp()).collect();
    let total: f64 = probs.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return cand[0].0;
    }
    for p in &mut probs {
        *p /= total;
    }
    // Nucleus: the smallest prefix whose mass reaches top_p.
    let mut keep = probs.len();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if acc >= top_p as f64 {
            keep = i + 1;
            break;
        }
    }
    let mass: f64 = probs[..keep].iter().sum();
    let mut r = rng.random::<f64>() * mass;
    for (i, p) in probs[..keep].iter().enumerate() {
        if r < *p {
            return cand[i].0;
        }
        r -= p;
    }
    cand[keep - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_first_max_and_respects_allowed() {
        let l = [0.1, 3.0, 3.0, -1.0];
        assert_eq!(argmax(&l, None), 1);
        assert_eq!(argmax(&l, Some(&[3, 0])), 0);
        assert_eq!(argmax(&l, Some(&[2, 1])), 1);
    }

    #[test]
    fn same_seed_same_tokens() {
        let l: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |seed| {
            let mut s = Sampler::new(Some(1.0), Some(0.9), Some(seed));
            (0..20).map(|_| s.select(&l, None)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn sampling_stays_in_allowed() {
        let l: Vec<f32> = (0..50).map(|i| i as f32).collect();
        let mut s = Sampler::new(Some(2.0), None, Some(1));
        for _ in 0..100 {
            let t = s.select(&l, Some(&[3, 5, 9]));
            assert!([3, 5, 9].contains(&t));
        }
    }
}
