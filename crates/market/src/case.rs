//! MATPOWER case files, format version 2.
//!
//! The parser reads the `mpc.version`, `mpc.baseMVA`, `mpc.bus`, `mpc.gen`,
//! `mpc.branch` and (optional) `mpc.gencost` assignments of a case file.
//! Comments (`%` to end of line, found with MATLAB's lexical rules for
//! quotes: a `'` right after a value is a transpose, and `"` strings are
//! strings, see [`lex`]), the `function` line, cell arrays of literals
//! (`mpc.x = { ... };`), MATPOWER's index helpers (`[PQ, PV, ...] =
//! idx_bus;`, with MATPOWER's own names in its order: MATLAB binds them by
//! position) and single assignments of a plain number to a local variable
//! the idioms below do not read (`pf = 0.85;`) are skipped. A `return`
//! ends the function: anything after it is refused, as is a line holding a
//! second statement the parser would not see. The two unit-conversion
//! idioms used by MATPOWER's `case33bw` (and other distribution cases built
//! the same way) are recognised, each at most once and only with the
//! shipped `Vbase`/`Sbase` definitions —
//!
//! ```text
//! mpc.branch(:, [BR_R BR_X]) = mpc.branch(:, [BR_R BR_X]) / (Vbase^2 / Sbase);
//! mpc.bus(:, [PD, QD]) = mpc.bus(:, [PD, QD]) / 1e3;
//! ```
//!
//! — where `Vbase` is the first bus's `baseKV` and `Sbase` is `baseMVA`,
//! and the column names they read (`BASE_KV`, `BR_R`, `BR_X`, `PD`, `QD`)
//! were bound by the index helpers before them. MATPOWER's `case141`
//! power-factor conversion after the kW one (its loads are given in kVA)
//!
//! ```text
//! pf = 0.85;
//! mpc.bus(:, QD) = mpc.bus(:, PD) * sin(acos(pf));
//! mpc.bus(:, PD) = mpc.bus(:, PD) * pf;
//! ```
//!
//! is recognised the same way: each statement once, in that order, `pf`
//! a plain number in (0, 1].
//! Without them `case33bw` (which stores kW/kVAr and ohms) would be read as
//! megawatts and per-unit values, a silently wrong network. Every other
//! construct (an indexed or whole-matrix reassignment, code after a matrix's
//! `]`, `mpc = f(mpc)`, a redefined base, a repeated conversion, an
//! assignment after a conversion) is refused ([`CaseError::UnsupportedCode`])
//! rather than ignored, because ignoring it could change the network without
//! notice. Numbers are read with MATLAB's grammar ([`parse_num`]), and a
//! local named like a constant the parser reads (`Inf = 50;`) is refused.
//! Files over [`MAX_CASE_BYTES`] are refused; parsing is linear.
//!
//! A case has exactly one reference (type 3) bus
//! ([`CaseError::SeveralReferenceBuses`] otherwise): the DC model, its PTDF
//! and the market's network rows are built around a single reference, and
//! the AC power flow reads the same [`Case`]. A known limitation: cases
//! with several substations as reference buses (MATPOWER's `case70da`,
//! `case16ci`), which MATPOWER's `runpf` solves, are refused.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

/// Why a case file was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CaseError {
    #[error("no `mpc.version` assignment: only MATPOWER case format version 2 is supported")]
    MissingVersion,
    #[error("case format version {0:?} is not supported (only version '2')")]
    NotVersion2(String),
    #[error("required field `mpc.{0}` is missing")]
    MissingField(&'static str),
    #[error("line {line}: {msg}")]
    Malformed { line: usize, msg: String },
    #[error("`mpc.{matrix}` row {row} has {got} columns, at least {need} are required")]
    TooFewColumns { matrix: &'static str, row: usize, need: usize, got: usize },
    #[error("`mpc.{matrix}` row {row}, column {col}: {msg}")]
    BadValue { matrix: &'static str, row: usize, col: usize, msg: String },
    #[error("bus number {0} appears more than once")]
    DuplicateBus(u32),
    #[error("`mpc.{matrix}` row {row} refers to bus {bus}, which does not exist")]
    UnknownBus { matrix: &'static str, row: usize, bus: u32 },
    #[error("no reference (type 3) bus")]
    NoReferenceBus,
    #[error("more than one reference (type 3) bus: {0:?}")]
    SeveralReferenceBuses(Vec<u32>),
    #[error("bus {0} is not connected to the reference bus by in-service branches")]
    Disconnected(u32),
    #[error("`mpc.gencost` has {got} rows but there are {gens} generators")]
    GenCostRows { got: usize, gens: usize },
    #[error("line {line}: unsupported construct (it could change the case; refused rather than ignored): {stmt}")]
    UnsupportedCode { line: usize, stmt: String },
    #[error("case file of {bytes} bytes exceeds the limit of {max} bytes")]
    TooLarge { bytes: usize, max: usize },
}

/// MATPOWER bus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BusType {
    /// Load bus (type 1).
    Pq,
    /// Generator bus with voltage set-point (type 2).
    Pv,
    /// Reference / slack bus (type 3).
    Ref,
    /// Isolated bus (type 4), excluded from every model.
    Isolated,
}

/// One row of `mpc.bus`, in the case's units (MW, MVAr, p.u., degrees, kV).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bus {
    pub id: u32,
    pub kind: BusType,
    pub pd: f64,
    pub qd: f64,
    pub gs: f64,
    pub bs: f64,
    pub vm: f64,
    pub va_deg: f64,
    pub base_kv: f64,
    pub vmax: f64,
    pub vmin: f64,
}

/// One row of `mpc.gen`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gen {
    pub bus: u32,
    pub pg: f64,
    pub qg: f64,
    pub qmax: f64,
    pub qmin: f64,
    pub vg: f64,
    pub in_service: bool,
    pub pmax: f64,
    pub pmin: f64,
}

