/** Compares dotted version numbers ("2.0.2", "26.1.5+dfsg1"): negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const parts = (version: string) => (version.match(/\d+(?:\.\d+)*/)?.[0] ?? "0").split(".").map(Number);
  const [left, right] = [parts(a), parts(b)];
  for (let index = 0; index < Math.max(left.length, right.length); index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}
