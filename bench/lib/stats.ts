// The two statistics every scenario reports with.

/** The median of the finite values (NaN when there are none): a run that produced no figure does not count. */
export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Three significant digits are all a benchmark on a shared machine can claim. */
export function round3(x: number): number {
  return Number(x.toPrecision(3));
}
