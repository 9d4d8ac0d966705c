"""The shipped manifests' figures in the forms README.md and benchmarks/README.md print them.
    .venv/bin/python runs/issue40/figures.py"""

import json
from pathlib import Path

root = Path(__file__).resolve().parents[2] / "pgsound" / "pretrained_runs"
for name in ("piano-cpu", "piano-cpu-long"):
    record = json.loads((root / f"{name}.json").read_text())
    m = record["evaluation"]["metrics"]
    print(f"{name}: {record['kimg']} kimg, {record['wall_seconds'] / 3600:.1f} h, n = {record['evaluation']['n']}, "
          f"made {record['made']}")
    print(f"  SWD {m['swd_avg']:.1f} floor {m['swd_avg_real']:.1f} ratio {m['swd_avg'] / m['swd_avg_real']:.2f} "
          f"(128x128 term {m['swd_128']:.1f})")
    print(f"  MS-SSIM {m['ms_ssim_fake']:.2f} (real {m['ms_ssim_real']:.2f}); onset {m['onset_fake_db']:.1f} dB "
          f"(real {m['onset_real_db']:.1f}); partial contrast {m['partial_contrast_fake_db']:.1f} "
          f"(real {m['partial_contrast_real_db']:.1f}); consistency {m['sc_fake_db']:.1f} (real {m['sc_real_db']:.1f})")
    print(f"  FD notes {m['fid_notes']:.1f} ({m['fid_notes_real']:.1f}); targets {record.get('targets')}")
