#!/usr/bin/env python3
"""One-off derivation of the IOR demonstration data (data/README.md).

NOT needed to build, test or run gridledger: its outputs are committed.
Run it in a throwaway virtual environment:

    python3 -m venv ../derive-venv && ../derive-venv/bin/pip install pvlib==0.16.1 simbench==1.6.3
    ../derive-venv/bin/python data/scripts/derive_ior_data.py data

It reads data files shipped inside the two wheels (no network access) and
writes integer CSV files with '#' header comments.
"""
import os
import sys

import pandas as pd
import pvlib
import simbench

out = sys.argv[1] if len(sys.argv) > 1 else "data"

# --- Weather: TMY3 station 723170 (Greensboro Piedmont Triad Intl, NC, USA) --
tmy_path = os.path.join(os.path.dirname(pvlib.__file__), "data", "723170TYA.CSV")
tmy, meta = pvlib.iotools.read_tmy3(tmy_path, map_variables=True)
assert len(tmy) == 8760, len(tmy)
rows = []
for i, (ts, r) in enumerate(tmy.iterrows()):
    # TMY3 rows are hour-ending in local standard time: row i covers
    # [i mod 24, i mod 24 + 1) on day i // 24 + 1 of a 365-day typical year.
    rows.append(
        (
            i // 24 + 1,
            i % 24,
            int(round(r["ghi"])),
            int(round(r["dni"])),
            int(round(r["dhi"])),
            int(round(r["temp_air"] * 10)),
            int(round(r["wind_speed"] * 100)),
        )
    )
with open(os.path.join(out, "tmy3_723170_hourly.csv"), "w") as f:
    f.write("# TMY3 station 723170, %s, %s (lat %.3f, lon %.3f, UTC%+.0f), typical meteorological year\n"
            % (meta["Name"].strip('"'), meta["State"], meta["latitude"], meta["longitude"], meta["TZ"]))
    f.write("# source: pvlib %s wheel, pvlib/data/723170TYA.CSV (NREL NSRDB TMY3); see data/README.md\n" % pvlib.__version__)
    f.write("# day: 1..365 of the typical year; hour: 0..23 local standard time, the row covers [hour, hour+1)\n")
    f.write("# ghi/dni/dhi: W/m^2 (hourly mean, rounded); temp: 0.1 degC; wind: cm/s at 10 m\n")
    f.write("day,hour,ghi_w_m2,dni_w_m2,dhi_w_m2,temp_dc,wind_cm_s\n")
    for r in rows:
        f.write(",".join(str(x) for x in r) + "\n")

# --- Household loads: SimBench load profile types H0-A..H0-L ---------------
sb_dir = os.path.join(os.path.dirname(simbench.__file__), "networks", "1-complete_data-mixed-all-2-sw")
lp = pd.read_csv(os.path.join(sb_dir, "LoadProfile.csv"), sep=";")
profiles = [c[: -len("_pload")] for c in lp.columns if c.startswith("H0-") and c.endswith("_pload")]
NOMINAL_W = 3000  # the most common household pLoad in SimBench's Load.csv (0.003 MW)
lp = lp.iloc[: 366 * 96]  # 2016, 15-minute steps; drop a trailing row if any
with open(os.path.join(out, "simbench_h0_load_30min.csv"), "w") as f:
    f.write("# SimBench %s household load profile types %s (year 2016, 15-min p.u. values)\n"
            % (simbench.__version__, " ".join(profiles)))
    f.write("# source: simbench wheel, networks/1-complete_data-mixed-all-2-sw/LoadProfile.csv (ODbL 1.0); see data/README.md\n")
    f.write("# day: 1..366 of 2016; slot: 0..47, 30 minutes each, local time\n")
    f.write("# values: mean active power in W over the slot = round(mean of two 15-min p.u. values x %d W)\n" % NOMINAL_W)
    f.write("day,slot," + ",".join(profiles) + "\n")
    vals = {p: lp[p + "_pload"].to_numpy() for p in profiles}
    for k in range(366 * 48):
        day, slot = k // 48 + 1, k % 48
        ws = [int(round((vals[p][2 * k] + vals[p][2 * k + 1]) / 2 * NOMINAL_W)) for p in profiles]
        f.write("%d,%d,%s\n" % (day, slot, ",".join(str(w) for w in ws)))
print("wrote", out)
