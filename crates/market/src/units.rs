//! The float → integer boundary between the physics and the ledger.
//!
//! Rounding rule: energy is rounded to the nearest whole Wh and money to the
//! nearest minor unit, ties to even (banker's rounding, so repeated
//! conversions carry no systematic bias). Non-finite or out-of-range values
//! are refused, never saturated.

/// Why a float could not cross into the ledger.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnitError {
    #[error("value {0} is not finite")]
    NotFinite(f64),
    #[error("value {0} is out of range for the ledger's integers")]
    OutOfRange(f64),
}

fn round_i64(x: f64) -> Result<i64, UnitError> {
    if !x.is_finite() {
        return Err(UnitError::NotFinite(x));
    }
    let r = x.round_ties_even();
    if r < i64::MIN as f64 || r >= i64::MAX as f64 {
        return Err(UnitError::OutOfRange(x));
    }
    Ok(r as i64)
}

/// Energy of `mw` megawatts held for `seconds`, in Wh (ties to even).
pub fn mw_for_seconds_to_wh(mw: f64, seconds: u32) -> Result<i64, UnitError> {
    round_i64(mw * 1e6 * f64::from(seconds) / 3600.0)
}

/// An amount in major currency units (e.g. a price × energy) in minor units
/// given `minor_per_major` (100 for cents), ties to even.
pub fn to_minor_units(amount: f64, minor_per_major: u32) -> Result<i64, UnitError> {
    round_i64(amount * f64::from(minor_per_major))
}

/// Energy of `kwh` kilowatt-hours in whole Wh (ties to even); negative
/// energy is refused.
pub fn kwh_to_wh(kwh: f64) -> Result<u64, UnitError> {
    let wh = round_i64(kwh * 1000.0)?;
    u64::try_from(wh).map_err(|_| UnitError::OutOfRange(kwh))
}

/// `a / b` for `b > 0`, rounded to the nearest integer, ties to even.
fn div_round_ties_even(a: i128, b: i128) -> i128 {
    let (q, r) = (a.div_euclid(b), a.rem_euclid(b));
    match (2 * r).cmp(&b) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// One bilateral trade in the ledger's integers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SettledTrade {
    pub buyer: usize,
    pub seller: usize,
    /// Energy, whole Wh (this trade's share of its parties' rounded totals).
    pub wh: u64,
    /// The buyer's price of the trade, minor units per MWh (integer).
    pub price_minor_per_mwh: i64,
    /// The trade's value to the buyer in thousandths of a minor unit:
    /// `wh · price_minor_per_mwh / 10³`, ties to even. Payments are rounded
    /// per party, not per trade ([`Settlement`]).
    pub value_milli: i64,
    /// The seller's price of the trade, minor units per MWh: the buyer's
    /// where both settle at one price ([`settle`]), its own nodal price
    /// otherwise ([`settle_nodal`]).
    pub seller_price_minor_per_mwh: i64,
    /// The trade's value to the seller, thousandths of a minor unit.
    pub seller_value_milli: i64,
}

