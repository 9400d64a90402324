import type { WireChart } from "../src/wire.js";
import { replaceChildren, svg } from "./dom.js";
import * as f from "./format.js";

const W = 800;
const H = 220;
const TOP = 12;
const BOTTOM = 28;
const LEFT = 44;
/** The last hour takes the left 40 % of the plot, the next 24 h the rest. */
const SPLIT = LEFT + (W - LEFT) * 0.4;
const HOUR = 3_600_000;

/**
 * The rate chart, drawn as plain SVG (no library, nothing inline): on the left the last hour, batches
 * per second seen per minute over the configured rate of the time; on the right the configured
 * schedule of the next 24 h, peak windows shaded. Two time scales, split at "now".
 */
export function drawChart(el: SVGSVGElement, chart: WireChart, batchSize: number): void {
  const { now, from, to } = chart;
  const x = (t: number) =>
    t <= now ? LEFT + ((t - from) / (now - from)) * (SPLIT - LEFT) : SPLIT + ((t - now) / (to - now)) * (W - SPLIT);
  const peak = Math.max(1e-9, ...chart.schedule.map((s) => s.perSecond), ...chart.observed.map((o) => o.batchesPerSecond));
  const yMax = peak * 1.15;
  const y = (v: number) => TOP + (1 - v / yMax) * (H - TOP - BOTTOM);
  const nodes: SVGElement[] = [];

  for (const s of chart.schedule) {
    if (s.onPeak) nodes.push(svg("rect", { class: "peak", x: x(s.from), y: TOP, width: Math.max(0.5, x(s.to) - x(s.from)), height: H - TOP - BOTTOM }));
  }
  // Axes and grid.
  nodes.push(svg("line", { class: "axis", x1: LEFT, y1: y(0), x2: W, y2: y(0) }));
  for (const v of [peak / 2, peak]) {
    nodes.push(svg("line", { class: "grid", x1: LEFT, y1: y(v), x2: W, y2: y(v) }));
    nodes.push(svg("text", { class: "label", x: LEFT - 4, y: y(v) + 4, "text-anchor": "end" }, `${f.num(v)}/s`));
  }
  nodes.push(svg("text", { class: "label", x: LEFT - 4, y: y(0) + 4, "text-anchor": "end" }, "0"));
  const ticks: Array<[number, string]> = [
    [from, "−60 min"],
    [from + HOUR / 2, "−30 min"],
    [now + 6 * HOUR, "+6 h"],
    [now + 12 * HOUR, "+12 h"],
    [now + 18 * HOUR, "+18 h"],
    [to, "+24 h"],
  ];
  for (const [t, label] of ticks) {
    nodes.push(svg("text", { class: "label", x: x(t), y: H - 8, "text-anchor": t === to ? "end" : t === from ? "start" : "middle" }, label));
  }
  nodes.push(svg("line", { class: "now", x1: SPLIT, y1: TOP, x2: SPLIT, y2: y(0) }));
  nodes.push(svg("text", { class: "label now-label", x: SPLIT, y: H - 8, "text-anchor": "middle" }, "now"));

  // The configured rate as steps.
  if (chart.schedule.length > 0) {
    let d = "";
    for (const s of chart.schedule) d += `${d === "" ? "M" : "L"}${x(s.from).toFixed(1)},${y(s.perSecond).toFixed(1)}H${x(s.to).toFixed(1)}`;
    nodes.push(svg("path", { class: "configured", d }, svg("title", {}, "configured rate")));
  }
  // The observed rate, one point per minute (at the minute's middle, the current one at now).
  if (chart.observed.length > 0) {
    const points = chart.observed.map((o) => `${x(Math.min(now, o.minute + 30_000)).toFixed(1)},${y(o.batchesPerSecond).toFixed(1)}`).join(" ");
    nodes.push(svg("polyline", { class: "observed", points }, svg("title", {}, "observed rate")));
    for (const o of chart.observed) {
      nodes.push(
        svg(
          "circle",
          { class: "observed-dot", cx: x(Math.min(now, o.minute + 30_000)), cy: y(o.batchesPerSecond), r: 2.5 },
          svg("title", {}, `${f.stamp(o.minute)}: ${f.num(o.batchesPerSecond)} batches/s, ${f.num(o.idsPerSecond)} ids/s`),
        ),
      );
    }
  }
  el.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const last = chart.observed[chart.observed.length - 1];
  const current = chart.schedule.find((s) => s.from <= now && now < s.to) ?? chart.schedule[0];
  const summary = `Rate chart. Configured now: ${current ? f.num(current.perSecond) : "–"} batches/s (${current ? f.num(current.perSecond * batchSize) : "–"} ids/s). Observed in the last minute: ${last ? f.num(last.batchesPerSecond) : "nothing"}${last ? " batches/s" : ""}.`;
  replaceChildren(el, svg("title", {}, summary), ...nodes);
}
