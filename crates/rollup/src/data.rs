//! The real data behind the §3.5.4 demonstration, embedded at build time
//! from the workspace's `data/` folder (see `data/README.md` for sources,
//! licences and derivation), so the binary reads no files at run time.
//!
//! - [`WEATHER_CSV`]: TMY3 station 723170 (Greensboro, NC, USA), hourly,
//!   one typical year: irradiance in W/m², wind speed in cm/s.
//! - [`LOAD_CSV`]: SimBench household load profile types `H0-*`, 30-minute
//!   slots of 2016, W for a 3 kW nominal household.

/// `data/tmy3_723170_hourly.csv`.
pub const WEATHER_CSV: &str = include_str!("../../../data/tmy3_723170_hourly.csv");
/// `data/simbench_h0_load_30min.csv`.
pub const LOAD_CSV: &str = include_str!("../../../data/simbench_h0_load_30min.csv");

/// Slots of 30 minutes per day.
pub const SLOTS_PER_DAY: usize = 48;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataError {
    #[error("{file}: line {line}: {what}")]
    Parse { file: &'static str, line: usize, what: String },
    #[error("{file}: no data for day {day}")]
    MissingDay { file: &'static str, day: u16 },
    #[error("no load profile named {0}")]
    UnknownProfile(String),
}

/// One hour of weather (TMY3, local standard time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeatherHour {
    pub day: u16,
    pub hour: u8,
    /// Global horizontal irradiance, W/m².
    pub ghi_w_m2: u32,
    pub dni_w_m2: u32,
    pub dhi_w_m2: u32,
    /// Air temperature, 0.1 °C.
    pub temp_dc: i32,
    /// Wind speed at 10 m, cm/s.
    pub wind_cm_s: u32,
}

/// A CSV's header fields and its numbered data lines.
type Lines<'a> = (Vec<&'a str>, Vec<(usize, &'a str)>);

/// The data lines of a CSV with `#` comments and one header line.
fn lines<'a>(file: &'static str, text: &'a str) -> Result<Lines<'a>, DataError> {
    let mut it = text.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty());
    let Some((_, header)) = it.next() else {
        return Err(DataError::Parse { file, line: 0, what: "no header".into() });
    };
    Ok((header.split(',').collect(), it.map(|(i, l)| (i + 1, l)).collect()))
}

fn field<T: std::str::FromStr>(file: &'static str, line: usize, fs: &[&str], i: usize) -> Result<T, DataError> {
    let s = fs.get(i).ok_or_else(|| DataError::Parse { file, line, what: format!("missing column {i}") })?;
    s.trim().parse().map_err(|_| DataError::Parse { file, line, what: format!("bad value {s:?} in column {i}") })
}

/// Parses a weather CSV in the format of [`WEATHER_CSV`].
pub fn parse_weather(text: &str) -> Result<Vec<WeatherHour>, DataError> {
    const F: &str = "tmy3_723170_hourly.csv";
    let (_, rows) = lines(F, text)?;
    rows.into_iter()
        .map(|(n, l)| {
            let fs: Vec<&str> = l.split(',').collect();
            Ok(WeatherHour {
                day: field(F, n, &fs, 0)?,
                hour: field(F, n, &fs, 1)?,
                ghi_w_m2: field(F, n, &fs, 2)?,
                dni_w_m2: field(F, n, &fs, 3)?,
                dhi_w_m2: field(F, n, &fs, 4)?,
                temp_dc: field(F, n, &fs, 5)?,
                wind_cm_s: field(F, n, &fs, 6)?,
            })
        })
        .collect()
}

/// The 24 hours of `day` (1..=365), in hour order.
pub fn weather_day(all: &[WeatherHour], day: u16) -> Result<Vec<WeatherHour>, DataError> {
    let mut v: Vec<WeatherHour> = all.iter().filter(|w| w.day == day).copied().collect();
    v.sort_by_key(|w| w.hour);
    if v.len() != 24 || v.iter().enumerate().any(|(i, w)| usize::from(w.hour) != i) {
        return Err(DataError::MissingDay { file: "tmy3_723170_hourly.csv", day });
    }
    Ok(v)
}

/// Household load profiles, W per 30-minute slot, over a year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadTable {
    pub profiles: Vec<String>,
    /// `watts[p][(day − 1) × 48 + slot]`.
    pub watts: Vec<Vec<u32>>,
}

impl LoadTable {
    pub fn profile(&self, name: &str) -> Result<&[u32], DataError> {
        let i = self.profiles.iter().position(|p| p == name).ok_or_else(|| DataError::UnknownProfile(name.into()))?;
        Ok(&self.watts[i])
    }
}

/// Parses a load CSV in the format of [`LOAD_CSV`]; rows must be in order.
pub fn parse_loads(text: &str) -> Result<LoadTable, DataError> {
    const F: &str = "simbench_h0_load_30min.csv";
    let (header, rows) = lines(F, text)?;
    let profiles: Vec<String> = header.iter().skip(2).map(|s| s.trim().to_string()).collect();
    let mut watts = vec![Vec::with_capacity(rows.len()); profiles.len()];
    for (k, (n, l)) in rows.into_iter().enumerate() {
        let fs: Vec<&str> = l.split(',').collect();
        let (day, slot): (usize, usize) = (field(F, n, &fs, 0)?, field(F, n, &fs, 1)?);
        if day == 0 || (day - 1) * SLOTS_PER_DAY + slot != k || slot >= SLOTS_PER_DAY {
            return Err(DataError::Parse { file: F, line: n, what: format!("day {day} slot {slot} out of order") });
        }
        for (p, col) in watts.iter_mut().enumerate() {
            col.push(field(F, n, &fs, p + 2)?);
        }
    }
    Ok(LoadTable { profiles, watts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_parses() {
        let w = parse_weather(WEATHER_CSV).unwrap();
        assert_eq!(w.len(), 8760);
        assert_eq!(weather_day(&w, 106).unwrap().len(), 24);
        assert!(w.iter().any(|h| h.ghi_w_m2 > 900) && w.iter().all(|h| h.ghi_w_m2 < 1400));
        let l = parse_loads(LOAD_CSV).unwrap();
        assert_eq!(l.profiles, ["H0-A", "H0-B", "H0-C", "H0-G", "H0-H", "H0-L"]);
        assert!(l.watts.iter().all(|c| c.len() == 366 * SLOTS_PER_DAY));
    }

    #[test]
    fn malformed_data_is_a_typed_error() {
        assert!(matches!(parse_weather("day,hour\n1,x\n"), Err(DataError::Parse { line: 2, .. })));
        assert!(matches!(parse_loads("day,slot,A\n1,1,5\n"), Err(DataError::Parse { .. })));
        assert!(matches!(parse_weather(""), Err(DataError::Parse { .. })));
        let w = parse_weather(WEATHER_CSV).unwrap();
        assert!(matches!(weather_day(&w, 400), Err(DataError::MissingDay { .. })));
    }
}