/// An interval's settlement: every trade, and each prosumer's net position.
///
/// Rounding rule (each quantity rounded once, per prosumer, not per trade):
/// - **Energy.** Each prosumer's cleared total (Σ of all its trades, none
///   filtered out) is rounded to whole Wh once: the interval's total is
///   rounded to the nearest Wh (ties to even), and the trade matrix itself
///   is rounded so that every trade, every prosumer's total and the
///   interval's total land on their floor or ceiling in Wh, never above a
///   prosumer's own cap (`⌊1000 · e_max⌋` Wh): the cleared trades are a
///   fractional flow (buyers → sellers) meeting all those bounds, so an
///   integer flow meeting them exists and is found by max-flow (Dinic, in
///   index order, so deterministic). Where caps make that impossible (a
///   cap below a prosumer's ceiling that its partners' floors need), the
///   trades may settle below their floor; where one side's caps cost it
///   fractions of a Wh the other side's floors need, the total is capped to
///   what both sides reach and a prosumer may settle one Wh below its
///   floor; failing all that, as much of the rounded total as the caps let
///   through settles, no prosumer above its cap or its total's ceiling. So Σ buyers' Wh =
///   Σ sellers' Wh = Σ trades' Wh exactly, and an interval never fails to
///   settle for rounding. (Rounding buyers and sellers separately, as
///   before, could round a buyer up while the only seller it trades with
///   rounded down: `Unreconciled`.)
/// - **Money.** Each trade's value is computed in thousandths of a minor
///   unit (`wh · price_minor_per_mwh / 10³`, ties to even, the price
///   rounded to whole minor units per MWh). Each party's NET is rounded to
///   minor units once: the total value is rounded to the nearest minor unit
///   (ties to even) and apportioned over the buyers' totals, and separately
///   over the sellers', by largest remainder (ties to the lower index). Each
///   side's values are on its own prices: the buyers' on the prices they
///   pay, the sellers' on the prices they receive; where the two differ
///   (nodal prices across a congested network, [`settle_nodal`]) the
///   buyers' and the sellers' totals are rounded separately and their
///   difference is the network operator's, [`Settlement::operator_minor`].
///   So `Σ buyer_pays = total_minor` and `Σ seller_receives = total_minor −
///   operator_minor` exactly (with one price per trade, [`settle`],
///   `operator_minor = 0`), each party is within one minor unit of its
///   trades' value, and a seller delivering energy worth at least one minor
///   unit receives at least one.
///
/// A pair listed more than once is one trade: its energy is summed and its
/// value is the settled Wh at the lots' energy-weighted price (Σ mWh ·
/// price over the lots), its price that average rounded to whole minor
/// units per MWh.
///
/// Prices are the caller's: [`crate::clearing::clear`] settles every buyer
/// at its own bus's nodal price and every seller at its own
/// ([`crate::clearing`]'s module docs), the congestion rent to the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Settlement {
    /// Minor units per major unit (100: cents).
    pub minor_per_major: u32,
    /// The trades with at least one Wh, by buyer then seller.
    pub trades: Vec<SettledTrade>,
    /// Per buyer: total paid, minor units.
    pub buyer_pays: Vec<i64>,
    /// Per seller: total received, minor units.
    pub seller_receives: Vec<i64>,
    /// Per buyer and per seller: energy, Wh.
    pub buyer_wh: Vec<u64>,
    pub seller_wh: Vec<u64>,
    /// Σ payments, minor units (= Σ receipts + `operator_minor`).
    pub total_minor: i64,
    /// The network operator's share: Σ payments − Σ receipts, minor units
    /// (the congestion rent of nodal prices; negative where the operator
    /// pays; 0 where every trade has one price).
    pub operator_minor: i64,
    /// Σ energy, Wh.
    pub energy_wh: u64,
}

/// Why an interval could not be settled.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettlementError {
    #[error(transparent)]
    Unit(#[from] UnitError),
    #[error("trade {index} names buyer {buyer} / seller {seller}, outside the market's {buyers} × {sellers}")]
    UnknownParty { index: usize, buyer: usize, seller: usize, buyers: usize, sellers: usize },
    #[error("a settlement total overflows the ledger's integers")]
    Overflow,
    /// No longer returned: the flow rounding of [`settle`] always finds
    /// a settlement (kept so that callers matching on it still build).
    #[error("buyer {buyer}'s rounded Wh could not be matched to a seller's along its trades")]
    Unreconciled { buyer: usize },
}

