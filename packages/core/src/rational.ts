import { SuperSpreaderError, describeValue } from "./errors.js";

/**
 * An exact non-negative fraction `num / den` (den > 0, reduced). Rates such as 7.5
 * or 0.3 jobs per second are converted from their shortest decimal spelling, so
 * `0.3` is exactly 3/10 and never accumulates binary rounding error.
 */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a < 0n ? -a : a;
}

/** Fractions already read, by value: estimates and deadline searches read the same few rates thousands of times. */
const READ = new Map<number, Rational>();

/** The exact fraction a finite, non-negative number's shortest decimal form denotes. */
export function toRational(value: number, field: string): Rational {
  const known = READ.get(value);
  if (known !== undefined) return known;
  const fraction = readRational(value, field);
  if (READ.size >= 4_096) READ.clear();
  READ.set(value, fraction);
  return fraction;
}

function readRational(value: number, field: string): Rational {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new SuperSpreaderError("INVALID_CONFIG", `${field} must be a finite number ≥ 0, got ${describeValue(value)}`, { field });
  }
  // String(n) is the shortest decimal that round-trips, e.g. "0.3", "7.5", "1e-7", "1.5e+21".
  const match = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(value));
  if (!match) throw new SuperSpreaderError("INVALID_CONFIG", `${field}: cannot read ${describeValue(value)} as a decimal`, { field });
  const [, whole = "0", fraction = "", exp = "0"] = match;
  let num = BigInt(whole + fraction);
  let den = 10n ** BigInt(fraction.length);
  const e = Number(exp);
  if (e >= 0) num *= 10n ** BigInt(e);
  else den *= 10n ** BigInt(-e);
  const g = gcd(num, den) || 1n;
  return { num: num / g, den: den / g };
}

/** `ceil(a * b)` for two exact fractions. */
export function ceilProduct(a: Rational, b: Rational): bigint {
  const n = a.num * b.num;
  const d = a.den * b.den;
  return (n + d - 1n) / d;
}

/** The fraction as a decimal string for storage and display, e.g. "7.5" (exact for terminating decimals). */
export function formatRational(r: Rational): string {
  const whole = r.num / r.den;
  let rest = r.num % r.den;
  if (rest === 0n) return whole.toString();
  let digits = "";
  for (let i = 0; i < 30 && rest !== 0n; i++) {
    rest *= 10n;
    digits += (rest / r.den).toString();
    rest %= r.den;
  }
  return `${whole}.${digits}`;
}
