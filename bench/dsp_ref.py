#!/usr/bin/python3
"""Reference implementation in numpy of the analysis engine's per-window computations
(src/dsp/stream.c), for bench/dsp.sh: the cost of the same analysis written the way a competent
Python engineer would (vectorised numpy per window; the frequency tracking is sequential, so the
loop over windows stays), and a check that it computes the same results as the engine.

    /usr/bin/python3 bench/dsp_ref.py --signal SIG.f64 --windows WIN.jsonl --fs 4000 --f0 50 \
        [--reps 7] [--check-only | --no-check]

SIG.f64 and WIN.jsonl come from `dsp_bench dump`: the six-channel signal exactly as the engine
receives it (float64, interleaved, channels Va Vb Vc Ia Ib Ic) and the engine's results per
window. Prints one JSON line: agreement (largest differences per quantity against stated
tolerances) and timings (CPU and wall medians, ns per sample per channel, and numpy's bare rfft
of the same length for comparison).

Per window, as the engine does: resample the three phase voltages over a span of C cycles of the
current frequency estimate onto N points with the engine's Kaiser-windowed sinc (tabulated at 512
fractional phases, interpolated between them; 16 taps from 9.6 kS/s, 128 below, with its
response divided out of the harmonic bins and the orders reported up to its reach); per-cycle DFT phasors of the positive sequence; a
coarse correction from the cycle-to-cycle phase step while acquiring, then the half-window phase
difference, iterated until the span is within 5e-5 of C cycles; resample the currents on the same
grid; Urms(1/2) extremes; RMS, DC, rfft, fundamental and its UTC-referenced angle, one-cycle
synchrophasor, harmonic groups and subgroups and interharmonic groups and centred subgroups up to
the 50th, THD and THDS; symmetrical components and unbalance, derived line-to-line values, power
per IEEE 1459 (P, Q1, S per phase; totals with the effective apparent power); ROCOF; the next
window's frequency prediction. Not done here (the engine does them, so they count against it):
conversion from int16 counts, dip/swell/interruption state machine, 3-s/10-min/2-h aggregation and
the 10-s frequency.
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core, like the engine

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

KPHASES, KRESP = 512, 2048  # src/dsp/internal.h
# src/dsp/kernel.c: (half-width, cut-off, beta, reach as a fraction of Nyquist)
KERNELS = {"short": (8, 0.92, 8.6, 0.66), "long": (64, 0.99, 6.5, 0.985)}
FMIN_REL, FMAX_REL = 0.8, 1.2
FINE_TOL, COARSE_TOL, MAX_ITER = 5e-5, 2e-3, 8
MAX_H = 50
TWO_PI = 2 * math.pi
A3 = np.exp(2j * math.pi / 3)


def kernel_table(kh, cutoff, beta):
    """Row p: the 2*kh taps for a fractional offset p / KPHASES, unit DC gain."""
    frac = np.arange(KPHASES + 1)[:, None] / KPHASES
    t = (np.arange(2 * kh) - kh + 1)[None, :] - frac
    r = t / kh
    win = np.where(np.abs(r) < 1, np.i0(beta * np.sqrt(np.clip(1 - r * r, 0, None))) / np.i0(beta),
                   0.0)
    h = cutoff * np.sinc(cutoff * t) * win
    return h / h.sum(axis=1, keepdims=True)


def kernel_response(tab, kh):
    """As kernel.c: H(nu pi) at nu = i / KRESP, the Riemann sum over every 4th phase of the
    single-precision table."""
    step = 4
    p = np.arange(0, KPHASES, step)
    t = ((np.arange(2 * kh) - kh + 1)[None, :] - p[:, None] / KPHASES).ravel()
    h = tab[p].astype(np.float32).astype(np.float64).ravel() / (KPHASES // step)
    resp = np.empty(KRESP + 1)
    for i0 in range(0, KRESP + 1, 128):
        i = np.arange(i0, min(i0 + 128, KRESP + 1))
        resp[i] = np.cos(np.outer(i, t) * (math.pi / KRESP)) @ h
    return resp


def smooth235(n):
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def wrap_pi(a):
    a = np.fmod(a, TWO_PI)
    a = np.where(a > math.pi, a - TWO_PI, a)
    return np.where(a <= -math.pi, a + TWO_PI, a)


class Analyser:
    """Channels 0-2: phase voltages A, B, C; 3-5: currents A, B, C (the benchmark's layout)."""

    def __init__(self, fs, f0, declared_v=230.0, phasor_cycles=1):
        self.fs, self.f0, self.declared = float(fs), f0, declared_v
        self.C = C = 10 if f0 == 50 else 12
        n = math.ceil(fs / 5)
        while n % (2 * C) or not smooth235(n):
            n += 1
        self.N, self.M = n, n // C
        m = np.arange(self.M)
        self.e = np.cos(TWO_PI * m / self.M) - 1j * np.sin(TWO_PI * m / self.M)
        # as src/dsp/stream.c: the short kernel when its flat band (0.66 of Nyquist) holds the
        # 50th order at f0 + 5 %, else the long one, whose response is divided out of the bins
        short_ok = math.floor(0.66 * fs / 2 / (1.05 * f0)) >= MAX_H
        self.KH, cutoff, beta, reach = KERNELS["short" if short_ok else "long"]
        self.reach_hz = reach * fs / 2
        self.tab = kernel_table(self.KH, cutoff, beta)
        self.resp = kernel_response(self.tab, self.KH)
        self.dtab = np.diff(self.tab, axis=0)
        self.taps = np.arange(2 * self.KH) - self.KH + 1
        self.grid = np.arange(n, dtype=np.float64)
        self.P = phasor_cycles
        m0 = n // 2 - self.P * self.M // 2
        self.ph_slice = slice(m0, m0 + self.P * self.M)
        self.ph_e = self.e[np.arange(m0, m0 + self.P * self.M) % self.M]
        self.vabc, self.iabc = np.array([0, 1, 2]), np.array([3, 4, 5])
        self.rest = self.iabc

    def harmonic_grid(self, f):
        """As stream.c harmonic_grid: the orders of a window whose grid is C cycles of f (up to
        the kernel's reach) and 1/H^2 of the kernel per bin."""
        C, nyq, half = self.C, self.N // 2, self.C // 2
        hmax = max(1, min((nyq - 1 - half) // C, int(math.floor(self.reach_hz / f)), MAX_H))
        top = min(hmax * C + half, nyq)
        x = 2.0 * np.arange(top + 1) * f / (C * self.fs) * KRESP
        i = np.minimum(x.astype(np.int64), KRESP - 1)
        hk = np.where(x >= KRESP, self.resp[KRESP], self.resp[i] + (x - i) * (self.resp[i + 1]
                                                                            - self.resp[i]))
        comp = np.ones(nyq + 1)
        comp[:top + 1] = 1 / np.maximum(hk, 0.25) ** 2
        return hmax, comp

    def clamp(self, f):
        return min(max(f, FMIN_REL * self.f0), FMAX_REL * self.f0)

    def resample(self, x, pos, length):
        """x: (channels, samples) -> (channels, N) on the grid pos + m * length / N."""
        p = pos + self.grid * (length / self.N)
        ip = np.floor(p)
        q = (p - ip) * KPHASES
        qi = np.minimum(q.astype(np.int64), KPHASES - 1)
        w = self.tab[qi] + (q - qi)[:, None] * self.dtab[qi]
        idx = ip.astype(np.int64)[:, None] + self.taps
        return np.einsum("nk,cnk->cn", w, x[:, idx])

    def run(self, x):
        """x: (6, samples) float64 (values as the engine's float32 ring holds them). Returns a
        list of per-window result dicts."""
        fs, C, N, M = self.fs, self.C, self.N, self.M
        L = x.shape[1]
        KH = self.KH
        pos, acquiring, f_hint = float(KH), True, float(self.f0)
        have_last, f_last, tref_last = False, 0.0, 0
        prev_half, have_prev_half = None, False
        xv = x[self.vabc]
        out = []
        sq2 = math.sqrt(2)
        while True:
            margin = 1 / FMIN_REL - 1 + 0.05 if acquiring else 0.03
            if pos + C * fs / f_hint * (1 + margin) + KH + 2 > L:
                break
            # ---- frequency tracking on the positive sequence of the phase voltages
            f = f_hint
            f_meas, eps, held = f, 0.0, False
            f_avail = C * fs / (L - KH - 2 - pos)
            for it in range(MAX_ITER):
                f = max(f, f_avail)
                length = C * fs / f
                xr = self.resample(xv, pos, length)
                y3 = xr.reshape(3, C, M) @ self.e
                rms_ref = math.sqrt(np.einsum("cn,cn->", xr, xr) / N / 3)
                y = (y3[0] + A3 * y3[1] + A3 * A3 * y3[2]) / 3
                amp = np.abs(y).sum()
                fund = amp * sq2 / N
                if not (fund > 0) or fund < 0.2 * rms_ref or fund < 0.05 * self.declared:
                    held = True
                    break
                ec = np.angle(np.vdot(y[:-1], y[1:])) / TWO_PI  # sum y[i] conj(y[i-1])
                if (acquiring or it == 0) and abs(ec) > COARSE_TOL:
                    f = self.clamp(f * (1 + ec))
                    continue
                h1, h2 = y[:C // 2].sum(), y[C // 2:].sum()
                eps = np.angle(h2 * np.conj(h1)) / (math.pi * C)
                f_meas = f * (1 + eps)
                if abs(eps) < FINE_TOL or it == MAX_ITER - 1:
                    break
                f = self.clamp(f_meas)
            X = np.empty((6, N))
            if held:
                f = f_last if have_last else f_hint
                f_meas, eps = f, 0.0
                length = C * fs / f
                X[:] = self.resample(x, pos, length)
                acquiring = True
            else:
                acquiring = False
                X[self.vabc] = xr
                X[self.rest] = self.resample(x[self.rest], pos, length)
            w = {"index": len(out)}
            t_start = round(pos * 1e9 / fs)
            t_ref = round((pos + length / 2) * 1e9 / fs)
            w["t_start_ns"], w["t_end_ns"] = t_start, round((pos + length) * 1e9 / fs)
            w["t_ref_ns"], w["freq"] = t_ref, f_meas
            # times are relative to a whole UTC second: only the fraction of the second matters
            ref_phase = TWO_PI * math.fmod(self.f0 * (t_ref % 1_000_000_000) / 1e9, 1.0)

            # ---- Urms(1/2): one-cycle RMS every half cycle
            hs = (X * X).reshape(6, 2 * C, M // 2).sum(axis=2)
            prev = np.concatenate([prev_half[:, None] if have_prev_half else hs[:, :1] * np.nan,
                                   hs[:, :-1]], axis=1)
            u = np.sqrt((prev + hs) / M)
            w["urms_half_min"] = np.nanmin(u, axis=1)
            w["urms_half_max"] = np.nanmax(u, axis=1)
            prev_half, have_prev_half = hs[:, -1], True

            # ---- per channel: RMS, spectrum, phasors, (inter)harmonic (sub)groups, THD
            rms = np.sqrt(np.einsum("cn,cn->c", X, X) / N)
            F = np.fft.rfft(X, axis=1)
            dc = F[:, 0].real / N
            xc = F[:, C] * (sq2 / N)
            ang = np.angle(xc) + math.pi * C * (f_meas / f - 1) / N - ref_phase
            fund = np.abs(xc) * np.exp(1j * ang)
            z = X[:, self.ph_slice] @ self.ph_e * (sq2 / (self.P * M))
            hm, comp = self.harmonic_grid(C * fs / length)
            E = (F.real ** 2 + F.imag ** 2) * (2.0 / (N * N)) * comp
            cs = np.zeros((6, E.shape[1] + 1))
            np.cumsum(E, axis=1, out=cs[:, 1:])
            b, bi = np.arange(1, hm + 1) * C, np.arange(0, hm) * C
            g_lo, g_hi = b - C // 2, b + C // 2  # group: half-weight edge bins
            hg = np.zeros((6, MAX_H + 1))
            hsg, ihg, ihsg = np.zeros_like(hg), np.zeros_like(hg), np.zeros_like(hg)
            hg[:, 1:hm + 1] = np.sqrt(0.5 * (E[:, g_lo] + E[:, g_hi])
                                      + cs[:, g_hi] - cs[:, g_lo + 1])
            hsg[:, 1:hm + 1] = np.sqrt(cs[:, b + 2] - cs[:, b - 1])
            ihg[:, :hm] = np.sqrt(np.maximum(cs[:, bi + C] - cs[:, bi + 1], 0))
            ihsg[:, :hm] = np.sqrt(np.maximum(cs[:, bi + C - 1] - cs[:, bi + 2], 0))
            hg[:, 0] = hsg[:, 0] = np.abs(dc)
            thd = np.sqrt((hg[:, 2:hm + 1] ** 2).sum(axis=1)) / hg[:, 1]
            thds = np.sqrt((hsg[:, 2:hm + 1] ** 2).sum(axis=1)) / hsg[:, 1]
            w.update(rms=rms, dc=dc, fund_mag=np.abs(xc), fund_ang=wrap_pi(ang), ph_mag=np.abs(z),
                     ph_ang=wrap_pi(np.angle(z) - ref_phase), thd=thd, thds=thds, hg=hg, hsg=hsg,
                     ihg=ihg, ihsg=ihsg)

            # ---- three phase: symmetrical components, line-to-line, power (IEEE 1459)
            V, Iph = fund[self.vabc], fund[self.iabc]
            T = np.array([[1, 1, 1], [1, A3, A3 * A3], [1, A3 * A3, A3]]) / 3
            vs, is_ = T @ V, T @ Iph
            w["v_seq_mag"], w["v_seq_ang"], w["i_seq_mag"] = np.abs(vs), np.angle(vs), np.abs(is_)
            w["u0"], w["u2"] = abs(vs[0]) / abs(vs[1]), abs(vs[2]) / abs(vs[1])
            Xv, Xi = X[self.vabc], X[self.iabc]
            D = Xv - np.roll(Xv, -1, axis=0)
            vll2 = np.einsum("cn,cn->c", D, D) / N
            w["vll_rms"], w["vll_fund"] = np.sqrt(vll2), np.abs(V - np.roll(V, -1))
            p = np.einsum("cn,cn->c", Xv, Xi) / N
            q = (V * np.conj(Iph)).imag
            s = rms[self.vabc] * rms[self.iabc]
            w["pqs"] = np.concatenate([p, q, s])
            isum = Xi.sum(axis=0)
            in2 = isum @ isum / N
            ve = math.sqrt((3 * (rms[self.vabc] ** 2).sum() + vll2.sum()) / 18)
            ie = math.sqrt(((rms[self.iabc] ** 2).sum() + in2) / 3)
            w["p_tot"], w["q_tot"], w["s_eff"] = p.sum(), q.sum(), 3 * ve * ie

            # ---- ROCOF and the next window's frequency
            if not held and have_last and t_ref > tref_last:
                w["rocof"] = (f_meas - f_last) / ((t_ref - tref_last) / 1e9)
                rocof_last = w["rocof"]
            else:
                w["rocof"], rocof_last = 0.0, 0.0
            if not held:
                f_last, tref_last, have_last = f_meas, t_ref, True
                r = rocof_last if abs(rocof_last) < 5 else 0
                f_hint = self.clamp(f_meas + r * length / fs)
            out.append(w)
            pos += length
        return out


def compare(ref, eng):
    """Largest differences between the reference's and the engine's windows. Magnitudes are
    compared relative to the channel's fundamental (spectra, RMS) or to the quantity's scale."""
    d = {}

    def upd(k, v):
        d[k] = max(d.get(k, 0.0), float(v))

    for r, e in zip(ref, eng):
        upd("t_start_ns", abs(r["t_start_ns"] - e["t_start_ns"]))
        upd("t_ref_ns", abs(r["t_ref_ns"] - e["t_ref_ns"]))
        upd("freq_hz", abs(r["freq"] - e["freq"]))
        upd("rocof_hz_per_s", abs(r["rocof"] - e["rocof"]))
        fm = np.array(e["fund_mag"])
        for k in ("rms", "dc", "fund_mag", "ph_mag", "urms_half_min", "urms_half_max"):
            upd(k + "_rel", np.max(np.abs(r[k] - np.array(e[k])) / fm))
        for k in ("fund_ang", "ph_ang"):
            upd(k + "_rad", np.max(np.abs(wrap_pi(r[k] - np.array(e[k])))))
        for k in ("thd", "thds"):
            upd(k, np.max(np.abs(r[k] - np.array(e[k]))))
        for k in ("hg", "hsg", "ihg", "ihsg"):
            upd(k + "_rel", np.max(np.abs(r[k] - np.array(e[k])) / fm[:, None]))
        for k in ("v_seq_mag", "vll_rms", "vll_fund"):
            upd(k + "_rel", np.max(np.abs(r[k] - np.array(e[k]))) / e["v_seq_mag"][1])
        upd("i_seq_mag_rel", np.max(np.abs(r["i_seq_mag"] - np.array(e["i_seq_mag"])))
            / e["i_seq_mag"][1])
        upd("unbalance", max(abs(r["u0"] - e["u0"]), abs(r["u2"] - e["u2"])))
        s = e["s_eff"]
        upd("power_rel", max(np.max(np.abs(r["pqs"] - np.array(e["pqs"]))) / s,
                             abs(r["p_tot"] - e["p_tot"]) / s, abs(r["q_tot"] - e["q_tot"]) / s,
                             abs(r["s_eff"] - e["s_eff"]) / s))
    return d


# Agreement required: rounding-level for everything computed the same way (the reference sums in
# a different order, uses numpy's FFT instead of FFTW, and resamples in double precision where
# the engine's interpolation runs in single precision: relative differences up to ~1e-7 of the
# fundamental); times within 1 ns (rounding of the sample position to ns); frequency well below
# anything the accuracy table resolves.
TOL = {"t_start_ns": 1, "t_ref_ns": 1, "freq_hz": 1e-7, "rocof_hz_per_s": 1e-5,
       "_rel": 1e-7, "_rad": 1e-6, "thd": 1e-7, "thds": 1e-7, "unbalance": 1e-7}


def tol_for(k):
    if k in TOL:
        return TOL[k]
    for suffix in ("_rel", "_rad"):
        if k.endswith(suffix):
            return TOL[suffix]
    return 1e-7


def load(signal, nch=6):
    raw = np.fromfile(signal, dtype=np.float64)
    return raw.reshape(-1, nch)


def prepare(raw):
    # channel-major, rounded to float32 as the engine's sample ring holds the values
    return raw.T.astype(np.float32).astype(np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--signal", required=True)
    ap.add_argument("--windows")
    ap.add_argument("--fs", type=float, required=True)
    ap.add_argument("--f0", type=int, default=50)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--check-only", action="store_true", help="compare, do not time")
    ap.add_argument("--no-check", action="store_true", help="time only (no --windows needed)")
    a = ap.parse_args()
    if not a.no_check and not a.windows:
        ap.error("--windows is required unless --no-check")

    raw = load(a.signal)
    an = Analyser(a.fs, a.f0)
    ref = an.run(prepare(raw))
    res = {"bench": "dsp_ref", "fs": a.fs, "f0": a.f0, "N": an.N, "C": an.C, "channels": 6,
           "sample_sets": raw.shape[0], "windows_ref": len(ref),
           "numpy_version": np.__version__, "python": sys.version.split()[0], "agree": None}
    if not a.no_check:
        eng = [json.loads(line) for line in open(a.windows)]
        diffs = compare(ref, eng)
        bad = {k: v for k, v in diffs.items() if not v <= tol_for(k)}
        res.update(windows_engine=len(eng), max_diff=diffs,
                   tolerance={k: tol_for(k) for k in diffs},
                   agree=len(ref) == len(eng) and not bad, out_of_tolerance=bad)

    if not a.check_only:
        samples = raw.size
        cpu, wall = [], []
        for rep in range(-1, a.reps):  # rep -1: warm-up
            c0, w0 = time.process_time(), time.perf_counter()
            an.run(prepare(raw))
            c1, w1 = time.process_time(), time.perf_counter()
            if rep >= 0:
                cpu.append((c1 - c0) * 1e9 / samples)
                wall.append((w1 - w0) * 1e9 / samples)
        # numpy's own FFT floor: one rfft of N points per channel and window, per sample
        x = prepare(raw)[:, :an.N].copy()
        fcpu = []
        for rep in range(-1, a.reps):
            k, c0 = 0, time.process_time()
            while True:  # as many as the analysis makes, repeated to at least 0.2 s
                for _ in range(max(1, len(ref))):
                    np.fft.rfft(x, axis=1)
                k += max(1, len(ref))
                c1 = time.process_time()
                if c1 - c0 >= 0.2:
                    break
            if rep >= 0:
                fcpu.append((c1 - c0) * 1e9 / (k * 6 * an.N))
        res.update(reps=a.reps, ref_cpu_ns_per_sample=cpu,
                   ref_cpu_ns_per_sample_median=statistics.median(cpu),
                   ref_wall_ns_per_sample=wall,
                   ref_wall_ns_per_sample_median=statistics.median(wall),
                   numpy_rfft_cpu_ns_per_sample=fcpu,
                   numpy_rfft_cpu_ns_per_sample_median=statistics.median(fcpu))
    print(json.dumps(res))
    return 1 if res["agree"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