/// One row of `mpc.branch` (r, x, b in p.u. on `baseMVA`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    pub from: u32,
    pub to: u32,
    pub r: f64,
    pub x: f64,
    pub b: f64,
    /// Long-term rating in MVA; 0 means unlimited (MATPOWER's convention).
    pub rate_a: f64,
    /// Off-nominal tap ratio; MATPOWER's 0 is stored as 1.
    pub tap: f64,
    pub shift_deg: f64,
    pub in_service: bool,
}

/// One row of `mpc.gencost`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum GenCost {
    /// Model 2: polynomial coefficients, highest order first ($/h of MW).
    Polynomial(Vec<f64>),
    /// Model 1: piecewise-linear (MW, $/h) points.
    PiecewiseLinear(Vec<(f64, f64)>),
}

/// A parsed and validated MATPOWER case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    pub base_mva: f64,
    pub buses: Vec<Bus>,
    pub gens: Vec<Gen>,
    pub branches: Vec<Branch>,
    pub gencost: Vec<GenCost>,
    /// True when the kW/kVAr → MW/MVAr and ohm → p.u. conversions of the
    /// file's trailing code were applied.
    pub converted_units: bool,
}

impl Case {
    /// Parses and validates a MATPOWER version-2 case file's text.
    pub fn parse(text: &str) -> Result<Case, CaseError> {
        let raw = scan(text)?;
        build(raw)
    }

    /// Index of each bus id in [`Case::buses`].
    pub fn bus_index(&self) -> BTreeMap<u32, usize> {
        self.buses.iter().enumerate().map(|(i, b)| (b.id, i)).collect()
    }

    /// Index of the reference bus in [`Case::buses`].
    pub fn ref_index(&self) -> usize {
        // validated at parse time: exactly one exists
        self.buses.iter().position(|b| b.kind == BusType::Ref).unwrap_or(0)
    }

    /// In-service branches.
    pub fn live_branches(&self) -> impl Iterator<Item = &Branch> {
        self.branches.iter().filter(|b| b.in_service)
    }

    /// The buses a network model covers ([`LiveBuses`]); refuses more than
    /// [`crate::MAX_MODEL_BUSES`] before anything of their size is built.
    pub(crate) fn live_buses(&self) -> Result<LiveBuses, crate::ModelError> {
        let live: Vec<usize> = (0..self.buses.len()).filter(|&i| self.buses[i].kind != BusType::Isolated).collect();
        if live.len() > crate::MAX_MODEL_BUSES {
            return Err(crate::ModelError::TooLarge { buses: live.len(), max: crate::MAX_MODEL_BUSES });
        }
        let ids: Vec<u32> = live.iter().map(|&i| self.buses[i].id).collect();
        let index = ids.iter().enumerate().map(|(k, id)| (*id, k)).collect();
        Ok(LiveBuses { live, ids, index })
    }

    /// True when the in-service branches form a tree over the non-isolated
    /// buses (a branch to an isolated bus is in no model, so it does not
    /// count).
    pub fn is_radial(&self) -> bool {
        let isolated: BTreeSet<u32> = self.buses.iter().filter(|b| b.kind == BusType::Isolated).map(|b| b.id).collect();
        let n = self.buses.len() - isolated.len();
        self.live_branches().filter(|b| !isolated.contains(&b.from) && !isolated.contains(&b.to)).count() + 1 == n
    }
}

struct Raw {
    version: Option<(usize, String)>,
    base_mva: Option<(usize, f64)>,
    matrices: BTreeMap<String, (usize, Vec<Vec<f64>>)>,
    convert_r_x: bool,
    convert_kw: bool,
    /// MATPOWER's case141 idiom (after the kW conversion), loads in kVA at
    /// a power factor `pf`: `Qd = Pd sin(acos pf)` ...
    pf_qd: Option<f64>,
    /// ... then `Pd = Pd pf`.
    pf_pd: Option<f64>,
}

