// A log-bucketed latency histogram: buckets grow by 2 %, so a reported quantile (the bucket's
// geometric middle) is within about 1 % of the true value. Counts live in one typed array so a
// worker can hand its histogram to the parent and the parent can add them up.

/** Smallest and largest values kept apart (milliseconds); anything outside lands in the end buckets. */
const MIN_MS = 0.001;
const MAX_MS = 600_000;
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
export const HIST_BUCKETS = Math.ceil(Math.log(MAX_MS / MIN_MS) / LOG_GROWTH) + 1;

export class Histogram {
  readonly counts: Float64Array;
  count = 0;
  max = 0;
  sum = 0;

  constructor(counts?: Float64Array) {
    this.counts = counts ?? new Float64Array(HIST_BUCKETS);
    if (this.counts.length !== HIST_BUCKETS) throw new RangeError(`expected ${HIST_BUCKETS} buckets, got ${this.counts.length}`);
  }

  record(ms: number): void {
    const i = ms <= MIN_MS ? 0 : Math.min(HIST_BUCKETS - 1, Math.floor(Math.log(ms / MIN_MS) / LOG_GROWTH));
    this.counts[i]!++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** Adds another histogram's counts into this one. */
  merge(o: HistogramData): void {
    for (let i = 0; i < HIST_BUCKETS; i++) this.counts[i]! += o.counts[i]!;
    this.count += o.count;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
  }

  /** The q-quantile (0..1) in ms, or NaN when empty. The top quantile is capped at the exact max. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < HIST_BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, MIN_MS * GROWTH ** (i + 0.5));
    }
    return this.max;
  }

  mean(): number {
    return this.count ? this.sum / this.count : NaN;
  }

  /** Plain data for postMessage (the counts array is copied). */
  data(): HistogramData {
    return { counts: this.counts, count: this.count, max: this.max, sum: this.sum };
  }
}

export interface HistogramData {
  counts: Float64Array;
  count: number;
  max: number;
  sum: number;
}
