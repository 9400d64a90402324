/**
 * Prometheus text exposition format 0.0.4: metric families, label escaping, number rendering.
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

/** Label names to values, in the order they are rendered. */
export type Labels = Readonly<Record<string, string>>;

const escapeLabelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/** Renders a sample value as Prometheus parses it (Go's ParseFloat, plus `+Inf`, `-Inf`, `NaN`). */
export function formatValue(value: number | bigint): string {
  if (typeof value === "bigint") return value.toString();
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

/** Identity of a series within its family. */
const seriesKey = (labels: Labels): string => JSON.stringify(Object.entries(labels));

/** One metric family: `# HELP`, `# TYPE`, then its samples. */
export interface Family {
  render(out: string[]): void;
}

/** A gauge family rebuilt on every scrape. */
export class GaugeFamily implements Family {
  private readonly samples: { labels: Labels; value: number | bigint }[] = [];
  constructor(
    readonly name: string,
    private readonly help: string,
  ) {}

  set(labels: Labels, value: number | bigint): this {
    this.samples.push({ labels, value });
    return this;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} gauge`);
    for (const s of this.samples) out.push(`${this.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
}

/** A monotonic counter family; the `_total` suffix is part of `name`. */
export class CounterFamily implements Family {
  private readonly series = new Map<string, { labels: Labels; value: number | bigint }>();
  constructor(
    readonly name: string,
    private readonly help: string,
  ) {}

  inc(labels: Labels, by: number | bigint = 1): void {
    const key = seriesKey(labels);
    const current = this.series.get(key);
    if (!current) this.series.set(key, { labels, value: by });
    // Ids are added as bigints so a long run's total stays exact; every other counter uses numbers.
    else if (typeof current.value === "bigint" || typeof by === "bigint") current.value = BigInt(current.value) + BigInt(by);
    else current.value += by;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} counter`);
    for (const key of [...this.series.keys()].sort()) {
      const s = this.series.get(key)!;
      out.push(`${this.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    }
  }
}

/** A cumulative histogram family with fixed upper bounds. */
export class HistogramFamily implements Family {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = seriesKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    // Each bucket counts observations ≤ its bound, so one observation lands in every bucket from its own up.
    for (let i = 0; i < this.bounds.length; i++) if (value <= (this.bounds[i] as number)) s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += value;
    s.count += 1;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} histogram`);
    for (const key of [...this.series.keys()].sort()) {
      const s = this.series.get(key)!;
      this.bounds.forEach((bound, i) => {
        out.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: formatValue(bound) })} ${s.counts[i]}`);
      });
      out.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: "+Inf" })} ${s.count}`);
      out.push(`${this.name}_sum${formatLabels(s.labels)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${formatLabels(s.labels)} ${s.count}`);
    }
  }
}

/** Renders families into one exposition, ending with a newline as the format requires. */
export function renderFamilies(families: readonly Family[]): string {
  const out: string[] = [];
  for (const family of families) family.render(out);
  return `${out.join("\n")}\n`;
}