/// A token of one line of MATLAB text, as far as the parser tells them
/// apart.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    /// A character array `'...'` (with `''` for a quote) or a string
    /// `"..."` (with `""`), quotes included.
    Str(&'a str),
    /// A number literal: digits, at most one `.`, an exponent `e`/`E`
    /// with digits, an imaginary suffix `i`/`j` (MATLAB's grammar; the
    /// values the parser reads go through [`parse_num`]).
    Num(&'a str),
    /// An identifier or keyword.
    Ident(&'a str),
    /// The transpose operator (`'` or `.'`).
    Transpose,
    /// `...`: the statement goes on on the next line; the rest of this
    /// one is a comment.
    Continuation,
    /// Any other character outside a string: operators, brackets,
    /// separators.
    Punct(char),
}

/// Lexes one line of MATLAB text (block comments already removed, see
/// [`strip_comments`]): its tokens with their byte offsets, and the byte
/// offset where its code ends (a `%` comment, or the text after a `...`,
/// which MATLAB ignores).
///
/// MATLAB's rule for the quote: a `'` right after an identifier, a
/// number, `)`, `]`, `}`, `.` or a transpose (no whitespace between) is a
/// transpose (`5'` is 5); anywhere else it opens a character array, which
/// runs to the next `'` that is not doubled. `"` always opens a string,
/// with `""` for a quote, and a `%` in either is text. A string that does
/// not close on its line, or a `'` right after a double-quoted string
/// (neither a transpose MATLAB's rule names nor a character array), is a
/// syntax error the file is refused for (`Err`: what is wrong).
fn lex(line: &str) -> Result<(Vec<(usize, Tok<'_>)>, usize), String> {
    let b = line.as_bytes();
    let mut toks = Vec::new();
    // a `'` right here is a transpose
    let mut after_value = false;
    // a `'` right here follows a double-quoted string
    let mut after_string = false;
    let digits = |mut k: usize| {
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        k
    };
    let mut k = 0;
    while k < b.len() {
        let c = b[k];
        let start = k;
        let (tok, value) = match c {
            b'%' => return Ok((toks, k)),
            b'.' if line[k..].starts_with("...") => {
                toks.push((k, Tok::Continuation));
                return Ok((toks, k + 3));
            }
            b'"' if !crate::mutants::active(crate::mutants::Mutation::QuotesPairedNaively) => {
                k = quoted_end(b, k).ok_or("unterminated string (\"...\")")?;
                toks.push((start, Tok::Str(&line[start..k])));
                after_value = false;
                after_string = true;
                continue;
            }
            b'\'' if crate::mutants::active(crate::mutants::Mutation::QuotesPairedNaively) => {
                // the planted bug: every `'` opens or closes a string
                match line[k + 1..].find('\'') {
                    Some(e) => k += e + 2,
                    None => return Ok((toks, b.len())),
                }
                (Tok::Str(&line[start..k]), false)
            }
            b'\'' if after_string => return Err("a quote right after a double-quoted string".into()),
            b'\'' if after_value => {
                k += 1;
                (Tok::Transpose, true)
            }
            b'\'' => {
                k = quoted_end(b, k).ok_or("unterminated character array ('...')")?;
                (Tok::Str(&line[start..k]), false)
            }
            b'.' if b.get(k + 1) == Some(&b'\'') => {
                k += 2;
                (Tok::Transpose, true)
            }
            _ if c.is_ascii_digit() || (c == b'.' && b.get(k + 1).is_some_and(u8::is_ascii_digit)) => {
                k = digits(k);
                // a `.` that starts `...` or `.'` is no decimal point
                if b.get(k) == Some(&b'.') && !line[k..].starts_with("...") && b.get(k + 1) != Some(&b'\'') {
                    k = digits(k + 1);
                }
                if matches!(b.get(k), Some(b'e' | b'E')) {
                    let sign = usize::from(matches!(b.get(k + 1), Some(b'+' | b'-')));
                    let end = digits(k + 1 + sign);
                    if end > k + 1 + sign {
                        k = end;
                    }
                }
                if matches!(b.get(k), Some(b'i' | b'I' | b'j' | b'J')) {
                    k += 1;
                }
                (Tok::Num(&line[start..k]), true)
            }
            _ if c.is_ascii_alphabetic() => {
                while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
                    k += 1;
                }
                (Tok::Ident(&line[start..k]), true)
            }
            _ if c.is_ascii_whitespace() => {
                k += 1;
                after_value = false;
                after_string = false;
                continue;
            }
            _ => {
                let ch = line[k..].chars().next().unwrap_or(' ');
                k += ch.len_utf8();
                (Tok::Punct(ch), matches!(ch, ')' | ']' | '}' | '.'))
            }
        };
        toks.push((start, tok));
        after_value = value;
        after_string = false;
    }
    Ok((toks, b.len()))
}

/// The offset just past the string or character array that opens at
/// `b[start]` (its quote, `"` or `'`), which a doubled quote does not
/// close; `None` if it does not close on the line.
fn quoted_end(b: &[u8], start: usize) -> Option<usize> {
    let q = *b.get(start)?;
    let mut k = start + 1;
    loop {
        match b.get(k) {
            None => return None,
            Some(&c) if c == q && b.get(k + 1) == Some(&q) => k += 2,
            Some(&c) if c == q => return Some(k + 1),
            Some(_) => k += 1,
        }
    }
}

/// `line` without its comment ([`lex`]: a `%` outside strings, or the text
/// after a `...`, which is kept).
fn strip_comment(line: &str) -> Result<&str, String> {
    let (_, end) = lex(line)?;
    Ok(&line[..end])
}

/// Every line of `text` without its comments, line numbers kept: a `%`
/// comment to the end of its line ([`strip_comment`]), and MATLAB's block
/// comments — the lines from a `%{` line to its `%}` line, each marker
/// alone on its line (whitespace aside), nested as MATLAB nests them — are
/// empty. (Read as code before, a block-commented unit conversion of
/// case33bw was applied although MATLAB skips it.) An unclosed block
/// comments out the rest of the file, as in MATLAB. A line MATLAB cannot
/// lex (an unterminated string) is refused.
fn strip_comments(text: &str) -> Result<Vec<&str>, CaseError> {
    let mut depth = 0usize;
    text.lines()
        .enumerate()
        .map(|(i, line)| match line.trim() {
            "%{" => {
                depth += 1;
                Ok("")
            }
            "%}" if depth > 0 => {
                depth -= 1;
                Ok("")
            }
            _ if depth > 0 => Ok(""),
            _ => strip_comment(line).map_err(|msg| CaseError::Malformed { line: i + 1, msg }),
        })
        .collect()
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != ',').collect()
}

/// A number as MATLAB reads a literal: an optional sign, then `Inf`,
/// `inf`, `NaN`, `nan` (MATLAB's spellings; a local of one of these names
/// is refused, see [`is_harmless_local`]) or digits with at most one `.`
/// and an optional exponent `e`/`E` with digits. Anything else (Rust's
/// `infinity`, `INF`, a hexadecimal or imaginary literal) is no number.
fn parse_num(tok: &str) -> Option<f64> {
    let (neg, body) = match tok.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    let v = match body {
        "Inf" | "inf" => f64::INFINITY,
        "NaN" | "nan" => f64::NAN,
        _ if crate::mutants::active(crate::mutants::Mutation::RustNumberGrammar) => body.parse::<f64>().ok()?,
        _ if is_decimal(body) => body.parse::<f64>().ok()?,
        _ => return None,
    };
    Some(if neg { -v } else { v })
}

/// `digits [. digits] [e|E [+|-] digits]` or `. digits [e ...]`: MATLAB's
/// decimal literal (no `d` exponent, no `_`).
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |k: usize| k + b[k..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(0);
    let mut k = int;
    let mut mantissa = int;
    if b.get(k) == Some(&b'.') {
        let end = digits(k + 1);
        mantissa += end - k - 1;
        k = end;
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(b.get(k), Some(b'e' | b'E')) {
        k += 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let end = digits(k);
        if end == k {
            return false;
        }
        k = end;
    }
    k == b.len()
}

/// Smallest and largest `baseMVA` accepted.
pub const MIN_BASE_MVA: f64 = 1e-6;
pub const MAX_BASE_MVA: f64 = 1e9;

/// Largest case file accepted, bytes.
pub const MAX_CASE_BYTES: usize = 16 << 20;

/// The MATLAB statements a case file may contain besides the `mpc.`
/// assignments, whitespace and commas removed: the two base definitions of
/// the unit-conversion idiom. Index helpers (`[...] = idx_bus;` etc.) are
/// recognised by [`index_helper`]; anything else is refused.
const BASE_DEFS: [(&str, BaseDef); 2] =
    [("Vbase=mpc.bus(1BASE_KV)*1e3;", BaseDef::Vbase), ("Sbase=mpc.baseMVA*1e6;", BaseDef::Sbase)];

#[derive(Clone, Copy, PartialEq)]
enum BaseDef {
    Vbase,
    Sbase,
}

/// MATPOWER's column-index helpers and the names each returns, in order
/// (MATPOWER 8.1's `idx_bus`, `idx_brch`, `idx_gen`, `idx_cost`).
const INDEX_HELPERS: [(&str, &[&str]); 4] = [
    (
        "idx_bus",
        &[
            "PQ", "PV", "REF", "NONE", "BUS_I", "BUS_TYPE", "PD", "QD", "GS", "BS", "BUS_AREA", "VM", "VA", "BASE_KV",
            "ZONE", "VMAX", "VMIN", "LAM_P", "LAM_Q", "MU_VMAX", "MU_VMIN",
        ],
    ),
    (
        "idx_brch",
        &[
            "F_BUS",
            "T_BUS",
            "BR_R",
            "BR_X",
            "BR_B",
            "RATE_A",
            "RATE_B",
            "RATE_C",
            "TAP",
            "SHIFT",
            "BR_STATUS",
            "PF",
            "QF",
            "PT",
            "QT",
            "MU_SF",
            "MU_ST",
            "ANGMIN",
            "ANGMAX",
            "MU_ANGMIN",
            "MU_ANGMAX",
        ],
    ),
    (
        "idx_gen",
        &[
            "GEN_BUS",
            "PG",
            "QG",
            "QMAX",
            "QMIN",
            "VG",
            "MBASE",
            "GEN_STATUS",
            "PMAX",
            "PMIN",
            "PC1",
            "PC2",
            "QC1MIN",
            "QC1MAX",
            "QC2MIN",
            "QC2MAX",
            "RAMP_AGC",
            "RAMP_10",
            "RAMP_30",
            "RAMP_Q",
            "APF",
            "MU_PMAX",
            "MU_PMIN",
            "MU_QMAX",
            "MU_QMIN",
        ],
    ),
    ("idx_cost", &["PW_LINEAR", "POLYNOMIAL", "MODEL", "STARTUP", "SHUTDOWN", "NCOST", "COST"]),
];

/// What a line of the form `[NAME, NAME, ...] = idx_bus;` is (or
/// `idx_brch`, `idx_gen`, `idx_cost`): `None` when it is no such line.
/// MATLAB binds a function's outputs by position, so the names must be
/// MATPOWER's own, in its order (a prefix of the list: fewer outputs are
/// fine); any other list would bind the conversions' `PD`, `QD`,
/// `BASE_KV`, `BR_R`, `BR_X` to other columns than their names say, and
/// is refused (`Some(None)`). `Some(Some(names))`: the names it binds.
fn index_helper(line: &str) -> Option<Option<&'static [&'static str]>> {
    let rest = line.trim().strip_prefix('[')?;
    let (names, rhs) = rest.split_once(']')?;
    let rhs = rhs.trim().strip_prefix('=')?;
    let rhs = squash(rhs);
    let func = rhs.strip_suffix(';').unwrap_or(&rhs);
    let (_, list) = INDEX_HELPERS.iter().find(|(f, _)| *f == func)?;
    let names: Vec<&str> = names.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()).collect();
    let exact = !names.is_empty() && names.len() <= list.len() && names.iter().zip(list.iter()).all(|(a, b)| a == b);
    Some(exact.then(|| &list[..names.len()]))
}

