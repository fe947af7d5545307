// Pure: one SVG per workload and hog kind, p99 (log scale) against the number of background hogs,
// a line per arm. Hand-written SVG so the report needs nothing installed to view or build it.
import { armsOf, findCell, stepsOf, type Cell } from "./summary.js";
import { DEFAULT_HOG_KIND } from "./workloads/stress.js";

const W = 640;
const H = 400;
const M = { left: 70, right: 150, top: 40, bottom: 50 };
const COLOURS: Record<string, string> = {
  fair: "#d62728",
  "fair-weight": "#ff7f0e",
  "fair-idle": "#9467bd",
  scx_slo: "#2ca02c",
  "fair-rt": "#7f7f7f",
  lavd: "#1f77b4",
  "lavd-bw": "#17becf",
  bpfland: "#8c564b",
  flash: "#e377c2",
  layered: "#bcbd22",
};
const SPARE = ["#1f77b4", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Decades covering [lo, hi], at least one. */
export function logTicks(lo: number, hi: number): number[] {
  const from = Math.floor(Math.log10(lo));
  const to = Math.max(from + 1, Math.ceil(Math.log10(hi)));
  return Array.from({ length: to - from + 1 }, (_, i) => 10 ** (from + i));
}

function fmtTick(us: number): string {
  if (us >= 1e6) return `${us / 1e6} s`;
  if (us >= 1e3) return `${us / 1e3} ms`;
  return `${us} us`;
}

export function renderChart(
  cells: readonly Cell[],
  workload: string,
  kind: string = DEFAULT_HOG_KIND,
): string {
  const steps = stepsOf(cells, workload, kind);
  const arms = armsOf(cells, workload, kind);
  const name = kind === DEFAULT_HOG_KIND ? workload : `${workload}, ${kind} hogs`;
  const values = steps
    .flatMap((bg) => arms.map((arm) => findCell(cells, workload, arm, bg, kind)))
    .filter((c): c is Cell => !!c && c.p99_us > 0 && Number.isFinite(c.p99_us))
    .map((c) => c.p99_us);
  const ticks = values.length ? logTicks(Math.min(...values), Math.max(...values)) : [10, 100];
  const lo = Math.log10(ticks[0]!);
  const hi = Math.log10(ticks[ticks.length - 1]!);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  // Steps are placed evenly (0,1,2,4,8 reads better than a linear axis that bunches 0-2).
  const x = (i: number) =>
    M.left + (steps.length > 1 ? (i / (steps.length - 1)) * plotW : plotW / 2);
  const y = (us: number) => M.top + plotH - ((Math.log10(us) - lo) / (hi - lo)) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(`${name}: p99 latency against background hogs`)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(`${name}: p99 latency (log scale) vs background hogs`)}</text>`,
  ];
  for (const t of ticks) {
    out.push(
      `<line x1="${M.left}" y1="${y(t).toFixed(1)}" x2="${M.left + plotW}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${escapeXml(fmtTick(t))}</text>`,
    );
  }
  steps.forEach((bg, i) => {
    out.push(
      `<line x1="${x(i).toFixed(1)}" y1="${M.top + plotH}" x2="${x(i).toFixed(1)}" y2="${M.top + plotH + 5}" stroke="black"/>`,
      `<text x="${x(i).toFixed(1)}" y="${M.top + plotH + 20}" text-anchor="middle">${bg}</text>`,
    );
  });
  out.push(
    `<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="black"/>`,
    `<text x="${M.left + plotW / 2}" y="${H - 10}" text-anchor="middle">background CPU hogs</text>`,
    `<text x="16" y="${M.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${M.top + plotH / 2})">p99 latency</text>`,
  );
  arms.forEach((arm, k) => {
    const colour = COLOURS[arm] ?? SPARE[k % SPARE.length]!;
    const pts = steps
      .map((bg, i) => ({ i, c: findCell(cells, workload, arm, bg, kind) }))
      .filter((p) => p.c && p.c.p99_us > 0 && Number.isFinite(p.c.p99_us))
      .map((p) => [x(p.i), y(p.c!.p99_us)] as const);
    if (pts.length) {
      out.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ")}"/>`,
        ...pts.map(
          ([a, b]) =>
            `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="3.5" fill="${colour}"/>`,
        ),
      );
    }
    const ly = M.top + 10 + k * 20;
    out.push(
      `<line x1="${W - M.right + 15}" y1="${ly}" x2="${W - M.right + 40}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${W - M.right + 46}" y="${ly + 4}">${escapeXml(arm)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
