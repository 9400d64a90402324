/**
 * Stable error codes. Guards compare `code` (see {@link isSuperSpreaderError}),
 * not `instanceof`, because adapters are separate packages that may load their
 * own copy of core.
 */
export type SuperSpreaderErrorCode =
  /** A configuration field is missing, of the wrong type or out of range. */
  | "INVALID_CONFIG"
  /** An argument of a function call is invalid (ids, names, options). */
  | "INVALID_ARGUMENT"
  /** No backfill of that name is defined in this process or stored. */
  | "UNKNOWN_BACKFILL"
  /** The requested transition is not allowed in the backfill's current status. */
  | "INVALID_STATE"
  /** A stored value or a job payload could not be parsed. */
  | "CORRUPT_DATA"
  /** A port implementation (queue, store, source) failed. */
  | "ADAPTER_ERROR"
  /** Optimistic concurrency lost too many times in a row. */
  | "CONFLICT";

/**
 * The one error class of superspreader. Messages start with `[superspreader]`,
 * name the offending field or value, and say what to do.
 *
 * @example
 * ```ts
 * try {
 *   await spreader.start("reencrypt");
 * } catch (error) {
 *   if (isSuperSpreaderError(error) && error.code === "UNKNOWN_BACKFILL") console.error(error.message);
 *   else throw error;
 * }
 * ```
 */
export class SuperSpreaderError extends Error {
  override readonly name = "SuperSpreaderError";
  readonly code: SuperSpreaderErrorCode;
  /** The offending field (dotted path), when the error is about one. */
  readonly field: string | undefined;

  constructor(code: SuperSpreaderErrorCode, message: string, options: { cause?: unknown; field?: string } = {}) {
    super(`[superspreader] ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }
}

/** True for any superspreader error, from any copy of the package. */
export function isSuperSpreaderError(error: unknown): error is SuperSpreaderError {
  return (
    typeof error === "object" &&
    error !== null &&
    (error as { name?: unknown }).name === "SuperSpreaderError" &&
    typeof (error as { code?: unknown }).code === "string"
  );
}

/**
 * Renders a value for an error message: strings quoted, bigints with `n`, plain objects as
 * JSON (cut at 200 characters), instances of classes by their class name (a wrong client's
 * JSON would be huge or circular).
 *
 * @example
 * ```ts
 * describeValue(25n); // "25n"
 * describeValue(new Map()); // "a Map instance"
 * ```
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return String(value);
  if (typeof value === "function") return `a function${value.name ? ` (${value.name})` : ""}`;
  const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
  if (ctor !== undefined && ctor !== "Object" && ctor !== "Array") return `a ${ctor} instance`;
  try {
    const json = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
    return json.length > 200 ? `${json.slice(0, 200)}…` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