/// `name = <number>;` for a local variable the recognised idioms do not
/// read: it cannot change the case. One statement only, its value a plain
/// number: `kV = 4.16; Vbase = kV * 1e3;` is two statements (MATLAB runs
/// both, and the second redefines the base the ohm conversion reads), and
/// a value the parser does not evaluate (a call, another variable) is
/// refused, not assumed harmless.
fn is_harmless_local(stmt: &str) -> bool {
    // names the recognised code reads: a local of that name would change
    // what MATLAB runs there (`acos = 0.5;` makes `acos(pf)` an index,
    // `idx_bus = 1;` makes `[PQ, PV] = idx_bus;` an error)
    const READ: [&str; 14] = [
        "mpc", "Vbase", "Sbase", "BASE_KV", "BR_R", "BR_X", "PD", "QD", "sin", "acos", "idx_bus", "idx_brch",
        "idx_gen", "idx_cost",
    ];
    let Some((lhs, rhs)) = stmt.split_once('=') else { return false };
    let value = rhs.strip_suffix(';').unwrap_or(rhs);
    !lhs.is_empty()
        && lhs.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && lhs.starts_with(|c: char| c.is_ascii_alphabetic())
        && !READ.contains(&lhs)
        && !shadows_a_constant(lhs)
        && !KEYWORDS.contains(&lhs)
        && parse_num(value).is_some_and(f64::is_finite)
}

/// MATLAB's constants the parser reads as values ([`parse_num`]): a
/// variable of one of these names (a local, a `function` line's argument
/// or output) makes MATLAB read the token as that variable (`Inf = 50;`
/// then `Inf -Inf` is 50 −50), so it is refused (attack r25 [2]). The
/// parser reads no other constant (`pi`, `eps`, `i`, `j`, `true`: the
/// number grammar takes no imaginary literal, matrices hold only literals),
/// so a variable of such a name changes nothing it reads.
fn shadows_a_constant(name: &str) -> bool {
    matches!(name, "Inf" | "inf" | "NaN" | "nan")
}

/// MATLAB's keywords (`iskeyword`): no variable can take these names.
const KEYWORDS: [&str; 20] = [
    "break",
    "case",
    "catch",
    "classdef",
    "continue",
    "else",
    "elseif",
    "end",
    "for",
    "function",
    "global",
    "if",
    "otherwise",
    "parfor",
    "persistent",
    "return",
    "spmd",
    "switch",
    "try",
    "while",
];

