"""Beat tracking for constant-tempo music, in plain numpy: no JIT, so a fresh process pays nothing.

The steps, each a function below:

1. `onset_bands`: a spectral-flux onset envelope in three bands (low: kick and bass, mid: snare
   and chords, high: hats), at about 172 frames a second.
2. `estimate_period`: each band's autocorrelation, summed. A band repeats at its own metrical
   level and at every multiple of it, so the sum is high where all bands agree: the shortest such
   lag (up to four slow bars, so a loop counts) is the repetition, and the beat divides it exactly
   into 1, 2, 4, 8, … parts (3, 6, … count half: DJ material is in 4/4), within 70–180 bpm. Among
   the divisions the support of the beat and its half and a log-normal prior around 120 bpm
   decide.
3. `choose_octave`: where both a tempo and its double are in range (70–90 vs 140–180 bpm), the
   double is the beat only when the beats it adds carry kick and snare onset like the others
   (a backbeat), not only hats or a syncopated kick.
4. `fit_constant_grid`: the phase whose beats carry the most onset (the low band counts double, so
   beats land on the kick rather than the off-beat hat; of phases nearly as strong, the one the
   music's first onset falls on), then a least-squares line through the onsets found near each
   predicted beat: tempo and offset to a fraction of a frame.
5. The first beat is the first predicted beat with real onset on it: bar 1 is where the music
   starts, so a loop that starts on its downbeat gets beat 0 at its start. (The downbeat is not
   looked for beyond that: the kick-versus-snare evidence tried moved the bar on real loops.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANALYSIS_RATE = 11025
RESAMPLE_QUALITY = "LQ"  # an onset envelope needs no more (and soxr's HQ costs 4× as much)
FRAME = 256  # 23 ms windows
HOP = 64  # 5.8 ms between envelope frames
FLUX_LAG = 2  # frames between the spectra a flux compares
LEAD_IN = FRAME  # samples of silence analysed before the start (a whole number of hops)
BAND_EDGES_HZ = (0.0, 200.0, 2000.0, ANALYSIS_RATE / 2)
LOW_BAND_WEIGHT_FOR_PHASE = 2.0
# The tempo range: DJ material is counted at 70–180 bpm (a 60 bpm ballad reads as 120, a 200 bpm
# gabber track as 100). Less than two octaves, so a tempo and its double are both in range only at
# 70–90 bpm; there the metrical evidence decides (`choose_octave`).
MIN_BPM, MAX_BPM = 70.0, 180.0
RANGE_TOLERANCE = 0.015  # a tempo this share outside the range still counts as in it (70 may read 69.9)
BEATS_IN_LONGEST_REPEAT = 16  # the repetition is looked for up to four bars at MIN_BPM (a loop)
KEEP_OF_BEST_SCORE = 0.8  # the shortest repetition within this share of the best is the one
# A beat is the repetition divided into so many parts, each with its weight: DJ material is in 4/4.
BEAT_DIVISIONS = tuple((parts, 1.0) for parts in (1, 2, 4, 8, 16, 32)) + tuple((parts, 0.5) for parts in (3, 6, 12, 24))
SALIENCE_FLOOR = 0.05  # where nothing repeats at any candidate beat (sparse percussion), the prior decides
SUBDIVISION_WEIGHT = 1.0
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 0.5  # a log-normal prior on tempo: centre and spread
# The double tempo is the beat when the beats it adds (half-way between the slower grid's) carry at
# least this share of the kick and snare onset the others carry. Measured on drum patterns: between
# the slower grid's beats (off-beat hats, a syncopated kick) 0–0.45; a backbeat snare 0.69–1.
DOUBLE_TEMPO_SHARE = 0.55
PHASE_TIE_SHARE = 0.5  # a phase carrying this share of the best one's onset ties with it (measured: the beat of a
# synth loop reads 0.6–0.8 of a sixteenth before it as loud, the flux favouring a hit after a longer gap)
FIRST_ONSET_SHARE, LOUD_ONSET_QUANTILE = 0.3, 0.999
SEARCH_SHARE_OF_PERIOD = 0.15  # an onset this close to a predicted beat belongs to it
FIRST_BEAT_SHARE_OF_MEDIAN = 0.25  # a beat with less onset than this (vs the median beat) is silence
# The flux of a sharp onset peaks this long before the onset itself (a centred window sees it
# coming), measured on synthetic drums and clicks; beat times are moved on by it.
ENVELOPE_LEAD_S = 0.0026


@dataclass(frozen=True)
class TrackedTempo:
    bpm: float
    first_beat_s: float
    beats_found: int  # predicted beats with onset on them


def onset_bands(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(3, frames) half-wave rectified log-spectral flux per band, each scaled to unit spread.
    Frame i is centred at `frame_time(i)`: the first frames lie in the silence before the start."""
    from engine.audio.decode import resample

    audio = resample(np.asarray(samples, dtype=np.float32), sample_rate, ANALYSIS_RATE, quality=RESAMPLE_QUALITY)
    # Silence before the first sample lets an onset at the very start rise out of nothing.
    audio = np.pad(np.asarray(audio, dtype=np.float32), (LEAD_IN + FRAME // 2, FRAME // 2))
    n_frames = 1 + (len(audio) - FRAME) // HOP
    window = np.hanning(FRAME).astype(np.float32)
    frequencies = np.fft.rfftfreq(FRAME, 1.0 / ANALYSIS_RATE)
    band_starts = np.searchsorted(frequencies, BAND_EDGES_HZ[:-1])
    frames = np.lib.stride_tricks.sliding_window_view(audio, FRAME)[::HOP][:n_frames]
    spectra = np.empty((3, n_frames), dtype=np.float32)
    for start in range(0, n_frames, 8192):  # bounded memory for long tracks
        magnitude = np.abs(np.fft.rfft(frames[start:start + 8192] * window, axis=1))
        log_magnitude = np.log1p(1000.0 * magnitude)
        spectra[:, start:start + len(magnitude)] = np.add.reduceat(log_magnitude, band_starts, axis=1).T
    flux = np.zeros_like(spectra)
    flux[:, FLUX_LAG:] = np.maximum(0.0, spectra[:, FLUX_LAG:] - spectra[:, :-FLUX_LAG])
    spread = flux.std(axis=1, keepdims=True)
    return flux / np.where(spread > 0, spread, 1.0)


def frame_time(frame: float) -> float:
    return (frame * HOP - LEAD_IN) / ANALYSIS_RATE


def summed_autocorrelation(bands: np.ndarray) -> np.ndarray:
    """Each band's autocorrelation (1 at lag 0), summed over the bands, with the bias of the
    shorter overlap at long lags undone."""
    n = bands.shape[1]
    centred = bands - bands.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, size, axis=1)
    autocorrelation = np.fft.irfft(spectrum * np.conj(spectrum), size, axis=1)[:, :n]
    energy = autocorrelation[:, :1]
    autocorrelation = np.where(energy > 0, autocorrelation / np.where(energy > 0, energy, 1.0), 0.0)
    return autocorrelation.sum(axis=0) / (1.0 - np.arange(n) / n)


def estimate_period(bands: np.ndarray, frame_rate: float) -> float | None:
    """The beat period in frames (fractional), or None when nothing repeats.

    First the repetition: the shortest lag, up to four slow bars (a loop), at which the bands
    repeat almost as well as at their best. The beat divides it into whole parts (1, 2, 4, 8, …;
    3, 6, 12, … count half, DJ material being in 4/4); each candidate in the tempo range is scored
    by how well the music repeats at the beat and at its half (the eighths), times a log-normal
    prior on tempo."""
    summed = summed_autocorrelation(bands)
    n = len(summed)
    shortest = int(np.floor(frame_rate * 60.0 / MAX_BPM / (1 + RANGE_TOLERANCE)))
    longest = min(int(np.ceil(frame_rate * 60.0 * BEATS_IN_LONGEST_REPEAT / MIN_BPM / (1 - RANGE_TOLERANCE))), n // 2)
    if longest <= shortest + 2:
        return None
    lags = np.arange(shortest, longest + 1)
    scores = summed[lags]
    peaks = lags[1:-1][(scores[1:-1] >= scores[:-2]) & (scores[1:-1] > scores[2:]) & (scores[1:-1] > 0)]
    if len(peaks) == 0:
        return None
    lag = peaks[summed[peaks] >= KEEP_OF_BEST_SCORE * summed[peaks].max()].min()
    repeat = refine_repeat(summed, _peak_near(summed, lag, share=1.0 / lag), reach=shortest / 8)
    best_score, best_period = 0.0, None
    for parts, meter_weight in BEAT_DIVISIONS:
        period = repeat / parts
        bpm = 60.0 * frame_rate / period
        if not in_tempo_range(bpm):
            continue
        salience = max(0.0, _at(summed, period)) + SUBDIVISION_WEIGHT * max(0.0, _at(summed, period / 2))
        prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
        score = (SALIENCE_FLOOR + salience) * prior * meter_weight
        if score > best_score:
            best_score, best_period = score, period
    return best_period


def refine_repeat(summed: np.ndarray, lag: float, reach: float) -> float:
    """The repetition `lag` measured at the longest lags the autocorrelation has: the music
    repeats at every multiple of it, so the peak near 2, 4, 8, … times it (looked for within
    `reach` frames of where the last estimate puts it) divides the error of a peak a frame wide by
    as many. A 5-minute track needs this: a beat a hundredth of a frame off drifts a beat by its end."""
    multiple = 1
    while 2 * multiple * lag < len(summed) // 2:
        multiple *= 2
        peak = _peak_near(summed, multiple * lag, share=reach / (multiple * lag))
        if peak is None:
            break
        lag = peak / multiple
    return lag


def in_tempo_range(bpm: float) -> bool:
    return MIN_BPM * (1 - RANGE_TOLERANCE) <= bpm <= MAX_BPM * (1 + RANGE_TOLERANCE)


def _at(values: np.ndarray, position: float) -> float:
    return float(np.interp(position, np.arange(len(values)), values))


def _peak_near(values: np.ndarray, position: float, share: float) -> float | None:
    """The sub-frame position of the highest value within `share` of `position`."""
    low = max(1, int(np.floor(position * (1 - share))))
    high = min(len(values) - 2, int(np.ceil(position * (1 + share))))
    if high <= low:
        return None
    top = low + int(np.argmax(values[low:high + 1]))
    left, middle, right = values[top - 1 : top + 2]
    curvature = left - 2 * middle + right
    return top + (float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0)


def choose_octave(bands: np.ndarray, period: float, frame_rate: float) -> float:
    """`period`, or its half when that is in the tempo range too and the beats it adds carry
    about as much kick and snare onset as the others (`DOUBLE_TEMPO_SHARE`), else its double when
    that is in range and the beats it drops carry little. Hats count for nothing here: eighth hats
    over a 70 bpm groove are not a 140 bpm beat."""
    kick_and_snare = bands[0] + bands[1]
    in_range = lambda p: in_tempo_range(60.0 * frame_rate / p)  # noqa: E731
    if in_range(period / 2):
        return period / 2 if alternation(kick_and_snare, period / 2) >= DOUBLE_TEMPO_SHARE else period
    if in_range(period * 2):
        return period if alternation(kick_and_snare, period) >= DOUBLE_TEMPO_SHARE else period * 2
    return period


def alternation(strength: np.ndarray, period: float) -> float:
    """How much onset every other beat of the grid of `period` carries against the beats between
    them (the mean of the weaker set over the mean of the stronger): near 1 when all beats are
    alike, near 0 when every other one is an off-beat."""
    beats = _onsets_near(strength, _predicted(_best_phase(strength, period), period, len(strength)), period)[1]
    even, odd = beats[0::2].mean(), beats[1::2].mean()
    return float(min(even, odd) / max(even, odd)) if max(even, odd) > 0 else 0.0


def _best_phase(strength: np.ndarray, period: float, first_onset: float | None = None) -> float:
    """The phase (in frames, within one period) whose beats carry the most onset. Given the frame
    of the music's first onset, a phase that carries nearly as much (PHASE_TIE_SHARE: a synth
    loop's sixteenths, a groove whose off-beat is as loud as its beat) wins when the first onset
    falls on it: music starts on a beat."""
    frames = np.arange(len(strength))
    bins = max(8, int(round(period)))
    phase_bin = np.floor((frames % period) / period * bins).astype(int) % bins
    by_phase = np.bincount(phase_bin, weights=strength, minlength=bins)
    smoothed = by_phase + 0.5 * (np.roll(by_phase, 1) + np.roll(by_phase, -1))
    best = int(np.argmax(smoothed))
    if first_onset is not None:
        peaks = np.flatnonzero((smoothed >= np.roll(smoothed, 1)) & (smoothed >= np.roll(smoothed, -1))
                               & (smoothed >= PHASE_TIE_SHARE * smoothed[best]))
        first_bin = (first_onset % period) / period * bins
        distance = np.abs((peaks + 0.5 - first_bin + bins / 2) % bins - bins / 2)
        best = int(peaks[np.argmin(distance)])
    return (best + 0.5) * period / bins


def first_onset_frame(strength: np.ndarray) -> int:
    """The first frame whose onset reaches FIRST_ONSET_SHARE of the loud onsets (a high quantile,
    so that one outlier does not set the bar)."""
    rank = int(LOUD_ONSET_QUANTILE * (len(strength) - 1))
    loud = np.partition(strength, rank)[rank]  # np.quantile would import numpy.ma (50 ms)
    return int(np.argmax(strength >= FIRST_ONSET_SHARE * loud)) if loud > 0 else 0


def _predicted(phase: float, period: float, n: int) -> np.ndarray:
    return phase + period * np.arange(int((n - 1 - phase) // period) + 1)


def fit_constant_grid(bands: np.ndarray, period: float) -> tuple[float, float, np.ndarray] | None:
    """(period, phase) in frames of the constant grid fitted to the onsets near its beats, and the
    onset strength at each predicted beat; None when fewer than two beats carry onset."""
    strength = LOW_BAND_WEIGHT_FOR_PHASE * bands[0] + bands[1] + bands[2]
    n = len(strength)
    phase = _earliest_phase(_best_phase(strength, period, first_onset_frame(strength)), period)
    for _ in range(2):
        predicted = _predicted(phase, period, n)
        found, weights = _onsets_near(strength, predicted, period)
        usable = weights > 0
        if usable.sum() < 2:
            return None
        period, phase = _weighted_line(np.flatnonzero(usable), found[usable], weights[usable])
        if not period > 0:
            return None
        phase = _earliest_phase(phase, period)
    _, weights = _onsets_near(strength, _predicted(phase, period, n), period)
    return period, phase, weights


def _earliest_phase(phase: float, period: float) -> float:
    """The first beat of the grid through `phase`, allowing one just before frame 0 (a beat on the
    very first sample may fit a fraction of a frame early)."""
    earliest = phase % period
    reach = SEARCH_SHARE_OF_PERIOD * period
    return earliest - period if earliest > period - reach else earliest


def _onsets_near(strength: np.ndarray, predicted: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """For each predicted beat, the sub-frame position of the strongest onset within the search
    window and its strength."""
    reach = max(1, int(round(SEARCH_SHARE_OF_PERIOD * period)))
    offsets = np.arange(-reach, reach + 1)
    centres = np.rint(predicted).astype(int)
    index = np.clip(centres[:, None] + offsets[None, :], 0, len(strength) - 1)
    window = strength[index]
    best = np.argmax(window, axis=1)
    rows = np.arange(len(predicted))
    at = index[rows, best]
    before = strength[np.clip(at - 1, 0, len(strength) - 1)]
    after = strength[np.clip(at + 1, 0, len(strength) - 1)]
    peak = strength[at]
    curvature = before - 2 * peak + after
    shift = np.where(curvature < 0, 0.5 * (before - after) / np.where(curvature < 0, curvature, -1.0), 0.0)
    return at + np.clip(shift, -0.5, 0.5), window[rows, best]


def _weighted_line(k: np.ndarray, positions: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the weighted least-squares line positions ≈ intercept + slope·k."""
    mean_k = np.average(k, weights=weights)
    mean_p = np.average(positions, weights=weights)
    spread = np.average((k - mean_k) ** 2, weights=weights)
    slope = np.average((k - mean_k) * (positions - mean_p), weights=weights) / spread if spread > 0 else 0.0
    return float(slope), float(mean_p - slope * mean_k)


def track_tempo(samples: np.ndarray, sample_rate: int) -> TrackedTempo | None:
    """The constant tempo of mono `samples` and the time of its first sounding beat, or None when
    no beat is found (silence, no steady pulse)."""
    bands = onset_bands(samples, sample_rate)
    frame_rate = ANALYSIS_RATE / HOP
    if not np.any(bands):
        return None
    period = estimate_period(bands, frame_rate)
    if period is None:
        return None
    fitted = fit_constant_grid(bands, choose_octave(bands, period, frame_rate))
    if fitted is None:
        return None
    period, phase, beat_strength = fitted
    sounding = beat_strength >= FIRST_BEAT_SHARE_OF_MEDIAN * np.median(beat_strength[beat_strength > 0])
    if not sounding.any():
        return None
    first = int(np.argmax(sounding))
    first_beat_s = frame_time(phase + first * period) + ENVELOPE_LEAD_S
    return TrackedTempo(bpm=60.0 * frame_rate / period, first_beat_s=max(0.0, first_beat_s),
                        beats_found=int(sounding.sum()))
