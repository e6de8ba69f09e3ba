"""Time and peak memory of one exposure's lookup in a large HATS catalog (a script, not a test).

Usage::

    python tests/hats_lookup_timing.py DIR [N_ROWS]

writes the synthetic catalog of tests/hats_catalog.py under DIR (if not there yet), then runs each
lookup in a fresh process and prints its wall time (first call, with the lazy imports, and again),
the rows and partitions read and the process's peak resident memory (run it a second time once
the catalog exists: a process forked from the 1 GB generator inherits its peak).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# detector-sized regions: a 4k x 4k detector at 0.2"/px is 0.23 deg in radius; with the stamp
# margin, the 1.05 factor and the 0.1 deg proper-motion pad about 0.4 deg
REGIONS = [(150.0, 2.0, 0.4), (0.05, -30.0, 0.4), (45.0, 89.8, 0.4), (90.0, 41.8103, 0.4), (210.0, -60.0, 0.4)]


def lookup(root, ra, dec, radius):
    import resource

    from brightstamps.catalog import SkyCircle, read_catalog

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(2):  # the first includes the lazy imports (pyarrow.parquet, astropy_healpix)
        t0 = time.perf_counter()
        cat = read_catalog(root, columns="gaia", region=SkyCircle(ra, dec, radius))
        times.append(round(time.perf_counter() - t0, 3))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"ra": ra, "dec": dec, "radius": radius, "seconds_first": times[0], "seconds_again": times[1],
                      "rows": len(cat), "partitions": len(cat.meta["files"]),
                      "peak_rss_growth_mb": round((after - before) / 1024, 1), "peak_rss_mb": round(after / 1024, 1)}))


def main():
    root = Path(sys.argv[1])
    n_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
    if not (root / "partition_info.csv").is_file():
        from hats_catalog import write_hats_catalog

        t0 = time.perf_counter()
        write_hats_catalog(root, n_rows=n_rows)
        size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 1e6
        print(f"wrote {n_rows} rows in {time.perf_counter() - t0:.1f} s, {size:.0f} MB")
    for ra, dec, radius in REGIONS:
        subprocess.run([sys.executable, __file__, "--lookup", str(root), str(ra), str(dec), str(radius)], check=True)


if __name__ == "__main__":
    if sys.argv[1] == "--lookup":
        lookup(sys.argv[2], *map(float, sys.argv[3:6]))
    else:
        main()