/// Reads a cell array (`mpc.x = { ... };`, `first` the text from its `{`,
/// on line `lineno`) to its closing brace, over the lines from `lines[*i]`
/// on (`*i` is left after its last line). MATLAB runs no statement inside
/// one, but the parser does not take that on trust: every token up to the
/// brace that closes the first `{` must be a literal (a string, a number),
/// a separator, a sign, a transpose or a nested `{}`/`[]`; anything else
/// (an identifier, a call, an `=`) is refused, so no line the parser
/// cannot account for is skipped (attack r25 [1]: a mislexed line once
/// made the skip run on over the statements after it). After the closing
/// brace only `;` may follow.
fn skip_cell(first: &str, lineno: usize, lines: &[&str], i: &mut usize) -> Result<(), CaseError> {
    if crate::mutants::active(crate::mutants::Mutation::CellSkippedToAnyBrace) {
        // the planted bug: skip to the next line holding a `}`
        let mut last = first.to_string();
        while !last.contains('}') {
            let Some(next) = lines.get(*i) else {
                return Err(CaseError::Malformed { line: lineno, msg: "unterminated cell array".into() });
            };
            last = next.to_string();
            *i += 1;
        }
        return Ok(());
    }
    let mut open: Vec<char> = Vec::new();
    let (mut text, mut at) = (first, lineno);
    loop {
        let (toks, _) = lex(text).map_err(|msg| CaseError::Malformed { line: at, msg })?;
        for (n, (pos, tok)) in toks.iter().enumerate() {
            match tok {
                Tok::Punct(c @ ('{' | '[')) => open.push(*c),
                Tok::Punct(c @ ('}' | ']')) => {
                    let opener = if *c == '}' { '{' } else { '[' };
                    if open.pop() != Some(opener) {
                        return Err(unsupported(at, &text[*pos..]));
                    }
                    if open.is_empty() {
                        if !toks[n + 1..].iter().all(|(_, t)| *t == Tok::Punct(';')) {
                            return Err(unsupported(at, &text[*pos + 1..]));
                        }
                        return Ok(());
                    }
                }
                Tok::Str(_) | Tok::Num(_) | Tok::Transpose | Tok::Continuation | Tok::Punct(',' | ';' | '+' | '-') => {}
                Tok::Ident(_) | Tok::Punct(_) => return Err(unsupported(at, &text[*pos..])),
            }
        }
        let Some(next) = lines.get(*i) else {
            return Err(CaseError::Malformed { line: lineno, msg: "unterminated cell array".into() });
        };
        (text, at) = (next, *i + 1);
        *i += 1;
    }
}

fn unsupported(line: usize, stmt: &str) -> CaseError {
    CaseError::UnsupportedCode { line, stmt: stmt.trim().to_string() }
}

