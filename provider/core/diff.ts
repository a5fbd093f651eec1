/**
 * A unified diff of two texts (what `diff -u` prints, and `patch` applies), for `plan --diff`: the plan's files
 * against what the facts read. Lines keep their terminators, so a CRLF line or a last line without a newline
 * differs from its LF twin, as it does on disk.
 */

const CONTEXT = 3;

type Edit = { kind: " " | "-" | "+"; line: string };

/** `--- PATH` / `+++ PATH` and hunks; "" when the texts are equal. null = the file is absent on that side. */
export function unifiedDiff(path: string, before: string | null, after: string | null): string {
  if (before === after) return "";
  const edits = lineEdits(lines(before ?? ""), lines(after ?? ""));
  const out = [`--- ${before === null ? "/dev/null" : path}\n`, `+++ ${after === null ? "/dev/null" : path}\n`];
  for (const hunk of hunks(edits)) out.push(hunk);
  return out.join("");
}

function lines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Myers' O((N+M)D) shortest edit script, as a list of kept, removed and added lines. */
function lineEdits(a: readonly string[], b: readonly string[]): Edit[] {
  const max = a.length + b.length;
  const offset = max + 1;
  const v = new Array<number>(2 * max + 3).fill(0);
  const trace: number[][] = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < a.length && y < b.length && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= a.length && y >= b.length) {
        found = true;
        break;
      }
    }
  }
  // Walk back through the saved frontiers from the end to the start.
  const edits: Edit[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d >= 0 && (x > 0 || y > 0); d--) {
    const frontier = trace[d];
    const k = x - y;
    const down = k === -d || (k !== d && frontier[offset + k - 1] < frontier[offset + k + 1]);
    const previousK = down ? k + 1 : k - 1;
    const previousX = d === 0 ? 0 : frontier[offset + previousK];
    const previousY = previousX - previousK;
    while (x > previousX && y > previousY) {
      y--;
      edits.push({ kind: " ", line: a[--x] });
    }
    if (d === 0) break;
    if (down) edits.push({ kind: "+", line: b[--y] });
    else edits.push({ kind: "-", line: a[--x] });
  }
  return edits.reverse();
}

/** Groups the edits into hunks with CONTEXT lines around each change, merging hunks whose context touches. */
function hunks(edits: readonly Edit[]): string[] {
  const changed = edits.map((edit, index) => (edit.kind === " " ? -1 : index)).filter((index) => index >= 0);
  const ranges: [number, number][] = [];
  for (const index of changed) {
    const start = Math.max(0, index - CONTEXT);
    const end = Math.min(edits.length, index + CONTEXT + 1);
    const last = ranges.at(-1);
    if (last && start <= last[1]) last[1] = end;
    else ranges.push([start, end]);
  }
  return ranges.map(([start, end]) => {
    let oldLine = 0;
    let newLine = 0;
    for (const edit of edits.slice(0, start)) {
      if (edit.kind !== "+") oldLine++;
      if (edit.kind !== "-") newLine++;
    }
    const body = edits.slice(start, end);
    const oldCount = body.filter((edit) => edit.kind !== "+").length;
    const newCount = body.filter((edit) => edit.kind !== "-").length;
    const text = body.map((edit) => (edit.line.endsWith("\n") ? `${edit.kind}${edit.line}` : `${edit.kind}${edit.line}\n\\ No newline at end of file\n`)).join("");
    return `@@ -${range(oldLine, oldCount)} +${range(newLine, newCount)} @@\n${text}`;
  });
}

/** diff -u's ranges: `start,count`, `start` alone for one line, and the line before for an empty range. */
function range(before: number, count: number): string {
  if (count === 1) return String(before + 1);
  return `${count === 0 ? before : before + 1},${count}`;
}
