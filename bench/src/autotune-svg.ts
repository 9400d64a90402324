/**
 * A hand-written SVG line chart for bench/autotune.ts: panels stacked on one time axis, each with
 * its own y scale and legend. No chart library.
 */

/** One line: points (x, y); NaN y values break the line. */
export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly dashed?: boolean;
  /** Draw against the panel's right-hand axis. */
  readonly right?: boolean;
}

export interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly series: readonly Series[];
  /** Unit of the right-hand axis, when some series use it. */
  readonly rightUnit?: string;
  /** A horizontal reference line (e.g. the baseline × 1.2). */
  readonly reference?: { readonly y: number; readonly label: string };
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A round axis maximum at or above `v`. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const fmt = (v: number) => (v >= 10_000 ? `${Math.round(v / 1000)}k` : v >= 1000 ? `${(v / 1000).toFixed(1)}k` : Number.isInteger(v) ? String(v) : v.toFixed(1));

/** The chart as an SVG document. */
export function lineChart(options: { title: string; subtitle: string; xLabel: string; xMax: number; panels: readonly Panel[] }): string {
  const W = 960;
  const left = 70;
  const right = 80;
  const panelH = 170;
  const gap = 62;
  const top = 64;
  const plotW = W - left - right;
  const H = top + options.panels.length * (panelH + gap) + 10;
  const x = (v: number) => left + (Math.min(Math.max(v, 0), options.xMax) / options.xMax) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left}" y="24" font-size="16" font-weight="bold">${esc(options.title)}</text>`);
  out.push(`<text x="${left}" y="44" fill="#555">${esc(options.subtitle)}</text>`);
  options.panels.forEach((panel, i) => {
    const y0 = top + i * (panelH + gap) + 22;
    const leftMax = niceMax(Math.max(0, ...panel.series.filter((s) => !s.right).flatMap((s) => s.points.map((p) => p[1]).filter(Number.isFinite)), panel.reference?.y ?? 0));
    const rightMax = niceMax(Math.max(0, ...panel.series.filter((s) => s.right).flatMap((s) => s.points.map((p) => p[1]).filter(Number.isFinite))));
    const y = (v: number, r = false) => y0 + panelH - (Math.min(v, r ? rightMax : leftMax) / (r ? rightMax : leftMax)) * panelH;
    out.push(`<text x="${left}" y="${y0 - 8}" font-weight="bold">${esc(panel.title)}</text>`);
    out.push(`<rect x="${left}" y="${y0}" width="${plotW}" height="${panelH}" fill="none" stroke="#999"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (leftMax * k) / 4;
      const yy = y(v);
      out.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="#eee"/>`);
      out.push(`<text x="${left - 6}" y="${yy + 4}" text-anchor="end" fill="#333">${fmt(v)}</text>`);
      if (panel.series.some((s) => s.right)) out.push(`<text x="${left + plotW + 6}" y="${yy + 4}" fill="#333">${fmt((rightMax * k) / 4)}</text>`);
    }
    out.push(`<text x="14" y="${y0 + panelH / 2}" transform="rotate(-90 14 ${y0 + panelH / 2})" text-anchor="middle" fill="#333">${esc(panel.unit)}</text>`);
    if (panel.rightUnit) {
      const rx = W - 14;
      out.push(`<text x="${rx}" y="${y0 + panelH / 2}" transform="rotate(90 ${rx} ${y0 + panelH / 2})" text-anchor="middle" fill="#333">${esc(panel.rightUnit)}</text>`);
    }
    for (let s = 0; s <= options.xMax; s += options.xMax > 60 ? 10 : 5) {
      out.push(`<text x="${x(s)}" y="${y0 + panelH + 14}" text-anchor="middle" fill="#333">${s}</text>`);
    }
    if (panel.reference) {
      const yy = y(panel.reference.y);
      out.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="#2a2" stroke-dasharray="2 3"/>`);
      out.push(`<text x="${left + plotW - 4}" y="${yy - 4}" text-anchor="end" fill="#2a2">${esc(panel.reference.label)}</text>`);
    }
    for (const series of panel.series) {
      const segments: string[][] = [[]];
      for (const [px, py] of series.points) {
        if (!Number.isFinite(py) || px > options.xMax) segments.push([]);
        else segments[segments.length - 1]?.push(`${x(px).toFixed(1)},${y(py, series.right).toFixed(1)}`);
      }
      for (const seg of segments) {
        if (seg.length < 2) continue;
        out.push(`<polyline fill="none" stroke="${series.color}" stroke-width="1.6"${series.dashed ? ' stroke-dasharray="5 3"' : ""} points="${seg.join(" ")}"/>`);
      }
    }
    let lx = left + 8;
    for (const series of panel.series) {
      const ly = y0 + 14;
      out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${series.color}" stroke-width="2"${series.dashed ? ' stroke-dasharray="5 3"' : ""}/>`);
      const text = `${series.label}${series.right ? " (right axis)" : ""}`;
      out.push(`<text x="${lx + 22}" y="${ly}" fill="#222">${esc(text)}</text>`);
      lx += 34 + text.length * 6.4;
    }
  });
  out.push(`<text x="${left + plotW / 2}" y="${H - 4}" text-anchor="middle" fill="#333">${esc(options.xLabel)}</text>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