fn scan(text: &str) -> Result<Raw, CaseError> {
    if text.len() > MAX_CASE_BYTES {
        return Err(CaseError::TooLarge { bytes: text.len(), max: MAX_CASE_BYTES });
    }
    let mut raw = Raw {
        version: None,
        base_mva: None,
        matrices: BTreeMap::new(),
        convert_r_x: false,
        convert_kw: false,
        pf_qd: None,
        pf_pd: None,
    };
    let lines = strip_comments(text)?;
    let mut bases: Vec<BaseDef> = Vec::new();
    // the column names MATPOWER's index helpers have bound so far
    let mut bound: BTreeSet<&str> = BTreeSet::new();
    // the plain-number locals (`pf = 0.85;`)
    let mut locals: BTreeMap<String, f64> = BTreeMap::new();
    let mut i = 0;
    // whether a statement (or the file's `function` line) came before:
    // MATLAB runs only a function file's first function, so a later
    // `function` line starts a local function whose body may or may not be
    // called — refused rather than guessed (attack r24 [2])
    let mut begun = false;
    while i < lines.len() {
        let lineno = i + 1;
        let mut line = lines[i].trim().to_string();
        i += 1;
        if line.is_empty() {
            continue;
        }
        let (toks, _) = lex(&line).map_err(|msg| CaseError::Malformed { line: lineno, msg })?;
        if toks.first().is_some_and(|(_, t)| *t == Tok::Ident("function")) {
            if begun {
                return Err(CaseError::UnsupportedCode {
                    line: lineno,
                    stmt: format!("a second function (only the file's first is read): {line}"),
                });
            }
            // `function mpc = f(Inf)`: MATLAB reads `Inf` in the body as
            // the (unset) argument
            if toks.iter().any(|(_, t)| matches!(t, Tok::Ident(name) if shadows_a_constant(name))) {
                return Err(CaseError::UnsupportedCode {
                    line: lineno,
                    stmt: format!("a variable named like a constant the parser reads: {line}"),
                });
            }
            begun = true;
            continue;
        }
        begun = true;
        let Some(rest) = line.strip_prefix("mpc.").map(str::to_string) else {
            // MATLAB continuation lines (`...`) join one statement
            while line.ends_with("...") {
                line.truncate(line.len() - 3);
                match lines.get(i) {
                    Some(next) => line.push_str(next),
                    None => break,
                }
                i += 1;
            }
            let stmt = squash(&line);
            if stmt == "return;" || stmt == "return" {
                // MATLAB runs nothing after `return`; the parser does not
                // guess what follows: anything there is refused
                if let Some(k) = lines[i..].iter().position(|l| !l.trim().is_empty()) {
                    let after = i + k;
                    return Err(CaseError::UnsupportedCode {
                        line: after + 1,
                        stmt: format!("code after `return` (line {lineno}): {}", lines[after].trim()),
                    });
                }
                break;
            }
            match index_helper(&line) {
                Some(Some(names)) => {
                    bound.extend(names.iter().copied());
                    continue;
                }
                Some(None) => return Err(unsupported(lineno, &line)),
                None => {}
            }
            if let Some((_, def)) = BASE_DEFS.iter().find(|(text, _)| *text == stmt) {
                if bases.contains(def) || (*def == BaseDef::Vbase && !bound.contains("BASE_KV")) {
                    return Err(unsupported(lineno, &line));
                }
                bases.push(*def);
                continue;
            }
            // a local is read without squashing its commas: `pf = 0.8, 5;`
            // is two statements to MATLAB, not `pf = 0.85` (attack r24 [1])
            let plain: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            if is_harmless_local(&plain) {
                if let Some((name, value)) = plain.split_once('=') {
                    let value = parse_num(value.strip_suffix(';').unwrap_or(value));
                    locals.insert(name.to_string(), value.unwrap_or(f64::NAN));
                }
                continue;
            }
            // any other code (`mpc = scale_load(2, mpc);`, a redefined
            // `Vbase`, ...) could change the case: refused, never ignored
            return Err(unsupported(lineno, &line));
        };
        let Some(eq) = rest.find('=') else {
            return Err(CaseError::Malformed { line: lineno, msg: "assignment without `=`".into() });
        };
        let lhs = rest[..eq].trim();
        let rhs = rest[eq + 1..].trim();
        if !lhs.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            // an indexed assignment such as `mpc.bus(:, [PD, QD]) = ...`:
            // only the two conversions, each once, after its matrix and
            // (for the ohm one) after both base definitions
            let stmt = squash(&line);
            if stmt == "mpc.branch(:[BR_RBR_X])=mpc.branch(:[BR_RBR_X])/(Vbase^2/Sbase);"
                && !raw.convert_r_x
                && raw.matrices.contains_key("branch")
                && raw.matrices.contains_key("bus")
                && bases.len() == 2
                && bound.contains("BR_R")
                && bound.contains("BR_X")
            {
                raw.convert_r_x = true;
            } else if stmt == "mpc.bus(:[PDQD])=mpc.bus(:[PDQD])/1e3;"
                && !raw.convert_kw
                && raw.matrices.contains_key("bus")
                && bound.contains("PD")
                && bound.contains("QD")
            {
                raw.convert_kw = true;
            } else if stmt == "mpc.bus(:QD)=mpc.bus(:PD)*sin(acos(pf));"
                && raw.convert_kw
                && raw.pf_qd.is_none()
                && locals.get("pf").is_some_and(|pf| *pf > 0.0 && *pf <= 1.0)
            {
                // MATPOWER's case141: loads given in kVA at power factor
                // `pf`; the reactive part first, from the apparent power
                raw.pf_qd = locals.get("pf").copied();
            } else if stmt == "mpc.bus(:PD)=mpc.bus(:PD)*pf;"
                && raw.pf_qd.is_some()
                && raw.pf_pd.is_none()
                && locals.get("pf").is_some_and(|pf| *pf > 0.0 && *pf <= 1.0)
            {
                raw.pf_pd = locals.get("pf").copied();
            } else {
                return Err(unsupported(lineno, &line));
            }
            continue;
        }
        if raw.convert_kw || raw.convert_r_x {
            // an assignment after a conversion would escape it
            return Err(unsupported(lineno, &line));
        }
        if raw.matrices.contains_key(lhs) || (lhs == "version" && raw.version.is_some()) {
            return Err(unsupported(lineno, &line));
        }
        if rhs.starts_with('{') {
            // cell array: skipped to its closing brace, literals only
            skip_cell(rhs, lineno, &lines, &mut i)?;
            continue;
        }
        if let Some(after) = rhs.strip_prefix('[') {
            // linear: only each new line is searched for the closing bracket
            let mut body = String::from(after);
            let mut close = after.find(']');
            while close.is_none() {
                let Some(next) = lines.get(i) else {
                    return Err(CaseError::Malformed { line: lineno, msg: format!("unterminated matrix `mpc.{lhs}`") });
                };
                body.push('\n');
                let start = body.len();
                body.push_str(next);
                i += 1;
                close = next.find(']').map(|k| start + k);
            }
            let close = close.unwrap_or(body.len());
            let after_close = body[close + 1..].trim().trim_start_matches(';').trim();
            if !after_close.is_empty() {
                // `]; mpc.bus(:, 3) = 0;` would otherwise go unseen
                return Err(unsupported(i.max(lineno), after_close));
            }
            let mut rows = Vec::new();
            for row in body[..close].split([';', '\n']) {
                let mut vals = Vec::new();
                for tok in row.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()) {
                    let v = parse_num(tok).ok_or_else(|| CaseError::Malformed {
                        line: lineno,
                        msg: format!("`mpc.{lhs}`: {tok:?} is not a number"),
                    })?;
                    vals.push(v);
                }
                if !vals.is_empty() {
                    rows.push(vals);
                }
            }
            raw.matrices.insert(lhs.to_string(), (lineno, rows));
            continue;
        }
        if matches!(lhs, "bus" | "gen" | "branch" | "gencost" | "areas" | "dcline") || rhs.contains("mpc") {
            // `mpc.branch = mpc.branch(1:2, :);` and the like
            return Err(unsupported(lineno, &line));
        }
        let value = rhs.strip_suffix(';').unwrap_or(rhs).trim();
        // one statement, its value a literal: `mpc.name = 'x'; Vbase = 1;`
        // would hide a second statement MATLAB runs
        let quoted = |q: char| value.strip_prefix(q).and_then(|v| v.strip_suffix(q)).is_some_and(|v| !v.contains(q));
        if !(quoted('\'') || quoted('"') || parse_num(value).is_some()) {
            return Err(unsupported(lineno, &line));
        }
        match lhs {
            "version" => {
                let v = value.trim_matches('\'').trim_matches('"').to_string();
                raw.version = Some((lineno, v));
            }
            "baseMVA" => {
                if raw.base_mva.is_some() {
                    return Err(unsupported(lineno, &line));
                }
                let v = parse_num(value).ok_or_else(|| CaseError::Malformed {
                    line: lineno,
                    msg: format!("baseMVA {value:?} is not a number"),
                })?;
                raw.base_mva = Some((lineno, v));
            }
            _ => {} // other scalar fields (e.g. names) are not used
        }
    }
    Ok(raw)
}

