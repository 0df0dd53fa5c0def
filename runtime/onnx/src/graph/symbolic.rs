//! Symbolic tensor dimensions: integer polynomials over named sizes (`batch_size`,
//! `past_sequence_length`, ...), enough to prove that two computed sizes are the same.

use std::collections::BTreeMap;

/// A polynomial with integer coefficients. Each monomial is a sorted list of atom ids (an atom is
/// one unknown size); the empty monomial is the constant term. Zero coefficients are never stored,
/// so equal polynomials compare equal.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Dim(BTreeMap<Vec<u32>, i64>);

impl Dim {
    pub fn known(c: i64) -> Dim {
        let mut m = BTreeMap::new();
        if c != 0 {
            m.insert(Vec::new(), c);
        }
        Dim(m)
    }

    pub fn atom(id: u32) -> Dim {
        Dim(BTreeMap::from([(vec![id], 1)]))
    }

    /// The value, when the polynomial is a constant.
    pub fn as_known(&self) -> Option<i64> {
        match self.0.len() {
            0 => Some(0),
            1 => self.0.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    /// The constant term.
    pub fn constant_term(&self) -> i64 {
        self.0.get(&Vec::new()).copied().unwrap_or(0)
    }

    /// Whether the value is at least 0 whatever the atoms are (atoms are sizes, never negative).
    pub fn never_negative(&self) -> bool {
        self.0.values().all(|&c| c >= 0)
    }

    pub fn add(&self, other: &Dim) -> Dim {
        let mut m = self.0.clone();
        for (k, c) in &other.0 {
            let e = m.entry(k.clone()).or_insert(0);
            *e += c;
            if *e == 0 {
                m.remove(k);
            }
        }
        Dim(m)
    }

    pub fn neg(&self) -> Dim {
        Dim(self.0.iter().map(|(k, c)| (k.clone(), -c)).collect())
    }

    pub fn sub(&self, other: &Dim) -> Dim {
        self.add(&other.neg())
    }

    pub fn mul(&self, other: &Dim) -> Dim {
        let mut out = Dim::default();
        for (ka, ca) in &self.0 {
            for (kb, cb) in &other.0 {
                let mut k: Vec<u32> = ka.iter().chain(kb).copied().collect();
                k.sort_unstable();
                out = out.add(&Dim(BTreeMap::from([(k, ca * cb)])));
            }
        }
        out
    }

    /// `self / other` when it divides exactly term by term (a constant or a single-term
    /// divisor); `None` otherwise.
    pub fn div_exact(&self, other: &Dim) -> Option<Dim> {
        let mut terms = other.0.iter();
        let (den, dc) = terms.next()?;
        if terms.next().is_some() || *dc == 0 {
            return None;
        }
        let mut out = BTreeMap::new();
        for (k, c) in &self.0 {
            if c % dc != 0 {
                return None;
            }
            let mut rest = k.clone();
            for atom in den {
                let at = rest.iter().position(|a| a == atom)?;
                rest.remove(at);
            }
            out.insert(rest, c / dc);
        }
        Some(Dim(out))
    }
}

/// Names of symbolic sizes, interned so the same name is the same atom.
#[derive(Default)]
pub struct Atoms {
    names: Vec<String>,
}

impl Atoms {
    pub fn named(&mut self, name: &str) -> Dim {
        let id = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        };
        Dim::atom(id as u32)
    }

    /// An unknown size that equals nothing else.
    pub fn fresh(&mut self) -> Dim {
        let name = format!("?{}", self.names.len());
        self.named(&name)
    }

    /// A declared dimension: `dim_param` strings such as `past_sequence_length + sequence_length`
    /// are sums of names and numbers; anything more complex is one opaque name.
    pub fn parse(&mut self, param: &str) -> Dim {
        let parts: Vec<&str> = param.split('+').map(str::trim).collect();
        let simple = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !parts.iter().all(|p| simple(p)) {
            return self.named(param);
        }
        parts.iter().fold(Dim::known(0), |acc, p| {
            let term = match p.parse::<i64>() {
                Ok(c) => Dim::known(c),
                Err(_) => self.named(p),
            };
            acc.add(&term)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_of_names_compare_equal_whatever_their_order() {
        let mut atoms = Atoms::default();
        let total = atoms.parse("past_sequence_length + sequence_length");
        let past = atoms.named("past_sequence_length");
        let seq = atoms.named("sequence_length");
        assert_eq!(seq.add(&past), total);
        assert_eq!(total.sub(&past), seq);
        assert_eq!(total.sub(&total).as_known(), Some(0));
        assert!(atoms.parse("2 * n").as_known().is_none());
    }

    #[test]
    fn exact_division_only() {
        let mut atoms = Atoms::default();
        let (b, s) = (atoms.named("b"), atoms.named("s"));
        let numel = b.mul(&s).mul(&Dim::known(64));
        assert_eq!(numel.div_exact(&b.mul(&s).mul(&Dim::known(32))), Some(Dim::known(2)));
        assert_eq!(numel.div_exact(&Dim::known(64)), Some(b.mul(&s)));
        assert_eq!(numel.div_exact(&Dim::known(48)), None);
        assert_eq!(b.add(&s).div_exact(&b), None);
        assert_eq!(b.div_exact(&b.add(&s)), None);
        assert!(b.add(&Dim::known(1)).never_negative());
        assert!(!b.sub(&s).never_negative());
    }
}
