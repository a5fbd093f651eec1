/**
 * Progress on stderr, for people and for CI logs alike: a line per host as it finishes and per wave, with the
 * elapsed time and how many are done. On a terminal a status line below them shows what is still running.
 */
import type { ProgressEvent } from "./run";

export interface ProgressOutput {
  write: (text: string) => void;
  /** stderr is a terminal: keep a live status line (rewritten in place) below the finished lines. */
  live: boolean;
}

export interface Progress {
  onProgress: (event: ProgressEvent) => void;
  /** Clears the live line; call before the report is printed. */
  end: () => void;
}

/** How often the live line's clock moves while nothing else happens. */
const TICK_MS = 1000;

export function createProgress(output: ProgressOutput, now: () => number = Date.now): Progress {
  const started = now();
  const running = new Map<string, string>();
  let counts = { done: 0, total: 0 };
  let shown = false;
  const elapsed = () => `[${((now() - started) / 1000).toFixed(1)}s]`;

  const clearLive = () => {
    if (shown) output.write("\r\x1b[2K");
    shown = false;
  };
  const drawLive = () => {
    if (!output.live || running.size === 0) return;
    const names = [...running.keys()];
    const activity = running.get(names[0])!;
    const list = names.slice(0, 4).join(", ") + (names.length > 4 ? `, +${names.length - 4}` : "");
    // The total is known from the first finished host on: before that "0/0 done" would say nothing.
    const done = counts.total > 0 ? `${counts.done}/${counts.total} done; ` : "";
    output.write(`\r\x1b[2K${elapsed()} ${done}${activity}: ${list}`);
    shown = true;
  };
  const line = (text: string) => {
    clearLive();
    output.write(`${elapsed()} ${text}\n`);
    drawLive();
  };
  const timer = output.live ? setInterval(() => (clearLive(), drawLive()), TICK_MS) : undefined;
  timer?.unref();

  return {
    onProgress(event) {
      switch (event.type) {
        case "host-start":
          running.set(event.name, event.activity);
          clearLive();
          drawLive();
          break;
        case "host-done":
          running.delete(event.name);
          counts = { done: event.done, total: event.total };
          line(`${event.name}: ${event.status} (${event.done}/${event.total})`);
          break;
        case "wave-start":
          line(`wave ${event.wave}/${event.waves}: ${event.hosts.join(", ")}`);
          break;
        case "wave-done":
          line(`wave ${event.wave}/${event.waves} done: ${Object.entries(event.statuses).map(([status, count]) => `${count} ${status}`).join(", ")}`);
          break;
      }
    },
    end() {
      if (timer) clearInterval(timer);
      clearLive();
    },
  };
}