fn finite(matrix: &'static str, row: usize, col: usize, v: f64) -> Result<f64, CaseError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(CaseError::BadValue { matrix, row, col, msg: format!("{v} is not finite") })
    }
}

fn bus_id(matrix: &'static str, row: usize, col: usize, v: f64) -> Result<u32, CaseError> {
    if v.fract() == 0.0 && v >= 1.0 && v <= u32::MAX as f64 {
        Ok(v as u32)
    } else {
        Err(CaseError::BadValue { matrix, row, col, msg: format!("{v} is not a positive integer bus number") })
    }
}

fn rows<'a>(raw: &'a Raw, name: &'static str, need: usize) -> Result<Option<&'a Vec<Vec<f64>>>, CaseError> {
    let Some((_, rows)) = raw.matrices.get(name) else { return Ok(None) };
    for (r, row) in rows.iter().enumerate() {
        if row.len() < need {
            return Err(CaseError::TooFewColumns { matrix: name, row: r + 1, need, got: row.len() });
        }
    }
    Ok(Some(rows))
}

fn build(raw: Raw) -> Result<Case, CaseError> {
    match &raw.version {
        None => return Err(CaseError::MissingVersion),
        Some((_, v)) if v != "2" => return Err(CaseError::NotVersion2(v.clone())),
        _ => {}
    }
    let base_mva = raw.base_mva.ok_or(CaseError::MissingField("baseMVA"))?.1;
    // a sane power base: a subnormal one overflows every rating to +inf
    if !(base_mva.is_finite() && (MIN_BASE_MVA..=MAX_BASE_MVA).contains(&base_mva)) {
        return Err(CaseError::BadValue {
            matrix: "baseMVA",
            row: 1,
            col: 1,
            msg: format!("{base_mva} must be between {MIN_BASE_MVA} and {MAX_BASE_MVA} MVA"),
        });
    }
    let bus_rows = rows(&raw, "bus", 13)?.ok_or(CaseError::MissingField("bus"))?;
    let gen_rows = rows(&raw, "gen", 10)?.ok_or(CaseError::MissingField("gen"))?;
    let br_rows = rows(&raw, "branch", 11)?.ok_or(CaseError::MissingField("branch"))?;

    let mut buses = Vec::with_capacity(bus_rows.len());
    let mut seen = BTreeSet::new();
    for (r, row) in bus_rows.iter().enumerate() {
        let rn = r + 1;
        let id = bus_id("bus", rn, 1, row[0])?;
        if !seen.insert(id) {
            return Err(CaseError::DuplicateBus(id));
        }
        let kind = match row[1] {
            1.0 => BusType::Pq,
            2.0 => BusType::Pv,
            3.0 => BusType::Ref,
            4.0 => BusType::Isolated,
            t => return Err(CaseError::BadValue { matrix: "bus", row: rn, col: 2, msg: format!("bus type {t}") }),
        };
        let f = |c: usize| finite("bus", rn, c + 1, row[c]);
        let mut bus = Bus {
            id,
            kind,
            pd: f(2)?,
            qd: f(3)?,
            gs: f(4)?,
            bs: f(5)?,
            vm: f(7)?,
            va_deg: f(8)?,
            base_kv: f(9)?,
            vmax: f(11)?,
            vmin: f(12)?,
        };
        if bus.vm <= 0.0 {
            return Err(CaseError::BadValue { matrix: "bus", row: rn, col: 8, msg: "Vm must be positive".into() });
        }
        if bus.base_kv < 0.0 {
            return Err(CaseError::BadValue {
                matrix: "bus",
                row: rn,
                col: 10,
                msg: "baseKV must not be negative".into(),
            });
        }
        for (col, v) in [(12, bus.vmax), (13, bus.vmin)] {
            if v < 0.0 {
                return Err(CaseError::BadValue {
                    matrix: "bus",
                    row: rn,
                    col,
                    msg: format!("voltage limit {v} is negative"),
                });
            }
        }
        if bus.vmin > bus.vmax {
            return Err(CaseError::BadValue {
                matrix: "bus",
                row: rn,
                col: 13,
                msg: format!("Vmin {} exceeds Vmax {}", bus.vmin, bus.vmax),
            });
        }
        if raw.convert_kw {
            bus.pd /= 1e3;
            bus.qd /= 1e3;
        }
        // in the file's order, as MATLAB evaluates it (the scalar
        // sin(acos(pf)) first; 0 < pf ≤ 1 checked at the statement)
        if let Some(pf) = raw.pf_qd {
            bus.qd = bus.pd * pf.acos().sin();
        }
        if let Some(pf) = raw.pf_pd {
            bus.pd *= pf;
        }
        buses.push(bus);
    }
    let refs: Vec<u32> = buses.iter().filter(|b| b.kind == BusType::Ref).map(|b| b.id).collect();
    match refs.len() {
        0 => return Err(CaseError::NoReferenceBus),
        1 => {}
        _ => return Err(CaseError::SeveralReferenceBuses(refs)),
    }

    let mut gens = Vec::with_capacity(gen_rows.len());
    for (r, row) in gen_rows.iter().enumerate() {
        let rn = r + 1;
        let bus = bus_id("gen", rn, 1, row[0])?;
        if !seen.contains(&bus) {
            return Err(CaseError::UnknownBus { matrix: "gen", row: rn, bus });
        }
        let f = |c: usize| finite("gen", rn, c + 1, row[c]);
        // Q and P limits may be ±Inf in MATPOWER files
        let lim = |c: usize| {
            if row[c].is_nan() {
                Err(CaseError::BadValue { matrix: "gen", row: rn, col: c + 1, msg: "NaN".into() })
            } else {
                Ok(row[c])
            }
        };
        gens.push(Gen {
            bus,
            pg: f(1)?,
            qg: f(2)?,
            qmax: lim(3)?,
            qmin: lim(4)?,
            vg: f(5)?,
            in_service: f(7)? > 0.0,
            pmax: lim(8)?,
            pmin: lim(9)?,
        });
        // a voltage set-point is a magnitude, as a bus's Vm is
        if gens[r].vg <= 0.0 {
            return Err(CaseError::BadValue {
                matrix: "gen",
                row: rn,
                col: 6,
                msg: format!("generator {rn} at bus {bus}: Vg must be positive"),
            });
        }
    }

    let mut branches = Vec::with_capacity(br_rows.len());
    for (r, row) in br_rows.iter().enumerate() {
        let rn = r + 1;
        let from = bus_id("branch", rn, 1, row[0])?;
        let to = bus_id("branch", rn, 2, row[1])?;
        for b in [from, to] {
            if !seen.contains(&b) {
                return Err(CaseError::UnknownBus { matrix: "branch", row: rn, bus: b });
            }
        }
        let f = |c: usize| finite("branch", rn, c + 1, row[c]);
        let mut br = Branch {
            from,
            to,
            r: f(2)?,
            x: f(3)?,
            b: f(4)?,
            rate_a: f(5)?,
            tap: if f(8)? == 0.0 { 1.0 } else { f(8)? },
            shift_deg: f(9)?,
            in_service: f(10)? > 0.0,
        };
        // MATPOWER: ratio 0 means a line, a positive one a transformer's
        // off-nominal tap; a negative ratio is no transformer (it "solved"
        // to 0.31 p.u. and 134 MW losses on a 100 MW system)
        if f(8)? < 0.0 {
            return Err(CaseError::BadValue {
                matrix: "branch",
                row: rn,
                col: 9,
                msg: format!("tap ratio {} is negative (0 means a line)", f(8)?),
            });
        }
        if br.rate_a < 0.0 {
            return Err(CaseError::BadValue {
                matrix: "branch",
                row: rn,
                col: 6,
                msg: format!("rating {} is negative (0 means unlimited)", br.rate_a),
            });
        }
        if raw.convert_r_x {
            let vbase = buses[0].base_kv * 1e3;
            let zbase = vbase * vbase / (base_mva * 1e6);
            br.r /= zbase;
            br.x /= zbase;
            if !(br.r.is_finite() && br.x.is_finite()) {
                return Err(CaseError::BadValue {
                    matrix: "branch",
                    row: rn,
                    col: 3,
                    msg: format!("impedance not finite after the ohm conversion (bus 1 baseKV {})", buses[0].base_kv),
                });
            }
        }
        if br.in_service && br.r == 0.0 && br.x == 0.0 {
            return Err(CaseError::BadValue {
                matrix: "branch",
                row: rn,
                col: 4,
                msg: "zero impedance (r = x = 0)".into(),
            });
        }
        if from == to {
            return Err(CaseError::BadValue {
                matrix: "branch",
                row: rn,
                col: 2,
                msg: "branch connects a bus to itself".into(),
            });
        }
        branches.push(br);
    }

    let mut gencost = Vec::new();
    if let Some((_, rows)) = raw.matrices.get("gencost") {
        if rows.len() != gens.len() && rows.len() != 2 * gens.len() {
            return Err(CaseError::GenCostRows { got: rows.len(), gens: gens.len() });
        }
        for (r, row) in rows.iter().enumerate() {
            let rn = r + 1;
            if row.len() < 4 {
                return Err(CaseError::TooFewColumns { matrix: "gencost", row: rn, need: 4, got: row.len() });
            }
            let n = row[3];
            if !(n.fract() == 0.0 && (0.0..1e6).contains(&n)) {
                return Err(CaseError::BadValue { matrix: "gencost", row: rn, col: 4, msg: format!("n = {n}") });
            }
            let n = n as usize;
            let model = row[0];
            let need = if model == 2.0 { 4 + n } else { 4 + 2 * n };
            if row.len() < need {
                return Err(CaseError::TooFewColumns { matrix: "gencost", row: rn, need, got: row.len() });
            }
            for (c, v) in row.iter().enumerate().take(need) {
                finite("gencost", rn, c + 1, *v)?;
            }
            gencost.push(if model == 2.0 {
                GenCost::Polynomial(row[4..4 + n].to_vec())
            } else if model == 1.0 {
                GenCost::PiecewiseLinear((0..n).map(|k| (row[4 + 2 * k], row[5 + 2 * k])).collect())
            } else {
                return Err(CaseError::BadValue {
                    matrix: "gencost",
                    row: rn,
                    col: 1,
                    msg: format!("cost model {model}"),
                });
            });
        }
    }

    let case = Case { base_mva, buses, gens, branches, gencost, converted_units: raw.convert_kw || raw.convert_r_x };
    check_connected(&case)?;
    Ok(case)
}

