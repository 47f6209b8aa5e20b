"""PNG plots of the performance model (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from dfx.compiler.presets import PRESETS
from dfx.errors import DfxError


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise DfxError("--plot needs matplotlib (pip install 'dfx[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_plots(out_dir, model: str, progs, pred, n_in: int, n_out: int) -> list[Path]:
    """latency.png (total time against output tokens), scaling.png (decode time against FPGAs),
    roofline.png (decode time per token against the HBM roofline, per preset)."""
    from dfx.perf.report import Predictor, load_programs

    plt = _plt()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DfxError(f"--plot {out_dir}: cannot create the folder ({e.strerror})") from None
    t, n = progs.target, progs.fpgas
    written = []

    # 1. latency against output tokens
    max_out = max(2, min(n_out * 4, progs.max_seq - n_in + 1))
    xs, ys = pred.latency_curve(n_in, max_out)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, ys, label=f"{t.name}")
    ax.set_xlabel("output tokens")
    ax.set_ylabel("end-to-end time (ms)")
    ax.set_title(f"{progs.name}, {n} FPGA(s), {n_in} prompt tokens")
    ax.grid(alpha=0.3)
    ax.legend()
    written.append(_save(fig, out / "latency.png", plt))

    # 2. scaling with the number of FPGAs (recompiles the programs: presets and folders only)
    if model in PRESETS:
        heads = PRESETS[model].n_head
        ns = [k for k in (1, 2, 3, 4, 6, 8, 12, 16) if k <= heads]
        dec, roof = [], []
        for k in ns:
            try:
                r = Predictor(load_programs(model, k, t.name, progs.max_seq)).predict(n_in, 2)
            except DfxError:  # does not fit on k cards
                dec.append(float("nan")); roof.append(float("nan"))
                continue
            dec.append(r["generation_ms_per_token"]); roof.append(r["roofline_ms_per_token"])
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(ns, dec, "o-", label="model: decode per token")
        ax.plot(ns, roof, "s--", label="HBM roofline")
        ax.set_xlabel("FPGAs")
        ax.set_ylabel("ms per token")
        ax.set_xscale("log", base=2)
        ax.set_title(f"{model} on {t.name}: scaling")
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(_save(fig, out / "scaling.png", plt))

    # 3. per-token time against the roofline, per model size
    names, dec, roof = [], [], []
    for name in PRESETS:
        k = n
        while True:
            try:
                r = Predictor(load_programs(name, k, t.name, progs.max_seq)).predict(n_in, 2)
                break
            except DfxError:
                k += 1
                if k > PRESETS[name].n_head:
                    r = None
                    break
        if r is None:
            continue
        names.append(f"{name}\n({k} FPGA)")
        dec.append(r["generation_ms_per_token"]); roof.append(r["roofline_ms_per_token"])
    fig, ax = plt.subplots(figsize=(7, 4))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], dec, 0.4, label="model: decode per token")
    ax.bar([i + 0.2 for i in x], roof, 0.4, label="HBM roofline")
    for i, (d, r) in enumerate(zip(dec, roof)):
        ax.text(i, max(d, r), f"{100 * r / d:.0f} %", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), names, fontsize=8)
    ax.set_ylabel("ms per token")
    ax.set_title(f"{t.name}: decode against the HBM roofline")
    ax.legend()
    written.append(_save(fig, out / "roofline.png", plt))
    return written


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