/// A prosumer's cap in whole Wh, `⌊1000 · e_max⌋` exactly (of the float's
/// exact value, no slack: a cap is never above `e_max`; an `e_max` of
/// 1.005 kWh, a float just below it, caps at 1004 Wh); 0 for a
/// non-positive or non-finite `e_max`; saturating for a huge one.
pub fn cap_wh(e_max_kwh: f64) -> u64 {
    if !e_max_kwh.is_finite() || e_max_kwh <= 0.0 {
        return 0;
    }
    // e_max = mant · 2^exp exactly
    let bits = e_max_kwh.to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (mant, exp) = if raw_exp == 0 { (frac, -1074) } else { (frac | (1u64 << 52), raw_exp - 1075) };
    let milli = u128::from(mant) * 1000;
    if exp >= 0 {
        if exp >= 64 {
            return u64::MAX;
        }
        let v = milli.checked_shl(exp as u32).filter(|v| v >> exp == milli).unwrap_or(u128::MAX);
        u64::try_from(v).unwrap_or(u64::MAX)
    } else if exp <= -128 {
        0
    } else {
        u64::try_from(milli >> (-exp) as u32).unwrap_or(u64::MAX)
    }
}

/// Largest-remainder apportionment of `total` units over parts with exact
/// values `x` (in units, scaled by `den`: `num[i] / den`), each between
/// `min(⌊x⌋, cap)` and `min(⌈x⌉, cap)` where `total` allows (the caller
/// caps it to what rounding up can reach); a `total` below the floors takes
/// one unit off the parts with the smallest fractional parts, in turn.
/// Ties go to the lower index (rounding up) or the higher (down).
fn apportion(num: &[i128], den: i128, cap: &[u64], total: i128) -> Vec<i128> {
    let mut out: Vec<i128> = num.iter().zip(cap).map(|(x, c)| x.div_euclid(den).min(i128::from(*c))).collect();
    let mut left = total - out.iter().sum::<i128>();
    let mut order: Vec<usize> =
        (0..num.len()).filter(|i| num[*i].rem_euclid(den) > 0 && out[*i] < i128::from(cap[*i])).collect();
    order.sort_by(|a, b| num[*b].rem_euclid(den).cmp(&num[*a].rem_euclid(den)).then(a.cmp(b)));
    // below every part's floor (the other side's caps cost it fractions):
    // one unit off the parts with the smallest fractional parts, in turn
    let mut down: Vec<usize> = (0..num.len()).collect();
    down.sort_by(|a, b| num[*a].rem_euclid(den).cmp(&num[*b].rem_euclid(den)).then(b.cmp(a)));
    while left < 0 && out.iter().any(|v| *v > 0) {
        for &i in &down {
            if left < 0 && out[i] > 0 {
                out[i] -= 1;
                left += 1;
            }
        }
    }
    for i in order {
        if left <= 0 {
            break;
        }
        // only a part not capped below its floor gets a rounding-up unit
        if out[i] == num[i].div_euclid(den) {
            out[i] += 1;
            left -= 1;
        }
    }
    out
}

/// A flow network for [`settle`]'s rounding (Dinic's algorithm; edges
/// and searches in insertion order, so deterministic).
struct FlowGraph {
    to: Vec<usize>,
    cap: Vec<i128>,
    adj: Vec<Vec<usize>>,
}

impl FlowGraph {
    fn new(nodes: usize) -> FlowGraph {
        FlowGraph { to: Vec::new(), cap: Vec::new(), adj: vec![Vec::new(); nodes] }
    }

    /// Adds `u → v` with capacity `cap`; returns the edge's id.
    fn add(&mut self, u: usize, v: usize, cap: i128) -> usize {
        let id = self.to.len();
        self.to.extend([v, u]);
        self.cap.extend([cap, 0]);
        self.adj[u].push(id);
        self.adj[v].push(id + 1);
        id
    }

    /// The flow on edge `id` (its reverse edge's residual capacity).
    fn flow(&self, id: usize) -> i128 {
        self.cap[id ^ 1]
    }