fn check_connected(case: &Case) -> Result<(), CaseError> {
    let idx = case.bus_index();
    let n = case.buses.len();
    let mut adj = vec![Vec::new(); n];
    for br in case.live_branches() {
        let (f, t) = (idx[&br.from], idx[&br.to]);
        adj[f].push(t);
        adj[t].push(f);
    }
    let mut seen = vec![false; n];
    let root = case.ref_index();
    seen[root] = true;
    let mut q = VecDeque::from([root]);
    while let Some(u) = q.pop_front() {
        for &v in &adj[u] {
            if !seen[v] && case.buses[v].kind != BusType::Isolated {
                seen[v] = true;
                q.push_back(v);
            }
        }
    }
    for (i, b) in case.buses.iter().enumerate() {
        if !seen[i] && b.kind != BusType::Isolated {
            return Err(CaseError::Disconnected(b.id));
        }
    }
    Ok(())
}

/// Every bus of a case that is not isolated, in file order: the buses of
/// the DC, DistFlow and AC models, model index `k` for `ids[k]`.
pub(crate) struct LiveBuses {
    /// Their indices in [`Case::buses`].
    pub live: Vec<usize>,
    /// Their bus ids.
    pub ids: Vec<u32>,
    index: std::collections::HashMap<u32, usize>,
}

impl LiveBuses {
    /// The model index of bus `id` (`None`: no such live bus).
    pub fn pos(&self, id: u32) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// The model index of the case's reference bus.
    pub fn reference(&self, case: &Case) -> Result<usize, crate::ModelError> {
        self.pos(case.buses[case.ref_index()].id).ok_or(crate::ModelError::NoReference)
    }
}