    /// Pushes at most `limit` from `s` to `t`; returns the amount pushed.
    fn max_flow(&mut self, s: usize, t: usize, limit: i128) -> i128 {
        let n = self.adj.len();
        let mut total = 0;
        while total < limit {
            // levels by breadth-first search
            let mut level = vec![usize::MAX; n];
            level[s] = 0;
            let mut queue = std::collections::VecDeque::from([s]);
            while let Some(u) = queue.pop_front() {
                for &e in &self.adj[u] {
                    let v = self.to[e];
                    if self.cap[e] > 0 && level[v] == usize::MAX {
                        level[v] = level[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            if level[t] == usize::MAX {
                break;
            }
            // blocking flow by iterative depth-first search
            let mut next = vec![0usize; n];
            let mut path: Vec<usize> = Vec::new();
            let mut u = s;
            while total < limit {
                if u == t {
                    let f = path.iter().map(|&e| self.cap[e]).min().unwrap_or(0).min(limit - total);
                    for &e in &path {
                        self.cap[e] -= f;
                        self.cap[e ^ 1] += f;
                    }
                    total += f;
                    path.clear();
                    u = s;
                    continue;
                }
                let mut found = None;
                while next[u] < self.adj[u].len() {
                    let e = self.adj[u][next[u]];
                    let v = self.to[e];
                    if self.cap[e] > 0 && level[v] == level[u].wrapping_add(1) {
                        found = Some(e);
                        break;
                    }
                    next[u] += 1;
                }
                match found {
                    Some(e) => {
                        path.push(e);
                        u = self.to[e];
                    }
                    None => {
                        // a dead end: never entered again in this phase
                        level[u] = usize::MAX;
                        let Some(e) = path.pop() else { break };
                        u = self.to[e ^ 1];
                        next[u] += 1;
                    }
                }
            }
        }
        total
    }
}

/// A flow meeting every edge's bounds `(u, v, lo, hi)` (a circulation:
/// conserved at every node), the flow on each edge in order; `None` when
/// none exists.
fn feasible_flow(nodes: usize, edges: &[(usize, usize, i128, i128)]) -> Option<Vec<i128>> {
    let (ss, tt) = (nodes, nodes + 1);
    let mut g = FlowGraph::new(nodes + 2);
    let mut excess = vec![0i128; nodes];
    let mut ids = Vec::with_capacity(edges.len());
    for &(u, v, lo, hi) in edges {
        if lo > hi || lo < 0 {
            return None;
        }
        excess[v] += lo;
        excess[u] -= lo;
        ids.push(g.add(u, v, hi - lo));
    }
    let mut need = 0;
    for (v, x) in excess.iter().enumerate() {
        if *x > 0 {
            g.add(ss, v, *x);
            need += x;
        } else if *x < 0 {
            g.add(v, tt, -x);
        }
    }
    if g.max_flow(ss, tt, need) != need {
        return None;
    }
    Some(edges.iter().zip(ids).map(|(e, id)| e.2 + g.flow(id)).collect())
}

/// One side's price of a pair's lots in [`settle_nodal`]: the price
/// (minor units per MWh) if every lot had the same one, and Σ mWh · price
/// over the lots.
#[derive(Debug, Clone, Copy)]
struct Lots {
    same: Option<i64>,
    sum: i128,
}

impl Lots {
    fn new(price: i64) -> Lots {
        Lots { same: Some(price), sum: 0 }
    }

    fn add(&mut self, mwh: i128, price: i64) -> Result<(), SettlementError> {
        if self.same != Some(price) {
            self.same = None;
        }
        let lot = mwh.checked_mul(i128::from(price)).ok_or(SettlementError::Overflow)?;
        self.sum = self.sum.checked_add(lot).ok_or(SettlementError::Overflow)?;
        Ok(())
    }

    /// The value of `wh` settled Wh of a pair of `mwh` cleared mWh, in
    /// thousandths of a minor unit, and the price it is settled at.
    fn value(&self, wh: i128, mwh: i128) -> Result<(i128, i64), SettlementError> {
        let to_i64 = |v: i128| i64::try_from(v).map_err(|_| SettlementError::Overflow);
        Ok(match self.same {
            // one price: wh · price / 10³
            Some(p) => (div_round_ties_even(wh.checked_mul(i128::from(p)).ok_or(SettlementError::Overflow)?, 1000), p),
            // lots at several prices: the Wh at their energy-weighted price,
            // wh · Σ(mWh · price) / (mWh · 10³)
            None => {
                let num = wh.checked_mul(self.sum).ok_or(SettlementError::Overflow)?;
                let den = mwh.checked_mul(1000).ok_or(SettlementError::Overflow)?;
                (div_round_ties_even(num, den), to_i64(div_round_ties_even(self.sum, mwh))?)
            }
        })
    }
}

/// One pair's lots in [`settle_nodal`]: mWh, and the buyer's and the
/// seller's prices of the lots.
type Cell = (i128, Lots, Lots);

/// Settles `(buyer, seller, kWh, price $/kWh)` trades of a market whose
/// prosumers may settle at most `buyer_cap_wh[m]` / `seller_cap_wh[n]` Wh
/// ([`cap_wh`] of their `e_max`), in integer Wh and minor units (see
/// [`Settlement`] for the rounding rule), each trade at one price for both
/// its parties (so [`Settlement::operator_minor`] is 0). Pass every trade
/// the clearing made, however small: the energy is rounded per prosumer, so
/// no trade is too small to count. A pair may appear more than once (summed).
pub fn settle(
    trades: &[(usize, usize, f64, f64)],
    buyer_cap_wh: &[u64],
    seller_cap_wh: &[u64],
    minor_per_major: u32,
) -> Result<Settlement, SettlementError> {
    let both: Vec<(usize, usize, f64, f64, f64)> = trades.iter().map(|&(m, n, e, p)| (m, n, e, p, p)).collect();
    settle_nodal(&both, buyer_cap_wh, seller_cap_wh, minor_per_major)
}

/// [`settle`] with two prices per trade: `(buyer, seller, kWh, buyer's
/// price, seller's price)`, $/kWh. The buyer pays its price on the trade's
/// Wh, the seller receives its own; the difference over all trades is the
/// network operator's ([`Settlement::operator_minor`]). The energy is
/// rounded as in [`settle`], each side's money on its own prices.
pub fn settle_nodal(
    trades: &[(usize, usize, f64, f64, f64)],
    buyer_cap_wh: &[u64],
    seller_cap_wh: &[u64],
    minor_per_major: u32,
) -> Result<Settlement, SettlementError> {
    let (buyers, sellers) = (buyer_cap_wh.len(), seller_cap_wh.len());
    // each pair's energy in the finer unit, mWh (10⁻³ Wh, integer), and its prices
    const SUB: i128 = 1000;
    let mut cells: std::collections::BTreeMap<(usize, usize), Cell> = std::collections::BTreeMap::new();
    for (index, &(buyer, seller, kwh, buyer_price, seller_price)) in trades.iter().enumerate() {
        if buyer >= buyers || seller >= sellers {
            return Err(SettlementError::UnknownParty { index, buyer, seller, buyers, sellers });
        }
        // refuse negative or non-finite energy; kWh → mWh (10⁻³ Wh), ties to even
        let mwh = kwh_to_wh(kwh * 1000.0).map_err(|e| match e {
            UnitError::NotFinite(_) => UnitError::NotFinite(kwh),
            UnitError::OutOfRange(_) => UnitError::OutOfRange(kwh),
        })?;
        let mwh = i128::from(mwh);
        // $/kWh × 1000 = $/MWh, in minor units
        let pb = to_minor_units(buyer_price * 1000.0, minor_per_major)?;
        let ps = to_minor_units(seller_price * 1000.0, minor_per_major)?;
        let c = cells.entry((buyer, seller)).or_insert((0, Lots::new(pb), Lots::new(ps)));
        c.0 += mwh;
        c.1.add(mwh, pb)?;
        c.2.add(mwh, ps)?;
    }
    let cells: Vec<((usize, usize), Cell)> = cells.into_iter().filter(|(_, (e, _, _))| *e > 0).collect();
    // ---- energy: per-prosumer totals, rounded once
    let mut bt = vec![0i128; buyers];
    let mut stot = vec![0i128; sellers];
    for ((m, n), (e, _, _)) in &cells {
        bt[*m] += e;
        stot[*n] += e;
    }
    let grand: i128 = bt.iter().sum();
    let target = div_round_ties_even(grand, SUB);
    // ---- energy: the trade matrix itself is rounded, as a flow
    // (source → buyer → seller → sink, one edge per trade), so that every
    // row and column sum lands on its total's floor or ceiling: the
    // cleared trades are a fractional flow meeting every such bound, so
    // an integer one exists (flow integrality) for the rounded total.
    // Rounding buyers and sellers separately could round a buyer up and
    // the only seller it trades with down, and nothing could settle it.
    let floor = |v: i128| v.div_euclid(SUB);
    let ceil = |v: i128| v.div_euclid(SUB) + i128::from(v.rem_euclid(SUB) > 0);
    let (src, snk) = (0, 1);
    let bnode = |m: usize| 2 + m;
    let snode = |n: usize| 2 + buyers + n;
    let nodes = 2 + buyers + sellers;
    let party_edges = |lo_of: &dyn Fn(i128, u64) -> i128| {
        let mut edges: Vec<(usize, usize, i128, i128)> = Vec::new();
        for (m, (v, c)) in bt.iter().zip(buyer_cap_wh).enumerate() {
            edges.push((src, bnode(m), lo_of(*v, *c), ceil(*v).min(i128::from(*c))));
        }
        for (n, (v, c)) in stot.iter().zip(seller_cap_wh).enumerate() {
            edges.push((snode(n), snk, lo_of(*v, *c), ceil(*v).min(i128::from(*c))));
        }
        edges
    };
    let trade_edges = |with_floor: bool| {
        cells
            .iter()
            .map(|((m, n), (e, _, _))| (bnode(*m), snode(*n), if with_floor { floor(*e) } else { 0 }, ceil(*e)))
            .collect::<Vec<_>>()
    };
    let lo_floor = |v: i128, c: u64| floor(v).min(i128::from(c));
    // 1: every trade, party and the total on its floor or ceiling; 2 (a cap
    // below a party's total's ceiling can make 1 impossible): the trades
    // free down to zero; 3 (caps cost one side fractions the other side's
    // floors need): the total capped to what both sides reach, a party
    // down to one Wh below its floor; 4: as much of the rounded total as
    // the caps let through, no party above its cap or its ceiling
    let hi_sum = |t: &[i128], c: &[u64]| t.iter().zip(c).map(|(v, c)| ceil(*v).min(i128::from(*c))).sum::<i128>();
    let reach = hi_sum(&bt, buyer_cap_wh).min(hi_sum(&stot, seller_cap_wh));
    let lo_below = |v: i128, c: u64| (floor(v).min(i128::from(c)) - 1).max(0);
    type LowerBound<'a> = &'a dyn Fn(i128, u64) -> i128;
    let attempts: [(bool, LowerBound, i128); 3] =
        [(true, &lo_floor, target), (false, &lo_floor, target), (false, &lo_below, target.min(reach))];
    let mut wh: Option<Vec<i128>> = None;
    for (with_floor, lo_of, total) in attempts {
        let mut edges = trade_edges(with_floor);
        edges.extend(party_edges(lo_of));
        edges.push((snk, src, total, total));
        if let Some(f) = feasible_flow(nodes, &edges) {
            wh = Some(f[..cells.len()].to_vec());
            break;
        }
    }
    let wh = match wh {
        Some(w) => w,
        None => {
            let mut edges = trade_edges(false);
            edges.extend(party_edges(&|_, _| 0));
            let mut g = FlowGraph::new(nodes + 1);
            let ids: Vec<usize> = edges.iter().map(|&(u, v, _, hi)| g.add(u, v, hi.max(0))).collect();
            g.add(nodes, src, target.max(0));
            g.max_flow(nodes, snk, target.max(0));
            ids[..cells.len()].iter().map(|id| g.flow(*id)).collect()
        }
    };
    // ---- money: each trade's value in 10⁻³ minor units, each side's
    // prices on its own, each party's net rounded once
    let mut st = Settlement {
        minor_per_major,
        trades: Vec::new(),
        buyer_pays: vec![0; buyers],
        seller_receives: vec![0; sellers],
        buyer_wh: vec![0; buyers],
        seller_wh: vec![0; sellers],
        total_minor: 0,
        operator_minor: 0,
        energy_wh: 0,
    };
    let mut bv = vec![0i128; buyers];
    let mut sv = vec![0i128; sellers];
    let to_u64 = |v: i128| u64::try_from(v).map_err(|_| SettlementError::Overflow);
    let to_i64 = |v: i128| i64::try_from(v).map_err(|_| SettlementError::Overflow);
    for (k, ((m, n), (e, buyer_lots, seller_lots))) in cells.iter().enumerate() {
        if wh[k] <= 0 {
            continue;
        }
        let (value, price) = buyer_lots.value(wh[k], *e)?;
        let (seller_value, seller_price) = seller_lots.value(wh[k], *e)?;
        bv[*m] += value;
        sv[*n] += seller_value;
        st.buyer_wh[*m] = to_u64(i128::from(st.buyer_wh[*m]) + wh[k])?;
        st.seller_wh[*n] = to_u64(i128::from(st.seller_wh[*n]) + wh[k])?;
        st.trades.push(SettledTrade {
            buyer: *m,
            seller: *n,
            wh: to_u64(wh[k])?,
            price_minor_per_mwh: price,
            value_milli: to_i64(value)?,
            seller_price_minor_per_mwh: seller_price,
            seller_value_milli: to_i64(seller_value)?,
        });
    }
    st.energy_wh = to_u64(wh.iter().sum::<i128>())?;
    // each side's total rounded to the nearest minor unit, apportioned over
    // that side by largest remainder; a negative value (a negative price)
    // rounds the same way (Euclidean)
    let unc = |n: usize| vec![u64::MAX; n];
    let mut totals = [0i128; 2];
    for (t, (dst, src)) in totals.iter_mut().zip([(&mut st.buyer_pays, &bv), (&mut st.seller_receives, &sv)]) {
        *t = div_round_ties_even(src.iter().sum::<i128>(), 1000);
        let a = apportion(src, 1000, &unc(src.len()), *t);
        for (d, v) in dst.iter_mut().zip(a) {
            *d = to_i64(v)?;
        }
    }
    st.total_minor = to_i64(totals[0])?;
    st.operator_minor = to_i64(totals[0] - totals[1])?;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_ties_to_even_and_refuses_nan() {
        assert_eq!(mw_for_seconds_to_wh(1.0, 3600), Ok(1_000_000));
        assert_eq!(to_minor_units(0.125, 100), Ok(12)); // 12.5 → 12
        assert_eq!(to_minor_units(0.375, 100), Ok(38)); // 37.5 → 38
        assert!(matches!(to_minor_units(f64::NAN, 100), Err(UnitError::NotFinite(_))));
        assert!(matches!(mw_for_seconds_to_wh(1e20, 3600), Err(UnitError::OutOfRange(_))));
    }

    #[test]
    fn integer_division_rounds_ties_to_even_in_both_signs() {
        assert_eq!(div_round_ties_even(5, 2), 2);
        assert_eq!(div_round_ties_even(7, 2), 4);
        assert_eq!(div_round_ties_even(-5, 2), -2);
        assert_eq!(div_round_ties_even(-7, 2), -4);
        assert_eq!(div_round_ties_even(1_499_999, 1_000_000), 1);
        assert_eq!(div_round_ties_even(1_500_001, 1_000_000), 2);
    }
}
